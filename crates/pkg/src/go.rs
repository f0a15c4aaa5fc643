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
//! Go's build cache (`GOCACHE`) is kept between builds when the build root
//! is given one ([`BuildRoot::with_go_cache`]; `pkg build` puts it in the
//! Debian cache, `DEBIAN_CACHE/go-build/TOOLCHAIN`, unless `disable-cache`
//! or `--disable-cache` asks for a fresh one): containerd's build
//! takes most of a `pkg build` of the whole `pkg/` set and, from a warm
//! cache, only its link step runs again. It cannot change a result: Go
//! keys every cached action by the content of its inputs (sources, flags,
//! `GOOS`/`GOARCH`, the compiler's version) and, with `-trimpath`, not by
//! the temporary directories, so a cached package is the one a fresh build
//! would compile (tested: the same bytes with and without it); the
//! directory is per toolchain (the SHA-256 of its `go` program), so
//! another toolchain never even looks at it. Go documents its cache as
//! safe for several processes of one machine at once (they coordinate
//! with file locks and may duplicate work, but do not corrupt it; not on a
//! network file system), and it checks an entry's output against the
//! recorded size before using it, so concurrent `pkg build`s and a killed
//! one leave it usable. Go itself trims entries unused for days.
//!
//! The build root is this machine's (`debian.lock` pins `build_packages`
//! under the building machine's architecture), whatever the target: Go
//! cross-compiles with `GOARCH`, and with cgo off no C toolchain of the
//! target is needed, so an arm64 image's binary is built on amd64 without
//! emulation.
//!
//! What this is for: the program a LinuxKit image needs is often a smaller
//! build than the one its Debian package ships. pkg/containerd builds
//! containerd without the CRI plugin and the snapshotters LinuxKit never
//! uses: 22 MB instead of 48 MB in every initrd, and half the start-up
//! work under emulation.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use linuxkit_base::Arch;

use crate::GoBinary;
use crate::debian::DebArchive;
use crate::error::BuildError;

/// The import path prefix a `go:` entry's `main` directory gets in the
/// build's GOPATH (`linuxkit.pkg/MAIN`): a name no real import path has.
const IMPORT_PREFIX: &str = "linuxkit.pkg";

/// A temporary directory holding the unpacked `debian.build_packages`
/// (`ROOT/root`) and each build's GOPATH and cache (`ROOT/go-*`); removed
/// when dropped.
pub struct BuildRoot {
    /// Held for its removal when the root is dropped.
    dir: tempfile::TempDir,
    /// The unpacked packages, with symbolic links resolved in the path
    /// (the temporary directory may be reached through one), so that
    /// whether a path is inside the root is a comparison of names.
    canonical: PathBuf,
    /// A directory of Go build caches kept between builds, one per
    /// toolchain (see the module docs); `None`: each build's own.
    go_cache: Option<PathBuf>,
}

impl BuildRoot {
    /// Unpacks `debs` (each with a label for errors) into a new build root
    /// in `dir` (the cache's [scratch directory](linuxkit_oci::Cache::scratch_dir),
    /// so that a killed build's gigabyte is reclaimed by the next), in
    /// order; a later package's file replaces an earlier one's. Absolute
    /// symbolic links are made to point into the build root, so that
    /// nothing of the host is read through them.
    pub fn unpack<'a>(
        dir: tempfile::TempDir,
        debs: impl IntoIterator<Item = (String, &'a DebArchive)>,
    ) -> Result<BuildRoot, BuildError> {
        let root = BuildRoot::new(dir).map_err(|e| BuildError::Layer {
            what: "the build root".into(),
            message: format!("cannot make its directory: {e}"),
        })?;
        for (label, deb) in debs {
            unpack_deb(root.path(), &label, deb)?;
        }
        Ok(root)
    }

    fn new(dir: tempfile::TempDir) -> std::io::Result<BuildRoot> {
        let root = dir.path().join("root");
        std::fs::create_dir(&root)?;
        let canonical = std::fs::canonicalize(root)?;
        Ok(BuildRoot {
            dir,
            canonical,
            go_cache: None,
        })
    }

    /// Keeps Go's build cache in `dir` (under a directory per toolchain)
    /// between builds, instead of a new one per build.
    pub fn with_go_cache(mut self, dir: PathBuf) -> Self {
        self.go_cache = Some(dir);
        self
    }

    /// The `GOCACHE` for the toolchain in `goroot`: a directory of
    /// `go_cache` named by the SHA-256 of the toolchain's `go` program,
    /// else `fresh` (a directory of this build's own).
    fn gocache(&self, goroot: &Path, fresh: PathBuf) -> Result<PathBuf, String> {
        use sha2::Digest as _;
        let Some(dir) = &self.go_cache else {
            return Ok(fresh);
        };
        let go = goroot.join("bin/go");
        let bytes = std::fs::read(&go).map_err(|e| format!("cannot read {}: {e}", go.display()))?;
        let key = crate::debian::hex(&sha2::Sha256::digest(&bytes)[..16]);
        let dir = std::path::absolute(dir.join(&key))
            .map_err(|e| format!("the Go build cache {}: {e}", dir.display()))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create the Go build cache {}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// A new directory for one build's GOPATH, cache and output, beside
    /// the root (removed when dropped).
    fn work_dir(&self) -> std::io::Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("go-")
            .tempdir_in(self.dir.path())
    }

    /// The build root's directory (symbolic links resolved).
    pub fn path(&self) -> &Path {
        &self.canonical
    }

    /// A command running the build root's program `exe`. A dynamically
    /// linked one (Debian's `go` is) runs under the build root's own
    /// dynamic loader and libraries, so the host's C library plays no
    /// part (and a host without glibc can run it).
    fn command(&self, exe: &Path) -> Command {
        let Some(interp) = elf_interpreter(exe) else {
            return Command::new(exe);
        };
        let loader = self
            .path()
            .join(interp.strip_prefix("/").unwrap_or(&interp));
        let mut dirs: Vec<PathBuf> = Vec::new();
        for base in ["lib", "usr/lib"] {
            let base = self.path().join(base);
            // the multiarch directories (x86_64-linux-gnu), then the base
            dirs.extend(entries_named(
                &base,
                |n| n.contains("-linux-"),
                Path::is_dir,
            ));
            dirs.push(base);
        }
        let mut c = Command::new(loader);
        c.arg("--library-path")
            .arg(std::env::join_paths(&dirs).unwrap_or_default())
            .arg(exe);
        c
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
        let mut found = entries_named(
            &root.join("usr/lib"),
            |n| n.starts_with("go-"),
            |p| p.join("bin/go").is_file(),
        );
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err("no Go toolchain in `debian.build_packages`; add golang-go".into()),
            _ => Err(format!(
                "more than one Go toolchain in `debian.build_packages` ({}); add golang-go to choose Debian's default",
                found
                    .iter()
                    .map(|p| p
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// The entries of the directory `dir` whose names pass `name` and whose
/// paths pass `keep`, sorted; none if `dir` cannot be read.
fn entries_named(
    dir: &Path,
    name: impl Fn(&str) -> bool,
    keep: impl Fn(&Path) -> bool,
) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| name(&n.to_string_lossy())) && keep(p))
        .collect();
    found.sort();
    found
}

/// Writes the `data.tar` of `deb` under `root` (a canonical path).
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
                // Not through a link out of the root (what `unpack_in`
                // checks for the other entries).
                if !inside_root(root, parent) {
                    return Err(err(format!(
                        "unsafe path {} (through a symbolic link out of the build root)",
                        path.display()
                    )));
                }
                std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
            }
            let _ = std::fs::remove_file(&at);
            let inside = root.join(in_root(&target));
            std::os::unix::fs::symlink(&inside, &at)
                .map_err(|e| err(format!("{}: {e}", at.display())))?;
            continue;
        }
        entry.set_preserve_permissions(true);
        entry.unpack_in(root).map_err(|e| err(format!("{e}")))?;
    }
    Ok(())
}

/// The absolute link target `target` as a path relative to the root, with
/// `..` resolved by name (at `/` it stays at `/`, as the kernel's does).
fn in_root(target: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in target.components() {
        match c {
            std::path::Component::Normal(c) => out.push(c),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Whether the directory `dir` (existing or to be made) is in `root` (a
/// canonical path): its nearest existing ancestor, symbolic links
/// followed, is.
fn inside_root(root: &Path, dir: &Path) -> bool {
    dir.ancestors()
        .find(|a| a.exists())
        .and_then(|a| std::fs::canonicalize(a).ok())
        .is_some_and(|a| a.starts_with(root))
}

/// Builds `spec` for `arch` with the toolchain and sources in `root`;
/// returns the binary's bytes. `build_yml` and `index` name the entry in
/// errors.
pub fn build_binary(
    pkg_dir: &Path,
    spec: &GoBinary,
    arch: Arch,
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
    let work = root
        .work_dir()
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
    let go = goroot.join("bin/go");
    let gocache = root
        .gocache(&goroot, work.path().join("cache"))
        .map_err(&err)?;
    let status = root
        .command(&go)
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
        .env("GOARCH", arch.go())
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .env("GOCACHE", &gocache)
        .current_dir(work.path())
        .stdin(Stdio::null())
        // `pkg build` prints the image's reference on standard output.
        .stdout(Stdio::from(
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| err(e.to_string()))?,
        ))
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| err(format!("cannot run {} ({e})", go.display())))?;
    if !status.success() {
        return Err(err(format!(
            "`{line}` failed ({status}); see Go's messages above (is every package it imports in `debian.build_packages`?)"
        )));
    }
    std::fs::read(&out).map_err(|e| err(format!("cannot read {}: {e}", out.display())))
}

/// The program interpreter (`PT_INTERP`, the dynamic loader) of the
/// 64-bit little-endian ELF file at `path`; `None` for a static program or
/// anything else.
fn elf_interpreter(path: &Path) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let data = std::fs::read(path).ok()?;
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?));
    // ELFCLASS64, ELFDATA2LSB
    if data.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (phoff, phentsize, phnum) = (u64_at(0x20)? as usize, u16_at(0x36)?, u16_at(0x38)?);
    (0..phnum as usize).find_map(|i| {
        let ph = phoff + i * phentsize as usize;
        // PT_INTERP
        if u32_at(ph)? != 3 {
            return None;
        }
        let (off, size) = (u64_at(ph + 8)? as usize, u64_at(ph + 0x20)? as usize);
        let name = data.get(off..off + size)?;
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        Some(PathBuf::from(std::ffi::OsStr::from_bytes(name)))
    })
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

/// What a Go binary says of how it was built: its `.go.buildinfo`
/// (what `go version -m` prints), for the image's SBOM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// The Go version (`go1.19.8`).
    pub go_version: String,
    /// The main package's import path.
    pub path: String,
    /// The main module (path, version), in module mode.
    pub main: Option<(String, String)>,
    /// The modules compiled in: (path, version, go.sum hash), with a
    /// replacement's in place of the module it replaces.
    pub deps: Vec<(String, String, String)>,
    /// The build settings (`-compiler=gc`, `GOARCH=amd64`, ...).
    pub settings: Vec<(String, String)>,
}

/// The build information of the Go binary `bin` (Go 1.18 and later, which
/// write it inline), or `None` if it has none: the 32-byte header at a
/// 16-byte boundary starting `\xff Go buildinf:`, then the version and the
/// module information as varint-prefixed strings (the runtime/debug format
/// `go version -m` reads).
pub fn build_info(bin: &[u8]) -> Option<BuildInfo> {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    let start = (0..bin.len().saturating_sub(32))
        .step_by(16)
        .find(|&i| bin[i..].starts_with(MAGIC))?;
    let flags = bin[start + 15];
    if flags & 2 == 0 {
        return None;
    }
    let mut rest = &bin[start + 32..];
    let mut string = || -> Option<Vec<u8>> {
        let (mut len, mut shift, mut used) = (0u64, 0u32, 0usize);
        for b in rest.iter().take(10) {
            len |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            shift += 7;
            used += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        let len = usize::try_from(len).ok()?;
        let s = rest.get(used..used.checked_add(len)?)?;
        rest = &rest[used + len..];
        Some(s.to_vec())
    };
    let go_version = String::from_utf8_lossy(&string()?).into_owned();
    let mut modinfo = string()?;
    // The module information is framed by 16-byte sentinels (binary, not
    // text: they are cut before the rest is read as text).
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        modinfo = modinfo[16..modinfo.len() - 16].to_vec();
    }
    let modinfo = String::from_utf8_lossy(&modinfo);
    let mut info = BuildInfo {
        go_version,
        ..BuildInfo::default()
    };
    for line in modinfo.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let at = |i: usize| f.get(i).copied().unwrap_or("").to_string();
        match f[0] {
            "path" => info.path = at(1),
            "mod" => info.main = Some((at(1), at(2))),
            "dep" => info.deps.push((at(1), at(2), at(3))),
            "=>" => {
                if let Some(last) = info.deps.last_mut() {
                    *last = (at(1), at(2), at(3));
                }
            }
            "build" => {
                let (k, v) = f
                    .get(1)
                    .and_then(|s| s.split_once('='))
                    .unwrap_or((f.get(1).copied().unwrap_or(""), ""));
                info.settings.push((k.to_string(), v.to_string()));
            }
            _ => {}
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_is_read_as_go_version_m_reads_it() {
        let modinfo = "path\tlinuxkit.pkg/hello\nmod\texample.com/m\t(devel)\t\ndep\tgolang.org/x/sys\tv0.1.0\th1:abc=\ndep\told.org/x\tv1.0.0\th1:old=\n=>\tnew.org/x\tv1.1.0\th1:new=\nbuild\t-compiler=gc\nbuild\tGOARCH=amd64\n";
        // The sentinels are binary, as Go writes them.
        let framed = [&[0xffu8; 16][..], modinfo.as_bytes(), b"\n", &[0xfe; 15]].concat();
        let mut bin = vec![0u8; 48];
        let mut header = b"\xff Go buildinf:".to_vec();
        header.extend([8, 2]);
        header.resize(32, 0);
        bin.extend(header);
        for s in [&b"go1.19.8"[..], &framed[..]] {
            let mut n = s.len();
            while n >= 0x80 {
                bin.push((n as u8 & 0x7f) | 0x80);
                n >>= 7;
            }
            bin.push(n as u8);
            bin.extend(s);
        }
        let info = build_info(&bin).unwrap();
        assert_eq!(info.go_version, "go1.19.8");
        assert_eq!(info.path, "linuxkit.pkg/hello");
        assert_eq!(info.main, Some(("example.com/m".into(), "(devel)".into())));
        assert_eq!(
            info.deps,
            [
                ("golang.org/x/sys".into(), "v0.1.0".into(), "h1:abc=".into()),
                ("new.org/x".into(), "v1.1.0".into(), "h1:new=".into())
            ]
        );
        assert_eq!(info.settings[1], ("GOARCH".into(), "amd64".into()));
        assert_eq!(
            build_info(b"no build info here, not even 32 bytes long enough"),
            None
        );
    }
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;

    /// One member of a test `data.tar`, named as dpkg-deb names them
    /// (`./usr/...`).
    enum E<'a> {
        Dir(&'a str),
        File(&'a str, u32, &'a [u8]),
        Link(&'a str, &'a str),
    }

    /// An uncompressed tar of `entries`; names are written as given (the
    /// `tar` crate's path setter would drop the `./` and refuse `..`).
    fn tar_of(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            let (name, body): (&str, &[u8]) = match *e {
                E::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    (p, b"")
                }
                E::File(p, mode, body) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(mode);
                    (p, body)
                }
                E::Link(p, target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_link_name(target).unwrap();
                    (p, b"")
                }
            };
            let field = &mut h.as_old_mut().name;
            field.fill(0);
            field[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(body.len() as u64);
            h.set_cksum();
            b.append(&h, body).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// A `.deb` in `dir` named `name`: `debian-binary`, an xz-compressed
    /// `control.tar` and `data` as `data.tar`, or gzip-compressed
    /// (`data.tar.gz`) when `gz`.
    fn deb(dir: &Path, name: &str, data: &[u8], gz: bool) -> DebArchive {
        let control = tar_of(&[E::File(
            "./control",
            0o644,
            b"Package: t\nVersion: 1\nArchitecture: all\n",
        )]);
        let mut xz =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
        xz.write_all(&control).unwrap();
        let control = xz.finish().unwrap();
        let (data_name, data) = if gz {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(data).unwrap();
            ("data.tar.gz", z.finish().unwrap())
        } else {
            ("data.tar", data.to_vec())
        };
        let mut ar = b"!<arch>\n".to_vec();
        for (member, body) in [
            ("debian-binary", &b"2.0\n"[..]),
            ("control.tar.xz", &control),
            (data_name, &data),
        ] {
            ar.extend(
                format!(
                    "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                    member,
                    0,
                    0,
                    0,
                    100644,
                    body.len()
                )
                .as_bytes(),
            );
            ar.extend(body);
            if body.len() % 2 == 1 {
                ar.push(b'\n');
            }
        }
        let path = dir.join(name);
        std::fs::write(&path, ar).unwrap();
        DebArchive::open(&path).unwrap()
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn unpack_keeps_modes_and_points_absolute_links_into_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let first = deb(
            tmp.path(),
            "first.deb",
            &tar_of(&[
                E::Dir("./"),
                E::Dir("./usr/"),
                E::Dir("./usr/bin/"),
                E::File("./usr/bin/tool", 0o755, b"#!/bin/sh\n"),
                E::File("./usr/bin/replaced", 0o644, b"first\n"),
                E::Dir("./usr/share/"),
                E::File("./usr/share/data", 0o640, b"data\n"),
                E::Link("./usr/bin/rel", "tool"),
                E::Link("./usr/bin/abs", "/usr/share/data"),
                // `..` above `/` stays at `/` (the build root).
                E::Link("./usr/bin/up", "/../../usr/share/../share/data"),
                // A directory, and a file of the host the root does not have.
                E::Link("./usr/lib", "/usr/share"),
                E::Link("./usr/bin/host", "/etc/os-release"),
            ]),
            false,
        );
        let second = deb(
            tmp.path(),
            "second.deb",
            &tar_of(&[
                E::Dir("./usr/bin/"),
                E::File("./usr/bin/replaced", 0o755, b"second\n"),
                E::Link("./usr/bin/tool", "/usr/bin/replaced"),
            ]),
            true,
        );
        let root = BuildRoot::unpack(
            tempfile::tempdir().unwrap(),
            [
                ("first 1".to_string(), &first),
                ("second 1".into(), &second),
            ],
        )
        .unwrap();
        let r = root.path();

        assert_eq!(std::fs::read(r.join("usr/share/data")).unwrap(), b"data\n");
        assert_eq!(mode(&r.join("usr/share/data")), 0o640);
        // A later package's file replaces an earlier one's, with its mode.
        assert_eq!(
            std::fs::read(r.join("usr/bin/replaced")).unwrap(),
            b"second\n"
        );
        assert_eq!(mode(&r.join("usr/bin/replaced")), 0o755);

        assert_eq!(
            std::fs::read_link(r.join("usr/bin/rel")).unwrap(),
            Path::new("tool"),
            "relative links are kept"
        );
        for (link, target) in [
            ("usr/bin/abs", "usr/share/data"),
            ("usr/bin/up", "usr/share/data"),
            ("usr/lib", "usr/share"),
            ("usr/bin/host", "etc/os-release"),
            // An absolute link replaces an earlier package's file.
            ("usr/bin/tool", "usr/bin/replaced"),
        ] {
            assert_eq!(
                std::fs::read_link(r.join(link)).unwrap(),
                r.join(target),
                "{link} points into the build root"
            );
        }
        assert_eq!(std::fs::read(r.join("usr/bin/abs")).unwrap(), b"data\n");
        assert_eq!(std::fs::read(r.join("usr/bin/up")).unwrap(), b"data\n");
        assert_eq!(std::fs::read(r.join("usr/lib/data")).unwrap(), b"data\n");
        assert_eq!(std::fs::read(r.join("usr/bin/rel")).unwrap(), b"second\n");
        assert!(
            std::fs::read(r.join("usr/bin/host")).is_err(),
            "nothing of the host is read through an absolute link"
        );

        let path = r.to_path_buf();
        drop(root);
        assert!(!path.exists(), "the build root is removed when dropped");
    }

    #[test]
    fn unpack_writes_nothing_outside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        // A directory next to the build root (both in the temporary
        // directory), reached by a relative link that leaves the root.
        let outside = tempfile::tempdir().unwrap();
        let name = outside.path().file_name().unwrap().to_str().unwrap();
        let up = format!("../{name}");
        let d = deb(
            tmp.path(),
            "evil.deb",
            &tar_of(&[
                E::Link("./out", &up),
                E::Link("./out/planted", "/usr/bin/x"),
            ]),
            false,
        );
        let e = BuildRoot::unpack(tempfile::tempdir().unwrap(), [("evil 1".to_string(), &d)])
            .err()
            .expect("a link written through a link out of the root is refused");
        assert!(e.to_string().contains("evil 1"), "{e}");
        assert!(
            std::fs::read_dir(outside.path()).unwrap().next().is_none(),
            "nothing was written outside the build root"
        );

        let d = deb(
            tmp.path(),
            "dotdot.deb",
            &tar_of(&[E::Link("./../planted", "/usr/bin/x")]),
            false,
        );
        let e = BuildRoot::unpack(tempfile::tempdir().unwrap(), [("dotdot 1".to_string(), &d)])
            .err()
            .expect("`..` in a path is refused");
        assert!(e.to_string().contains("unsafe path"), "{e}");
    }

    /// A build root (in `parent`) with the files (`bin/go`: a file is
    /// enough) and links of `tree`.
    fn tree_in(parent: &Path, tree: &[E]) -> BuildRoot {
        let root = BuildRoot::new(tempfile::Builder::new().tempdir_in(parent).unwrap()).unwrap();
        for e in tree {
            match *e {
                E::Dir(p) => std::fs::create_dir_all(root.path().join(p)).unwrap(),
                E::File(p, _, body) => {
                    let p = root.path().join(p);
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    std::fs::write(p, body).unwrap();
                }
                E::Link(p, target) => {
                    let p = root.path().join(p);
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    std::os::unix::fs::symlink(target, p).unwrap();
                }
            }
        }
        root
    }

    #[test]
    fn the_interpreter_of_a_dynamic_program_is_read_from_its_elf_header() {
        // The test's own binary is dynamically linked against glibc.
        let me = std::env::current_exe().unwrap();
        let interp = elf_interpreter(&me).expect("a dynamic test binary");
        assert!(
            interp.to_string_lossy().contains("ld-linux"),
            "{}",
            interp.display()
        );
        let t = tempfile::tempdir().unwrap();
        let script = t.path().join("go");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert_eq!(elf_interpreter(&script), None, "not ELF");
        // A static ELF: the header of the test binary without its program
        // headers' interpreter (no PT_INTERP among zero headers).
        let mut elf = std::fs::read(&me).unwrap()[..64].to_vec();
        elf[0x38..0x3a].copy_from_slice(&0u16.to_le_bytes());
        let stat = t.path().join("static");
        std::fs::write(&stat, elf).unwrap();
        assert_eq!(elf_interpreter(&stat), None, "no PT_INTERP");
    }

    #[test]
    fn goroot_is_where_usr_bin_go_points_else_the_only_toolchain() {
        let tmp = tempfile::tempdir().unwrap();
        let same = |a: &Path, b: &Path| {
            assert_eq!(
                std::fs::canonicalize(a).unwrap(),
                std::fs::canonicalize(b).unwrap()
            )
        };
        // Debian's golang-go: usr/bin/go → ../lib/go-1.19/bin/go; another
        // toolchain next to it is not chosen.
        let two = [
            E::File("usr/lib/go-1.19/bin/go", 0, b""),
            E::File("usr/lib/go-1.21/bin/go", 0, b""),
            E::Link("usr/bin/go", "../lib/go-1.19/bin/go"),
        ];
        let root = tree_in(tmp.path(), &two);
        same(
            &root.goroot().unwrap(),
            &root.path().join("usr/lib/go-1.19"),
        );
        // The same in a temporary directory reached through a link (as
        // TMPDIR may be).
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", tmp.path().join("linked")).unwrap();
        let root = tree_in(&tmp.path().join("linked"), &two);
        same(
            &root.goroot().unwrap(),
            &root.path().join("usr/lib/go-1.19"),
        );

        // No usr/bin/go: the one usr/lib/go-* with a bin/go.
        let root = tree_in(
            tmp.path(),
            &[
                E::File("usr/lib/go-1.21/bin/go", 0, b""),
                E::Dir("usr/lib/go-extra/bin"),
                E::File("usr/lib/gold/bin/go", 0, b""),
            ],
        );
        same(
            &root.goroot().unwrap(),
            &root.path().join("usr/lib/go-1.21"),
        );
        // usr/bin/go out of the root is not followed.
        let host = tree_in(tmp.path(), &[E::File("usr/lib/go-9/bin/go", 0, b"")]);
        let target = host.path().join("usr/lib/go-9/bin/go");
        let root = tree_in(
            tmp.path(),
            &[
                E::File("usr/lib/go-1.21/bin/go", 0, b""),
                E::Link("usr/bin/go", target.to_str().unwrap()),
            ],
        );
        same(
            &root.goroot().unwrap(),
            &root.path().join("usr/lib/go-1.21"),
        );

        let root = tree_in(tmp.path(), &[E::Dir("usr/lib/go-1.19/bin")]);
        let e = root.goroot().unwrap_err();
        assert_eq!(
            e,
            "no Go toolchain in `debian.build_packages`; add golang-go"
        );
        let root = tree_in(tmp.path(), &[]);
        assert_eq!(root.goroot().unwrap_err(), e);

        let root = tree_in(tmp.path(), &two[..2]);
        let e = root.goroot().unwrap_err();
        assert!(
            e.starts_with(
                "more than one Go toolchain in `debian.build_packages` (go-1.19, go-1.21)"
            ) && e.contains("add golang-go"),
            "{e}"
        );
    }

    #[test]
    fn build_binary_runs_go_in_an_environment_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log");
        // A `go` that records what it was given and writes a "binary".
        let script = format!(
            "#!/bin/sh\nenv > {log}/env\nprintf '%s\\n' \"$@\" > {log}/args\n\
             first=${{GOPATH%%:*}}\n\
             cat \"$first/src/$7/main.go\" \"$first/src/$7/sub/x.go\" > {log}/copied || exit 3\n\
             [ -n \"$FAIL\" ] && exit 1\n\
             printf 'ELF for %s' \"$GOARCH\" > \"$6\"\n",
            log = log.display()
        );
        let root = tree_in(
            tmp.path(),
            &[
                E::File("usr/lib/go-1.19/bin/go", 0, script.as_bytes()),
                E::Link("usr/bin/go", "../lib/go-1.19/bin/go"),
            ],
        );
        std::fs::set_permissions(
            root.path().join("usr/lib/go-1.19/bin/go"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir(&log).unwrap();
        let pkg = tmp.path().join("pkg");
        std::fs::create_dir_all(pkg.join("cmd/hello/sub")).unwrap();
        std::fs::write(pkg.join("cmd/hello/main.go"), "package main\n").unwrap();
        std::fs::write(pkg.join("cmd/hello/sub/x.go"), "package sub\n").unwrap();
        let spec = GoBinary {
            main: "cmd/hello/".into(),
            path: "/usr/bin/hello".into(),
        };
        let bin = build_binary(&pkg, &spec, Arch::Arm64, &root, "p/build.yml", 2).unwrap();
        assert_eq!(bin, b"ELF for arm64");
        let args = std::fs::read_to_string(log.join("args")).unwrap();
        let args: Vec<&str> = args.lines().collect();
        assert_eq!(
            [&args[..5], &args[6..]].concat(),
            [
                "build",
                "-trimpath",
                "-ldflags",
                "-s -w -buildid=",
                "-o",
                "linuxkit.pkg/cmd/hello"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(log.join("copied")).unwrap(),
            "package main\npackage sub\n",
            "the main directory is copied into the GOPATH"
        );
        let env = std::fs::read_to_string(log.join("env")).unwrap();
        let goroot = std::fs::canonicalize(root.path().join("usr/lib/go-1.19")).unwrap();
        for kv in [
            format!("GOROOT={}", goroot.display()),
            "GO111MODULE=off".into(),
            "CGO_ENABLED=0".into(),
            "GOOS=linux".into(),
            "GOARCH=arm64".into(),
            "GOPROXY=off".into(),
            "GOTOOLCHAIN=local".into(),
            "GOFLAGS=".into(),
            "PATH=/usr/bin:/bin".into(),
        ] {
            assert!(env.lines().any(|l| l == kv), "{kv} not in\n{env}");
        }
        let gopath = env.lines().find_map(|l| l.strip_prefix("GOPATH=")).unwrap();
        assert!(
            gopath.ends_with(&format!(
                ":{}",
                root.path().join("usr/share/gocode").display()
            )),
            "{gopath}"
        );
        // Nothing of this process's environment (cargo sets CARGO_* for
        // tests) reaches go.
        assert!(!env.contains("CARGO"), "{env}");

        // A failing build names the entry and where imports come from.
        std::fs::write(
            root.path().join("usr/lib/go-1.19/bin/go"),
            script.replace("[ -n \"$FAIL\" ]", "true"),
        )
        .unwrap();
        let e = build_binary(&pkg, &spec, Arch::Amd64, &root, "p/build.yml", 2)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p/build.yml: `go[2]` (cmd/hello/): `go build")
                && e.contains("debian.build_packages"),
            "{e}"
        );

        // A `main` that is not a directory of the package.
        let spec = GoBinary {
            main: "nope".into(),
            path: "/usr/bin/hello".into(),
        };
        let e = build_binary(&pkg, &spec, Arch::Amd64, &root, "p/build.yml", 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p/build.yml: `go[0]` (nope): ") && e.contains("is not a directory"),
            "{e}"
        );
        // No toolchain.
        let empty = tree_in(tmp.path(), &[]);
        let e = build_binary(&pkg, &spec, Arch::Amd64, &empty, "p/build.yml", 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`go[0]` (nope): no Go toolchain"), "{e}");

        // Go's build cache: the build's own (gone with it), else a kept
        // directory named by the toolchain's `go` program, the same for
        // every build with that toolchain.
        let gocache = |env: &str| {
            let env = std::fs::read_to_string(env).unwrap();
            PathBuf::from(
                env.lines()
                    .find_map(|l| l.strip_prefix("GOCACHE="))
                    .unwrap(),
            )
        };
        std::fs::write(root.path().join("usr/lib/go-1.19/bin/go"), &script).unwrap();
        let spec = GoBinary {
            main: "cmd/hello/".into(),
            path: "/usr/bin/hello".into(),
        };
        build_binary(&pkg, &spec, Arch::Amd64, &root, "p/build.yml", 0).unwrap();
        let own = gocache(log.join("env").to_str().unwrap());
        assert!(own.is_absolute() && !own.exists(), "{}", own.display());
        let kept = tmp.path().join("kept");
        let root = root.with_go_cache(kept.clone());
        build_binary(&pkg, &spec, Arch::Amd64, &root, "p/build.yml", 0).unwrap();
        let first = gocache(log.join("env").to_str().unwrap());
        let dirs: Vec<_> = std::fs::read_dir(&kept)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(dirs, std::slice::from_ref(&first));
        let name = first.file_name().unwrap().to_str().unwrap();
        assert!(
            name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}"
        );
        build_binary(&pkg, &spec, Arch::Arm64, &root, "p/build.yml", 0).unwrap();
        assert_eq!(gocache(log.join("env").to_str().unwrap()), first);
        // Another toolchain, another directory.
        std::fs::write(
            root.path().join("usr/lib/go-1.19/bin/go"),
            format!("{script}\n"),
        )
        .unwrap();
        build_binary(&pkg, &spec, Arch::Amd64, &root, "p/build.yml", 0).unwrap();
        let other = gocache(log.join("env").to_str().unwrap());
        assert!(other != first && other.parent() == Some(kept.as_path()));
    }
}
