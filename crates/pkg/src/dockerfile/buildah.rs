//! Debian's `buildah`, run with storage of its own that lives and dies with
//! one build.
//!
//! Every invocation names its storage root and run root under the build's
//! scratch directory (in our cache's `tmp/`, so one a killed run left is
//! removed by the next), with the `vfs` driver (no kernel overlay nor FUSE
//! needed) and a `storage.conf`, `registries.conf` and signature policy of
//! ours, so neither the host's container configuration nor another build
//! can change what this one sees. `RUN` steps use `--isolation chroot`
//! (no OCI runtime needed); without network (`network: false`, the
//! default) the whole `buildah` process runs in a new, empty network
//! namespace (`unshare --net`), as chroot isolation cannot make one per
//! step. Base images are loaded from our cache with `skopeo copy` (from an
//! OCI archive into `containers-storage:`; `buildah pull oci:` names the
//! image after its path) and the build runs with `--pull=never`: nothing is
//! fetched from any registry by the builder itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use linuxkit_base::Arch;

/// The tools this builder runs.
pub const TOOLS: [&str; 2] = ["buildah", "skopeo"];

/// Whether `tool --version` runs.
fn runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The tools of [`TOOLS`] that do not run here.
pub fn missing_tools() -> Vec<&'static str> {
    TOOLS.into_iter().filter(|t| !runs(t)).collect()
}

/// One build's private `buildah` storage.
pub struct Buildah {
    root: PathBuf,
    runroot: PathBuf,
    storage_conf: PathBuf,
    registries_conf: PathBuf,
    /// An empty containers.conf: the builder's built-in defaults, not the
    /// host's or the user's (their `env`, `tz`, `umask`, ulimits or
    /// capabilities would change what `RUN` does).
    containers_conf: PathBuf,
    policy: PathBuf,
}

/// What a `buildah build` is given.
pub struct BuildSpec<'a> {
    /// The build context directory.
    pub context: &'a Path,
    /// The Dockerfile, inside `context`.
    pub dockerfile: &'a Path,
    /// The platform.
    pub arch: Arch,
    /// `KEY=VALUE` build arguments.
    pub build_args: &'a [(String, String)],
    /// Whether `RUN` may use the network.
    pub network: bool,
    /// The `--ssh` specifications.
    pub ssh: &'a [String],
    /// The name of the result in the storage.
    pub tag: &'a str,
    /// No output but errors.
    pub quiet: bool,
}

impl Buildah {
    /// Storage under `dir` (which must exist and be empty).
    pub fn new(dir: &Path) -> std::io::Result<Buildah> {
        let b = Buildah {
            root: dir.join("root"),
            runroot: dir.join("run"),
            storage_conf: dir.join("storage.conf"),
            registries_conf: dir.join("registries.conf"),
            containers_conf: dir.join("containers.conf"),
            policy: dir.join("policy.json"),
        };
        for d in [&b.root, &b.runroot] {
            std::fs::create_dir(d)?;
        }
        std::fs::write(
            &b.storage_conf,
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = {:?}\nrunroot = {:?}\n",
                b.root.display().to_string(),
                b.runroot.display().to_string()
            ),
        )?;
        // Short names resolve as Docker's do (`alpine` is
        // docker.io/library/alpine), which is how our cache names them.
        std::fs::write(
            &b.registries_conf,
            "unqualified-search-registries = [\"docker.io\"]\nshort-name-mode = \"disabled\"\n",
        )?;
        std::fs::write(&b.containers_conf, "")?;
        std::fs::write(
            &b.policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )?;
        Ok(b)
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("CONTAINERS_STORAGE_CONF", &self.storage_conf)
            .env("CONTAINERS_REGISTRIES_CONF", &self.registries_conf)
            .env("CONTAINERS_CONF", &self.containers_conf)
            .env_remove("CONTAINERS_CONF_OVERRIDE")
            .env_remove("BUILDAH_ISOLATION")
            .env_remove("BUILDAH_FORMAT")
            .env_remove("STORAGE_DRIVER")
            .env_remove("STORAGE_OPTS");
    }

    fn buildah(&self) -> Command {
        let mut cmd = Command::new("buildah");
        self.buildah_args(&mut cmd);
        cmd
    }

    fn buildah_args(&self, cmd: &mut Command) {
        self.env(cmd);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(["--storage-driver", "vfs"]);
    }

    fn storage_ref(&self, name: &str) -> String {
        format!(
            "containers-storage:[vfs@{}+{}]{name}",
            self.root.display(),
            self.runroot.display()
        )
    }

    /// Loads the image of the OCI archive `archive` into the storage as
    /// `name` (a canonical reference with a tag).
    pub fn load(&self, archive: &Path, name: &str) -> Result<(), String> {
        let mut cmd = Command::new("skopeo");
        self.env(&mut cmd);
        cmd.arg("--policy")
            .arg(&self.policy)
            .args(["copy", "--quiet"])
            .arg(format!("oci-archive:{}", archive.display()))
            .arg(self.storage_ref(name));
        run(
            cmd,
            &format!("skopeo copy of {name} into the builder's storage"),
        )
    }

    /// `buildah build` of `spec`; its steps are shown on stderr.
    pub fn build(&self, spec: &BuildSpec<'_>) -> Result<(), String> {
        let mut cmd = if spec.network {
            self.buildah()
        } else {
            let mut c = Command::new("unshare");
            c.args(["--net", "--", "buildah"]);
            self.buildah_args(&mut c);
            c
        };
        cmd.arg("build")
            .args(["--isolation", "chroot", "--pull=never", "--squash"])
            .args(["--timestamp", "0", "--format", "oci", "--layers=false"])
            .arg("--signature-policy")
            .arg(&self.policy)
            .args(["--platform", spec.arch.oci_platform()])
            .arg("-f")
            .arg(spec.dockerfile)
            .args(["-t", spec.tag]);
        for (k, v) in spec.build_args {
            cmd.arg("--build-arg").arg(format!("{k}={v}"));
        }
        for s in spec.ssh {
            cmd.arg("--ssh").arg(s);
        }
        if spec.quiet {
            cmd.arg("--quiet");
        }
        cmd.arg(spec.context);
        cmd.stdin(Stdio::null());
        if spec.quiet {
            cmd.stdout(Stdio::null());
        } else {
            // The steps' output belongs with our progress, on stderr.
            cmd.stdout(std::io::stderr());
        }
        let st = cmd
            .status()
            .map_err(|e| format!("cannot run buildah: {e}"))?;
        if st.success() {
            Ok(())
        } else {
            Err(format!(
                "`buildah build` failed ({st}); its output is above"
            ))
        }
    }

    /// Writes the image `name` as an OCI layout directory `dir` (layers
    /// uncompressed).
    pub fn save(&self, name: &str, dir: &Path) -> Result<(), String> {
        let mut cmd = self.buildah();
        cmd.arg("push")
            .args(["--quiet", "--format", "oci", "--disable-compression"])
            .arg("--signature-policy")
            .arg(&self.policy)
            .arg(name)
            .arg(format!("oci:{}", dir.display()));
        run(cmd, &format!("buildah push of {name}"))
    }
}

fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// Whether `RUN` steps for `arch` can run here: the host's architecture,
/// or one the kernel runs through a registered, enabled binfmt_misc
/// handler (Debian's `qemu-user-static` and `binfmt-support`).
pub fn can_run(arch: Arch) -> bool {
    if arch == Arch::host() {
        return true;
    }
    let name = match arch {
        Arch::Amd64 => "qemu-x86_64",
        Arch::Arm64 => "qemu-aarch64",
        Arch::Riscv64 => "qemu-riscv64",
        Arch::Arm => "qemu-arm",
        Arch::I386 => "qemu-i386",
        Arch::Ppc64le => "qemu-ppc64le",
        #[allow(unreachable_patterns)]
        _ => return false,
    };
    std::fs::read_to_string(Path::new("/proc/sys/fs/binfmt_misc").join(name))
        .is_ok_and(|s| s.lines().next() == Some("enabled"))
}
