//! Downloading and reading `.deb` files.
//!
//! A `.deb` is an `ar` archive of three members, in this order:
//! `debian-binary` (the format version, `2.0\n`), `control.tar[.gz|.xz|.zst]`
//! (metadata and maintainer scripts) and `data.tar[.gz|.xz|.zst]` (the
//! files). The `ar` format is a 8-byte magic plus 60-byte text headers, so
//! it is read here by hand rather than through another dependency; the
//! tarballs go through the `tar` crate, decompressed by `lzma-rust2`,
//! `zstd` or `flate2`.
//!
//! Reading is all this does: **maintainer scripts are never run**, triggers
//! are not processed and no dpkg database is written. [`DebArchive::data`]
//! streams entries so large packages are not held in memory.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::index::{Client, Package, decompressor};
use linuxkit_base::path::{normalize, normalize_or_root};

use super::control;
use super::error::{DebianError, Result, io_err};

/// One member of an `ar` archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArMember {
    /// The member name (GNU `/` terminator stripped).
    pub name: String,
    /// Offset of the member's data in the file.
    pub offset: u64,
    /// Size of the member's data.
    pub size: u64,
}

/// Lists the members of an `ar` archive.
pub fn read_ar_members(r: &mut (impl Read + Seek)) -> std::io::Result<Vec<ArMember>> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != b"!<arch>\n" {
        return Err(bad("not an ar archive".into()));
    }
    let mut out = Vec::new();
    let mut pos = 8u64;
    loop {
        let mut hdr = [0u8; 60];
        match r.read_exact(&mut hdr) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        if &hdr[58..60] != b"`\n" {
            return Err(bad(format!("bad ar header at offset {pos}")));
        }
        let text = |a: usize, b: usize| String::from_utf8_lossy(&hdr[a..b]).trim_end().to_owned();
        let name = text(0, 16).trim_end_matches('/').to_owned();
        let size: u64 = text(48, 58)
            .parse()
            .map_err(|_| bad(format!("bad ar member size at offset {pos}")))?;
        let offset = pos + 60;
        out.push(ArMember { name, offset, size });
        // Members are padded to an even length.
        pos = offset + size + (size & 1);
        r.seek(SeekFrom::Start(pos))?;
    }
    Ok(out)
}

/// The fields of a package's `control` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFile {
    /// The raw text.
    pub text: String,
}

impl ControlFile {
    /// Field `name` (case-insensitive), trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        control::parse(&self.text).ok()?.first()?.get(name)
    }
}

/// An opened `.deb`.
#[derive(Debug, Clone)]
pub struct DebArchive {
    path: PathBuf,
    members: Vec<ArMember>,
}

impl DebArchive {
    /// Opens `path` and checks its structure (`debian-binary` first, at
    /// format 2.x, then `control.tar*` and `data.tar*`).
    pub fn open(path: &Path) -> Result<DebArchive> {
        let bad = |m: String| DebianError::BadDeb {
            path: path.to_owned(),
            message: m,
        };
        let mut f = File::open(path).map_err(io_err(path))?;
        let members = read_ar_members(&mut f).map_err(|e| bad(e.to_string()))?;
        let deb = DebArchive {
            path: path.to_owned(),
            members,
        };
        match deb.members.first() {
            Some(m) if m.name == "debian-binary" => {}
            _ => return Err(bad("first member is not debian-binary".into())),
        }
        let mut version = String::new();
        deb.raw_member("debian-binary")?
            .take(16)
            .read_to_string(&mut version)
            .map_err(io_err(path))?;
        if !version.starts_with("2.") {
            return Err(bad(format!("unsupported format {:?}", version.trim())));
        }
        deb.member_named("control.tar")?;
        deb.member_named("data.tar")?;
        Ok(deb)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `ar` members.
    pub fn members(&self) -> &[ArMember] {
        &self.members
    }

    fn member_named(&self, prefix: &str) -> Result<&ArMember> {
        self.members
            .iter()
            .find(|m| m.name == prefix || m.name.starts_with(&format!("{prefix}.")))
            .ok_or_else(|| DebianError::BadDeb {
                path: self.path.clone(),
                message: format!("no {prefix}* member"),
            })
    }

    fn raw_member(&self, name: &str) -> Result<impl Read + use<>> {
        let m = self.member_named(name)?;
        let mut f = File::open(&self.path).map_err(io_err(&self.path))?;
        f.seek(SeekFrom::Start(m.offset))
            .map_err(io_err(&self.path))?;
        Ok(BufReader::new(f).take(m.size))
    }

    fn tar(&self, prefix: &str) -> Result<tar::Archive<Box<dyn Read>>> {
        let name = self.member_named(prefix)?.name.clone();
        let raw: Box<dyn Read> = Box::new(self.raw_member(prefix)?);
        let r = decompressor(&name, raw).map_err(io_err(&self.path))?;
        Ok(tar::Archive::new(r))
    }

    /// The `data.tar` as a streaming `tar` archive; iterate `entries()`.
    pub fn data(&self) -> Result<tar::Archive<Box<dyn Read>>> {
        self.tar("data.tar")
    }

    /// The `control` file from `control.tar`.
    pub fn control(&self) -> Result<ControlFile> {
        let mut ar = self.tar("control.tar")?;
        for entry in ar.entries().map_err(io_err(&self.path))? {
            let mut entry = entry.map_err(io_err(&self.path))?;
            let path = entry.path().map_err(io_err(&self.path))?.into_owned();
            if normalize(&path.to_string_lossy()).is_ok_and(|p| p == "control") {
                let mut text = String::new();
                entry
                    .read_to_string(&mut text)
                    .map_err(io_err(&self.path))?;
                return Ok(ControlFile { text });
            }
        }
        Err(DebianError::BadDeb {
            path: self.path.clone(),
            message: "control.tar has no control file".into(),
        })
    }

    /// Paths in `data.tar`, in the clean form of
    /// [`linuxkit_base::path::normalize`] (`usr/bin`; the root itself is
    /// skipped). A path that climbs out of the root (`..`) is refused.
    pub fn data_paths(&self) -> Result<Vec<String>> {
        let mut ar = self.data()?;
        let mut out = Vec::new();
        for entry in ar.entries().map_err(io_err(&self.path))? {
            let entry = entry.map_err(io_err(&self.path))?;
            let raw = entry.path().map_err(io_err(&self.path))?;
            let raw = raw.to_string_lossy();
            let p = normalize_or_root(&raw).map_err(|e| DebianError::BadDeb {
                path: self.path.clone(),
                message: format!("data.tar: path {raw:?} {e}"),
            })?;
            if !p.is_empty() {
                out.push(p);
            }
        }
        Ok(out)
    }
}

impl Client {
    /// Downloads `pkg`'s `.deb` into the cache (or finds it there),
    /// verifies its size and SHA256 against the `Packages` entry, and opens
    /// it. A mismatching download is refused and not cached.
    pub fn deb(&self, pkg: &Package) -> Result<DebArchive> {
        let url = format!("{}/{}", self.base_uri(), pkg.filename);
        let path = self.fetch_verified(&url, &pkg.sha256, Some(pkg.size))?;
        DebArchive::open(&path)
    }
}
