//! Helpers of the tests that drive the built `linuxkit` binary over this
//! repository's package set and examples (`boot.rs`, `formats.rs`).

#![allow(dead_code)] // each test file uses its own part

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

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
