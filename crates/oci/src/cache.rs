//! The local image cache: an OCI image layout, as the reference keeps it.
//!
//! ```text
//! CACHE/oci-layout            {"imageLayoutVersion": "1.0.0"}
//! CACHE/index.json            one descriptor per image, named by the
//!                             org.opencontainers.image.ref.name annotation
//!                             (the canonical reference, docker.io/library/x:tag)
//! CACHE/blobs/sha256/HEX      manifests, indexes, configs, layers
//! CACHE/.lock                 flock(2) held while index.json is rewritten
//! CACHE/.gc.lock              shared while a run reads or writes (pull,
//!                             push, import, export, build, pkg build),
//!                             exclusive while deleting blobs
//! CACHE/.tmp/                 blobs being written, scratch directories
//!                             (ours; other tools ignore it)
//! ```
//!
//! Crash safety comes from ordering, not from repair: a blob is written to
//! `.tmp/`, hashed while written, checked against its digest, synced and
//! renamed into `blobs/` (atomic); `index.json` is rewritten (temp + rename,
//! under the lock) only after every blob of the image is in place. A run
//! killed at any point therefore leaves either the old or the new
//! `index.json`, each naming only complete images, plus at worst some stray
//! temporary files or unreferenced blobs, which [`Cache::gc`] removes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{Error, Result, io};
use crate::reference::ImageRef;
use crate::types::{Descriptor, Index, Manifest, Platform, Probe, media_type};

/// The annotation that names an image in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The image cache: an OCI image layout on disk (`index.json`, `blobs/`)
/// that pulls add to and builds read from.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// Holds the cache's lock until dropped. Needed to change `index.json` or
/// delete blobs; reading and adding blobs need no lock.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

/// An image resolved in the cache for one platform, with every blob present.
#[derive(Debug, Clone)]
pub struct CachedImage {
    /// The canonical name it is cached under.
    pub name: String,
    /// What `index.json` points at (an index or a manifest).
    pub top: Descriptor,
    /// The platform manifest's digest.
    pub manifest_digest: Digest,
    /// The platform manifest, parsed.
    pub manifest: Manifest,
    /// The raw image config (OCI or Docker).
    pub config: Vec<u8>,
}

/// An image as an OCI layout of it holds it: what its name points at and
/// the manifests selected for some platforms, all with their blobs in the
/// cache.
#[derive(Debug, Clone)]
pub struct ImageTree {
    /// The canonical name.
    pub name: String,
    /// What the name points at (an index or a manifest).
    pub top: Descriptor,
    /// Its bytes as served.
    pub top_bytes: Vec<u8>,
    /// The selected manifests, in the index's order: descriptor, bytes,
    /// parsed.
    pub manifests: Vec<(Descriptor, Vec<u8>, Manifest)>,
}

impl Cache {
    /// Opens (creating if needed) the cache at `root`.
    pub fn open(root: &Path) -> Result<Cache> {
        let cache = Cache {
            root: root.to_path_buf(),
        };
        fs::create_dir_all(cache.blobs_dir()).map_err(io("cannot create the cache at", root))?;
        fs::create_dir_all(cache.temp_dir()).map_err(io("cannot create", cache.temp_dir()))?;
        let layout = root.join("oci-layout");
        match fs::read(&layout) {
            Ok(bytes) => {
                let v: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| Error::Cache {
                        path: root.to_path_buf(),
                        reason: format!("oci-layout is not JSON ({e})"),
                    })?;
                if v.get("imageLayoutVersion")
                    .and_then(|v| v.as_str())
                    .is_none()
                {
                    return Err(Error::Cache {
                        path: root.to_path_buf(),
                        reason: "oci-layout has no imageLayoutVersion".into(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Written through `.tmp/`, so pinned like any other write
                // (see `remove_abandoned`); as is index.json below.
                let _pin = cache.pin()?;
                cache.write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            }
            Err(e) => return Err(io("cannot read", &layout)(e)),
        }
        if !cache.index_path().exists() {
            let _pin = cache.pin()?;
            let _lock = cache.lock()?;
            if !cache.index_path().exists() {
                cache.write_index(&Index::new(Vec::new()))?;
            }
        }
        Ok(cache)
    }

    /// The cache's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn temp_dir(&self) -> PathBuf {
        self.root.join(".tmp")
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Takes the cache's exclusive lock, waiting for another process that
    /// holds it.
    pub fn lock(&self) -> Result<CacheLock> {
        self.flock(".lock", false)
    }

    /// Takes `flock(2)` on the file `name` of the cache, shared or exclusive.
    fn flock(&self, name: &str, shared: bool) -> Result<CacheLock> {
        let (path, file) = self.lock_file(name)?;
        if shared {
            file.lock_shared()
        } else {
            file.lock()
        }
        .map_err(io("cannot lock", &path))?;
        Ok(CacheLock { _file: file })
    }

    fn lock_file(&self, name: &str) -> Result<(PathBuf, File)> {
        let path = self.root.join(name);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("cannot open the cache lock", &path))?;
        Ok((path, file))
    }

    /// Takes a shared "in use" lock that [`Cache::remove`] and
    /// [`Cache::clean`] wait for (they take it exclusively before deleting
    /// blobs). Every process that writes to the cache (blobs, temporary
    /// files, scratch directories) or reads images from it holds it: pulls,
    /// pushes, imports and exports, `build` and `pkg build`. So blobs written but
    /// not yet named in `index.json`, or being read, are never collected
    /// from under them, and [`Cache::reclaim_and_pin`] can tell whether
    /// anyone is at work.
    pub fn pin(&self) -> Result<CacheLock> {
        self.flock(".gc.lock", true)
    }

    /// The exclusive side of [`Cache::pin`], for `what` (`cache rm`, ...).
    /// If another run holds the pin, says that we wait, and for whom (the
    /// pids and command lines the kernel lists as holding `.gc.lock`),
    /// before waiting: a wait with no word looks like a hang.
    fn exclusive_pin(&self, what: &str) -> Result<CacheLock> {
        if let Some(pin) = self.try_exclusive_pin()? {
            return Ok(pin);
        }
        let holders = self.pin_holders();
        let whom = if holders.is_empty() {
            "another run (its process is not visible here)".to_string()
        } else {
            holders.join(", ")
        };
        tracing::info!(
            "{what} is waiting for the runs using the cache {} to finish: {whom}",
            self.root.display()
        );
        self.flock(".gc.lock", false)
    }

    /// `pid N (command line)` of every other process holding a lock on
    /// `.gc.lock`, from `/proc/locks`; empty if none can be seen.
    fn pin_holders(&self) -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        let Ok(ino) = fs::metadata(self.root.join(".gc.lock")).map(|m| m.ino()) else {
            return Vec::new();
        };
        let locks = fs::read_to_string("/proc/locks").unwrap_or_default();
        let mut pids: Vec<u32> = locks
            .lines()
            .filter_map(|l| {
                // `1: FLOCK  ADVISORY  READ  1234 08:01:5678 0 EOF`
                let f: Vec<&str> = l.split_whitespace().collect();
                let at = f.iter().position(|w| *w == "FLOCK")?;
                let pid = f.get(at + 3)?.parse::<u32>().ok()?;
                let file_ino = f.get(at + 4)?.rsplit(':').next()?.parse::<u64>().ok()?;
                (file_ino == ino && pid != std::process::id()).then_some(pid)
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids.into_iter()
            .map(|pid| {
                let cmd = fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|b| {
                        let s: String = String::from_utf8_lossy(&b)
                            .split('\0')
                            .filter(|a| !a.is_empty())
                            .collect::<Vec<_>>()
                            .join(" ");
                        s.chars().take(160).collect::<String>()
                    })
                    .unwrap_or_default();
                if cmd.is_empty() {
                    format!("pid {pid}")
                } else {
                    format!("pid {pid} ({cmd})")
                }
            })
            .collect()
    }

    /// [`Cache::exclusive_pin`] if no other process holds the pin now.
    fn try_exclusive_pin(&self) -> Result<Option<CacheLock>> {
        let (path, file) = self.lock_file(".gc.lock")?;
        match file.try_lock() {
            Ok(()) => Ok(Some(CacheLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(io("cannot lock", &path)(e)),
        }
    }

    /// Where the blob `d` is (or would be) stored.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    /// Whether the blob `d` is stored (blobs are only stored verified).
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// The bytes of the blob `d`, whole; for manifests and configs, not
    /// layers.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        fs::read(&p).map_err(io("cannot read cached blob", p))
    }

    /// A new temporary file in the cache (same filesystem as `blobs/`, so it
    /// can be renamed into place), created exclusively (never through a
    /// planted link) under an unpredictable name. The name starts with our
    /// pid so a later [`Cache::reclaim_and_pin`] or [`Cache::gc`] can tell
    /// abandoned files from ones still being written. The caller removes it
    /// on every error path (or commits it).
    pub fn temp_file(&self) -> Result<(PathBuf, File)> {
        let dir = self.temp_dir();
        let (file, path) = tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .rand_bytes(12)
            .tempfile_in(&dir)
            .and_then(|t| t.keep().map_err(|e| e.error))
            .map_err(io("cannot create a temporary file in", &dir))?;
        Ok((path, file))
    }

    /// A new temporary directory in the cache, for work too large to keep
    /// in memory (`pkg build`'s Go build root is about a gigabyte, `build`
    /// unpacks layers). It is removed when dropped; named with our pid as
    /// [`Cache::temp_file`]'s files are, so that one left by a killed run
    /// is removed by the next [`Cache::reclaim_and_pin`] rather than
    /// filling the disk. The caller holds a [`Cache::pin`] while using it.
    pub fn scratch_dir(&self, what: &str) -> Result<tempfile::TempDir> {
        let dir = self.temp_dir();
        tempfile::Builder::new()
            .prefix(&format!("{}-{what}-", std::process::id()))
            .tempdir_in(&dir)
            .map_err(io("cannot make a temporary directory in", &dir))
    }

    /// Moves a fully written temporary file into `blobs/` if its content
    /// hashes to `expected`; otherwise, or if it cannot be synced or moved,
    /// deletes it and fails. `actual` is the digest computed while writing.
    pub fn commit_blob(
        &self,
        temp: &Path,
        file: File,
        expected: &Digest,
        actual: &Digest,
        what: &str,
    ) -> Result<()> {
        let dest = self.blob_path(expected);
        let r = if actual != expected {
            Err(Error::DigestMismatch {
                expected: expected.to_string(),
                actual: actual.to_string(),
                what: what.to_string(),
            })
        } else {
            file.sync_all()
                .map_err(io("cannot sync", temp))
                .and_then(|()| fs::rename(temp, &dest).map_err(io("cannot move blob into", &dest)))
        };
        drop(file);
        if r.is_err() {
            let _ = fs::remove_file(temp);
        }
        r
    }

    /// Stores `bytes` under their digest, which is returned.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        self.write_blob_verified(&d, bytes, "blob")?;
        Ok(d)
    }

    /// Stores `bytes`, refusing them unless they hash to `expected`.
    pub fn write_blob_verified(&self, expected: &Digest, bytes: &[u8], what: &str) -> Result<()> {
        self.write_blob_from(expected, &mut &bytes[..], what)
            .map(|_| ())
    }

    /// Streams a blob from `reader` into the cache, verifying it; returns its
    /// size. Does nothing if the blob is already cached.
    pub fn write_blob_from(
        &self,
        expected: &Digest,
        reader: &mut dyn Read,
        what: &str,
    ) -> Result<u64> {
        if self.has_blob(expected) {
            return Ok(fs::metadata(self.blob_path(expected))
                .map(|m| m.len())
                .unwrap_or(0));
        }
        let (temp, mut file) = self.temp_file()?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        let result = (|| -> Result<()> {
            loop {
                let n = reader
                    .read(&mut buf)
                    .map_err(io("cannot read blob for", &temp))?;
                if n == 0 {
                    return Ok(());
                }
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n])
                    .map_err(io("cannot write", &temp))?;
                size += n as u64;
            }
        })();
        if let Err(e) = result {
            drop(file);
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        // Removes the file itself if it fails.
        self.commit_blob(&temp, file, expected, &Digest::from_hasher(hasher), what)?;
        Ok(size)
    }

    /// Writes `bytes` to `path` atomically (temp file in the cache + rename).
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let (temp, mut file) = self.temp_file()?;
        let r = file
            .write_all(bytes)
            .and_then(|_| file.sync_all())
            .map_err(io("cannot write", &temp))
            .and_then(|_| fs::rename(&temp, path).map_err(io("cannot replace", path)));
        if r.is_err() {
            let _ = fs::remove_file(&temp);
        }
        r
    }

    /// The cache's `index.json`.
    pub fn index(&self) -> Result<Index> {
        let p = self.index_path();
        let bytes = fs::read(&p).map_err(io("cannot read", &p))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Cache {
            path: self.root.clone(),
            reason: format!("index.json is not a valid OCI index ({e})"),
        })
    }

    /// Writes `index.json`; entries are sorted by name so the file does not
    /// depend on the order of pulls. The caller holds the lock. Like the
    /// reference's (go-containerregistry's layout), it states its
    /// `mediaType`, also when rewriting one an older version wrote without.
    fn write_index(&self, index: &Index) -> Result<()> {
        let mut index = index.clone();
        index.media_type = Some(media_type::OCI_INDEX.into());
        index
            .manifests
            .sort_by(|a, b| name_of(a).cmp(&name_of(b)).then(a.digest.cmp(&b.digest)));
        let bytes = serde_json::to_vec_pretty(&index).expect("index serializes");
        self.write_atomic(&self.index_path(), &bytes)
    }

    /// Names `desc` as `name` in `index.json`, replacing what had that name.
    pub fn tag(&self, name: &str, mut desc: Descriptor) -> Result<()> {
        desc.annotations
            .insert(REF_NAME_ANNOTATION.into(), name.into());
        let _lock = self.lock()?;
        let mut index = self.index()?;
        index
            .manifests
            .retain(|d| name_of(d).as_deref() != Some(name));
        index.manifests.push(desc);
        self.write_index(&index)
    }

    /// Names as `name` what `update` makes of what the name has now (its
    /// descriptor, `None` if nothing), holding the cache's lock from the
    /// read to the write: two processes adding to one name (`pkg build`s
    /// adding platforms to one index) do not lose each other's change.
    /// `update` may write blobs; it must not take the lock (nor call
    /// [`Cache::tag`]). Returns the descriptor named.
    pub fn update_tag<E: From<Error>>(
        &self,
        name: &str,
        update: impl FnOnce(Option<Descriptor>) -> std::result::Result<Descriptor, E>,
    ) -> std::result::Result<Descriptor, E> {
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let current = index
            .manifests
            .iter()
            .find(|d| name_of(d).as_deref() == Some(name))
            .cloned();
        let desc = update(current)?;
        let mut named = desc.clone();
        named
            .annotations
            .insert(REF_NAME_ANNOTATION.into(), name.into());
        index
            .manifests
            .retain(|d| name_of(d).as_deref() != Some(name));
        index.manifests.push(named);
        self.write_index(&index)?;
        Ok(desc)
    }

    /// Every named image: (name, descriptor), sorted by name.
    pub fn images(&self) -> Result<Vec<(String, Descriptor)>> {
        let mut out: Vec<_> = self
            .index()?
            .manifests
            .into_iter()
            .filter_map(|d| name_of(&d).map(|n| (n, d)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// What `index.json` has for `image` (by canonical name; a digest
    /// reference also matches an entry with that digest, or a manifest
    /// with that digest in a cached image index).
    pub fn resolve(&self, image: &ImageRef) -> Result<Option<Descriptor>> {
        let name = image.canonical();
        let index = self.index()?;
        let top = index
            .manifests
            .iter()
            .find(|d| name_of(d).as_deref() == Some(name.as_str()))
            .or_else(|| {
                image
                    .digest()
                    .and_then(|dg| index.manifests.iter().find(|d| d.digest == dg))
            })
            .cloned();
        if top.is_some() {
            return Ok(top);
        }
        // One platform's manifest of a cached multi-platform image, by its
        // digest, as a registry serves `NAME@DIGEST` of a manifest an index
        // lists (`linuxkit build` finds each platform's boot loaders so).
        let Some(dg) = image.digest() else {
            return Ok(None);
        };
        for d in index
            .manifests
            .iter()
            .filter(|d| media_type::is_index(&d.media_type))
        {
            let digest = Digest::parse(&d.digest)?;
            if !self.has_blob(&digest) {
                continue;
            }
            let nested: Index = parse_json(&self.read_blob(&digest)?, &name, "index")?;
            if let Some(m) = nested.manifests.into_iter().find(|m| m.digest == dg) {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// Resolves `image` for `platform` with all its blobs present, or `None`
    /// if it (or some blob of it) is not cached.
    pub fn image(&self, image: &ImageRef, platform: &Platform) -> Result<Option<CachedImage>> {
        let Some(top) = self.resolve(image)? else {
            return Ok(None);
        };
        let name = image.canonical();
        let Some(manifest_desc) = self.platform_manifest(&name, &top, platform)? else {
            return Ok(None);
        };
        let manifest_digest = Digest::parse(&manifest_desc.digest)?;
        if !self.has_blob(&manifest_digest) {
            return Ok(None);
        }
        let manifest: Manifest = parse_json(&self.read_blob(&manifest_digest)?, &name, "manifest")?;
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if !self.has_blob(&Digest::parse(&d.digest)?) {
                return Ok(None);
            }
        }
        let config = self.read_blob(&Digest::parse(&manifest.config.digest)?)?;
        // A single-platform image says its platform in its config; one for
        // another platform does not satisfy this request.
        if let Ok(c) = serde_json::from_slice::<serde_json::Value>(&config) {
            let field = |k: &str| c.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
            if let (Some(os), Some(arch)) = (field("os"), field("architecture")) {
                let p = Platform {
                    os: os.to_string(),
                    architecture: arch.to_string(),
                    variant: field("variant").map(str::to_string),
                };
                if !platform.matches(&p) {
                    return Ok(None);
                }
            }
        }
        Ok(Some(CachedImage {
            name,
            top,
            manifest_digest,
            manifest,
            config,
        }))
    }

    /// `image` with the manifests an OCI layout for `platforms` holds (see
    /// [`layout_manifests`]; a single-platform image is its one manifest),
    /// or `None` if it or a blob of a selected manifest is not cached.
    pub fn tree(&self, image: &ImageRef, platforms: &[Platform]) -> Result<Option<ImageTree>> {
        let Some(top) = self.resolve(image)? else {
            return Ok(None);
        };
        let name = image.canonical();
        let digest = Digest::parse(&top.digest)?;
        if !self.has_blob(&digest) {
            return Ok(None);
        }
        let top_bytes = self.read_blob(&digest)?;
        let probe: Probe = parse_json(&top_bytes, &name, "index")?;
        let descs: Vec<Descriptor> = if media_type::is_index(probe.kind()) {
            let index: Index = parse_json(&top_bytes, &name, "index")?;
            layout_manifests(&name, &index, platforms)?
                .into_iter()
                .cloned()
                .collect()
        } else {
            vec![top.clone()]
        };
        let mut manifests = Vec::new();
        for d in descs {
            let md = Digest::parse(&d.digest)?;
            if !self.has_blob(&md) {
                return Ok(None);
            }
            let bytes = self.read_blob(&md)?;
            let m: Manifest = parse_json(&bytes, &name, "manifest")?;
            for b in std::iter::once(&m.config).chain(&m.layers) {
                if !self.has_blob(&Digest::parse(&b.digest)?) {
                    return Ok(None);
                }
            }
            manifests.push((d, bytes, m));
        }
        Ok(Some(ImageTree {
            name,
            top,
            top_bytes,
            manifests,
        }))
    }

    /// The manifest descriptor for `platform` under `top`: `top` itself if it
    /// is a manifest, else the matching entry of the index. An index whose
    /// blob is missing yields `None`; one without the platform is an error.
    fn platform_manifest(
        &self,
        name: &str,
        top: &Descriptor,
        platform: &Platform,
    ) -> Result<Option<Descriptor>> {
        if media_type::is_manifest(&top.media_type) {
            return Ok(Some(top.clone()));
        }
        let digest = Digest::parse(&top.digest)?;
        if !self.has_blob(&digest) {
            return Ok(None);
        }
        let bytes = self.read_blob(&digest)?;
        let probe: Probe = parse_json(&bytes, name, "index")?;
        if !media_type::is_index(probe.kind()) {
            return Ok(Some(top.clone()));
        }
        let index: Index = parse_json(&bytes, name, "index")?;
        select_platform(name, &index, platform).map(Some)
    }

    /// Removes the named images, then their blobs that no other image uses.
    /// Returns the names that were not in the cache.
    pub fn remove(&self, names: &[String]) -> Result<Vec<String>> {
        let _pin = self.exclusive_pin("removing images")?;
        let lock = self.lock()?;
        let mut index = self.index()?;
        let mut missing = Vec::new();
        for n in names {
            let before = index.manifests.len();
            index
                .manifests
                .retain(|d| name_of(d).as_deref() != Some(n.as_str()));
            if index.manifests.len() == before {
                missing.push(n.clone());
            }
        }
        self.write_index(&index)?;
        self.gc(&lock)?;
        Ok(missing)
    }

    /// Empties the cache (the reference removes the directory), including
    /// the build's cache of compressed initrd parts (`.segments`).
    pub fn clean(&self) -> Result<()> {
        let _pin = self.exclusive_pin("emptying the cache")?;
        let lock = self.lock()?;
        let segments = self.root.join(".segments");
        if segments.exists() {
            fs::remove_dir_all(&segments).map_err(io("cannot remove", &segments))?;
        }
        self.write_index(&Index::new(Vec::new()))?;
        self.gc(&lock)?;
        Ok(())
    }

    /// Deletes blobs no image in `index.json` reaches, and temporary files
    /// left by processes that no longer run. Returns the number of files
    /// removed.
    pub fn gc(&self, _lock: &CacheLock) -> Result<usize> {
        let mut keep = BTreeSet::new();
        for d in self.index()?.manifests {
            self.mark(&d, &mut keep, 0)?;
        }
        let mut removed = 0;
        let dir = self.blobs_dir();
        for entry in fs::read_dir(&dir).map_err(io("cannot list", &dir))? {
            let entry = entry.map_err(io("cannot list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                fs::remove_file(entry.path()).map_err(io("cannot remove", entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed + self.remove_dead_temps()?)
    }

    /// What every run that uses the cache takes first: the scratch that
    /// killed runs left is reclaimed (`remove_abandoned`), so that
    /// a killed Go build's gigabyte does not stay until the next `cache
    /// clean`; then the cache is pinned ([`Cache::pin`]) for as long as the
    /// returned lock lives. `build` and `pkg build` start with it.
    pub fn reclaim_and_pin(&self) -> Result<CacheLock> {
        self.remove_abandoned()?;
        self.pin()
    }

    /// Removes what killed runs left in the cache (temporary files, scratch
    /// directories: see `remove_dead_temps`), unless another process is
    /// using the cache now; returns how many entries it removed.
    fn remove_abandoned(&self) -> Result<usize> {
        // Every process that writes to the cache pins it first. If the pin
        // can be had exclusively, nobody is writing: an entry whose process
        // is gone is surely abandoned, even one made in another pid
        // namespace (whose pid is meaningless here). If not, a writer may
        // be at work, and its entries are left for a later run.
        let Some(_pin) = self.try_exclusive_pin()? else {
            return Ok(0);
        };
        let removed = self.remove_dead_temps()?;
        if removed > 0 {
            let what = if removed == 1 { "entry" } else { "entries" };
            tracing::info!(
                "removed {removed} temporary {what} left in the cache {} by killed runs",
                self.root.display()
            );
        }
        Ok(removed)
    }

    /// Removes the scratch that runs whose process is gone left behind:
    /// every entry of `.tmp/`, the initrd builder's `.segments/.initrd-PID-*`
    /// and (from versions before scratch moved to `.tmp/`) `.linuxkit-build-*`
    /// in the root. An entry named without a pid counts as gone: for
    /// callers holding the exclusive pin (or, in `gc`'s tests, knowing
    /// nobody else writes).
    fn remove_dead_temps(&self) -> Result<usize> {
        let mut removed = remove_dead_in(&self.temp_dir(), |n| Some(n))?;
        let segments = self.root.join(".segments");
        if segments.is_dir() {
            removed += remove_dead_in(&segments, |n| n.strip_prefix(".initrd-"))?;
        }
        removed += remove_dead_in(&self.root, |n| n.strip_prefix(".linuxkit-build-"))?;
        Ok(removed)
    }

    fn mark(&self, d: &Descriptor, keep: &mut BTreeSet<String>, depth: usize) -> Result<()> {
        let Ok(digest) = Digest::parse(&d.digest) else {
            return Ok(());
        };
        if !keep.insert(digest.hex().to_string()) || depth > 8 || !self.has_blob(&digest) {
            return Ok(());
        }
        if media_type::is_index(&d.media_type) || media_type::is_manifest(&d.media_type) {
            let bytes = self.read_blob(&digest)?;
            let Ok(probe) = serde_json::from_slice::<Probe>(&bytes) else {
                return Ok(());
            };
            if media_type::is_index(probe.kind()) {
                if let Ok(index) = serde_json::from_slice::<Index>(&bytes) {
                    for m in &index.manifests {
                        self.mark(m, keep, depth + 1)?;
                    }
                }
            } else if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
                for c in std::iter::once(&m.config).chain(&m.layers) {
                    if let Ok(cd) = Digest::parse(&c.digest) {
                        keep.insert(cd.hex().to_string());
                    }
                }
            }
        }
        Ok(())
    }
}

/// The name annotation of an `index.json` entry.
fn name_of(d: &Descriptor) -> Option<String> {
    d.annotations.get(REF_NAME_ANNOTATION).cloned()
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    image: &str,
    what: &'static str,
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Json {
        image: image.to_string(),
        what,
        reason: e.to_string(),
    })
}

/// The image manifests of `index` an OCI layout for `platforms` holds, in
/// the index's order: those for one of `platforms` (all when empty), as the
/// reference's `IndexSource.OCITarReader` selects them. A platform no entry
/// is for is an error, as in the reference's pull.
pub(crate) fn layout_manifests<'i>(
    image: &str,
    index: &'i Index,
    platforms: &[Platform],
) -> Result<Vec<&'i Descriptor>> {
    let selected = |m: &&Descriptor| {
        media_type::is_manifest(&m.media_type)
            && (platforms.is_empty()
                || m.platform
                    .as_ref()
                    .is_some_and(|p| platforms.iter().any(|w| w.selects(p))))
    };
    for w in platforms {
        let found = index
            .manifests
            .iter()
            .any(|m| m.platform.as_ref().is_some_and(|p| w.selects(p)));
        if !found {
            // The same message as a pull for a missing platform.
            let available: BTreeSet<String> = index
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref().map(|p| p.to_string()))
                .collect();
            return Err(Error::NoPlatform {
                image: image.to_string(),
                platform: w.to_string(),
                available: available.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
    }
    Ok(index.manifests.iter().filter(selected).collect())
}

/// The index entry for `platform`, or an error listing what the image has.
pub(crate) fn select_platform(
    image: &str,
    index: &Index,
    platform: &Platform,
) -> Result<Descriptor> {
    index
        .manifests
        .iter()
        .find(|m| m.platform.as_ref().is_some_and(|p| platform.matches(p)))
        .cloned()
        .ok_or_else(|| {
            let available: BTreeMap<String, ()> = index
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref().map(|p| (p.to_string(), ())))
                .collect();
            Error::NoPlatform {
                image: image.to_string(),
                platform: platform.to_string(),
                available: available.into_keys().collect::<Vec<_>>().join(", "),
            }
        })
}

/// Removes the entries of `dir` that `owned` names (it returns what
/// follows a prefix: `PID-...`) whose pid is no running process's; returns
/// how many it removed. One it cannot remove is said and left.
fn remove_dead_in(dir: &Path, owned: impl Fn(&str) -> Option<&str>) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(io("cannot list", dir))? {
        let entry = entry.map_err(io("cannot list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = owned(&name) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid
            .is_some_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
        if alive {
            continue;
        }
        let path = entry.path();
        let gone = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        match gone {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Caches a one-layer single-platform image and names it.
    fn single(cache: &Cache, name: &str, arch: &str) -> ImageRef {
        let layer = cache.write_blob(b"not really a tar").unwrap();
        let config = format!(r#"{{"os":"linux","architecture":"{arch}","config":{{}}}}"#);
        let config_d = cache.write_blob(config.as_bytes()).unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_MANIFEST,
            "config": {"mediaType": media_type::OCI_CONFIG, "digest": config_d.as_str(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.as_str(), "size": 16}],
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let md = cache.write_blob(&bytes).unwrap();
        cache
            .tag(
                name,
                Descriptor {
                    media_type: media_type::OCI_MANIFEST.into(),
                    digest: md.to_string(),
                    size: bytes.len() as u64,
                    platform: None,
                    annotations: BTreeMap::new(),
                },
            )
            .unwrap();
        ImageRef::parse(name).unwrap()
    }

    #[test]
    fn update_tag_sees_what_the_name_has_and_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let name = "docker.io/library/a:1";
        let first = single(&cache, name, "amd64");
        let before = cache.resolve(&first).unwrap().unwrap();
        let blob = cache.write_blob(b"{}").unwrap();
        let new = Descriptor {
            media_type: media_type::OCI_INDEX.into(),
            digest: blob.to_string(),
            size: 2,
            platform: None,
            annotations: BTreeMap::new(),
        };
        let got = cache
            .update_tag(name, |current| {
                assert_eq!(current.as_ref(), Some(&before));
                // Blobs may be written meanwhile.
                cache.write_blob(b"more")?;
                Ok::<_, Error>(new.clone())
            })
            .unwrap();
        assert_eq!(got, new, "returned as made, without the name");
        let after = cache.resolve(&first).unwrap().unwrap();
        assert_eq!(after.digest, new.digest);
        assert_eq!(cache.images().unwrap().len(), 1);
        // A failed update changes nothing.
        let e = cache.update_tag(name, |_| {
            Err::<Descriptor, _>(Error::NotCached { image: "x".into() })
        });
        assert!(e.is_err());
        assert_eq!(cache.resolve(&first).unwrap().unwrap().digest, new.digest);
        // A new name: nothing there yet.
        cache
            .update_tag("docker.io/library/b:1", |current| {
                assert!(current.is_none());
                Ok::<_, Error>(new.clone())
            })
            .unwrap();
        assert_eq!(cache.images().unwrap().len(), 2);
    }

    #[test]
    fn a_killed_runs_scratch_directory_is_reclaimed_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let ours = cache.scratch_dir("go-build").unwrap();
        assert!(ours.path().starts_with(dir.path().join(".tmp")));
        fs::create_dir_all(ours.path().join("root/usr/bin")).unwrap();
        // What a killed run leaves: a tree and a file under a pid that no
        // process has (pids stay below 2^22).
        let dead = dir.path().join(".tmp/4194305-go-build-abc");
        fs::create_dir_all(dead.join("root/usr/lib")).unwrap();
        fs::write(dead.join("root/usr/lib/big"), b"x").unwrap();
        fs::write(dir.path().join(".tmp/4194305-7-99"), b"x").unwrap();
        // The initrd builder's scratch in `.segments` (a dead one and ours)
        // and an older version's build scratch in the root.
        let dead_initrd = dir.path().join(".segments/.initrd-4194305-xyz");
        fs::create_dir_all(dead_initrd.join("part")).unwrap();
        let our_initrd = dir
            .path()
            .join(format!(".segments/.initrd-{}-xyz", std::process::id()));
        fs::create_dir_all(&our_initrd).unwrap();
        let legacy = dir.path().join(".linuxkit-build-AbC123");
        fs::create_dir_all(legacy.join("layers")).unwrap();

        // While anyone holds the pin (a writer may be at work, perhaps in
        // another pid namespace), nothing is removed.
        let pin = cache.pin().unwrap();
        assert_eq!(cache.remove_abandoned().unwrap(), 0);
        assert!(dead.join("root/usr/lib/big").exists());
        drop(pin);
        assert_eq!(cache.remove_abandoned().unwrap(), 4);
        assert!(!dead.exists() && !dead_initrd.exists() && !legacy.exists());
        assert!(our_initrd.exists());
        assert!(
            ours.path().join("root/usr/bin").is_dir(),
            "a live run's directory was removed"
        );
        let path = ours.path().to_path_buf();
        drop(ours);
        assert!(!path.exists(), "a scratch directory outlived its owner");
        assert_eq!(fs::read_dir(dir.path().join(".tmp")).unwrap().count(), 0);
    }

    #[test]
    fn a_single_platform_image_only_serves_its_platform() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let r = single(&cache, "example.com/a:1", "arm64");
        assert!(
            cache
                .image(&r, &Platform::linux(linuxkit_base::Arch::Arm64))
                .unwrap()
                .is_some()
        );
        assert!(
            cache
                .image(&r, &Platform::linux(linuxkit_base::Arch::Amd64))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn removal_waits_for_a_pinned_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let r = single(&cache, "example.com/a:1", "amd64");
        let pin = cache.pin().unwrap();
        let c2 = cache.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            c2.remove(&["example.com/a:1".to_string()]).unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "remove must wait while the cache is pinned"
        );
        assert!(
            cache
                .image(&r, &Platform::linux(linuxkit_base::Arch::Amd64))
                .unwrap()
                .is_some()
        );
        drop(pin);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        t.join().unwrap();
        assert!(
            cache
                .image(&r, &Platform::linux(linuxkit_base::Arch::Amd64))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }
}
