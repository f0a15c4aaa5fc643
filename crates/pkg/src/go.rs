//! `go:` entries: static Go binaries built with Debian's Go toolchain and
//! Debian's packaged Go sources, without Docker and without the network.
//!
//! Debian ships most Go libraries as source packages (`golang-*-dev`, under
//! `/usr/share/gocode/src`), which is how Debian itself builds Go programs:
//! in GOPATH mode, from those sources. A `go:` entry does the same. The
//! packages listed in `debian.build_packages` (the toolchain, such as
//! `golang-go`, and the sources the program imports) are resolved with
//! their dependencies, pinned in `debian.lock` next to the image's own,
//! and unpacked into a temporary build root. Then, for each entry,
//!
//! ```text
//! go build -trimpath -ldflags "-s -w -buildid=" -o BINARY linuxkit.pkg/MAIN
//! ```
//!
//! runs with `GOROOT` in the build root, `GOPATH` = a copy of the
//! package's `MAIN` directory followed by the build root's
//! `/usr/share/gocode`, `GO111MODULE=off`, `CGO_ENABLED=0` (a static
//! binary that needs no C library in the image), `GOPROXY=off` and an
//! environment of its own (nothing of the caller's `GO*` variables leaks
//! in). `-trimpath` and the empty build ID keep the temporary paths out of
//! the binary, so the same lockfile gives the same bytes.
//!
//! What this is for: the program a LinuxKit image needs is often a smaller
//! build than the one its Debian package ships. pkg/containerd builds
//! containerd without the CRI plugin and the snapshotters LinuxKit never
//! uses: 22 MB instead of 48 MB in every initrd, and half the start-up
//! work under emulation.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::GoBinary;
use crate::build::BuildError;
use crate::debian::DebArchive;

/// The import path prefix a `go:` entry's `main` directory gets in the
/// build's GOPATH (`linuxkit.pkg/MAIN`): a name no real import path has.
const IMPORT_PREFIX: &str = "linuxkit.pkg";

/// A temporary directory holding the unpacked `debian.build_packages`;
/// removed when dropped.
pub struct BuildRoot {
    dir: tempfile::TempDir,
}

impl BuildRoot {
    /// Unpacks `debs` (each with a label for errors) into a new build
    /// root, in order; a later package's file replaces an earlier one's.
    /// Absolute symbolic links are made to point into the build root, so
    /// that nothing of the host is read through them.
    pub fn unpack<'a>(
        debs: impl IntoIterator<Item = (String, &'a DebArchive)>,
    ) -> Result<BuildRoot, BuildError> {
        let dir = tempfile::Builder::new()
            .prefix("linuxkit-build-root-")
            .tempdir()
            .map_err(|e| BuildError::Layer {
                what: "the build root".into(),
                message: format!("cannot make a temporary directory: {e}"),
            })?;
        for (label, deb) in debs {
            unpack_deb(dir.path(), &label, deb)?;
        }
        Ok(BuildRoot { dir })
    }

    /// The build root's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The Go toolchain's GOROOT in the build root: where `usr/bin/go`
    /// points (Debian's `golang-go`), else the only `usr/lib/go-*`.
    fn goroot(&self) -> Result<PathBuf, String> {
        let root = self.path();
        if let Ok(go) = std::fs::canonicalize(root.join("usr/bin/go"))
            && let Some(goroot) = go.parent().and_then(Path::parent)
            && goroot.starts_with(root)
        {
            return Ok(goroot.to_path_buf());
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("usr/lib"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("go-"))
                    && p.join("bin/go").is_file()
            })
            .collect();
        found.sort();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err("no Go toolchain in `debian.build_packages`; add golang-go".into()),
            _ => Err(format!(
                "more than one Go toolchain in `debian.build_packages` ({}); add golang-go to choose Debian's default",
                found
                    .iter()
                    .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// Writes the `data.tar` of `deb` under `root`.
fn unpack_deb(root: &Path, label: &str, deb: &DebArchive) -> Result<(), BuildError> {
    let err = |message: String| BuildError::Layer {
        what: format!("{label} ({}), into the build root", deb.path().display()),
        message,
    };
    let mut archive = deb.data()?;
    for entry in archive.entries().map_err(|e| err(e.to_string()))? {
        let mut entry = entry.map_err(|e| err(e.to_string()))?;
        if entry.header().entry_type().is_symlink()
            && let Some(target) = entry.link_name().map_err(|e| err(e.to_string()))?
            && target.is_absolute()
        {
            let path = entry.path().map_err(|e| err(e.to_string()))?.into_owned();
            let rel = path.strip_prefix(".").unwrap_or(&path);
            if rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(err(format!("unsafe path {}", path.display())));
            }
            let at = root.join(rel);
            if let Some(parent) = at.parent() {
                std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
            }
            let _ = std::fs::remove_file(&at);
            let inside = root.join(target.strip_prefix("/").expect("absolute"));
            std::os::unix::fs::symlink(&inside, &at)
                .map_err(|e| err(format!("{}: {e}", at.display())))?;
            continue;
        }
        entry.set_preserve_permissions(true);
        entry
            .unpack_in(root)
            .map_err(|e| err(format!("{e}")))?;
    }
    Ok(())
}

/// Builds `spec` for `goarch` with the toolchain and sources in `root`;
/// returns the binary's bytes. `build_yml` and `index` name the entry in
/// errors.
pub fn build_binary(
    pkg_dir: &Path,
    spec: &GoBinary,
    goarch: &str,
    root: &BuildRoot,
    build_yml: &str,
    index: usize,
) -> Result<Vec<u8>, BuildError> {
    let err = |message: String| BuildError::Package {
        build_yml: build_yml.to_string(),
        message: format!("`go[{index}]` ({}): {message}", spec.main),
    };
    let goroot = root.goroot().map_err(&err)?;
    let main_dir = pkg_dir.join(&spec.main);
    if !main_dir.is_dir() {
        return Err(err(format!(
            "{} is not a directory; `main` is the package's directory holding the Go `package main`",
            main_dir.display()
        )));
    }
    let work = tempfile::Builder::new()
        .prefix("linuxkit-go-")
        .tempdir()
        .map_err(|e| err(format!("cannot make a temporary directory: {e}")))?;
    let import = format!("{IMPORT_PREFIX}/{}", spec.main.trim_matches('/'));
    let src = work.path().join("gopath/src").join(&import);
    copy_dir(&main_dir, &src).map_err(|e| err(format!("copying {}: {e}", main_dir.display())))?;
    let out = work.path().join("out");
    let gopath = std::env::join_paths([
        work.path().join("gopath"),
        root.path().join("usr/share/gocode"),
    ])
    .map_err(|e| err(e.to_string()))?;
    let line = format!("go build -trimpath -ldflags \"-s -w -buildid=\" {import}");
    let status = Command::new(goroot.join("bin/go"))
        .args(["build", "-trimpath", "-ldflags", "-s -w -buildid=", "-o"])
        .arg(&out)
        .arg(&import)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", work.path())
        .env("GOROOT", &goroot)
        .env("GOPATH", &gopath)
        .env("GO111MODULE", "off")
        .env("CGO_ENABLED", "0")
        .env("GOOS", "linux")
        .env("GOARCH", goarch)
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .env("GOCACHE", work.path().join("cache"))
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| err(format!("cannot run {} ({e})", goroot.join("bin/go").display())))?;
    if !status.success() {
        return Err(err(format!(
            "`{line}` failed ({status}); see Go's messages above (is every package it imports in `debian.build_packages`?)"
        )));
    }
    std::fs::read(&out).map_err(|e| err(format!("cannot read {}: {e}", out.display())))
}

/// Copies the directory tree `from` to `to` (files and directories; a
/// Go main package has nothing else worth copying).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()))?;
        } else if t.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}
