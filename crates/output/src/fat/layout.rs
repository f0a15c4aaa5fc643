//! Where everything goes in a FAT image: its geometry (sectors, clusters,
//! the FATs), the directories in cluster order with their entries, and the
//! runs of clusters of every directory and file.

use std::collections::BTreeMap;
use std::io;

use super::entries::{ATTR_ARCHIVE, ATTR_DIR, ATTR_VOLUME, lfn_entries, short_entry, short_names};
use super::tree::{Content, FatNode};

pub(super) const SECTOR: u64 = 512;
/// Clusters kept away from the type boundaries, as `mkfs.fat` does.
const MARGIN: u64 = 16;
pub(super) const FAT16_MIN: u64 = 4085 + MARGIN;
pub(super) const FAT16_MAX: u64 = 65524 - MARGIN;
pub(super) const FAT32_MIN: u64 = 65525 + MARGIN;
/// FAT32's limit is 2^28 - 11 clusters.
pub(super) const FAT32_MAX: u64 = 0x0fff_fff5 - MARGIN;
pub(super) const FAT16_ROOT_ENTRIES: u64 = 512;

/// The FAT variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    /// FAT16: chosen, unless asked for, for file systems under 512 MiB.
    Fat16,
    /// FAT32: chosen from 512 MiB, and always for the EFI disks' ESP.
    Fat32,
}

/// A directory entry's short name and whether long-name entries precede it.
#[derive(Debug, Clone)]
pub(super) struct Child {
    pub(super) name: String,
    pub(super) short: [u8; 11],
    pub(super) long: bool,
    /// A subdirectory (index in `FatLayout::dirs`) or a file (index in the
    /// directory's `files`).
    pub(super) dir: Option<usize>,
    pub(super) file: Option<usize>,
}

#[derive(Debug)]
pub(super) struct DirInfo {
    pub(super) parent: usize,
    pub(super) children: Vec<Child>,
    pub(super) files: Vec<Content>,
    /// 32-byte entries, `.`, `..` and the label included.
    pub(super) entries: u64,
    pub(super) cluster: u64,
    /// The first cluster of each file (0 when empty).
    pub(super) file_clusters: Vec<u64>,
}

/// Collects `d` and its subdirectories (depth first, name order) into
/// `dirs`; returns its index.
pub(super) fn collect(
    d: &BTreeMap<String, FatNode>,
    parent: usize,
    dirs: &mut Vec<DirInfo>,
    label: bool,
) -> io::Result<usize> {
    let me = dirs.len();
    let root = me == 0;
    dirs.push(DirInfo {
        parent,
        children: Vec::new(),
        files: Vec::new(),
        entries: if root { u64::from(label) } else { 2 },
        cluster: 0,
        file_clusters: Vec::new(),
    });
    let names: Vec<&String> = d.keys().collect();
    let shorts = short_names(&names);
    let mut children = Vec::new();
    let mut entries = 0;
    for ((name, node), (short, long)) in d.iter().zip(shorts) {
        if long {
            entries += name.encode_utf16().count().div_ceil(13) as u64;
        }
        entries += 1;
        let mut c = Child {
            name: name.clone(),
            short,
            long,
            dir: None,
            file: None,
        };
        match node {
            FatNode::File(content) => {
                c.file = Some(dirs[me].files.len());
                dirs[me].files.push(content.clone());
            }
            FatNode::Dir(_) => {}
        }
        children.push(c);
    }
    dirs[me].entries += entries;
    // Files are allocated right after their directory, subdirectories
    // after those.
    for (c, node) in children.iter_mut().zip(d.values()) {
        if let FatNode::Dir(sub) = node {
            c.dir = Some(collect(sub, me, dirs, label)?);
        }
    }
    dirs[me].children = children;
    Ok(me)
}

pub(super) fn fsinfo(free: u64, next: u64) -> [u8; 512] {
    let mut s = [0u8; 512];
    s[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    s[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    s[488..492].copy_from_slice(&(free as u32).to_le_bytes());
    s[492..496].copy_from_slice(&(next as u32).to_le_bytes());
    s[508..512].copy_from_slice(&0xaa55_0000u32.to_le_bytes());
    s
}

pub(super) enum What {
    Dir(usize),
    /// A directory's file.
    File(usize, usize),
}

/// A run of clusters.
pub(super) struct Item {
    pub(super) first: u64,
    pub(super) clusters: u64,
    pub(super) what: What,
}

pub(super) struct FatLayout {
    pub(super) fat_type: FatType,
    /// Sectors per cluster.
    pub(super) spc: u64,
    pub(super) reserved: u64,
    pub(super) fat_sectors: u64,
    pub(super) root_sectors: u64,
    pub(super) total_sectors: u64,
    pub(super) clusters: u64,
    pub(super) data_start: u64,
    pub(super) dirs: Vec<DirInfo>,
    pub(super) items: Vec<Item>,
}

impl FatLayout {
    pub(super) fn fat(&self) -> Vec<u8> {
        let fat32 = self.fat_type == FatType::Fat32;
        let mut f = vec![0u8; (self.fat_sectors * SECTOR) as usize];
        let put = |f: &mut Vec<u8>, i: u64, v: u32| {
            if fat32 {
                f[i as usize * 4..i as usize * 4 + 4].copy_from_slice(&v.to_le_bytes());
            } else {
                f[i as usize * 2..i as usize * 2 + 2].copy_from_slice(&(v as u16).to_le_bytes());
            }
        };
        let eoc = if fat32 { 0x0fff_ffff } else { 0xffff };
        put(&mut f, 0, if fat32 { 0x0fff_fff8 } else { 0xfff8 });
        put(&mut f, 1, eoc);
        for it in &self.items {
            for k in 0..it.clusters {
                let c = it.first + k;
                let v = if k + 1 == it.clusters {
                    eoc
                } else {
                    c as u32 + 1
                };
                put(&mut f, c, v);
            }
        }
        f
    }

    /// Directory `d`'s entries, padded to its clusters (the FAT16 root: not
    /// padded).
    pub(super) fn dir_bytes(&self, d: usize, mtime: u64, label: Option<[u8; 11]>) -> Vec<u8> {
        let dir = &self.dirs[d];
        let mut out = Vec::with_capacity((dir.entries * 32) as usize);
        if d == 0 {
            if let Some(l) = label {
                out.extend_from_slice(&short_entry(&l, ATTR_VOLUME, 0, 0, mtime));
            }
        } else {
            let parent = if dir.parent == 0 {
                0
            } else {
                self.dirs[dir.parent].cluster
            };
            out.extend_from_slice(&short_entry(
                b".          ",
                ATTR_DIR,
                dir.cluster,
                0,
                mtime,
            ));
            out.extend_from_slice(&short_entry(b"..         ", ATTR_DIR, parent, 0, mtime));
        }
        for c in &dir.children {
            if c.long {
                for e in lfn_entries(&c.name, &c.short) {
                    out.extend_from_slice(&e);
                }
            }
            let e = match (c.dir, c.file) {
                (Some(sub), _) => short_entry(&c.short, ATTR_DIR, self.dirs[sub].cluster, 0, mtime),
                (None, Some(f)) => short_entry(
                    &c.short,
                    ATTR_ARCHIVE,
                    dir.file_clusters[f],
                    dir.files[f].len(),
                    mtime,
                ),
                _ => unreachable!("a child is a directory or a file"),
            };
            out.extend_from_slice(&e);
        }
        if d > 0 || self.fat_type == FatType::Fat32 {
            let csize = (self.spc * SECTOR) as usize;
            out.resize(out.len().div_ceil(csize).max(1) * csize, 0);
        }
        out
    }
}
