//! `cargo:` and `go:`: binaries built for the image, checked as they are
//! read (the install path is a clean path inside the image).

use linuxkit_base::path::normalize;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use super::de::checked_map;

/// One `cargo:` entry: `cargo build --release --locked -p PACKAGE --bin
/// BIN --target ARCH-unknown-linux-musl` in the Cargo workspace around the
/// package, installed at `path` with mode 0755.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CargoBinary {
    /// The Cargo package.
    pub package: String,
    /// The binary target; default: the package name.
    pub bin: String,
    /// Where the binary goes in the image.
    pub path: String,
    /// Flags for rustc (as `CARGO_ENCODED_RUSTFLAGS`), e.g. `[-C,
    /// relocation-model=static]` for a static binary at a fixed address.
    pub rustflags: Vec<String>,
}

/// One `go:` entry: the Go `package main` in the directory `main` (relative
/// to the package directory), built by [`crate::go`] with the Go toolchain
/// and sources of `debian.build_packages`, installed at `path` with mode
/// 0755.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoBinary {
    /// The directory of the main package, relative to the package directory.
    pub main: String,
    /// Where the binary goes in the image.
    pub path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGo {
    #[serde(default)]
    main: String,
    #[serde(default)]
    path: String,
}

impl<'de> Deserialize<'de> for GoBinary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |r: RawGo| {
            // Kept clean (`./cmd/` is `cmd`): it becomes part of a Go
            // import path.
            let Some(main) = normalize(&r.main).ok().filter(|_| !r.main.starts_with('/')) else {
                return Err(format!(
                    "`main` {:?} must be a directory of the package holding a Go `package main`, e.g. `main: cmd`",
                    r.main
                ));
            };
            check_binary_path(&r.path, "NAME")?;
            Ok(GoBinary { main, path: r.path })
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCargo {
    #[serde(default)]
    package: String,
    bin: Option<String>,
    #[serde(default)]
    path: String,
    #[serde(default)]
    rustflags: Vec<String>,
}

impl<'de> Deserialize<'de> for CargoBinary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |r: RawCargo| {
            if r.package.is_empty() {
                return Err("`package` is required: the Cargo package to build".into());
            }
            check_binary_path(&r.path, r.bin.as_deref().unwrap_or(&r.package))?;
            Ok(CargoBinary {
                bin: r.bin.unwrap_or_else(|| r.package.clone()),
                package: r.package,
                path: r.path,
                rustflags: r.rustflags,
            })
        })
    }
}

/// A built binary's `path` in the image (`cargo:`, `go:`); `name` is for
/// the example in the error.
fn check_binary_path(path: &str, name: &str) -> Result<(), String> {
    match normalize(path) {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "`path` {path:?} must be the binary's path in the image, e.g. /usr/bin/{name}"
        )),
    }
}
