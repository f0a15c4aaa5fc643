//! Dockerfile packages built by the real buildah (scripts/check-tools makes
//! sure it is installed and runs): `FROM scratch`, multi-stage builds from
//! our own Debian-made images, build arguments, `network: false`,
//! `depends.docker-images`, platforms, and the reference's own packages.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use linuxkit_base::Arch;
use linuxkit_oci::{Cache, Digest};
use linuxkit_pkg::build::{self, BuildOptions, BuiltPlatforms};
use linuxkit_pkg::dockerfile::DockerfileOptions;
use linuxkit_pkg::{Package, PkgOptions};

fn blob(cache: &Cache, digest: &str) -> Vec<u8> {
    cache.read_blob(&Digest::parse(digest).unwrap()).unwrap()
}

fn json(cache: &Cache, digest: &str) -> serde_json::Value {
    serde_json::from_slice(&blob(cache, digest)).unwrap()
}

/// The image's one layer: path → (mode, content or link target).
fn layer(cache: &Cache, manifest: &str) -> BTreeMap<String, (u32, Vec<u8>)> {
    let m = json(cache, manifest);
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer: {m}");
    let gz = blob(cache, layers[0]["digest"].as_str().unwrap());
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(&tar[..]);
    let mut last = String::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let h = e.header();
        assert_eq!(h.mtime().unwrap(), 1492533000, "{path}: a fixed mtime");
        if h.entry_type() != tar::EntryType::Link {
            assert!(last < path, "sorted: {last} before {path}");
            last = path.clone();
        }
        let mode = h.mode().unwrap();
        let mut data = Vec::new();
        if let Some(l) = e.link_name().unwrap() {
            data = l.to_string_lossy().into_owned().into_bytes();
        } else {
            e.read_to_end(&mut data).unwrap();
        }
        out.insert(path.trim_end_matches('/').to_string(), (mode, data));
    }
    out
}

fn config(cache: &Cache, manifest: &str) -> serde_json::Value {
    let m = json(cache, manifest);
    json(cache, m["config"]["digest"].as_str().unwrap())
}

fn package(dir: &Path, files: &[(&str, &str)]) -> Package {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    Package::load(dir, &PkgOptions::default()).unwrap()
}

fn build_with(
    p: &Package,
    cache: &Cache,
    d: DockerfileOptions,
    arches: &[Arch],
) -> Result<BuiltPlatforms, linuxkit_pkg::BuildError> {
    let opts = BuildOptions {
        force: true,
        dockerfile: DockerfileOptions { quiet: true, ..d },
        ..BuildOptions::default()
    };
    build::build_platforms(p, cache, &opts, arches)
}

fn build_one(p: &Package, cache: &Cache) -> String {
    let b = build_with(p, cache, DockerfileOptions::default(), &[Arch::host()])
        .unwrap_or_else(|e| panic!("{}: {e}", p.path().display()));
    b.platforms[0].manifest.digest.clone()
}

fn text(files: &BTreeMap<String, (u32, Vec<u8>)>, path: &str) -> String {
    let (_, data) = files
        .get(path)
        .unwrap_or_else(|| panic!("{path} not in {:?}", files.keys().collect::<Vec<_>>()));
    String::from_utf8(data.clone()).unwrap()
}

/// Busybox from the host (Debian's busybox-static, which scripts/setup
/// installs), as the shell of a `FROM scratch` image.
fn with_busybox(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy("/bin/busybox", dir.join("busybox")).unwrap();
}

#[test]
fn from_scratch_with_copy_is_stored_normalised_and_reproducibly() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let p = package(
        &tmp.path().join("hello"),
        &[
            (
                "build.yml",
                "image: hello\narches: [amd64, arm64]\nconfig:\n  capabilities: [CAP_SYS_BOOT]\nlabels:\n  org.example.kind: test\n",
            ),
            (
                "Dockerfile",
                "FROM scratch\nCOPY etc /etc\nCOPY hello.txt /srv/hello.txt\nENV GREETING=hi\nWORKDIR /srv\nCMD [\"/bin/hello\"]\nLABEL org.example.from=dockerfile\n",
            ),
            ("hello.txt", "hello\n"),
            ("etc/b", "b\n"),
            ("etc/a", "a\n"),
        ],
    );
    let first = build_one(&p, &cache);
    let files = layer(&cache, &first);
    assert_eq!(text(&files, "srv/hello.txt"), "hello\n");
    assert_eq!(text(&files, "etc/a"), "a\n");
    let c = config(&cache, &first);
    assert!(
        c.get("created").is_none() && c.get("history").is_none(),
        "{c}"
    );
    assert_eq!(c["config"]["Cmd"], serde_json::json!(["/bin/hello"]));
    assert_eq!(c["config"]["WorkingDir"], "/srv");
    assert!(
        c["config"]["Env"].to_string().contains("GREETING=hi"),
        "{c}"
    );
    let labels = &c["config"]["Labels"];
    assert_eq!(labels["org.example.from"], "dockerfile");
    assert_eq!(labels["org.example.kind"], "test");
    assert!(
        labels["org.mobyproject.config"]
            .as_str()
            .unwrap()
            .contains("CAP_SYS_BOOT"),
        "{c}"
    );
    assert!(labels.get("io.buildah.version").is_none(), "{c}");
    // Built again from scratch: the same digest.
    assert_eq!(build_one(&p, &cache), first);
    // Cached under the package's tag, for `build` to find.
    let image = linuxkit_oci::ImageRef::parse(&p.full_tag()).unwrap();
    let cached = cache
        .image(&image, &linuxkit_oci::Platform::linux(Arch::host()))
        .unwrap()
        .unwrap();
    assert_eq!(cached.manifest_digest.to_string(), first);

    // No RUN: another platform needs no emulation, and both are one index.
    let other = if Arch::host() == Arch::Amd64 {
        Arch::Arm64
    } else {
        Arch::Amd64
    };
    let both = build_with(
        &p,
        &cache,
        DockerfileOptions::default(),
        &[Arch::host(), other],
    )
    .unwrap();
    assert_eq!(
        both.top.media_type,
        linuxkit_oci::media_type::OCI_INDEX,
        "{both:?}"
    );
    let oc = config(&cache, &both.platforms[1].manifest.digest);
    assert_eq!(oc["architecture"], other.oci_architecture());
    assert_eq!(both.platforms[0].manifest.digest, first);
}

#[test]
fn build_args_come_from_build_yml_then_the_files_and_dockerfile_can_be_chosen() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let dir = tmp.path().join("args");
    with_busybox(&dir);
    let p = package(
        &dir,
        &[
            (
                "build.yml",
                "image: args\narches: [amd64, arm64]\nbuildArgs:\n  - FROM_YML=yml\n  - OVERRIDDEN=yml\n",
            ),
            ("Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\n"),
            (
                "other.Dockerfile",
                "FROM scratch\nCOPY busybox /bin/busybox\nARG FROM_YML\nARG OVERRIDDEN\nARG FROM_FILE\nARG PKG_IMAGE\n\
                 RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo $FROM_YML $OVERRIDDEN $FROM_FILE $PKG_IMAGE > /args\"]\n",
            ),
        ],
    );
    let d = DockerfileOptions {
        build_args: vec!["OVERRIDDEN=file".into(), "FROM_FILE=file".into()],
        dockerfile: Some("other.Dockerfile".into()),
        ..DockerfileOptions::default()
    };
    let b = build_with(&p, &cache, d.clone(), &[Arch::host()]).unwrap();
    let files = layer(&cache, &b.platforms[0].manifest.digest);
    assert_eq!(text(&files, "args"), "yml file file linuxkit/args\n");

    // A Dockerfile outside the package is refused.
    let outside = DockerfileOptions {
        dockerfile: Some("../x/Dockerfile".into()),
        ..d.clone()
    };
    let e = build_with(&p, &cache, outside, &[Arch::host()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("in the package directory"), "{e}");

    // RUN for a platform this machine cannot run is refused, saying what
    // to install; where binfmt emulation is registered, it builds.
    let other = if Arch::host() == Arch::Amd64 {
        Arch::Arm64
    } else {
        Arch::Amd64
    };
    let r = build_with(&p, &cache, d, &[other]);
    if linuxkit_pkg::dockerfile::buildah::can_run(other) {
        r.unwrap();
    } else {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("qemu-user-static"), "{e}");
    }
}

/// `git ARGS` in `dir` with a fixed author, committer and date, which must
/// succeed; its output.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .env("GIT_AUTHOR_DATE", "2026-12-08T01:02:03Z")
        .env("GIT_COMMITTER_DATE", "2026-12-08T01:02:03Z")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn revision_and_gopkgversion_are_the_commits_as_the_references() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let dir = tmp.path().join("rev");
    with_busybox(&dir);
    let files = [
        ("build.yml", "image: rev\n"),
        (
            "Dockerfile",
            "FROM scratch\nCOPY busybox /bin/busybox\nARG REVISION\nARG GOPKGVERSION\n\
             RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo $REVISION $GOPKGVERSION > /v\"]\n",
        ),
    ];
    package(&dir, &files);
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-qm", "rev"]);
    let commit = git(&dir, &["rev-parse", "HEAD"]);
    let v = |p: &Package| text(&layer(&cache, &build_one(p, &cache)), "v");
    // Without a vX.Y.Z tag: v0.0.0, the commit's UTC date and abbreviation.
    let p = Package::load(&dir, &PkgOptions::default()).unwrap();
    assert_eq!(
        v(&p),
        format!("{commit} v0.0.0-20261208010203-{}\n", &commit[..12])
    );
    // On a vX.Y.Z tag: the tag.
    git(&dir, &["tag", "v1.2.3"]);
    let p = Package::load(&dir, &PkgOptions::default()).unwrap();
    assert_eq!(v(&p), format!("{commit} v1.2.3\n"));
}

/// A one-connection TCP server on loopback answering `pong`.
fn pong_server() -> (u16, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        use std::io::Write;
        if let Ok((mut c, _)) = l.accept() {
            let _ = c.write_all(b"pong\n");
        }
    });
    (port, h)
}

#[test]
fn run_has_no_network_unless_network_is_true() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let (port, server) = pong_server();
    let dockerfile = format!(
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox nc 127.0.0.1 {port} </dev/null >/got 2>/dev/null || echo unreachable >/got\"]\n"
    );
    let mut got = Vec::new();
    for network in [false, true] {
        let dir = tmp.path().join(format!("net-{network}"));
        with_busybox(&dir);
        let p = package(
            &dir,
            &[
                (
                    "build.yml",
                    &format!("image: net\narches: [amd64, arm64]\nnetwork: {network}\n"),
                ),
                ("Dockerfile", &dockerfile),
            ],
        );
        let files = layer(&cache, &build_one(&p, &cache));
        got.push(text(&files, "got"));
    }
    server.join().unwrap();
    assert_eq!(got, ["unreachable\n", "pong\n"]);
}

#[test]
fn depends_docker_images_are_saved_into_the_build_context_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let base = package(
        &tmp.path().join("base"),
        &[
            ("build.yml", "image: base\narches: [amd64, arm64]\n"),
            ("Dockerfile", "FROM scratch\nCOPY f /f\n"),
            ("f", "base\n"),
        ],
    );
    let digest = build_one(&base, &cache);
    let name = format!("linuxkit/base@{digest}");
    let p = package(
        &tmp.path().join("dep"),
        &[
            (
                "build.yml",
                &format!(
                    "image: dep\narches: [amd64, arm64]\ndepends:\n  docker-images:\n    target-dir: deps\n    list: [\"{name}\"]\n"
                ),
            ),
            ("Dockerfile", "FROM scratch\nCOPY deps /deps\n"),
        ],
    );
    let files = layer(&cache, &build_one(&p, &cache));
    let saved = format!("deps/base@{digest}.tar");
    let (_, archive) = files
        .get(&saved)
        .unwrap_or_else(|| panic!("{saved} not in {:?}", files.keys().collect::<Vec<_>>()));
    // A `docker save` archive of the image, which our cache imports back.
    let other = Cache::open(&tmp.path().join("other")).unwrap();
    let names = other.import(&mut &archive[..]).unwrap();
    assert!(!names.is_empty());
    assert!(
        !tmp.path().join("dep/deps").exists(),
        "the package is left as it was"
    );
}

/// A Debian-made image with a C compiler (`tcc`), libc headers and a shell,
/// from the Debian archive.
fn compiler_image(dir: &Path, cache: &Cache) {
    let p = package(
        dir,
        &[(
            "build.yml",
            "image: cc\narches: [amd64]\ndebian:\n  packages: [tcc, libc6-dev, dash]\n  exclude: [usr/share/doc, usr/share/man, usr/share/locale]\nfiles:\n  - path: bin/sh\n    symlink: dash\n",
        )],
    );
    build::build(&p, cache, &BuildOptions::default()).unwrap();
}

#[test]
fn a_multi_stage_build_compiles_c_from_one_of_our_debian_images() {
    if Arch::host() != Arch::Amd64 {
        return; // the compiler package is built for amd64
    }
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    compiler_image(&tmp.path().join("cc"), &cache);
    let dir = tmp.path().join("prog");
    let p = package(
        &dir,
        &[
            (
                "build.yml",
                "image: prog\narches: [amd64]\nbuildArgs:\n  - GREETING=build.yml\n",
            ),
            (
                "hello.c",
                "#include <stdio.h>\nint main(void) { printf(\"hello from %s\\n\", GREETING); return 0; }\n",
            ),
            (
                "Dockerfile",
                "ARG CC_IMAGE=linuxkit/cc:latest\n\
                 FROM ${CC_IMAGE} AS build\n\
                 ARG GREETING=nobody\n\
                 COPY hello.c /src/hello.c\n\
                 RUN tcc -DGREETING=\"\\\"$GREETING\\\"\" -o /src/hello /src/hello.c && /src/hello > /src/out\n\
                 FROM scratch\n\
                 COPY --from=build /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libc.so.6\n\
                 COPY --from=build /lib64/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2\n\
                 COPY --from=build /src/hello /bin/hello\n\
                 COPY --from=build /src/out /out\n\
                 ENTRYPOINT [\"/bin/hello\"]\n",
            ),
        ],
    );
    let first = build_one(&p, &cache);
    let files = layer(&cache, &first);
    assert_eq!(text(&files, "out"), "hello from build.yml\n");
    assert_eq!(files["bin/hello"].0 & 0o111, 0o111);
    assert!(files["bin/hello"].1.starts_with(b"\x7fELF"));
    assert_eq!(build_one(&p, &cache), first, "tcc is deterministic");
    // A build argument file's value wins over build.yml's.
    let b = build_with(
        &p,
        &cache,
        DockerfileOptions {
            build_args: vec!["GREETING=a file".into()],
            ..DockerfileOptions::default()
        },
        &[Arch::Amd64],
    )
    .unwrap();
    let files = layer(&cache, &b.platforms[0].manifest.digest);
    assert_eq!(text(&files, "out"), "hello from a file\n");
}

#[test]
fn a_missing_base_image_is_named_with_its_line_and_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let p = package(
        &tmp.path().join("m"),
        &[
            ("build.yml", "image: m\narches: [amd64, arm64]\n"),
            (
                "Dockerfile",
                "# base\nFROM linuxkit/absent:1 AS a\nFROM scratch\n",
            ),
        ],
    );
    let e = build_with(&p, &cache, DockerfileOptions::default(), &[Arch::host()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("Dockerfile:2"), "{e}");
    assert!(e.contains("docker.io/linuxkit/absent:1"), "{e}");
    assert!(e.contains("linuxkit cache pull"), "{e}");
}

/// Three of the reference's simplest packages (tests/data/reference, see
/// its README), with our Debian-made base in place of Alpine.
#[test]
fn the_references_simplest_packages_build_from_a_debian_base() {
    if Arch::host() != Arch::Amd64 {
        return; // the base package is built for amd64
    }
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference");
    let opts = PkgOptions::default();
    let load = |name: &str| {
        let dir = tmp.path().join(name);
        copy_dir(&data.join(name), &dir);
        Package::load(&dir, &opts).unwrap()
    };
    let base = load("base");
    build::build(&base, &cache, &BuildOptions::default()).unwrap();

    let dummy = layer(&cache, &build_one(&load("dummy"), &cache));
    assert!(dummy["usr/bin/make"].1.starts_with(b"\x7fELF"));
    assert_eq!(
        text(&dummy, "infile"),
        "This is a silly input file for testing."
    );

    let m = build_one(&load("modprobe"), &cache);
    let modprobe = layer(&cache, &m);
    assert!(modprobe["bin/busybox"].1.starts_with(b"\x7fELF"));
    assert_eq!(text(&modprobe, "sbin/modprobe"), "../bin/busybox");
    let c = config(&cache, &m);
    assert!(
        c["config"]["Labels"]["org.mobyproject.config"]
            .as_str()
            .unwrap()
            .contains("CAP_SYS_MODULE"),
        "{c}"
    );

    let p = build_one(&load("poweroff"), &cache);
    let poweroff = layer(&cache, &p);
    assert!(text(&poweroff, "poweroff.sh").contains("/sbin/poweroff -f"));
    assert_eq!(text(&poweroff, "sbin/poweroff"), "../bin/busybox");
    let c = config(&cache, &p);
    assert_eq!(
        c["config"]["Entrypoint"],
        serde_json::json!(["/bin/sh", "/poweroff.sh"])
    );
    assert!(
        c["config"]["Labels"]["org.mobyproject.config"]
            .as_str()
            .unwrap()
            .contains("CAP_SYS_BOOT"),
        "{c}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// `ssh-agent` (Debian's openssh-client) on a socket of its own; killed on
/// drop.
struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ssh_agents_are_forwarded_to_run_mount_type_ssh() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let sock = tmp.path().join("agent.sock");
    let _agent = Agent(
        std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ssh-agent (Debian's openssh-client, which scripts/setup installs)"),
    );
    for _ in 0..1000 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(sock.exists(), "ssh-agent made no socket");
    let dir = tmp.path().join("ssh");
    with_busybox(&dir);
    let p = package(
        &dir,
        &[
            ("build.yml", "image: ssh\narches: [amd64, arm64]\n"),
            (
                "Dockerfile",
                "FROM scratch\nCOPY busybox /bin/busybox\n\
                 RUN --mount=type=ssh [\"/bin/busybox\", \"sh\", \"-c\", \"test -S \\\"$SSH_AUTH_SOCK\\\" && echo forwarded > /ssh || echo missing > /ssh\"]\n",
            ),
        ],
    );
    let b = build_with(
        &p,
        &cache,
        DockerfileOptions {
            ssh: vec![format!("default={}", sock.display())],
            ..DockerfileOptions::default()
        },
        &[Arch::host()],
    )
    .unwrap();
    let files = layer(&cache, &b.platforms[0].manifest.digest);
    assert_eq!(text(&files, "ssh"), "forwarded\n");
}
