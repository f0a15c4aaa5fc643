//! The layer tree: the files of several `data.tar`s (and of `files:`,
//! `users:`, built binaries, ...) merged into one file system tree in
//! memory, then written as one reproducible tar.
//!
//! Merging follows dpkg: a later package's file replaces an earlier one's
//! at the same path, a directory over a directory keeps the first one's
//! metadata. Paths are kept in [`linuxkit_base::path`]'s clean form
//! (`usr/bin`), so a tar entry that climbs out of the root with `..` is
//! refused as it is read. The tar is written in path order with hard links
//! last and every mtime fixed, so the same inputs give the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::rc::Rc;

use linuxkit_base::path::{normalize, normalize_or_root};
use linuxkit_rootfs::{DEFAULT_MTIME, Entry, EntryKind, EntrySink};

use crate::debian::DebArchive;
use crate::error::BuildError;
use crate::filter::PathPatterns;

/// One file system object of a [`LayerTree`], with its content.
#[derive(Debug, Clone)]
struct Item {
    entry: Entry,
    /// File content; for a hard link, the content of its target when the
    /// link was added (shared, so the link can tell whether the target was
    /// replaced since).
    data: Rc<Vec<u8>>,
}

/// The files of several `data.tar`s merged into one file system tree, and
/// written as one reproducible tar.
///
/// Held in memory: fine for the small images this builds; a large package
/// set needs a spill-to-disk map.
#[derive(Debug, Default)]
pub struct LayerTree {
    items: BTreeMap<String, Item>,
}

impl LayerTree {
    /// An empty layer.
    pub fn new() -> LayerTree {
        LayerTree::default()
    }

    /// Adds the files of `deb`'s `data.tar`; `label` names it in errors.
    pub fn add_deb(&mut self, label: &str, deb: &DebArchive) -> Result<(), BuildError> {
        let what = format!("{label} ({})", deb.path().display());
        self.add_tar(&what, deb.data()?)
    }

    /// Adds the entries of a tar archive. Later entries replace earlier ones
    /// at the same path, except that a directory over a directory keeps the
    /// first one's metadata (as dpkg does).
    pub fn add_tar<R: Read>(
        &mut self,
        what: &str,
        archive: tar::Archive<R>,
    ) -> Result<(), BuildError> {
        self.add_entries(what, archive, false)
    }

    /// Adds an OCI image layer (uncompressed) on top of the tree, as a
    /// container runtime stacks layers: its whiteouts (`.wh.NAME`) remove
    /// `NAME` and everything under it, an opaque marker (`.wh..wh..opq`)
    /// removes every earlier child of its directory, and a directory's
    /// metadata is the later layer's. Whiteouts never hide the layer's own
    /// entries and are not kept.
    pub fn add_layer(&mut self, what: &str, layer: &[u8]) -> Result<(), BuildError> {
        let err = |message: String| BuildError::Layer {
            what: what.to_owned(),
            message,
        };
        let mut archive = tar::Archive::new(layer);
        let mut hidden = Vec::new();
        for entry in archive.entries().map_err(|e| err(e.to_string()))? {
            let entry = entry.map_err(|e| err(e.to_string()))?;
            let raw = entry.path().map_err(|e| err(e.to_string()))?;
            let raw = raw.to_string_lossy();
            let path =
                normalize_or_root(&raw).map_err(|e| err(format!("unsafe path {raw:?} ({e})")))?;
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            if name == ".wh..wh..opq" {
                hidden.push((dir.to_string(), true));
            } else if let Some(n) = name.strip_prefix(".wh.")
                && !n.starts_with(".wh.")
            {
                let target = if dir.is_empty() {
                    n.to_string()
                } else {
                    format!("{dir}/{n}")
                };
                hidden.push((target, false));
            }
        }
        for (path, children_only) in hidden {
            let under = if path.is_empty() {
                String::new()
            } else {
                format!("{path}/")
            };
            self.items
                .retain(|p, _| !(p.starts_with(&under) || (!children_only && *p == path)));
        }
        self.add_entries(what, tar::Archive::new(layer), true)
    }

    fn add_entries<R: Read>(
        &mut self,
        what: &str,
        mut archive: tar::Archive<R>,
        oci: bool,
    ) -> Result<(), BuildError> {
        let err = |message: String| BuildError::Layer {
            what: what.to_owned(),
            message,
        };
        for entry in archive.entries().map_err(|e| err(e.to_string()))? {
            let mut entry = entry.map_err(|e| err(e.to_string()))?;
            let raw = entry.path().map_err(|e| err(e.to_string()))?;
            let raw = raw.to_string_lossy();
            let path =
                normalize_or_root(&raw).map_err(|e| err(format!("unsafe path {raw:?} ({e})")))?;
            if path.is_empty() {
                continue; // the root directory
            }
            if oci
                && path
                    .rsplit('/')
                    .next()
                    .is_some_and(|n| n.starts_with(".wh."))
            {
                continue; // applied by add_layer
            }
            let h = entry.header();
            let mode = h.mode().map_err(|e| err(e.to_string()))? & 0o7777;
            let uid = h.uid().map_err(|e| err(e.to_string()))? as u32;
            let gid = h.gid().map_err(|e| err(e.to_string()))? as u32;
            let link = || -> Result<String, BuildError> {
                Ok(entry
                    .link_name()
                    .map_err(|e| err(e.to_string()))?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default())
            };
            let device = || -> Result<(u32, u32), BuildError> {
                let major = h.device_major().map_err(|e| err(e.to_string()))?;
                let minor = h.device_minor().map_err(|e| err(e.to_string()))?;
                Ok((major.unwrap_or(0), minor.unwrap_or(0)))
            };
            let mut data = Rc::new(Vec::new());
            let kind = match h.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                tar::EntryType::Directory => EntryKind::Dir,
                tar::EntryType::Symlink => EntryKind::Symlink { target: link()? },
                tar::EntryType::Link => {
                    let raw = link()?;
                    let target = normalize(&raw).map_err(|e| {
                        err(format!("hard link {path}: unsafe target {raw:?} ({e})"))
                    })?;
                    match self.items.get(&target) {
                        Some(t) if t.entry.kind == EntryKind::File => {
                            data = t.data.clone();
                            let mut e = t.entry.clone();
                            e.path = path.clone();
                            e.kind = EntryKind::Hardlink { target };
                            e.size = 0;
                            self.insert(Item { entry: e, data });
                            continue;
                        }
                        _ => {
                            return Err(err(format!(
                                "hard link {path} to {target}, which is not an earlier regular file"
                            )));
                        }
                    }
                }
                tar::EntryType::Char => {
                    let (major, minor) = device()?;
                    EntryKind::Char { major, minor }
                }
                tar::EntryType::Block => {
                    let (major, minor) = device()?;
                    EntryKind::Block { major, minor }
                }
                tar::EntryType::Fifo => EntryKind::Fifo,
                // PAX/GNU metadata entries are consumed by the reader;
                // anything else is not a file system object.
                _ => continue,
            };
            let mut size = 0;
            if kind == EntryKind::File {
                let mut buf = Vec::with_capacity(entry.size() as usize);
                entry
                    .read_to_end(&mut buf)
                    .map_err(|e| err(format!("{path}: {e}")))?;
                size = buf.len() as u64;
                data = Rc::new(buf);
            }
            let item = Item {
                entry: Entry {
                    path,
                    kind,
                    mode,
                    uid,
                    gid,
                    mtime: DEFAULT_MTIME,
                    size,
                    xattrs: Vec::new(),
                    provenance: None,
                },
                data,
            };
            if oci {
                self.items.insert(item.entry.path.clone(), item);
            } else {
                self.insert(item);
            }
        }
        Ok(())
    }

    fn insert(&mut self, item: Item) {
        if item.entry.kind == EntryKind::Dir
            && self
                .items
                .get(&item.entry.path)
                .is_some_and(|old| old.entry.kind == EntryKind::Dir)
        {
            return;
        }
        self.items.insert(item.entry.path.clone(), item);
    }

    /// Every entry with its content, by path. A hard link's content is its
    /// target's.
    pub fn iter(&self) -> impl Iterator<Item = (&Entry, &[u8])> {
        self.items.values().map(|i| (&i.entry, i.data.as_slice()))
    }

    /// The entry at `path` (normalized: `etc/passwd`) and its content.
    pub fn get(&self, path: &str) -> Option<(&Entry, &[u8])> {
        self.items.get(path).map(|i| (&i.entry, i.data.as_slice()))
    }

    /// Puts `entry` (path normalized) with `data`, replacing whatever was
    /// at its path.
    pub fn put(&mut self, entry: Entry, data: Vec<u8>) {
        self.items.insert(
            entry.path.clone(),
            Item {
                entry,
                data: Rc::new(data),
            },
        );
    }

    /// Keeps only the paths under an `include` prefix (all if `include` is
    /// empty; parent directories of a prefix stay too) and not covered by
    /// an `exclude` entry (a prefix or a glob, see [`PathPatterns`]).
    pub fn keep_paths(&mut self, include: &PathPatterns, exclude: &PathPatterns) {
        self.items.retain(|p, _| {
            !exclude.covers(p)
                && (include.is_empty() || include.covers(p) || include.is_parent_of_prefix(p))
        });
    }

    /// The paths in the layer (before exclusion), sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.items.keys().map(String::as_str)
    }

    /// The layer as an uncompressed tar: missing parent directories are
    /// added (0755, root), all other entries come in path order, then hard
    /// links. A hard link whose target was excluded or replaced becomes a
    /// copy of the content it linked to.
    pub fn to_tar(&self) -> Result<Vec<u8>, BuildError> {
        let kept: Vec<&Item> = self.items.values().collect();
        let mut parents = BTreeSet::new();
        for i in &kept {
            let mut p = i.entry.path.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                if !self.items.contains_key(parent) {
                    parents.insert(parent.to_owned());
                }
                p = parent;
            }
        }
        let mut normal: BTreeMap<&str, Item> = BTreeMap::new();
        let mut links = Vec::new();
        for p in &parents {
            normal.insert(
                p,
                Item {
                    entry: Entry::dir(p.clone()),
                    data: Rc::default(),
                },
            );
        }
        for i in kept {
            match &i.entry.kind {
                EntryKind::Hardlink { target } => {
                    let intact = self
                        .items
                        .get(target)
                        .is_some_and(|t| Rc::ptr_eq(&t.data, &i.data));
                    if intact {
                        links.push(i.clone());
                    } else {
                        let mut e = i.entry.clone();
                        e.kind = EntryKind::File;
                        e.size = i.data.len() as u64;
                        normal.insert(
                            &i.entry.path,
                            Item {
                                entry: e,
                                data: i.data.clone(),
                            },
                        );
                    }
                }
                _ => {
                    normal.insert(&i.entry.path, i.clone());
                }
            }
        }
        let mut w = linuxkit_output::TarWriter::new(Vec::new());
        let tar_err = |e: linuxkit_rootfs::Error| BuildError::Layer {
            what: "layer".into(),
            message: e.to_string(),
        };
        for i in normal.values().chain(&links) {
            let mut data: &[u8] = if i.entry.kind == EntryKind::File {
                &i.data
            } else {
                &[]
            };
            w.add(&i.entry, &mut data).map_err(tar_err)?;
        }
        Ok(w.finish().expect("writing to memory"))
    }
}
