//! Which OCI runtime runs the containers: crun when the image has it
//! (`pkg/crun` among the init images), else runc, the reference's.
//!
//! Why crun: both read the same bundles and take the same command line,
//! but under containerd's shim every service costs several runtime runs
//! (`create`, `start`, `state`, ...), and runc, a 10 MB Go program, costs a
//! few tenths of a second for each under QEMU TCG: three services took
//! 2.9–3.0 s to start with runc, 2.0 s with crun (in C). Run directly for
//! an onboot container the two cost about the same. The onboot runner and
//! the services' shim ([`crate::shim`]) call the runtime directly (with
//! `linuxkit.shim=runc`, containerd's runc shim is told to call it instead
//! of `runc`: its `BinaryName` option), from a sealed in-memory copy
//! ([`OciRuntime::command`]). `linuxkit.runtime=runc` (or `crun`) on the
//! kernel command line overrides the choice.
//!
//! PID 1 records the choice in [`CHOSEN`], so the `service` tool, which
//! runs inside a container that sees the host's `/run` (containerd's socket
//! is there) but not its `/usr/bin`, starts services with the same one.

use std::path::Path;

use crate::cmdline::Cmdline;

/// An OCI runtime with runc's command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OciRuntime {
    /// Its name, as `linuxkit.runtime=` takes it.
    pub name: &'static str,
    /// The binary.
    pub path: &'static str,
    /// Where it keeps its containers' state (its default `--root`).
    pub state_dir: &'static str,
}

/// crun, chosen when the image has it: services start faster with it
/// than with runc under TCG (see the module docs).
pub const CRUN: OciRuntime = OciRuntime {
    name: "crun",
    path: "/usr/bin/crun",
    state_dir: "/run/crun",
};

/// runc, the reference's runtime, chosen when the image has no crun.
pub const RUNC: OciRuntime = OciRuntime {
    name: "runc",
    path: "/usr/bin/runc",
    state_dir: "/run/runc",
};

/// What a runtime command does, for [`OciRuntime::command`].
#[derive(Debug, Clone, Copy)]
pub enum Invocation<'a> {
    /// Starts no process in a container: `start` (which lets the process
    /// `create` made run its program), `kill`, `delete`, `state`, `pause`,
    /// `resume`.
    Control,
    /// Creates the container of this bundle (`create`, `run`).
    Create(&'a Path),
    /// Anything else (`exec`, `--version`, ...): always randomized.
    Other,
}

/// Where PID 1 writes the chosen runtime's name.
pub const CHOSEN: &str = "/run/linuxkit/oci-runtime";

impl OciRuntime {
    /// The runtime for this boot: `linuxkit.runtime=` if given, else crun
    /// if installed, else runc.
    pub fn select(cmdline: &Cmdline) -> OciRuntime {
        if let Some(name) = cmdline.value("linuxkit.runtime") {
            match by_name(name) {
                Some(r) => return r,
                None => crate::warn!("linuxkit.runtime={name}: unknown (crun or runc); ignored"),
            }
        }
        if Path::new(CRUN.path).exists() {
            CRUN
        } else {
            RUNC
        }
    }

    /// The runtime PID 1 chose ([`CHOSEN`]); runc if none was recorded.
    /// Read once per process: the choice is made once per boot.
    pub fn chosen() -> OciRuntime {
        *THIS_PROCESS.get_or_init(|| recorded().runtime.unwrap_or(RUNC))
    }

    /// A command running this runtime, from the sealed in-memory copy of
    /// its binary PID 1 made ([`sealed_copy`]) when there is one, else from
    /// its path. (Other processes, such as the services' shims, run PID 1's
    /// copy as `/proc/1/fd/N`, which PID 1 records in [`CHOSEN`]: one copy
    /// for the machine, however many shims run.)
    ///
    /// `what` says what the command does, which decides whether the
    /// runtime may run with a fixed address-space layout ([`fixed_layout`]):
    /// every caller says it, so that no new kind of command gets one by
    /// default.
    pub fn command(self, what: Invocation) -> std::process::Command {
        // The bundle's spec, read once for both questions below.
        let spec = match what {
            Invocation::Create(bundle) => Spec::read(bundle),
            _ => None,
        };
        if let (Invocation::Create(bundle), Some(spec), true) =
            (what, &spec, self.name == CRUN.name)
            && let Err(e) = spec.accept_version(bundle)
        {
            crate::warn!(
                "cannot set the ociVersion of {}/config.json to one crun accepts: {e}",
                bundle.display()
            );
        }
        let fixed = self.may_fix_layout()
            && match what {
                Invocation::Control => true,
                // Its processes inherit the runtime's personality unless
                // the spec sets one.
                Invocation::Create(_) => spec.as_ref().is_some_and(Spec::sets_personality),
                Invocation::Other => false,
            };
        self.command_with(fixed)
    }

    fn command_with(self, fixed: bool) -> std::process::Command {
        let exe = if std::process::id() == 1 {
            sealed_copy(self.path)
        } else {
            let r = recorded();
            r.sealed_copy.as_deref().filter(|_| r.runtime == Some(self))
        };
        let mut c = command_from(exe, self.path);
        if fixed {
            fixed_layout(&mut c);
        }
        c
    }

    /// Whether this runtime may run with a fixed layout: crun, which
    /// applies a spec's `linux.personality` (runc 1.1 ignores it), unless
    /// `linuxkit.runtime_aslr=1` is on the kernel command line.
    fn may_fix_layout(self) -> bool {
        static ASLR: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        self.name == CRUN.name
            && !*ASLR.get_or_init(|| Cmdline::read().flag("linuxkit.runtime_aslr"))
    }

    /// Whether this process has a sealed copy of the binary to run.
    pub fn sealed(self) -> bool {
        sealed_copy(self.path).is_some()
    }

    /// Records this runtime as the boot's choice (for this process too).
    /// From PID 1, the file also names its sealed copy of the binary.
    pub fn record(self) -> std::io::Result<()> {
        let _ = THIS_PROCESS.set(self);
        std::fs::create_dir_all(Path::new(CHOSEN).parent().expect("has a parent"))?;
        let mut text = format!("{}\n", self.name);
        if let Some(exe) = (std::process::id() == 1)
            .then(|| sealed_copy(self.path))
            .flatten()
        {
            let fd = exe.trim_start_matches("/proc/self/fd/");
            text.push_str(&format!("/proc/1/fd/{fd}\n"));
        }
        std::fs::write(CHOSEN, text)
    }
}

/// A command running `exe` (a sealed copy) if given, else `path`; its
/// `argv[0]` is `path` either way.
fn command_from(exe: Option<&str>, path: &str) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    match exe {
        Some(exe) => {
            let mut c = std::process::Command::new(exe);
            c.arg0(path);
            c
        }
        None => std::process::Command::new(path),
    }
}

/// Makes `cmd`'s process run without address-space randomization
/// (`ADDR_NO_RANDOMIZE`, as `setarch -R` does).
///
/// Why: QEMU's TCG keeps the code it has translated, keyed by address, and
/// reuses it when the same code runs at the same address again. crun, a C
/// program with ten shared libraries, runs several times for every
/// container; with a randomized layout every run puts its code somewhere
/// new, and TCG translates all of it again: `crun --version` took 80 ms
/// under TCG, 28 ms with a fixed layout. On a real CPU the layout costs
/// nothing either way.
///
/// What it costs: the runtime's own layout is predictable. It is a
/// short-lived process that reads only the bundle the image's author
/// wrote. The containers' processes, which it starts, do not inherit the
/// fixed layout: crun sets the spec's `linux.personality` (the standard
/// `LINUX` one in the specs `linuxkit build` writes) in the container's
/// process before it executes the container's program, and a runtime
/// command that creates a container runs with a fixed layout only when the
/// spec has one ([`Invocation::Create`]). `linuxkit.runtime_aslr=1`
/// keeps the runtime randomized too.
fn fixed_layout(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: personality(2) is async-signal-safe; nothing else runs
    // between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let current = libc::personality(0xffff_ffff);
            if current != -1 {
                libc::personality(
                    (current as libc::c_ulong) | libc::ADDR_NO_RANDOMIZE as libc::c_ulong,
                );
            }
            Ok(())
        });
    }
}

/// A bundle's `config.json` as it was read: its text and its JSON.
pub struct Spec {
    text: String,
    json: serde_json::Value,
}

impl Spec {
    /// `bundle`'s spec; `None` when it has no readable JSON `config.json`
    /// (crun, or runc, reports that).
    pub fn read(bundle: &Path) -> Option<Spec> {
        let text = std::fs::read_to_string(bundle.join("config.json")).ok()?;
        let json = serde_json::from_str(&text).ok()?;
        Some(Spec { text, json })
    }

    /// Whether it sets `linux.personality` (so the container's processes
    /// get that personality, not the runtime's).
    pub fn sets_personality(&self) -> bool {
        self.json["linux"]["personality"]["domain"].is_string()
    }

    /// Gives `bundle` (whose spec this is) a version crun accepts: see
    /// [`accept_spec_version`].
    pub fn accept_version(&self, bundle: &Path) -> std::io::Result<bool> {
        let text = &self.text;
        let Some(version) = self.json["ociVersion"].as_str() else {
            return Ok(false);
        };
        if version == "1.0" || version.starts_with("1.0.") {
            return Ok(false);
        }
        // The key's first occurrence is the top-level one in every spec a
        // tool writes (`ociVersion` comes first); check before replacing.
        let Some(key) = text.find("\"ociVersion\"") else {
            return Ok(false);
        };
        let after = &text[key + "\"ociVersion\"".len()..];
        let rest = after.trim_start().strip_prefix(':').map(str::trim_start);
        let quoted = format!("\"{version}\"");
        let Some(rest) = rest.filter(|r| r.starts_with(&quoted)) else {
            return Ok(false);
        };
        let start = text.len() - rest.len();
        let new = format!(
            "{}\"{CRUN_SPEC_VERSION}\"{}",
            &text[..start],
            &text[start + quoted.len()..]
        );
        let path = bundle.join("config.json");
        let mode = std::fs::metadata(&path)?.permissions();
        let with_context = |e: linuxkit_base::StagedError| std::io::Error::new(e.source.kind(), e);
        match write_staged(path.clone(), new.as_bytes(), mode.clone()) {
            // (tempfile keeps the kind but not the raw error number.)
            Err(e) if e.source.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {
                // One file per bundle: its path, made a file name.
                let specs = Path::new(SPECS_DIR);
                std::fs::create_dir_all(specs)?;
                let name = bundle.to_string_lossy().replace('/', "_") + ".json";
                let changed =
                    write_staged(specs.join(name), new.as_bytes(), mode).map_err(with_context)?;
                crate::mount::mount(
                    &changed.to_string_lossy(),
                    &path,
                    "",
                    nix::mount::MsFlags::MS_BIND,
                    "",
                )?;
                Ok(true)
            }
            r => r.map(|_| true).map_err(with_context),
        }
    }
}

/// Whether the OCI spec of `bundle` sets `linux.personality`
/// ([`Spec::sets_personality`]).
pub fn spec_sets_personality(bundle: &Path) -> bool {
    Spec::read(bundle).is_some_and(|s| s.sets_personality())
}

/// The `ociVersion` a spec crun refuses is given instead.
pub const CRUN_SPEC_VERSION: &str = "1.0.2";

/// Lets crun run a bundle the reference built: crun 1.8.1 (Debian 12's)
/// refuses any `ociVersion` but 1.0.x (`crun: unknown version specified`),
/// and the reference writes the runtime-spec release it links (1.2.1),
/// though every field it writes is in 1.0.2. So a `config.json` whose
/// version is not 1.0.x gets [`CRUN_SPEC_VERSION`] before crun creates
/// the container: that one value is replaced in the text, nothing else
/// (the file is rewritten through a temporary file in the bundle and a
/// rename). Onboot and onshutdown bundles live in the root filesystem,
/// which is read-only by then: the changed file is written under
/// [`SPECS_DIR`] and bind-mounted over the bundle's `config.json` instead.
/// Returns whether crun now reads a changed file. A bundle without a
/// readable JSON `config.json` is left to crun to report.
pub fn accept_spec_version(bundle: &Path) -> std::io::Result<bool> {
    match Spec::read(bundle) {
        Some(spec) => spec.accept_version(bundle),
        None => Ok(false),
    }
}

/// Where [`accept_spec_version`] writes the changed `config.json` of a
/// bundle on a read-only file system.
pub const SPECS_DIR: &str = "/run/linuxkit/specs";

/// Writes `dest` atomically: an exclusive temporary file under a name
/// nobody can guess (never through a link planted beside it), with `mode`,
/// renamed into place.
fn write_staged(
    dest: std::path::PathBuf,
    bytes: &[u8],
    mode: std::fs::Permissions,
) -> Result<std::path::PathBuf, linuxkit_base::StagedError> {
    let what = dest.display().to_string();
    let mut staged = linuxkit_base::Staged::create(dest)?;
    let io = |source| linuxkit_base::StagedError {
        context: format!("cannot write {what}"),
        source,
    };
    std::io::Write::write_all(staged.file(), bytes).map_err(io)?;
    staged.file().set_permissions(mode).map_err(io)?;
    staged.commit()
}

/// What PID 1 wrote to [`CHOSEN`], read once per process: the runtime's
/// name, then the path of its sealed copy of the binary if it made one.
struct Recorded {
    runtime: Option<OciRuntime>,
    /// `/proc/1/fd/N`, if this process can reach it.
    sealed_copy: Option<String>,
}

fn recorded() -> &'static Recorded {
    static RECORDED: std::sync::OnceLock<Recorded> = std::sync::OnceLock::new();
    RECORDED.get_or_init(|| {
        let text = std::fs::read_to_string(CHOSEN).unwrap_or_default();
        let mut lines = text.lines().map(str::trim);
        Recorded {
            runtime: lines.next().and_then(by_name),
            sealed_copy: lines
                .next()
                .filter(|exe| Path::new(exe).exists())
                .map(str::to_string),
        }
    })
}

/// `/proc/self/fd/N` of a sealed in-memory copy (a memfd) of the binary at
/// `path`, made once per process; `None` if it cannot be made.
///
/// runc and crun defend against CVE-2019-5736 (a container overwriting the
/// host's runtime binary through `/proc/self/exe`) by copying themselves
/// into a sealed memfd and re-executing that copy, unless they already run
/// from one. For crun, a C program with eleven shared libraries, that
/// second exec and its dynamic linking are about half of every run under
/// QEMU TCG (0.1 s for `crun --version`). Executed from a copy sealed
/// against every write, the runtime is protected the same way and starts
/// once. (The descriptor is close-on-exec: `execve` opens the file before
/// it closes those, so the path works for the exec itself and leaks into
/// nothing.)
fn sealed_copy(path: &'static str) -> Option<&'static str> {
    static COPIES: std::sync::Mutex<Vec<(&'static str, Option<&'static str>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut copies = COPIES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, exe)) = copies.iter().find(|(p, _)| *p == path) {
        return *exe;
    }
    let exe = make_sealed_copy(path).ok().map(|fd| -> &'static str {
        // The copy lives as long as the process: the fd is never closed.
        Box::leak(format!("/proc/self/fd/{fd}").into_boxed_str())
    });
    copies.push((path, exe));
    exe
}

/// Copies `path` into a memfd sealed against writes, growth, shrinking and
/// further seals (what runc and crun check for); returns its descriptor.
fn make_sealed_copy(path: &str) -> std::io::Result<std::os::fd::RawFd> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let mut src = std::fs::File::open(path)?;
    let name = std::ffi::CString::new(format!("linuxkit-sealed:{path}"))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a plain syscall; the new descriptor is owned at once.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    let mut memfd = unsafe { std::fs::File::from_raw_fd(fd) };
    std::io::copy(&mut src, &mut memfd)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(memfd.into_raw_fd())
}

/// [`OciRuntime::chosen`] in this process.
static THIS_PROCESS: std::sync::OnceLock<OciRuntime> = std::sync::OnceLock::new();

fn by_name(name: &str) -> Option<OciRuntime> {
    [CRUN, RUNC].into_iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_overrides_the_choice() {
        let c = Cmdline::parse("console=ttyS0 linuxkit.runtime=runc");
        assert_eq!(OciRuntime::select(&c), RUNC);
        let c = Cmdline::parse("linuxkit.runtime=crun");
        assert_eq!(OciRuntime::select(&c), CRUN);
        // an unknown name falls back to what is installed (here, on the
        // build host, never /usr/bin/crun's absence being assumed)
        let c = Cmdline::parse("linuxkit.runtime=youki");
        let expect = if Path::new(CRUN.path).exists() {
            CRUN
        } else {
            RUNC
        };
        assert_eq!(OciRuntime::select(&c), expect);
    }

    #[test]
    fn a_fixed_layout_is_the_no_randomize_personality_and_only_that() {
        let personality = |fixed: bool| {
            let mut c = std::process::Command::new("cat");
            c.arg("/proc/self/personality");
            if fixed {
                fixed_layout(&mut c);
            }
            let out = c.output().unwrap();
            assert!(out.status.success());
            u32::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 16).unwrap()
        };
        let before = personality(false);
        assert_eq!(personality(true), before | libc::ADDR_NO_RANDOMIZE as u32);
        // and this process is not changed
        assert_eq!(personality(false), before);
    }

    #[test]
    fn crun_runs_fixed_only_where_no_container_process_can_inherit_it() {
        if Cmdline::read().flag("linuxkit.runtime_aslr") || personality_is_fixed() {
            return; // this host asks for, or already has, another layout
        }
        // crun's name, `sh` as its binary: the command prints the
        // personality the runtime would run with.
        let sh = OciRuntime {
            path: "/bin/sh",
            ..CRUN
        };
        let fixed = |rt: OciRuntime, what: Invocation| {
            let out = rt
                .command(what)
                .args(["-c", "cat /proc/self/personality"])
                .output()
                .unwrap();
            let p = u32::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 16).unwrap();
            p & libc::ADDR_NO_RANDOMIZE as u32 != 0
        };
        let t = tempfile::tempdir().unwrap();
        let spec = |text: &str| std::fs::write(t.path().join("config.json"), text).unwrap();
        assert!(fixed(sh, Invocation::Control));
        assert!(!fixed(sh, Invocation::Other));
        spec(r#"{"linux":{"personality":{"domain":"LINUX"}}}"#);
        assert!(fixed(sh, Invocation::Create(t.path())));
        spec(r#"{"linux":{}}"#);
        assert!(!fixed(sh, Invocation::Create(t.path())), "no personality");
        // runc 1.1 ignores `personality`: never fixed
        let runc = OciRuntime {
            path: "/bin/sh",
            ..RUNC
        };
        assert!(!fixed(runc, Invocation::Control));
    }

    /// Whether this (test) process already runs with a fixed layout (under
    /// `setarch -R` or a debugger).
    fn personality_is_fixed() -> bool {
        std::fs::read_to_string("/proc/self/personality")
            .ok()
            .and_then(|s| u32::from_str_radix(s.trim(), 16).ok())
            .is_some_and(|p| p & libc::ADDR_NO_RANDOMIZE as u32 != 0)
    }

    #[test]
    fn only_specs_that_set_a_personality_allow_a_fixed_layout_at_create() {
        let t = tempfile::tempdir().unwrap();
        let spec = |text: &str| {
            std::fs::write(t.path().join("config.json"), text).unwrap();
            spec_sets_personality(t.path())
        };
        assert!(spec(
            r#"{"linux":{"namespaces":[],"personality":{"domain":"LINUX"}}}"#
        ));
        // The reference's specs (and older ones of ours) have none: the
        // container would inherit the runtime's layout.
        assert!(!spec(r#"{"linux":{"namespaces":[]}}"#));
        assert!(!spec(r#"{"linux":{"personality":{}}}"#));
        assert!(!spec("not json"));
        std::fs::remove_file(t.path().join("config.json")).unwrap();
        assert!(!spec_sets_personality(t.path()), "no config.json");
    }

    #[test]
    fn a_spec_version_crun_refuses_becomes_1_0_2_and_nothing_else_changes() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("config.json");
        let reference = "{\n    \"ociVersion\": \"1.2.1\",\n    \"process\": {\"args\": [\"/bin/sh\"]},\n    \"annotations\": {\"ociVersion\": \"1.2.1\"}\n}";
        std::fs::write(&path, reference).unwrap();
        assert!(accept_spec_version(t.path()).unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            reference.replacen("1.2.1", "1.0.2", 1)
        );
        // Already accepted: untouched.
        assert!(!accept_spec_version(t.path()).unwrap());
        for ok in [
            r#"{"ociVersion":"1.0.2"}"#,
            r#"{"ociVersion": "1.0"}"#,
            "not json",
            "{}",
        ] {
            std::fs::write(&path, ok).unwrap();
            assert!(!accept_spec_version(t.path()).unwrap(), "{ok}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), ok);
        }
        std::fs::write(&path, r#"{"ociVersion":"1.1.0"}"#).unwrap();
        assert!(accept_spec_version(t.path()).unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            r#"{"ociVersion":"1.0.2"}"#
        );
        // No temporary file is left.
        let names: Vec<_> = std::fs::read_dir(t.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        // Creating a container with crun does it; runc accepts any version.
        let as_runtime = |rt: OciRuntime| {
            std::fs::write(&path, r#"{"ociVersion":"1.2.1"}"#).unwrap();
            let sh = OciRuntime {
                path: "/bin/sh",
                ..rt
            };
            drop(sh.command(Invocation::Create(t.path())));
            std::fs::read_to_string(&path).unwrap()
        };
        assert_eq!(as_runtime(CRUN), r#"{"ociVersion":"1.0.2"}"#);
        assert_eq!(as_runtime(RUNC), r#"{"ociVersion":"1.2.1"}"#);
        // The file keeps its mode, and a link planted under the name a
        // temporary file might have is never written through.
        let victim = t.path().join("victim");
        std::fs::write(&victim, "victim").unwrap();
        for planted in [
            format!(".config.json.{}", std::process::id()),
            format!(".config.json.partial-{}", std::process::id()),
        ] {
            std::os::unix::fs::symlink(&victim, t.path().join(planted)).unwrap();
        }
        std::fs::write(&path, r#"{"ociVersion":"1.2.1"}"#).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .unwrap();
        assert!(accept_spec_version(t.path()).unwrap());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
            0o640
        );
        std::fs::remove_file(&path).unwrap();
        assert!(!accept_spec_version(t.path()).unwrap(), "no config.json");
    }

    #[test]
    fn names_resolve() {
        assert_eq!(by_name("crun"), Some(CRUN));
        assert_eq!(by_name("runc"), Some(RUNC));
        assert_eq!(by_name(""), None);
    }

    #[test]
    fn the_sealed_copy_runs_and_cannot_be_written() {
        // Any binary will do: the test runs `sh` from its sealed copy.
        let sh = ["/bin/sh", "/usr/bin/sh"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("a shell");
        let out = command_from(sealed_copy(sh), sh)
            .args(["-c", "echo $0; readlink /proc/$$/exe"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.starts_with(sh), "argv[0] is the path: {text}");
        assert!(
            text.contains("memfd:linuxkit-sealed:"),
            "runs from the copy: {text}"
        );
        // The same copy serves every command of the process.
        assert_eq!(sealed_copy(sh), sealed_copy(sh));
        let exe = sealed_copy(sh).unwrap();
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(exe)
            .and_then(|mut f| std::io::Write::write(&mut f, b"x"));
        let seals = {
            let f = std::fs::File::open(exe).unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: fcntl on an open file.
            unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) }
        };
        assert_eq!(
            seals,
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE
        );
        assert!(written.is_err(), "a sealed copy cannot be written");
    }
}
