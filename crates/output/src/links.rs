//! Duplicate files stored once: which regular files of the initrd become
//! hard links, decided for the whole initrd before any part is written.
//!
//! The kernel's initramfs unpacker links an entry with nlink ≥ 2 to the
//! first earlier entry with the same inode and device numbers (and file
//! type), whose entry carried the content; later names carry none. It
//! forgets those inodes at each `TRAILER!!!`, so the parts of an initrd
//! are segments of one archive with a single trailer at the end, and an
//! inode number means the same file in every segment.
//!
//! Every part is first read once into a [`Manifest`] (its paths; its
//! regular files with their size and, from [`DEDUP_MIN`] bytes, a hash of
//! their content and metadata; its hard links), cached for keyed parts.
//! [`plan`] then walks the manifests in archive order and gives every file
//! and hard link a [`LinkAction`]: identical files share one inode whose
//! content goes with the first name. A part's segment depends only on its
//! own entries and its plan, so segments are cached by (key, plan) and a
//! warm build still only concatenates files.
//!
//! Inode numbers of linked files come from a hash of what they are (the
//! content hash, or the part's key and the file's position for hard links
//! of the image itself): 64 bits with the minor device number, the same in
//! every build whatever else changed, and in practice never colliding.
//! Files nothing links to get nlink 1, which the kernel never remembers
//! (its table costs 4 KiB per remembered inode until the trailer).
//!
//! A file that an earlier part already wrote at the same path, identical
//! and not replaced since (the init images each bringing the same libc),
//! is left out. Otherwise only files whose path appears once in the whole
//! initrd are merged with other parts' files: the kernel writes a later
//! regular file over an existing one in place, which would change every
//! name of a shared inode, and a replaced first name would make later links
//! point at the new file.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};

use linuxkit_rootfs::{Entry, EntryKind, EntrySink};
use sha2::{Digest, Sha256};

use crate::cpio::{LinkAction, LinkPlan};

/// Files smaller than this are never merged with other parts' files: the
/// saving is at most a few blocks, and small files (`/etc/hosts`, ...) are
/// the ones written in place at run time.
pub const DEDUP_MIN: u64 = 4096;

/// Bump when what a manifest records changes (and when [`DEDUP_MIN`] does).
pub(crate) const MANIFEST_FORMAT: &str = "manifest-2";

/// One regular file or hard link entry of a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileRec {
    File {
        /// Index into [`Manifest::paths`].
        path: u32,
        size: u64,
        /// Hash of content, mode, owner and time, from [`DEDUP_MIN`] bytes.
        content: Option<[u8; 16]>,
    },
    /// A hard link of the image to an earlier file of the part (an index
    /// into [`Manifest::files`]).
    Link { path: u32, target: u32 },
}

/// What [`plan`] needs to know of a part, in the order the part produces
/// its entries (`boot/` left out, as the initrd leaves it out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// Every entry's path (without a trailing `/`).
    pub paths: Vec<String>,
    pub files: Vec<FileRec>,
    /// Indexes into [`Manifest::paths`] of the symbolic links.
    pub links: Vec<u32>,
}

impl Manifest {
    pub fn file_bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|f| match f {
                FileRec::File { size, .. } => *size,
                FileRec::Link { .. } => 0,
            })
            .sum()
    }

    /// `(u32 count, (u32 len, path)*)`, then `(u32 count, record*)` with a
    /// record `0 u32 path u64 size u8 has [16]` or `1 u32 path u32 target`,
    /// then `(u32 count, u32 path*)` of the links.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&(self.paths.len() as u32).to_le_bytes())?;
        for p in &self.paths {
            w.write_all(&(p.len() as u32).to_le_bytes())?;
            w.write_all(p.as_bytes())?;
        }
        w.write_all(&(self.files.len() as u32).to_le_bytes())?;
        for f in &self.files {
            match f {
                FileRec::File {
                    path,
                    size,
                    content,
                } => {
                    w.write_all(&[0])?;
                    w.write_all(&path.to_le_bytes())?;
                    w.write_all(&size.to_le_bytes())?;
                    w.write_all(&[u8::from(content.is_some())])?;
                    w.write_all(&content.unwrap_or_default())?;
                }
                FileRec::Link { path, target } => {
                    w.write_all(&[1])?;
                    w.write_all(&path.to_le_bytes())?;
                    w.write_all(&target.to_le_bytes())?;
                }
            }
        }
        w.write_all(&(self.links.len() as u32).to_le_bytes())?;
        for l in &self.links {
            w.write_all(&l.to_le_bytes())?;
        }
        Ok(())
    }

    pub fn read_from(r: &mut impl Read) -> io::Result<Manifest> {
        fn u32_(r: &mut impl Read) -> io::Result<u32> {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)?;
            Ok(u32::from_le_bytes(b))
        }
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        let n = u32_(r)? as usize;
        let mut paths = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let mut b = vec![0u8; u32_(r)? as usize];
            r.read_exact(&mut b)?;
            paths.push(String::from_utf8(b).map_err(|_| bad("a path is not UTF-8"))?);
        }
        let n = u32_(r)? as usize;
        let mut files = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let mut tag = [0u8; 1];
            r.read_exact(&mut tag)?;
            let path = u32_(r)?;
            if path as usize >= paths.len() {
                return Err(bad("a path index is out of range"));
            }
            files.push(match tag[0] {
                0 => {
                    let mut b = [0u8; 8];
                    r.read_exact(&mut b)?;
                    let mut has = [0u8; 1];
                    r.read_exact(&mut has)?;
                    let mut c = [0u8; 16];
                    r.read_exact(&mut c)?;
                    FileRec::File {
                        path,
                        size: u64::from_le_bytes(b),
                        content: (has[0] == 1).then_some(c),
                    }
                }
                1 => {
                    let target = u32_(r)?;
                    if target as usize >= files.len() {
                        return Err(bad("a hard link target is out of range"));
                    }
                    FileRec::Link { path, target }
                }
                _ => return Err(bad("unknown record")),
            });
        }
        let n = u32_(r)? as usize;
        let mut links = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let l = u32_(r)?;
            if l as usize >= paths.len() {
                return Err(bad("a link's path index is out of range"));
            }
            links.push(l);
        }
        Ok(Manifest {
            paths,
            files,
            links,
        })
    }
}

/// Records a part's [`Manifest`] from its entries.
#[derive(Default)]
pub(crate) struct ManifestSink {
    pub manifest: Manifest,
    /// Path → index of its latest regular file record.
    files_by_path: HashMap<String, u32>,
}

impl ManifestSink {
    /// The hasher of a file's identity (mode, owner, time, size, then the
    /// content, which the caller feeds it), for a regular file from
    /// [`DEDUP_MIN`] bytes outside `boot/`; `None` for any other entry.
    pub(crate) fn content_hasher(e: &Entry) -> Option<Sha256> {
        if e.kind != EntryKind::File || e.size < DEDUP_MIN || is_boot(&e.path) {
            return None;
        }
        let mut h = Sha256::new();
        h.update(format!(
            "{:o} {} {} {} {}\n",
            e.mode & 0o7777,
            e.uid,
            e.gid,
            e.mtime,
            e.size
        ));
        Some(h)
    }

    /// The recorded digest of a [`ManifestSink::content_hasher`] fed the
    /// whole content.
    pub(crate) fn content_digest(h: Sha256) -> [u8; 16] {
        let d = h.finalize();
        let mut c = [0u8; 16];
        c.copy_from_slice(&d[..16]);
        c
    }

    /// Records `e`, whose content digest (when it has one, see
    /// [`ManifestSink::content_hasher`]) the caller computed.
    pub(crate) fn record(
        &mut self,
        e: &Entry,
        content: Option<[u8; 16]>,
    ) -> linuxkit_rootfs::Result<()> {
        if is_boot(&e.path) {
            return Ok(());
        }
        let name = e.path.trim_end_matches('/');
        let path = self.manifest.paths.len() as u32;
        self.manifest.paths.push(name.to_string());
        match &e.kind {
            EntryKind::File => {
                self.files_by_path
                    .insert(name.to_string(), self.manifest.files.len() as u32);
                self.manifest.files.push(FileRec::File {
                    path,
                    size: e.size,
                    content,
                });
            }
            EntryKind::Hardlink { target } => {
                let target = target.trim_end_matches('/');
                let Some(&t) = self.files_by_path.get(target) else {
                    return Err(linuxkit_rootfs::Error::Other(format!(
                        "{}: hard link to `{target}`, which is not an earlier file of the initrd",
                        e.path
                    )));
                };
                self.manifest.files.push(FileRec::Link { path, target: t });
            }
            EntryKind::Symlink { .. } => self.manifest.links.push(path),
            _ => {}
        }
        Ok(())
    }
}

/// Whether some entry of the initrd would be written through or over a
/// symbolic link an earlier entry made, or a link over a directory with
/// entries: what [`linuxkit_rootfs::Resolve`] changes. It tells from the
/// paths alone, so it may say yes where `Resolve` changes nothing, never
/// the other way round.
pub(crate) fn meets_links(manifests: &[Manifest]) -> bool {
    let mut links: HashSet<&str> = HashSet::new();
    let mut parents: HashSet<&str> = HashSet::new();
    for m in manifests {
        let mut is_link = vec![false; m.paths.len()];
        for &l in &m.links {
            is_link[l as usize] = true;
        }
        for (i, p) in m.paths.iter().enumerate() {
            let mut rest = p.as_str();
            while let Some((up, _)) = rest.rsplit_once('/') {
                if links.contains(up) {
                    return true;
                }
                if !parents.insert(up) {
                    break;
                }
                rest = up;
            }
            if is_link[i] {
                if parents.contains(p.as_str()) {
                    return true;
                }
                links.insert(p);
            } else if links.remove(p.as_str()) {
                return true;
            }
        }
    }
    false
}

/// The initrd leaves `boot/` out (its files become separate outputs).
fn is_boot(path: &str) -> bool {
    path == "boot" || path.starts_with("boot/")
}

impl EntrySink for ManifestSink {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
        let content = match Self::content_hasher(e) {
            Some(mut h) => {
                let n = io::copy(&mut data.take(e.size), &mut h).map_err(|source| {
                    linuxkit_rootfs::Error::Io {
                        context: format!("cannot read {}", e.path),
                        source,
                    }
                })?;
                if n != e.size {
                    return Err(linuxkit_rootfs::Error::Other(format!(
                        "{}: expected {} bytes of content, got {n}",
                        e.path, e.size
                    )));
                }
                Some(Self::content_digest(h))
            }
            None => None,
        };
        self.record(e, content)
    }
}

/// A part's plan and what it saves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartPlan {
    pub plan: LinkPlan,
    /// Content bytes left out as links to an earlier copy.
    pub linked_bytes: u64,
    /// Files stored once elsewhere (links to another part's or an
    /// identical file, not the image's own hard links).
    pub merged_files: u64,
}

impl PartPlan {
    /// Identifies the plan in segment cache names.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for a in &self.plan.actions {
            match a {
                LinkAction::Unique => h.update([0u8]),
                LinkAction::First { ino, minor } => {
                    h.update([1u8]);
                    h.update(ino.to_le_bytes());
                    h.update(minor.to_le_bytes());
                }
                LinkAction::Link { ino, minor } => {
                    h.update([2u8]);
                    h.update(ino.to_le_bytes());
                    h.update(minor.to_le_bytes());
                }
                LinkAction::Skip => h.update([3u8]),
            }
        }
        format!("{:x}", h.finalize())
    }
}

/// What a file's inode is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Group {
    /// Identical content and metadata, wherever it is.
    Content([u8; 16]),
    /// One file of one part (and the image's own hard links to it):
    /// (the part's salt, the file's record index).
    Local(usize, u32),
}

/// Inode and minor device numbers of a linked group.
fn numbers(g: &Group, salts: &[String]) -> (u32, u32) {
    let mut h = Sha256::new();
    match g {
        Group::Content(c) => {
            h.update(b"content\n");
            h.update(c);
        }
        Group::Local(part, idx) => {
            h.update(b"local\n");
            h.update(salts[*part].as_bytes());
            h.update(b"\n");
            h.update(idx.to_le_bytes());
        }
    }
    let d = h.finalize();
    let ino = u32::from_le_bytes([d[0], d[1], d[2], d[3]]).max(1);
    let minor = u32::from_le_bytes([d[4], d[5], d[6], d[7]]);
    (ino, minor)
}

/// Plans every part's files and hard links (see the module docs). `salts`
/// tell parts apart stably across builds (a keyed part's key).
pub(crate) fn plan(manifests: &[&Manifest], salts: &[String]) -> Vec<PartPlan> {
    // Repeats of an identical file at the same path are skipped; the
    // image's hard links pin their targets (they must be written).
    let mut skip: Vec<Vec<bool>> = Vec::with_capacity(manifests.len());
    let mut last: HashMap<&str, Option<[u8; 16]>> = HashMap::new();
    for m in manifests {
        let mut rec_at = vec![None; m.paths.len()];
        let mut pinned = vec![false; m.files.len()];
        for (fi, f) in m.files.iter().enumerate() {
            match f {
                FileRec::File { path, .. } => rec_at[*path as usize] = Some(fi),
                FileRec::Link { path, target } => {
                    rec_at[*path as usize] = Some(fi);
                    pinned[*target as usize] = true;
                }
            }
        }
        let mut sk = vec![false; m.files.len()];
        for (pi, p) in m.paths.iter().enumerate() {
            let content = match rec_at[pi].map(|fi| (fi, &m.files[fi])) {
                Some((
                    fi,
                    FileRec::File {
                        content: Some(c), ..
                    },
                )) => {
                    if !pinned[fi] && last.get(p.as_str()) == Some(&Some(*c)) {
                        sk[fi] = true;
                        continue;
                    }
                    Some(*c)
                }
                _ => None,
            };
            last.insert(p.as_str(), content);
        }
        skip.push(sk);
    }
    let mut path_count: HashMap<&str, u32> = HashMap::new();
    for (m, sk) in manifests.iter().zip(&skip) {
        let mut skipped = vec![false; m.paths.len()];
        for (fi, f) in m.files.iter().enumerate() {
            if let FileRec::File { path, .. } = f
                && sk[fi]
            {
                skipped[*path as usize] = true;
            }
        }
        for (pi, p) in m.paths.iter().enumerate() {
            if !skipped[pi] {
                *path_count.entry(p.as_str()).or_default() += 1;
            }
        }
    }
    let unique = |m: &Manifest, path: u32| path_count[m.paths[path as usize].as_str()] == 1;
    // Groups of every record; a file whose image hard links live at a
    // path that is not unique stays local, as does one at such a path.
    let mut groups: Vec<Vec<Group>> = Vec::with_capacity(manifests.len());
    for (pi, m) in manifests.iter().enumerate() {
        let mut shared_ok = vec![true; m.files.len()];
        for f in &m.files {
            if let FileRec::Link { path, target } = f
                && !unique(m, *path)
            {
                shared_ok[*target as usize] = false;
            }
        }
        let mut g: Vec<Group> = Vec::with_capacity(m.files.len());
        for (fi, f) in m.files.iter().enumerate() {
            g.push(match f {
                FileRec::File {
                    path,
                    content: Some(c),
                    ..
                } if shared_ok[fi] && unique(m, *path) => Group::Content(*c),
                FileRec::File { .. } => Group::Local(pi, fi as u32),
                FileRec::Link { target, .. } => g[*target as usize].clone(),
            });
        }
        groups.push(g);
    }
    let mut count: HashMap<&Group, u32> = HashMap::new();
    for (gs, sk) in groups.iter().zip(&skip) {
        for (g, s) in gs.iter().zip(sk) {
            if !s {
                *count.entry(g).or_default() += 1;
            }
        }
    }
    let mut seen: HashSet<&Group> = HashSet::new();
    let mut out = Vec::with_capacity(manifests.len());
    for ((m, gs), sk) in manifests.iter().zip(&groups).zip(&skip) {
        let mut p = PartPlan {
            plan: LinkPlan::default(),
            linked_bytes: 0,
            merged_files: 0,
        };
        for ((f, g), s) in m.files.iter().zip(gs).zip(sk) {
            let a = if *s {
                if let FileRec::File { size, .. } = f {
                    p.linked_bytes += size;
                    p.merged_files += 1;
                }
                LinkAction::Skip
            } else if count[g] < 2 {
                LinkAction::Unique
            } else {
                let (ino, minor) = numbers(g, salts);
                if seen.insert(g) {
                    LinkAction::First { ino, minor }
                } else {
                    if let FileRec::File { size, .. } = f {
                        p.linked_bytes += size;
                        p.merged_files += 1;
                    }
                    LinkAction::Link { ino, minor }
                }
            };
            p.plan.actions.push(a);
        }
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(entries: &[Entry], data: &[&[u8]]) -> Manifest {
        let mut s = ManifestSink::default();
        for (e, d) in entries.iter().zip(data) {
            s.add(e, &mut &d[..]).unwrap();
        }
        s.manifest
    }

    fn big(c: u8) -> Vec<u8> {
        vec![c; DEDUP_MIN as usize]
    }

    #[test]
    fn identical_files_across_parts_share_one_inode() {
        let libc = big(1);
        let other = big(2);
        let a = manifest(
            &[
                Entry::dir("a"),
                Entry::file("a/libc.so", libc.len() as u64),
                Entry::file("a/small", 3),
            ],
            &[b"", &libc, b"abc"],
        );
        let b = manifest(
            &[
                Entry::file("b/libc.so", libc.len() as u64),
                Entry::file("b/other", other.len() as u64),
                Entry::file("b/small", 3),
            ],
            &[&libc, &other, b"abc"],
        );
        let c = manifest(&[Entry::file("c/libc.so", libc.len() as u64)], &[&libc]);
        let plans = plan(&[&a, &b, &c], &["a".into(), "b".into(), "c".into()]);
        let LinkAction::First { ino, minor } = plans[0].plan.actions[0] else {
            panic!("{plans:?}")
        };
        // Small files are never merged; the first copy carries the content.
        assert_eq!(plans[0].plan.actions[1], LinkAction::Unique);
        assert_eq!(
            plans[1].plan.actions,
            [
                LinkAction::Link { ino, minor },
                LinkAction::Unique,
                LinkAction::Unique
            ]
        );
        assert_eq!(plans[2].plan.actions, [LinkAction::Link { ino, minor }]);
        assert_eq!(plans[1].linked_bytes, DEDUP_MIN);
        assert_eq!(plans[0].linked_bytes, 0);
        // The numbers depend only on the content: the same in another
        // initrd with other parts around.
        let again = plan(&[&b, &c], &["x".into(), "y".into()]);
        assert_eq!(again[0].plan.actions[0], LinkAction::First { ino, minor });
        // ... and the plan (so the segment's cache name) is stable.
        assert_eq!(
            plan(&[&a, &b, &c], &["a".into(), "b".into(), "c".into()])[1].digest(),
            plans[1].digest()
        );
    }

    #[test]
    fn metadata_is_part_of_the_identity() {
        let d = big(7);
        let a = manifest(&[Entry::file("a", d.len() as u64)], &[&d]);
        let b = manifest(
            &[Entry {
                mode: 0o755,
                ..Entry::file("b", d.len() as u64)
            }],
            &[&d],
        );
        let plans = plan(&[&a, &b], &["a".into(), "b".into()]);
        assert_eq!(plans[0].plan.actions, [LinkAction::Unique]);
        assert_eq!(plans[1].plan.actions, [LinkAction::Unique]);
    }

    #[test]
    fn paths_written_twice_are_not_merged() {
        // init[1] replaces init[0]'s file: the kernel would write the new
        // content into the shared inode, so neither is merged.
        let d = big(3);
        let e = big(4);
        let a = manifest(&[Entry::file("lib/x", d.len() as u64)], &[&d]);
        let b = manifest(&[Entry::file("lib/x", e.len() as u64)], &[&e]);
        let c = manifest(&[Entry::file("c/x", d.len() as u64)], &[&d]);
        let plans = plan(&[&a, &b, &c], &["a".into(), "b".into(), "c".into()]);
        for p in &plans {
            assert_eq!(p.plan.actions, [LinkAction::Unique], "{plans:?}");
        }
    }

    #[test]
    fn an_identical_file_at_the_same_path_is_written_once() {
        let d = big(5);
        let a = manifest(&[Entry::file("lib/libc", d.len() as u64)], &[&d]);
        let b = manifest(&[Entry::file("lib/libc", d.len() as u64)], &[&d]);
        let c = manifest(&[Entry::file("c/lib/libc", d.len() as u64)], &[&d]);
        let plans = plan(&[&a, &b, &c], &["a".into(), "b".into(), "c".into()]);
        let LinkAction::First { ino, minor } = plans[0].plan.actions[0] else {
            panic!("{plans:?}")
        };
        assert_eq!(plans[1].plan.actions, [LinkAction::Skip]);
        assert_eq!(plans[1].linked_bytes, DEDUP_MIN);
        assert_eq!(plans[2].plan.actions, [LinkAction::Link { ino, minor }]);
        // Not when something else was written there in between.
        let other = manifest(&[Entry::symlink("lib/libc", "x")], &[b""]);
        let plans = plan(&[&a, &other, &b], &["a".into(), "o".into(), "b".into()]);
        assert_eq!(plans[0].plan.actions, [LinkAction::Unique]);
        assert_eq!(plans[2].plan.actions, [LinkAction::Unique]);
    }

    #[test]
    fn image_hard_links_stay_links_with_nlink_only_where_needed() {
        let d = b"#!busybox".to_vec();
        let a = manifest(
            &[
                Entry::file("bin/busybox", d.len() as u64),
                Entry {
                    kind: EntryKind::Hardlink {
                        target: "bin/busybox".into(),
                    },
                    ..Entry::file("bin/sh", 0)
                },
                Entry::file("bin/alone", 1),
            ],
            &[&d, b"", b"x"],
        );
        let plans = plan(&[&a], &["k".into()]);
        let LinkAction::First { ino, minor } = plans[0].plan.actions[0] else {
            panic!("{plans:?}")
        };
        assert_eq!(plans[0].plan.actions[1], LinkAction::Link { ino, minor });
        assert_eq!(plans[0].plan.actions[2], LinkAction::Unique);
        // The image's own links are not counted as merged duplicates.
        assert_eq!(plans[0].merged_files, 0);
    }

    #[test]
    fn manifests_round_trip() {
        let d = big(9);
        let m = manifest(
            &[
                Entry::dir("x"),
                Entry::file("x/big", d.len() as u64),
                Entry {
                    kind: EntryKind::Hardlink {
                        target: "x/big".into(),
                    },
                    ..Entry::file("x/link", 0)
                },
                Entry::symlink("x/sym", "big"),
            ],
            &[b"", &d, b"", b""],
        );
        assert_eq!(m.links, [3]);
        let mut buf = Vec::new();
        m.write_to(&mut buf).unwrap();
        assert_eq!(Manifest::read_from(&mut &buf[..]).unwrap(), m);
        assert!(Manifest::read_from(&mut &buf[..buf.len() - 1]).is_err());
    }

    #[test]
    fn entries_meeting_an_earlier_link_are_told() {
        let m = |entries: &[Entry]| manifest(entries, &vec![&b""[..]; entries.len()]);
        let base = m(&[
            Entry::dir("etc"),
            Entry::symlink("etc/resolv.conf", "/run/x"),
            Entry::symlink("lib", "/outside"),
        ]);
        // A link replaced by a link, and unrelated paths: nothing met.
        let fine = m(&[
            Entry::dir("etc"),
            Entry::symlink("etc/resolv.conf", "/run/y"),
            Entry::dir("usr"),
            Entry::file("usr/lib", 0),
        ]);
        assert!(!meets_links(&[base.clone(), fine]));
        for later in [
            vec![Entry::dir("etc"), Entry::file("etc/resolv.conf", 0)],
            vec![Entry::dir("lib")],
            vec![Entry::file("lib/x", 0)],
        ] {
            assert!(meets_links(&[base.clone(), m(&later)]), "{later:?}");
        }
        // A link over a directory with entries.
        assert!(meets_links(&[
            m(&[Entry::dir("d"), Entry::file("d/x", 0)]),
            m(&[Entry::symlink("d", "/")]),
        ]));
    }
}
