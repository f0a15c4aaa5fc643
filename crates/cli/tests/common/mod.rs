//! Helpers of the tests that drive the built `linuxkit` binary over this
//! repository's package set and examples (`boot.rs`, `formats.rs`).

#![allow(dead_code)] // each test file uses its own part

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository's root (where `pkg/` and `examples/` are).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The `linuxkit` binary with its cache at `cache`, run from the
/// repository's root; QEMU's accelerator is left to each command line.
pub fn linuxkit(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_linuxkit"));
    c.env("LINUXKIT_CACHE", cache)
        .env_remove("LINUXKIT_QEMU_ACCEL")
        .current_dir(root())
        .stdin(Stdio::null());
    c
}

/// Runs `c`; panics with its output unless it succeeds.
pub fn ok(c: &mut Command) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    succeeded(&format!("{c:?}"), out)
}

/// `out` of `what`; panics with it unless it succeeded.
pub fn succeeded(what: &str, out: Output) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A free loopback port for `--publish`.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /` from 127.0.0.1:PORT: the body, if the server answered.
pub fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// Runs `image` (a build of examples/linuxkit.yml) detached with nginx's
/// port published, waits up to `wait` for the page, stops the machine by
/// its power button (`run qemu --stop --timeout STOP`), then judges the
/// page and the console (`STATE/linuxkit-state/console.log`): a DHCP
/// lease, every service started, nothing failed, the onshutdown container
/// run and the power off. `linuxkit` makes the command of the caller's
/// cache; the caller holds its VM slot.
pub fn nginx_answers_then_powers_off(
    linuxkit: impl Fn() -> Command,
    image: &Path,
    state: &Path,
    wait: Duration,
    stop: &str,
) {
    let port = free_port();
    succeeded(
        "run --detached",
        linuxkit()
            .args(["run", "qemu", "--accel", "tcg", "--mem", "1024"])
            .args(["--detached", "--publish"])
            .arg(format!("127.0.0.1:{port}:80"))
            .arg(image)
            .output()
            .unwrap(),
    );
    let console_log = state.join("linuxkit-state/console.log");
    let start = Instant::now();
    let mut page = None;
    while start.elapsed() < wait {
        if let Some(b) = http_get(port).filter(|b| b.contains("200 OK")) {
            page = Some(b);
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // Stop it whatever happened, then judge.
    let stopped = linuxkit()
        .args(["run", "qemu", "--stop", "--timeout", stop])
        .arg(image)
        .output()
        .unwrap();
    let console = std::fs::read_to_string(&console_log).unwrap_or_default();
    let page =
        page.unwrap_or_else(|| panic!("nginx never answered on port {port}; console:\n{console}"));
    assert!(page.contains("Welcome to nginx on LinuxKit"), "{page}");
    succeeded("run --stop", stopped);
    assert!(
        console.contains("eth0: leased 10.0.2.15"),
        "dhcpcd got no lease:\n{console}"
    );
    assert!(console.contains("all services started"), "{console}");
    assert!(!console.contains("FAILED"), "something failed:\n{console}");
    // The power button ran the onshutdown container, then the machine
    // powered off (run --stop waits for QEMU to exit).
    assert!(
        console.contains("so long and thanks for all the fish"),
        "{console}"
    );
    assert!(console.contains("linuxkit: power off"), "{console}");
}

/// The platform manifest digest of what `pkg build` printed as `digest` in
/// the cache at `cache`: the tag names an index of the manifest and its
/// attestation (docs/sbom.md), whose linux entry is the manifest (an image
/// without attestations is its own manifest).
pub fn platform_manifest(cache: &Path, digest: &str) -> String {
    let blob = std::fs::read(
        cache
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    )
    .unwrap();
    let top: serde_json::Value = serde_json::from_slice(&blob).unwrap();
    top["manifests"]
        .as_array()
        .and_then(|m| m.iter().find(|e| e["platform"]["os"] == "linux"))
        .map(|e| e["digest"].as_str().unwrap().to_string())
        .unwrap_or_else(|| digest.to_string())
}
