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

/// A crate compiled into (or for) a `cargo:` binary, for the image's SBOM.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Crate {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Where it comes from: `registry+https://...`, `path+file://...`,
    /// `git+...`.
    pub source: String,
    /// The SHA-256 `Cargo.lock` records for it (registry crates).
    pub checksum: Option<String>,
    /// The `license` its `Cargo.toml` states.
    pub license: Option<String>,
    /// Only a build script or a procedural macro: run while building,
    /// not in the binary.
    pub build_only: bool,
}

impl Crate {
    /// Whether it comes from a registry (crates.io).
    pub fn from_registry(&self) -> bool {
        self.source.starts_with("registry+") || self.source.starts_with("sparse+")
    }
}

/// `(name, version, source)` of a cargo package id, in either of the
/// forms cargo prints (`registry+URL#name@1.0`, `path+file:///x/name#1.0`,
/// or the older `name 1.0 (registry+URL)`).
fn parse_package_id(id: &str) -> Option<(String, String, String)> {
    if let Some((source, frag)) = id.rsplit_once('#') {
        let (name, version) = match frag.split_once('@') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => {
                let url = source.split('?').next().unwrap_or(source);
                (url.rsplit('/').next()?.to_string(), frag.to_string())
            }
        };
        return Some((name, version, source.to_string()));
    }
    let mut f = id.split_whitespace();
    let (name, version) = (f.next()?, f.next()?);
    let source = f
        .next()
        .unwrap_or("")
        .trim_matches(|c| c == '(' || c == ')');
    Some((name.to_string(), version.to_string(), source.to_string()))
}

/// The value of a `key = "value"` line of a TOML file, at the top of
/// `section` (`[package]`); enough for `Cargo.lock` and a manifest's
/// `license`.
fn toml_strings<'a>(text: &'a str, section: &str, key: &str) -> Vec<(usize, &'a str)> {
    let mut out = Vec::new();
    let mut current = "";
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t;
            continue;
        }
        if current != section {
            continue;
        }
        if let Some((k, v)) = t.split_once('=')
            && k.trim() == key
            && let Some(v) = v.trim().strip_prefix('"').and_then(|v| v.strip_suffix('"'))
        {
            out.push((n, v));
        }
    }
    out
}

/// `(name, version) -> checksum` of a `Cargo.lock`.
fn lock_checksums(lock: &str) -> std::collections::BTreeMap<(String, String), String> {
    let mut out = std::collections::BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |k: &str| {
            block.lines().find_map(|l| {
                let (key, v) = l.split_once('=')?;
                (key.trim() == k).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        if let (Some(n), Some(v), Some(c)) = (field("name"), field("version"), field("checksum")) {
            out.insert((n, v), c);
        }
    }
    out
}

/// The crates of a build, from cargo's `compiler-artifact` messages (every
/// unit compiled or found fresh) with their `Cargo.lock` checksums and
/// their manifests' licences.
#[derive(Default)]
struct Crates {
    /// package id → (manifest path, any target that is not a build script
    /// or a procedural macro).
    seen: std::collections::BTreeMap<String, (PathBuf, bool)>,
}

impl Crates {
    fn note(&mut self, v: &serde_json::Value) {
        let (Some(id), Some(manifest)) = (v["package_id"].as_str(), v["manifest_path"].as_str())
        else {
            return;
        };
        let kinds: Vec<&str> = v["target"]["kind"]
            .as_array()
            .map(|k| k.iter().filter_map(|k| k.as_str()).collect())
            .unwrap_or_default();
        let linked = kinds
            .iter()
            .any(|k| *k != "custom-build" && *k != "proc-macro");
        let e = self
            .seen
            .entry(id.to_string())
            .or_insert_with(|| (PathBuf::from(manifest), false));
        e.1 |= linked;
    }

    fn finish(self, root: &Path) -> Vec<Crate> {
        let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
        let sums = lock_checksums(&lock);
        let mut out: Vec<Crate> = self
            .seen
            .into_iter()
            .filter_map(|(id, (manifest, linked))| {
                let (name, version, source) = parse_package_id(&id)?;
                let text = std::fs::read_to_string(&manifest).unwrap_or_default();
                let license = toml_strings(&text, "[package]", "license")
                    .first()
                    .map(|(_, l)| l.to_string());
                Some(Crate {
                    checksum: sums.get(&(name.clone(), version.clone())).cloned(),
                    name,
                    version,
                    source,
                    license,
                    build_only: !linked,
                })
            })
            .collect();
        out.sort();
        out
    }
}

/// A built `cargo:` binary and the crates it was built from.
pub struct Built {
    /// The binary.
    pub bytes: Vec<u8>,
    /// Every crate compiled for it, sorted.
    pub crates: Vec<Crate>,
}

/// Builds `spec` for `arch` in the workspace around `pkg_dir`; returns
/// the binary and its crates. `build_yml` and `index` name the entry in
/// errors.
pub fn build_binary(
    pkg_dir: &Path,
    spec: &CargoBinary,
    arch: Arch,
    build_yml: &str,
    index: usize,
) -> Result<Built, BuildError> {
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
    let mut crates = Crates::default();
    let stdout = child.stdout.take().expect("piped");
    for l in std::io::BufReader::new(stdout).lines() {
        let Ok(l) = l else { break };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) else {
            continue;
        };
        if v["reason"] == "compiler-artifact" {
            crates.note(&v);
        }
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
    let bytes =
        std::fs::read(&exe).map_err(|e| err(format!("cannot read {}: {e}", exe.display())))?;
    Ok(Built {
        bytes,
        crates: crates.finish(&root),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_ids_of_every_form() {
        let r = "registry+https://github.com/rust-lang/crates.io-index";
        assert_eq!(
            parse_package_id(&format!("{r}#serde@1.0.200")),
            Some(("serde".into(), "1.0.200".into(), r.into()))
        );
        assert_eq!(
            parse_package_id("path+file:///w/crates/init#0.1.0"),
            Some((
                "init".into(),
                "0.1.0".into(),
                "path+file:///w/crates/init".into()
            ))
        );
        assert_eq!(
            parse_package_id("path+file:///w/crates/init#linuxkit-init@0.1.0"),
            Some((
                "linuxkit-init".into(),
                "0.1.0".into(),
                "path+file:///w/crates/init".into()
            ))
        );
        assert_eq!(
            parse_package_id(&format!("serde 1.0.200 ({r})")),
            Some(("serde".into(), "1.0.200".into(), r.into()))
        );
    }

    #[test]
    fn lock_checksums_and_manifest_licences() {
        let lock = "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nsource = \"registry+x\"\nchecksum = \"abc\"\n\n[[package]]\nname = \"b\"\nversion = \"0.1.0\"\n";
        let sums = lock_checksums(lock);
        assert_eq!(
            sums.get(&("a".into(), "1.0.0".into())).map(String::as_str),
            Some("abc")
        );
        assert_eq!(sums.len(), 1);
        let manifest = "[package]\nname = \"a\"\nlicense = \"MIT OR Apache-2.0\"\n[dependencies]\nlicense = \"x\"\n";
        assert_eq!(
            toml_strings(manifest, "[package]", "license"),
            [(2, "MIT OR Apache-2.0")]
        );
    }

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
