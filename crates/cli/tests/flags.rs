//! The flags and commands of issue 17's third part, end to end through the
//! binary and against real components: refusals (exit 1, one line naming
//! the flag), `serve` read by a real HTTP client, `build` from a URL,
//! `--cert-file` against a TLS `docker-registry`, `cache export
//! --platform`, `cache push --with-arch-tags`, `pkg remote-tag` against a
//! real registry, `LINUXKIT_PKG_ORG`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use linuxkit_testing::{
    Auth, Compression, Fixture, Format, ImageSpec, LayerSpec, Platform, TestRegistry,
};

fn linuxkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_linuxkit"))
}

/// Runs and returns (status code, stdout, stderr).
fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(cmd: &mut Command) -> (String, String) {
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{cmd:?} failed:\n{err}");
    (out, err)
}

/// A failure: exit 1 and exactly one `Error:` line containing `what`.
fn refused(cmd: &mut Command, what: &str) -> String {
    let (code, _, err) = run(cmd);
    assert_eq!(code, 1, "{cmd:?}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{cmd:?}: expected one line, got {err}");
    assert!(lines[0].starts_with("Error: "), "{err}");
    assert!(lines[0].contains(what), "{:?} lacks {what:?}", lines[0]);
    lines[0].to_string()
}

#[test]
fn refused_flags_and_commands_name_themselves_and_what_to_use() {
    let e = refused(
        linuxkit().args(["build", "--docker", "x.yml"]),
        "`linuxkit build --docker` is not supported",
    );
    assert!(e.contains("cache import"), "{e}");
    refused(
        linuxkit().args(["build", "--input-tar", "old.tar", "x.yml"]),
        "`linuxkit build --input-tar` is not supported",
    );
    refused(
        linuxkit().args(["pkg", "build", "--builder-image", "moby/buildkit", "dir"]),
        "`linuxkit pkg build --builder-image` is not supported",
    );
    refused(
        linuxkit().args(["pkg", "build", "--release", "v1", "dir"]),
        "cannot release \"v1\" if not pushing",
    );
    refused(
        linuxkit().args(["pkg", "--registry-creds", "r=u:p", "show-tag", "dir"]),
        "--registry-creds",
    );
    refused(
        linuxkit().args(["run", "qemu", "--virtiofs", "/tmp", "img"]),
        "`linuxkit run qemu --virtiofs` is not supported",
    );
    refused(
        linuxkit().args(["run", "--virtiofsd", "/usr/libexec/virtiofsd", "img"]),
        "`linuxkit run --virtiofsd` is not supported",
    );
    refused(
        linuxkit().args(["run", "aws", "--zone", "a", "img"]),
        "`linuxkit run aws` is not implemented: the cloud",
    );
    refused(
        linuxkit().args(["push", "gcp", "--project", "p", "img"]),
        "issue 23",
    );
    refused(
        linuxkit().args(["pkg", "index", "--release", "v1", "dir"]),
        "`linuxkit pkg manifest` is not implemented",
    );
    let yml = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/minimal.yml");
    refused(
        linuxkit().args(["build", "--format", "rpi3"]).arg(&yml),
        "`linuxkit build --format rpi3` is not supported: the Raspberry Pi image needs",
    );
    // `--flag=false` asks for nothing and passes the refusal.
    ok(linuxkit()
        .args(["build", "--docker=false", "--dry-run"])
        .arg(&yml));
}

/// `linuxkit serve` in the background; killed on drop.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(dir: &Path) -> Serve {
        let mut child = linuxkit()
            .args(["serve", "--port", "127.0.0.1:0", "--directory"])
            .arg(dir)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Serve { child, base }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

/// (status, Location header, body) of GET `url`.
fn get(url: &str) -> (u16, Option<String>, Vec<u8>) {
    let mut r = agent().get(url).call().unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let body = r.body_mut().read_to_vec().unwrap();
    (status, location, body)
}

#[test]
fn serve_answers_a_real_http_client_like_the_reference() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "outside").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("linuxkit-kernel"), b"\x7fKERNEL").unwrap();
    std::fs::create_dir(dir.path().join("boot")).unwrap();
    std::fs::write(dir.path().join("boot/script.ipxe"), "#!ipxe\n").unwrap();
    std::fs::create_dir(dir.path().join("site")).unwrap();
    std::fs::write(dir.path().join("site/index.html"), "<p>hi</p>").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("leak")).unwrap();
    std::os::unix::fs::symlink("linuxkit-kernel", dir.path().join("inside")).unwrap();
    let s = Serve::start(dir.path());

    let (status, _, body) = get(&format!("{}/linuxkit-kernel", s.base));
    assert_eq!((status, body.as_slice()), (200, &b"\x7fKERNEL"[..]));
    let (status, _, body) = get(&format!("{}/boot/script.ipxe", s.base));
    assert_eq!((status, body.as_slice()), (200, &b"#!ipxe\n"[..]));
    // A directory: redirected to its slash form, then listed.
    let (status, location, _) = get(&format!("{}/boot", s.base));
    assert_eq!((status, location.as_deref()), (301, Some("boot/")));
    let (status, _, body) = get(&format!("{}/", s.base));
    let listing = String::from_utf8(body).unwrap();
    assert_eq!(status, 200);
    for name in ["linuxkit-kernel", "boot/", "site/"] {
        assert!(
            listing.contains(&format!("<a href=\"{name}\">")),
            "{listing}"
        );
    }
    // index.html stands for its directory.
    let (status, _, body) = get(&format!("{}/site/", s.base));
    assert_eq!((status, body.as_slice()), (200, &b"<p>hi</p>"[..]));
    // Nothing outside the directory: not by `..`, not through a link; a
    // link that stays inside is followed.
    let (status, _, body) = get(&format!("{}/../../../../etc/hostname", s.base));
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = get(&format!("{}/%2e%2e/secret", s.base));
    assert_eq!(status, 404);
    let (status, _, body) = get(&format!("{}/leak", s.base));
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = get(&format!("{}/inside", s.base));
    assert_eq!((status, body.as_slice()), (200, &b"\x7fKERNEL"[..]));
    let (status, _, _) = get(&format!("{}/missing", s.base));
    assert_eq!(status, 404);
    // HEAD has the length and no body; other methods are refused.
    let r = agent()
        .head(&format!("{}/linuxkit-kernel", s.base))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers().get("content-length").unwrap().to_str().unwrap(),
        "7"
    );
    let r = agent()
        .post(&format!("{}/linuxkit-kernel", s.base))
        .send("x")
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
}

#[test]
fn serve_refuses_a_bad_port_and_a_missing_directory() {
    refused(
        linuxkit().args(["serve", "--port", "8080"]),
        "invalid --port `8080`",
    );
    refused(
        linuxkit().args(["serve", "--directory", "/nonexistent/dir"]),
        "--directory /nonexistent/dir",
    );
}

#[test]
fn build_reads_a_configuration_from_a_url_with_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    let yml = dir.path().join("minimal.yml");
    std::fs::write(
        &yml,
        "kernel:\n  image: linuxkit/kernel:6.6.71\n  cmdline: console=ttyS0\ninit:\n  - linuxkit/init:v1.0.0\nonboot:\n  - name: dhcpcd\n    image: linuxkit/dhcpcd:v1.0.0\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pkg.yml"),
        "init:\n  - \"@pkg:../pkg/init\"\n",
    )
    .unwrap();
    // One byte over the bound (4 MiB): YAML comments.
    let mut big = b"#".repeat(4 << 20);
    big.extend(b"\n\n");
    std::fs::write(dir.path().join("big.yml"), big).unwrap();
    let s = Serve::start(dir.path());

    let (from_url, _) = ok(linuxkit()
        .args(["build", "--dry-run"])
        .arg(format!("{}/minimal.yml", s.base)));
    let (from_file, _) = ok(linuxkit().args(["build", "--dry-run"]).arg(&yml));
    assert_eq!(from_url, from_file);
    assert!(from_url.contains("kernel:"), "{from_url}");
    refused(
        linuxkit()
            .args(["build", "--dry-run"])
            .arg(format!("{}/pkg.yml", s.base)),
        "only a local configuration file can do",
    );
    refused(
        linuxkit()
            .args(["build", "--dry-run"])
            .arg(format!("{}/absent.yml", s.base)),
        "HTTP status 404",
    );
    refused(
        linuxkit()
            .args(["build", "--dry-run"])
            .arg(format!("{}/big.yml", s.base)),
        "too large for a configuration",
    );
}

/// A CA and a certificate for 127.0.0.1 signed by it, as PEM.
fn ca_and_server_cert() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "linuxkit test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// A second `docker-registry` serving `storage` over TLS on 127.0.0.1;
/// killed on drop.
struct TlsRegistry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TlsRegistry {
    fn start(storage: &Path, cert_pem: &str, key_pem: &str) -> TlsRegistry {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), key_pem).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.path().join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: s\n  tls:\n    certificate: {}\n    key: {}\n",
                storage.display(),
                dir.path().join("cert.pem").display(),
                dir.path().join("key.pem").display()
            ),
        )
        .unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (scripts/setup installs it)");
        // Ready once it accepts connections.
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return TlsRegistry {
                    child,
                    port,
                    _dir: dir,
                };
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the TLS registry did not start");
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn cert_file_lets_the_registry_client_trust_a_private_ca() {
    // The image goes in over plain HTTP; a TLS registry then serves the
    // same storage, reached as docker.io's mirror.
    let plain = TestRegistry::start(Auth::None);
    let fixture = Fixture::image(
        &[("hello", "world")],
        Compression::Gzip,
        &[],
        Platform::new("linux", linuxkit_arch()),
    );
    linuxkit_testing::push_fixture(&fixture, &plain, "library/hello:1");
    let (ca, cert, key) = ca_and_server_cert();
    let tls = TlsRegistry::start(&plain.storage_dir(), &cert, &key);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let mirror = format!("docker.io=https://127.0.0.1:{}", tls.port);
    let cache = dir.path().join("cache");
    let pull = |extra: &[&std::ffi::OsStr]| {
        let mut c = linuxkit();
        c.arg("--cache")
            .arg(&cache)
            .args(["-q", "--mirror", &mirror])
            .args(extra)
            .args(["cache", "pull", "hello:1"]);
        c
    };
    // Without the CA the certificate is not trusted.
    let (code, _, err) = run(&mut pull(&[]));
    assert_eq!(code, 1, "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // With it the pull succeeds, byte for byte.
    ok(&mut pull(&["--cert-file".as_ref(), ca_file.as_os_str()]));
    let (ls, _) = ok(linuxkit().arg("--cache").arg(&cache).args(["cache", "ls"]));
    assert!(
        ls.contains(&format!("docker.io/library/hello:1 {}", fixture.digest)),
        "{ls}"
    );
    // A file with no certificate in it is an error naming it.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    refused(
        &mut pull(&["--cert-file".as_ref(), junk.as_os_str()]),
        "junk.pem: no PEM certificate in it",
    );
}

fn linuxkit_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

/// A two-platform index named `name`, imported into a fresh cache.
fn imported_index(name: &str) -> (Fixture, tempfile::TempDir) {
    let specs: Vec<ImageSpec> = ["amd64", "arm64"]
        .iter()
        .map(|a| {
            ImageSpec::new(Platform::new("linux", a))
                .layer(LayerSpec::files(Compression::Gzip, &[("arch", *a)]))
        })
        .collect();
    let fixture = Fixture::build(Format::Oci, name, &specs, true);
    let dir = tempfile::tempdir().unwrap();
    let tar_path = dir.path().join("index.tar");
    let mut tar = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    tar.append_dir_all(".", fixture.path()).unwrap();
    tar.finish().unwrap();
    drop(tar);
    ok(linuxkit()
        .arg("--cache")
        .arg(dir.path().join("cache"))
        .args(["cache", "import"])
        .arg(&tar_path));
    (fixture, dir)
}

#[test]
fn cache_export_platform_picks_the_platform_of_an_index() {
    let (fixture, dir) = imported_index("example.org/multi/img:1");
    let cache = dir.path().join("cache");
    for (platform, arch) in [("linux/arm64", "arm64"), ("linux/amd64", "amd64")] {
        let out = dir.path().join(format!("{arch}.tar"));
        ok(linuxkit()
            .arg("--cache")
            .arg(&cache)
            .args([
                "cache",
                "export",
                "--format",
                "filesystem",
                "--platform",
                platform,
                "--outfile",
            ])
            .arg(&out)
            .arg("example.org/multi/img:1"));
        let files = linuxkit_testing::fixture::tar_files(&std::fs::read(&out).unwrap());
        assert_eq!(
            files.get("arch").map(Vec::as_slice),
            Some(arch.as_bytes()),
            "{platform}"
        );
    }
    assert!(fixture.is_index());
    refused(
        linuxkit().arg("--cache").arg(&cache).args([
            "cache",
            "export",
            "--platform",
            "linux",
            "--outfile",
            "-",
            "example.org/multi/img:1",
        ]),
        "invalid --platform `linux`",
    );
    refused(
        linuxkit().arg("--cache").arg(&cache).args([
            "cache",
            "export",
            "--platform",
            "linux/s390x",
            "--outfile",
            "-",
            "example.org/multi/img:1",
        ]),
        "s390x",
    );
}

#[test]
fn cache_push_with_arch_tags_tags_each_platform() {
    let registry = TestRegistry::start(Auth::None);
    let name = registry.image_ref("multi/img:1");
    let (fixture, dir) = imported_index(&name);
    let cache = dir.path().join("cache");
    ok(linuxkit()
        .arg("--cache")
        .arg(&cache)
        .args(["-q", "cache", "push", "--with-arch-tags"])
        .arg(&name));
    assert_eq!(
        registry.manifest_digest("multi/img", "1").as_deref(),
        Some(fixture.digest.as_str())
    );
    for a in ["amd64", "arm64"] {
        assert_eq!(
            registry.manifest_digest("multi/img", &format!("1-{a}")),
            Some(fixture.platform("linux", a).manifest_digest.clone()),
            "{a}"
        );
    }
    // Without the flag: the index only.
    let other = registry.image_ref("multi/other:1");
    ok(linuxkit()
        .arg("--cache")
        .arg(&cache)
        .args(["-q", "cache", "push", "--remote-name", &other])
        .arg(&name));
    assert!(registry.manifest_digest("multi/other", "1").is_some());
    assert_eq!(registry.manifest_digest("multi/other", "1-amd64"), None);
    // The push's scratch names are gone from the cache.
    let (ls, _) = ok(linuxkit().arg("--cache").arg(&cache).args(["cache", "ls"]));
    assert_eq!(ls.lines().count(), 1, "{ls}");
}

#[test]
fn cache_push_leaves_a_tag_the_registry_has_unless_override() {
    let registry = TestRegistry::start(Auth::None);
    let name = registry.image_ref("kept/img:1");
    // The registry has another image under the tag.
    let theirs = Fixture::build(
        Format::Oci,
        "1",
        &[ImageSpec::new(Platform::new("linux", "amd64"))
            .layer(LayerSpec::files(Compression::Gzip, &[("theirs", "x")]))],
        false,
    );
    linuxkit_testing::push_fixture(&theirs, &registry, "kept/img:1");
    let before = registry.manifest_digest("kept/img", "1").unwrap();
    let (ours, dir) = imported_index(&name);
    assert_ne!(before, ours.digest);
    let cache = dir.path().join("cache");
    let (_, err) = ok(linuxkit()
        .arg("--cache")
        .arg(&cache)
        .args(["cache", "push"])
        .arg(&name));
    assert!(err.contains("already exists in the registry"), "{err}");
    assert!(err.contains("--override"), "{err}");
    assert_eq!(registry.manifest_digest("kept/img", "1"), Some(before));
    ok(linuxkit()
        .arg("--cache")
        .arg(&cache)
        .args(["-q", "cache", "push", "--override"])
        .arg(&name));
    assert_eq!(registry.manifest_digest("kept/img", "1"), Some(ours.digest));
}

#[test]
fn pkg_remote_tag_gives_the_same_digest_under_another_name() {
    let registry = TestRegistry::start(Auth::None);
    let specs: Vec<ImageSpec> = ["amd64", "arm64"]
        .iter()
        .map(|a| {
            ImageSpec::new(Platform::new("linux", a))
                .layer(LayerSpec::files(Compression::Gzip, &[("arch", *a)]))
        })
        .collect();
    let fixture = Fixture::build(Format::Oci, "1", &specs, true);
    linuxkit_testing::push_fixture(&fixture, &registry, "pkgs/a:1");
    let cache = tempfile::tempdir().unwrap();
    // Same repository, and another one.
    for (to_repo, to_tag) in [("pkgs/a", "v1.0"), ("release/a", "v1.0")] {
        ok(linuxkit()
            .arg("--cache")
            .arg(cache.path())
            .args(["-q", "pkg", "remote-tag"])
            .arg(registry.image_ref("pkgs/a:1"))
            .arg(registry.image_ref(&format!("{to_repo}:{to_tag}"))));
        assert_eq!(
            registry.manifest_digest(to_repo, to_tag).as_deref(),
            Some(fixture.digest.as_str()),
            "{to_repo}"
        );
    }
    // Nothing stays in the user's cache.
    let (ls, _) = ok(linuxkit()
        .arg("--cache")
        .arg(cache.path())
        .args(["cache", "ls"]));
    assert_eq!(ls, "");
    refused(
        linuxkit()
            .arg("--cache")
            .arg(cache.path())
            .args(["pkg", "remote-tag"])
            .arg(registry.image_ref("pkgs/absent:1"))
            .arg(registry.image_ref("pkgs/absent:2")),
        "pkgs/absent:1",
    );
}

/// A package directory in a fresh git repository.
fn package() -> (tempfile::TempDir, PathBuf) {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().join("hello");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("build.yml"),
        "image: hello\nfiles:\n  - path: etc/hello\n    contents: hi\n",
    )
    .unwrap();
    for args in [
        &["init", "-q"][..],
        &["add", "."],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-qm",
            "x",
        ],
    ] {
        assert!(
            Command::new("git")
                .args(args)
                .current_dir(repo.path())
                .status()
                .unwrap()
                .success()
        );
    }
    (repo, dir)
}

#[test]
fn pkg_org_comes_from_the_environment_unless_given() {
    let (_repo, dir) = package();
    let tag = |env: Option<&str>, flag: Option<&str>| {
        let mut c = linuxkit();
        c.env_remove("LINUXKIT_PKG_ORG");
        if let Some(e) = env {
            c.env("LINUXKIT_PKG_ORG", e);
        }
        c.arg("pkg");
        if let Some(f) = flag {
            c.args(["--org", f]);
        }
        c.arg("show-tag").arg(&dir);
        ok(&mut c).0
    };
    assert!(tag(None, None).starts_with("linuxkit/hello:"));
    assert!(tag(Some("example"), None).starts_with("example/hello:"));
    assert!(tag(Some("example"), Some("flag")).starts_with("flag/hello:"));
}

#[test]
fn pkg_build_skip_platforms_and_push_without_building() {
    let (_repo, dir) = package();
    let cache = tempfile::tempdir().unwrap();
    let arch = linuxkit_arch();
    let (out, _) = ok(linuxkit()
        .arg("--cache")
        .arg(cache.path())
        .args(["pkg", "build", "--skip-platforms", &format!("linux/{arch}")])
        .arg(&dir));
    assert!(out.contains("Skipping linuxkit/hello:"), "{out}");
    refused(
        linuxkit()
            .arg("--cache")
            .arg(cache.path())
            .args(["pkg", "build", "--skip-platforms", "amd64"])
            .arg(&dir),
        "invalid target platform specification `amd64`",
    );
    // --push --nobuild with nothing cached: nothing to push, and no build.
    let (out, _) = ok(linuxkit()
        .arg("--cache")
        .arg(cache.path())
        .args(["pkg", "build", "--push", "--nobuild"])
        .arg(&dir));
    assert!(out.contains("no new platforms to push"), "{out}");
    let (ls, _) = ok(linuxkit()
        .arg("--cache")
        .arg(cache.path())
        .args(["cache", "ls"]));
    assert_eq!(ls, "");
}

/// `linuxkit --cache CACHE -q pkg --org ORG ARGS... DIR`.
fn pkg_in(cache: &Path, org: &str, dir: &Path, args: &[&str]) -> Command {
    let mut c = linuxkit();
    c.arg("--cache")
        .arg(cache)
        .args(["-q", "pkg", "--org", org])
        .args(args)
        .arg(dir);
    c
}

#[test]
fn pkg_push_without_building_pushes_tag_and_arch_tag() {
    let registry = TestRegistry::start(Auth::None);
    let (_repo, dir) = package();
    let cache = tempfile::tempdir().unwrap();
    let org = format!("{}/lk", registry.addr());
    let pkg = |args: &[&str]| pkg_in(cache.path(), &org, &dir, args);
    let (built, _) = ok(&mut pkg(&["build"]));
    let digest = built.trim().rsplit_once('@').unwrap().1.to_string();
    let (tag, _) = ok(&mut pkg(&["show-tag"]));
    let hash = tag.trim().rsplit_once(':').unwrap().1.to_string();
    // --manifest=false: the tag only.
    ok(&mut pkg(&[
        "build",
        "--push",
        "--nobuild",
        "--manifest=false",
    ]));
    assert_eq!(
        registry.manifest_digest("lk/hello", &hash),
        Some(digest.clone())
    );
    let arch_tag = format!("{hash}-{}", linuxkit_arch());
    assert_eq!(registry.manifest_digest("lk/hello", &arch_tag), None);
    // The default: TAG-ARCH too, as the reference's push leaves it: the
    // platform's manifest (the tag names the index of it and its SBOM).
    ok(&mut pkg(&["build", "--push", "--nobuild"]));
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            cache
                .path()
                .join("blobs/sha256")
                .join(digest.strip_prefix("sha256:").unwrap()),
        )
        .unwrap(),
    )
    .unwrap();
    let platform_manifest = index["manifests"][0]["digest"].as_str().unwrap();
    assert_eq!(
        registry.manifest_digest("lk/hello", &arch_tag).as_deref(),
        Some(platform_manifest)
    );
}

/// `--platforms linux/amd64,linux/arm64`: one index under the tag with a
/// manifest per platform, pushed as the tag (the index) and as
/// `TAG-amd64`/`TAG-arm64` (each platform's manifest); `--push --nobuild`
/// pushes the same.
#[test]
fn pkg_build_for_two_platforms_pushes_one_index_and_arch_tags() {
    let registry = TestRegistry::start(Auth::None);
    let (_repo, dir) = package();
    let cache = tempfile::tempdir().unwrap();
    let org = format!("{}/lk", registry.addr());
    let pkg = |args: &[&str]| pkg_in(cache.path(), &org, &dir, args);
    let both = ["--platforms", "linux/amd64,linux/arm64"];
    let (built, err) = ok(&mut pkg(&["build", "--push", both[0], both[1]]));
    assert!(err.contains("linux/arm64: sha256:"), "{err}");
    let index_digest = built.trim().rsplit_once('@').unwrap().1.to_string();
    let (tag, _) = ok(&mut pkg(&["show-tag"]));
    let hash = tag.trim().rsplit_once(':').unwrap().1.to_string();
    assert_eq!(
        registry.manifest_digest("lk/hello", &hash),
        Some(index_digest.clone())
    );
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            cache
                .path()
                .join("blobs/sha256")
                .join(index_digest.strip_prefix("sha256:").unwrap()),
        )
        .unwrap(),
    )
    .unwrap();
    let manifests: Vec<&serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["platform"]["os"] == "linux")
        .collect();
    assert_eq!(manifests.len(), 2, "{index}");
    for (m, arch) in manifests.iter().zip(["amd64", "arm64"]) {
        assert_eq!(m["platform"]["architecture"], arch, "{index}");
        assert_eq!(
            registry
                .manifest_digest("lk/hello", &format!("{hash}-{arch}"))
                .as_deref(),
            m["digest"].as_str(),
            "{arch}"
        );
    }
    // Building one platform again (cached) leaves the index as it is.
    let (again, _) = ok(&mut pkg(&["build", "--platforms", "linux/arm64"]));
    assert_eq!(again, built);
    // --push --nobuild pushes what the cache has under the tag.
    let (out, _) = ok(&mut pkg(&[
        "build",
        "--push",
        "--nobuild",
        both[0],
        both[1],
    ]));
    assert!(!out.contains("skipping"), "{out}");
    // A platform not in build.yml's `arches` is skipped, saying so.
    std::fs::write(
        dir.join("build.yml"),
        "image: hello\narches: [arm64]\nfiles:\n  - path: etc/hello\n    contents: hi\n",
    )
    .unwrap();
    let (out, _) = ok(&mut pkg(&["build", "--platforms", "linux/amd64"]));
    assert!(
        out.contains("for linux/amd64: its build.yml `arches` are [arm64]")
            && out.contains("with no architectures to build"),
        "{out}"
    );
    refused(
        &mut pkg(&["build", "--platforms", "linux/amd64,arm64"]),
        "invalid target platform specification `arm64`",
    );
}

#[test]
fn pkg_builder_du_and_prune_the_debian_download_cache() {
    let dir = tempfile::tempdir().unwrap();
    let debs = dir.path().join("debian");
    std::fs::create_dir_all(debs.join("by-hash/ab")).unwrap();
    std::fs::write(debs.join("by-hash/ab/one"), [0u8; 1000]).unwrap();
    std::fs::write(debs.join("index"), [0u8; 24]).unwrap();
    // A link is counted, never followed (and its target survives prune).
    let outside = dir.path().join("outside");
    std::fs::write(&outside, [0u8; 5000]).unwrap();
    std::os::unix::fs::symlink(&outside, debs.join("link")).unwrap();
    let builder = |what: &str| {
        let mut c = linuxkit();
        c.env("LINUXKIT_DEBIAN_CACHE", &debs)
            .args(["pkg", "builder", what]);
        ok(&mut c).0
    };
    let du = builder("du");
    let link_len = std::fs::symlink_metadata(debs.join("link")).unwrap().len();
    assert!(
        du.contains(&format!("\t3 files\t{} bytes", 1024 + link_len)),
        "{du}"
    );
    let pruned = builder("prune");
    assert!(pruned.contains("removed 3 files"), "{pruned}");
    assert_eq!(std::fs::read_dir(&debs).unwrap().count(), 0);
    assert!(outside.exists());
    assert!(builder("du").contains("\t0 files\t0 bytes"));
    refused(
        linuxkit().args(["pkg", "builder", "--builders", "linux/arm64=ctx", "du"]),
        "`linuxkit pkg builder --builders` is not supported",
    );
}
