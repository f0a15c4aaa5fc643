//! `cargo:` entries: static Rust binaries built from the Cargo workspace
//! that contains the package.
//!
//! For each entry, `linuxkit pkg build` runs
//!
//! ```text
//! cargo build --release --locked -p PACKAGE --bin BIN --target ARCH-unknown-linux-musl \
//!     --config profile.release.strip="symbols"
//! ```
//!
//! in the nearest directory at or above the package directory whose
//! `Cargo.toml` has a `[workspace]` table, and puts the binary at the
//! entry's `path` (mode 0755, root). `--locked` makes the build use the
//! workspace's `Cargo.lock` as committed; the musl target makes the binary
//! static, so it runs in an image without a C library. The binary's path
//! is read from cargo's JSON messages, so `CARGO_TARGET_DIR` and
//! `build.target-dir` are honoured.
//!
//! For another architecture than this machine's (`pkg build --platforms
//! linux/arm64` on amd64) the binary is cross-compiled and linked with
//! `rust-lld`, the linker that ships with the Rust toolchain (`--config
//! target.TARGET.linker="rust-lld"`): the musl targets carry their own C
//! runtime objects and libc, so no C cross toolchain is needed and the
//! binary is as static as a native one. A binary for this machine's own
//! architecture is linked as before, so its bytes do not change.
//!
//! The package's tag only covers the directories it hashes: list the crate
//! directories in `extra-sources` so that a change to the Rust code gives a
//! new tag (and so a rebuild).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use linuxkit_base::Arch;

use crate::CargoBinary;
use crate::error::BuildError;

/// The nearest directory at or above `dir` whose `Cargo.toml` has a
/// `[workspace]` table.
pub fn workspace_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| {
                t.lines()
                    .any(|l| l.trim() == "[workspace]" || l.trim().starts_with("[workspace."))
            })
        })
        .map(Path::to_path_buf)
}

/// The linker for a target of another architecture than this machine's.
const CROSS_LINKER: &str = "rust-lld";

/// `cargo`'s arguments for `spec` and the Rust target `target`, linked
/// with [`CROSS_LINKER`] if `cross`.
fn cargo_args(spec: &CargoBinary, target: &str, cross: bool) -> Vec<String> {
    let linker = cross.then(|| format!("target.{target}.linker=\"{CROSS_LINKER}\""));
    ["build", "--release", "--locked", "-p", &spec.package]
        .into_iter()
        .chain(["--bin", &spec.bin, "--target", target])
        .chain([
            "--message-format=json-render-diagnostics",
            // Symbols are dead weight in an initrd the kernel unpacks at
            // every boot; strip whatever the workspace's profile says.
            "--config",
            "profile.release.strip=\"symbols\"",
        ])
        .map(str::to_string)
        .chain(linker.into_iter().flat_map(|l| ["--config".to_string(), l]))
        .collect()
}

/// The entry's `rustflags` as `CARGO_ENCODED_RUSTFLAGS` (separated by
/// 0x1f), if it has any. That variable comes first in cargo's order, ahead
/// of `RUSTFLAGS` and every config file's `rustflags`, so the flags the
/// package's tag covers are the flags the binary is built with.
fn encoded_rustflags(spec: &CargoBinary) -> Option<String> {
    (!spec.rustflags.is_empty()).then(|| spec.rustflags.join("\x1f"))
}

/// Builds `spec` for `arch` in the workspace around `pkg_dir`; returns
/// the binary's bytes. `build_yml` and `index` name the entry in errors.
pub fn build_binary(
    pkg_dir: &Path,
    spec: &CargoBinary,
    arch: Arch,
    build_yml: &str,
    index: usize,
) -> Result<Vec<u8>, BuildError> {
    let err = |message: String| BuildError::Package {
        build_yml: build_yml.to_string(),
        message: format!("`cargo[{index}]` ({}): {message}", spec.package),
    };
    let root = workspace_root(pkg_dir).ok_or_else(|| {
        err(format!(
            "no Cargo workspace at or above {} (a Cargo.toml with a [workspace] table); `cargo:` builds crates of the workspace the package is in",
            pkg_dir.display()
        ))
    })?;
    let target = arch.rust_musl_target();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    let cross = arch != Arch::host();
    cmd.args(cargo_args(spec, target, cross));
    if let Some(flags) = encoded_rustflags(spec) {
        cmd.env("CARGO_ENCODED_RUSTFLAGS", flags)
            .env_remove("RUSTFLAGS");
    }
    cmd.current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let line = format!(
        "cargo build --release --locked -p {} --bin {} --target {target}{}",
        spec.package,
        spec.bin,
        if cross {
            format!(" --config target.{target}.linker=\"{CROSS_LINKER}\"")
        } else {
            String::new()
        }
    );
    let mut child = cmd.spawn().map_err(|e| {
        err(format!(
            "cannot run `{line}` ({e}); install Rust with rustup and `rustup target add {target}`"
        ))
    })?;
    let mut exe: Option<PathBuf> = None;
    let stdout = child.stdout.take().expect("piped");
    for l in std::io::BufReader::new(stdout).lines() {
        let Ok(l) = l else { break };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) else {
            continue;
        };
        if v["reason"] == "compiler-artifact"
            && v["target"]["name"] == spec.bin.as_str()
            && let Some(p) = v["executable"].as_str()
        {
            exe = Some(PathBuf::from(p));
        }
    }
    let status = child
        .wait()
        .map_err(|e| err(format!("waiting for `{line}`: {e}")))?;
    if !status.success() {
        return Err(err(format!(
            "`{line}` in {} failed ({status}); see cargo's messages above (is the target installed? `rustup target add {target}`)",
            root.display()
        )));
    }
    let exe = exe.ok_or_else(|| {
        err(format!(
            "`{line}` built no binary named `{}`; check `bin`",
            spec.bin
        ))
    })?;
    std::fs::read(&exe).map_err(|e| err(format!("cannot read {}: {e}", exe.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustflags_go_to_cargo_ahead_of_everything_else() {
        let mut spec = CargoBinary {
            package: "linuxkit-init".into(),
            bin: "linuxkit-init".into(),
            path: "sbin/linuxkit-init".into(),
            rustflags: Vec::new(),
        };
        assert_eq!(encoded_rustflags(&spec), None);
        spec.rustflags = vec!["-C".into(), "relocation-model=static".into()];
        assert_eq!(
            encoded_rustflags(&spec).as_deref(),
            Some("-C\x1frelocation-model=static")
        );
        let args = cargo_args(&spec, "x86_64-unknown-linux-musl", false);
        assert!(!args.iter().any(|a| a.contains("rustflags")), "{args:?}");
        assert!(!args.iter().any(|a| a.contains("linker")), "{args:?}");
    }

    #[test]
    fn another_architecture_is_linked_with_rust_lld() {
        let spec = CargoBinary {
            package: "p".into(),
            bin: "b".into(),
            path: "usr/bin/b".into(),
            rustflags: Vec::new(),
        };
        let args = cargo_args(&spec, "aarch64-unknown-linux-musl", true);
        assert_eq!(
            args[args.len() - 2..],
            [
                "--config".to_string(),
                "target.aarch64-unknown-linux-musl.linker=\"rust-lld\"".to_string()
            ]
        );
    }

    #[test]
    fn targets_and_workspace_roots() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("ws/crates/a/pkg")).unwrap();
        std::fs::write(
            t.path().join("ws/Cargo.toml"),
            "[workspace]\nmembers = []\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("ws/crates/a/Cargo.toml"),
            "[package]\nname = \"a\"\n",
        )
        .unwrap();
        assert_eq!(
            workspace_root(&t.path().join("ws/crates/a/pkg")).unwrap(),
            t.path().join("ws")
        );
    }
}
