//! FAT16 and FAT32 file system images (Microsoft's "FAT: General Overview
//! of On-Disk Format" 1.03), for EFI system partitions and El Torito EFI
//! boot images, written by hand.
//!
//! All files are known before anything is written, so the image is laid
//! out first and streamed after, front to back: the boot sector (and, for
//! FAT32, the FSInfo sector and the backup boot sector), both FATs, the
//! FAT16 root directory, then every directory and file in one contiguous
//! run of clusters each (directories, then their files, depth first in
//! name order), then free space. No seeking, no fragmentation.
//!
//! Names that are not already upper-case 8.3 names get long-name (VFAT)
//! entries, with a `BASIS~N` short name made unique within the directory.
//! Every entry carries one time (LinuxKit's fixed build time unless set),
//! and the volume serial number is derived from the names, sizes and
//! in-memory contents, so the same files give the same bytes; `mkfs.fat`
//! and `mcopy` would take both from the clock.
//!
//! The FAT type is whatever the cluster count makes it (the only rule
//! readers apply): FAT16 needs 4085 to 65524 clusters, FAT32 65525 or
//! more, and an image is grown to the smallest size its type allows (about
//! 2 MiB for FAT16 and 33 MiB for FAT32, with 512-byte clusters). Cluster
//! sizes follow Microsoft's defaults for the volume size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

const SECTOR: u64 = 512;
/// Clusters kept away from the type boundaries, as `mkfs.fat` does.
const MARGIN: u64 = 16;
const FAT16_MIN: u64 = 4085 + MARGIN;
const FAT16_MAX: u64 = 65524 - MARGIN;
const FAT32_MIN: u64 = 65525 + MARGIN;
/// FAT32's limit is 2^28 - 11 clusters.
const FAT32_MAX: u64 = 0x0fff_fff5 - MARGIN;
const FAT16_ROOT_ENTRIES: u64 = 512;
const ATTR_DIR: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_LFN: u8 = 0x0f;

/// The FAT variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    Fat16,
    Fat32,
}

/// Where a file's content comes from.
#[derive(Debug, Clone)]
enum Content {
    /// Shared, so that a large content made elsewhere (a kernel) is not
    /// copied.
    Bytes(Arc<Vec<u8>>),
    Path(PathBuf, u64),
}

impl Content {
    fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Path(_, l) => *l,
        }
    }
}

#[derive(Debug, Clone)]
enum FatNode {
    Dir(BTreeMap<String, FatNode>),
    File(Content),
}

/// Builds a FAT image: add directories and files, then [`FatBuilder::write`].
#[derive(Debug, Clone)]
pub struct FatBuilder {
    root: BTreeMap<String, FatNode>,
    label: Option<[u8; 11]>,
    fat_type: Option<FatType>,
    size: Option<u64>,
    free: u64,
    hidden_sectors: u32,
    volume_id: Option<u32>,
    mtime: u64,
    /// File contents start on multiples of this (bytes) within the image.
    align: u64,
}

impl Default for FatBuilder {
    fn default() -> Self {
        FatBuilder::new()
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A name's long-name validity (Windows' rules).
fn check_name(name: &str) -> io::Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.ends_with('.')
        || name.ends_with(' ')
        || name.encode_utf16().count() > 255
        || name
            .chars()
            .any(|c| c < ' ' || "\"*/:<>?\\|\u{7f}".contains(c));
    if bad {
        return Err(invalid(format!("{name:?} is not a valid FAT file name")));
    }
    Ok(())
}

impl FatBuilder {
    /// An empty volume: no label, its type and size chosen from the
    /// content, 1 MiB free.
    pub fn new() -> FatBuilder {
        FatBuilder {
            root: BTreeMap::new(),
            label: None,
            fat_type: None,
            size: None,
            free: 1 << 20,
            hidden_sectors: 0,
            volume_id: None,
            mtime: linuxkit_rootfs::DEFAULT_MTIME,
            align: SECTOR,
        }
    }

    /// The volume label: at most 11 characters, upper case letters, digits,
    /// spaces and `_-`.
    pub fn label(mut self, label: &str) -> io::Result<Self> {
        if label.len() > 11
            || !label
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || b" _-".contains(&c))
        {
            return Err(invalid(format!(
                "{label:?} is not a valid FAT volume label"
            )));
        }
        let mut l = [b' '; 11];
        l[..label.len()].copy_from_slice(label.as_bytes());
        self.label = Some(l);
        Ok(self)
    }

    /// Forces FAT16 or FAT32 (by default FAT16 under 512 MiB, FAT32 from
    /// there). The image grows to the type's minimum size if needed.
    pub fn fat_type(mut self, t: FatType) -> Self {
        self.fat_type = Some(t);
        self
    }

    /// A fixed image size in bytes (rounded down to sectors), for a
    /// partition of known size; by default the content plus the free space.
    pub fn size(mut self, bytes: u64) -> Self {
        self.size = Some(bytes);
        self
    }

    /// Free space to leave when the size is not fixed (default 1 MiB); the
    /// size is then rounded up to a MiB.
    pub fn free_space(mut self, bytes: u64) -> Self {
        self.free = bytes;
        self
    }

    /// The sectors before the volume on its disk (the partition's start),
    /// which the boot sector records.
    pub fn hidden_sectors(mut self, sectors: u32) -> Self {
        self.hidden_sectors = sectors;
        self
    }

    /// Starts every file's content on a multiple of `bytes` (a power of
    /// two, at least 512) within the image: clusters are at least that
    /// large, and reserved sectors move the data area onto such a
    /// boundary. An ISO can then point its own directory records at the
    /// files of an El Torito image (2048-byte sectors) instead of holding
    /// them twice; see [`FatBuilder::file_offset`].
    pub fn align_files(mut self, bytes: u64) -> Self {
        self.align = bytes.max(SECTOR).next_power_of_two();
        self
    }

    /// Where the content of the file at `path` starts in the image (bytes),
    /// `None` for an empty file; an error when there is no such file.
    pub fn file_offset(&self, path: &str) -> io::Result<Option<u64>> {
        let l = self.layout()?;
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let mut d = 0;
        for (i, c) in comps.iter().enumerate() {
            let up = c.to_uppercase();
            let child = l.dirs[d]
                .children
                .iter()
                .find(|ch| ch.name.to_uppercase() == up)
                .ok_or_else(|| invalid(format!("{path}: not in the image")))?;
            match (child.dir, child.file, i + 1 == comps.len()) {
                (Some(sub), _, false) => d = sub,
                (_, Some(k), true) => {
                    let first = l.dirs[d].file_clusters[k];
                    return Ok((first != 0).then(|| (l.data_start + (first - 2) * l.spc) * SECTOR));
                }
                _ => return Err(invalid(format!("{path}: not a file of the image"))),
            }
        }
        Err(invalid(format!("{path}: not a file of the image")))
    }

    /// A fixed volume serial number, instead of the derived one.
    pub fn volume_id(mut self, id: u32) -> Self {
        self.volume_id = Some(id);
        self
    }

    /// The time of every entry (Unix seconds; FAT keeps local time with
    /// two-second steps, read here as UTC).
    pub fn mtime(mut self, t: u64) -> Self {
        self.mtime = t;
        self
    }

    fn parent_of<'a>(
        &'a mut self,
        path: &str,
    ) -> io::Result<(&'a mut BTreeMap<String, FatNode>, String)> {
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let Some((last, parents)) = comps.split_last() else {
            return Err(invalid(format!("{path:?}: an empty path")));
        };
        let mut dir = &mut self.root;
        for c in parents {
            check_name(c)?;
            let key = find_key(dir, c).unwrap_or_else(|| c.to_string());
            let node = dir
                .entry(key)
                .or_insert_with(|| FatNode::Dir(BTreeMap::new()));
            dir = match node {
                FatNode::Dir(d) => d,
                FatNode::File(_) => {
                    return Err(invalid(format!("{path}: {c} is a file")));
                }
            };
        }
        check_name(last)?;
        Ok((dir, last.to_string()))
    }

    fn insert(&mut self, path: &str, node: FatNode) -> io::Result<()> {
        if let FatNode::File(c) = &node
            && c.len() > u64::from(u32::MAX)
        {
            return Err(invalid(format!(
                "{path}: {} bytes; FAT files are smaller than 4 GiB",
                c.len()
            )));
        }
        let (dir, name) = self.parent_of(path)?;
        if let Some(existing) = find_key(dir, &name) {
            match (&dir[&existing], &node) {
                (FatNode::Dir(_), FatNode::Dir(_)) => return Ok(()),
                _ => {
                    return Err(invalid(format!(
                        "{path}: already present (FAT names ignore case)"
                    )));
                }
            }
        }
        dir.insert(name, node);
        Ok(())
    }

    /// Adds a directory (and its parents).
    pub fn add_dir(&mut self, path: &str) -> io::Result<()> {
        self.insert(path, FatNode::Dir(BTreeMap::new()))
    }

    /// Adds a file holding `data` (parents are created).
    pub fn add_bytes(&mut self, path: &str, data: Vec<u8>) -> io::Result<()> {
        self.add_shared(path, Arc::new(data))
    }

    /// [`FatBuilder::add_bytes`] of a content that is shared, not copied.
    pub(crate) fn add_shared(&mut self, path: &str, data: Arc<Vec<u8>>) -> io::Result<()> {
        self.insert(path, FatNode::File(Content::Bytes(data)))
    }

    /// Adds a file holding the content of `source`, read when the image is
    /// written (parents are created).
    pub fn add_file(&mut self, path: &str, source: &Path) -> io::Result<()> {
        let len = std::fs::metadata(source)?.len();
        self.insert(
            path,
            FatNode::File(Content::Path(source.to_path_buf(), len)),
        )
    }

    /// The image's size in bytes.
    pub fn image_size(&self) -> io::Result<u64> {
        Ok(self.layout()?.total_sectors * SECTOR)
    }

    /// The volume serial number (as in `UUID=XXXX-XXXX`).
    pub fn serial(&self) -> u32 {
        self.volume_id.unwrap_or_else(|| {
            let mut h = Sha256::new();
            hash_dir(&self.root, &mut h);
            h.update(self.label.unwrap_or([b' '; 11]));
            h.update(self.mtime.to_le_bytes());
            crate::ids::id32(&h.finalize(), "fat volume id")
        })
    }

    /// Writes the image to a file under a temporary name, renamed into
    /// place once complete.
    pub fn write_file(&self, dest: &Path) -> crate::error::Result<()> {
        let mut staged = crate::staged::Staged::create(dest.to_path_buf())?;
        let mut w = io::BufWriter::with_capacity(1 << 20, staged.file());
        self.write(&mut w)
            .and_then(|()| w.flush())
            .map_err(|source| crate::error::Error::Io {
                context: format!("cannot write {}", dest.display()),
                source,
            })?;
        drop(w);
        staged.commit()?;
        Ok(())
    }

    /// Streams the image (see the module docs).
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let l = self.layout()?;
        let serial = self.serial();
        let fat32 = l.fat_type == FatType::Fat32;
        let mut reserved = vec![0u8; (l.reserved * SECTOR) as usize];
        let boot = self.boot_sector(&l, serial);
        reserved[..512].copy_from_slice(&boot);
        if fat32 {
            let used: u64 = l.items.iter().map(|i| i.clusters).sum();
            let info = fsinfo(l.clusters - used, 2 + used);
            reserved[512..1024].copy_from_slice(&info);
            reserved[6 * 512..7 * 512].copy_from_slice(&boot);
            reserved[7 * 512..8 * 512].copy_from_slice(&info);
        }
        out.write_all(&reserved)?;
        let fat = l.fat();
        for _ in 0..2 {
            out.write_all(&fat)?;
        }
        if !fat32 {
            let mut root = l.dir_bytes(0, self.mtime, self.label);
            root.resize((l.root_sectors * SECTOR) as usize, 0);
            out.write_all(&root)?;
        }
        let csize = l.spc * SECTOR;
        let mut written = 0u64;
        for item in &l.items {
            let len = match &item.what {
                What::Dir(d) => {
                    let bytes = l.dir_bytes(*d, self.mtime, self.label);
                    out.write_all(&bytes)?;
                    bytes.len() as u64
                }
                What::File(d, k) => {
                    let c = &l.dirs[*d].files[*k];
                    match c {
                        Content::Bytes(b) => out.write_all(b)?,
                        Content::Path(p, len) => {
                            let f = File::open(p).map_err(|e| {
                                io::Error::new(e.kind(), format!("{}: {e}", p.display()))
                            })?;
                            crate::bytes::copy_exact(
                                &mut BufReader::with_capacity(1 << 20, f),
                                out,
                                *len,
                            )?;
                        }
                    }
                    c.len()
                }
            };
            crate::bytes::write_zeros(out, item.clusters * csize - len)?;
            written += item.clusters;
        }
        let data_end = l.data_start + written * l.spc;
        crate::bytes::write_zeros(out, (l.total_sectors - data_end) * SECTOR)
    }

    fn boot_sector(&self, l: &Layout, serial: u32) -> [u8; 512] {
        let fat32 = l.fat_type == FatType::Fat32;
        let mut b = [0u8; 512];
        let code_at = if fat32 { 0x5a } else { 0x3e };
        b[0..3].copy_from_slice(&[0xeb, code_at as u8 - 2, 0x90]);
        b[3..11].copy_from_slice(b"LINUXKIT");
        b[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
        b[13] = l.spc as u8;
        b[14..16].copy_from_slice(&(l.reserved as u16).to_le_bytes());
        b[16] = 2;
        let root_entries = if fat32 { 0 } else { FAT16_ROOT_ENTRIES as u16 };
        b[17..19].copy_from_slice(&root_entries.to_le_bytes());
        if l.total_sectors < 65536 && !fat32 {
            b[19..21].copy_from_slice(&(l.total_sectors as u16).to_le_bytes());
        } else {
            b[32..36].copy_from_slice(&(l.total_sectors as u32).to_le_bytes());
        }
        b[21] = 0xf8;
        b[24..26].copy_from_slice(&63u16.to_le_bytes());
        b[26..28].copy_from_slice(&255u16.to_le_bytes());
        b[28..32].copy_from_slice(&self.hidden_sectors.to_le_bytes());
        let label = self.label.unwrap_or(*b"NO NAME    ");
        let ext = if fat32 {
            b[36..40].copy_from_slice(&(l.fat_sectors as u32).to_le_bytes());
            b[44..48].copy_from_slice(&2u32.to_le_bytes());
            b[48..50].copy_from_slice(&1u16.to_le_bytes());
            b[50..52].copy_from_slice(&6u16.to_le_bytes());
            64
        } else {
            b[22..24].copy_from_slice(&(l.fat_sectors as u16).to_le_bytes());
            36
        };
        b[ext] = 0x80;
        b[ext + 2] = 0x29;
        b[ext + 3..ext + 7].copy_from_slice(&serial.to_le_bytes());
        b[ext + 7..ext + 18].copy_from_slice(&label);
        b[ext + 18..ext + 26].copy_from_slice(if fat32 { b"FAT32   " } else { b"FAT16   " });
        // Not bootable: int 18h (try the next boot device), then halt.
        b[code_at..code_at + 4].copy_from_slice(&[0xcd, 0x18, 0xeb, 0xfe]);
        b[510] = 0x55;
        b[511] = 0xaa;
        b
    }

    fn layout(&self) -> io::Result<Layout> {
        // Directories in allocation order, each with its entry count.
        let mut dirs: Vec<DirInfo> = Vec::new();
        collect(&self.root, 0, &mut dirs, self.label.is_some())?;
        let fat_type = self.fat_type.unwrap_or(match self.size {
            Some(s) if s >= 512 << 20 => FatType::Fat32,
            Some(_) => FatType::Fat16,
            None => {
                let content: u64 = dirs
                    .iter()
                    .flat_map(|d| d.files.iter().map(|f| f.len()))
                    .sum();
                if content + self.free >= 512 << 20 {
                    FatType::Fat32
                } else {
                    FatType::Fat16
                }
            }
        });
        let fat32 = fat_type == FatType::Fat32;
        let (mut reserved, root_sectors) = if fat32 {
            (32, 0)
        } else {
            (1, FAT16_ROOT_ENTRIES * 32 / SECTOR)
        };
        if !fat32 && dirs[0].entries > FAT16_ROOT_ENTRIES {
            return Err(invalid(format!(
                "{} root directory entries: FAT16 holds {FAT16_ROOT_ENTRIES}",
                dirs[0].entries
            )));
        }
        let (min, max) = if fat32 {
            (FAT32_MIN, FAT32_MAX)
        } else {
            (FAT16_MIN, FAT16_MAX)
        };
        // Clusters the content needs with `spc` sectors per cluster.
        let needed = |spc: u64| -> u64 {
            let c = spc * SECTOR;
            dirs.iter()
                .enumerate()
                .map(|(i, d)| {
                    let dir = if i == 0 && !fat32 {
                        0
                    } else {
                        (d.entries * 32).div_ceil(c).max(1)
                    };
                    dir + d.files.iter().map(|f| f.len().div_ceil(c)).sum::<u64>()
                })
                .sum()
        };
        let geometry = |total: u64, spc: u64, reserved: u64| -> (u64, u64) {
            // The FAT sized for every cluster the space could hold, then
            // the clusters that fit beside it.
            let entry = if fat32 { 4 } else { 2 };
            let avail = total.saturating_sub(reserved + root_sectors);
            let fat_sectors = ((avail / spc + 2) * entry).div_ceil(SECTOR);
            let clusters = avail.saturating_sub(2 * fat_sectors) / spc;
            (fat_sectors, clusters)
        };
        let spc_for = |total: u64| -> u64 {
            let bytes = total * SECTOR;
            let c: u64 = if fat32 {
                match bytes {
                    b if b <= 260 << 20 => 512,
                    b if b <= 8 << 30 => 4096,
                    b if b <= 16 << 30 => 8192,
                    b if b <= 32 << 30 => 16384,
                    _ => 32768,
                }
            } else {
                match bytes {
                    b if b <= 16 << 20 => 512,
                    b if b <= 128 << 20 => 2048,
                    b if b <= 256 << 20 => 4096,
                    b if b <= 512 << 20 => 8192,
                    b if b <= 1 << 30 => 16384,
                    _ => 32768,
                }
            };
            c.max(self.align) / SECTOR
        };
        let total = match self.size {
            Some(s) => s / SECTOR,
            None => {
                let mib = (1 << 20) / SECTOR;
                let mut total = (needed(1) * SECTOR + self.free).div_ceil(SECTOR);
                total = total.next_multiple_of(mib);
                loop {
                    let spc = spc_for(total);
                    let (_, clusters) = geometry(total, spc, reserved);
                    if clusters >= min && clusters >= needed(spc) + self.free.div_ceil(spc * SECTOR)
                    {
                        break total;
                    }
                    let short = min.max(needed(spc)).saturating_sub(clusters).max(1) * spc;
                    total = (total + short).next_multiple_of(mib);
                }
            }
        };
        if total > u64::from(u32::MAX) {
            return Err(invalid("the FAT image would exceed 2 TiB".into()));
        }
        // Microsoft's cluster size for the volume size, else (a fixed size
        // it does not suit) the first that gives the type a valid count.
        let mut choice = None;
        let preferred = spc_for(total);
        let mut candidates = vec![preferred];
        let align = self.align / SECTOR;
        candidates.extend(
            [1u64, 2, 4, 8, 16, 32, 64, 128]
                .iter()
                .filter(|&&s| s != preferred && s >= align),
        );
        for spc in candidates {
            let (fat_sectors, clusters) = geometry(total, spc, reserved);
            if (min..=max).contains(&clusters) && needed(spc) <= clusters {
                choice = Some((spc, fat_sectors, clusters));
                break;
            }
        }
        let Some((spc, fat_sectors, clusters)) = choice else {
            return Err(invalid(format!(
                "{} bytes cannot hold this content as {fat_type:?}",
                total * SECTOR
            )));
        };
        // Aligned files: reserved sectors until the data area starts on
        // the boundary (the FAT may shrink as they grow; few rounds).
        let (mut fat_sectors, mut clusters) = (fat_sectors, clusters);
        while (reserved + 2 * fat_sectors + root_sectors) % align != 0 {
            let data_start = reserved + 2 * fat_sectors + root_sectors;
            reserved += align - data_start % align;
            (fat_sectors, clusters) = geometry(total, spc, reserved);
            if reserved > 0xffff || !(min..=max).contains(&clusters) || needed(spc) > clusters {
                return Err(invalid(format!(
                    "{} bytes cannot hold this content as {fat_type:?} with files aligned to {} bytes",
                    total * SECTOR,
                    self.align
                )));
            }
        }
        let data_start = reserved + 2 * fat_sectors + root_sectors;

        // Allocation: directories and files in order, contiguous.
        let mut items = Vec::new();
        let mut next = 2u64;
        let csize = spc * SECTOR;
        for (i, d) in dirs.iter_mut().enumerate() {
            if i > 0 || fat32 {
                let n = (d.entries * 32).div_ceil(csize).max(1);
                d.cluster = next;
                items.push(Item {
                    first: next,
                    clusters: n,
                    what: What::Dir(i),
                });
                next += n;
            }
            for (k, f) in d.files.iter().enumerate() {
                let n = f.len().div_ceil(csize);
                let first = if n == 0 { 0 } else { next };
                d.file_clusters.push(first);
                items.push(Item {
                    first,
                    clusters: n,
                    what: What::File(i, k),
                });
                next += n;
            }
        }
        Ok(Layout {
            fat_type,
            spc,
            reserved,
            fat_sectors,
            root_sectors,
            total_sectors: total,
            clusters,
            data_start,
            dirs,
            items,
        })
    }
}

/// The first key of `dir` equal to `name` ignoring case.
fn find_key(dir: &BTreeMap<String, FatNode>, name: &str) -> Option<String> {
    let up = name.to_uppercase();
    dir.keys().find(|k| k.to_uppercase() == up).cloned()
}

fn hash_dir(d: &BTreeMap<String, FatNode>, h: &mut Sha256) {
    for (name, node) in d {
        h.update(name.as_bytes());
        h.update([0]);
        match node {
            FatNode::Dir(c) => {
                h.update(b"d");
                hash_dir(c, h);
                h.update(b"e");
            }
            FatNode::File(Content::Bytes(b)) => {
                h.update(b"b");
                h.update((b.len() as u64).to_le_bytes());
                h.update(&b[..]);
            }
            FatNode::File(Content::Path(_, len)) => {
                h.update(b"p");
                h.update(len.to_le_bytes());
            }
        }
    }
}

/// A directory entry's short name and whether long-name entries precede it.
#[derive(Debug, Clone)]
struct Child {
    name: String,
    short: [u8; 11],
    long: bool,
    /// A subdirectory (index in `Layout::dirs`) or a file (index in the
    /// directory's `files`).
    dir: Option<usize>,
    file: Option<usize>,
}

#[derive(Debug)]
struct DirInfo {
    parent: usize,
    children: Vec<Child>,
    files: Vec<Content>,
    /// 32-byte entries, `.`, `..` and the label included.
    entries: u64,
    cluster: u64,
    /// The first cluster of each file (0 when empty).
    file_clusters: Vec<u64>,
}

/// Collects `d` and its subdirectories (depth first, name order) into
/// `dirs`; returns its index.
fn collect(
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

/// Characters allowed in short names besides letters and digits.
const SHORT_EXTRA: &[u8] = b"!#$%&'()-@^_`{}~";

/// The name as a short name when it is exactly one (upper case 8.3).
fn exact_short(name: &str) -> Option<[u8; 11]> {
    let ok = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || SHORT_EXTRA.contains(&c))
    };
    let (base, ext) = match name.split_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || !ok(base) || !ok(ext) {
        return None;
    }
    let mut s = [b' '; 11];
    s[..base.len()].copy_from_slice(base.as_bytes());
    s[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
    Some(s)
}

/// Short names for a directory's names (in order), unique within it, and
/// whether each needs long-name entries.
fn short_names(names: &[&String]) -> Vec<([u8; 11], bool)> {
    let exact: Vec<Option<[u8; 11]>> = names.iter().map(|n| exact_short(n)).collect();
    let mut taken: std::collections::HashSet<[u8; 11]> = exact.iter().flatten().copied().collect();
    let clean = |s: &str| -> Vec<u8> {
        s.chars()
            .filter(|&c| c != ' ' && c != '.')
            .map(|c| {
                let u = c.to_ascii_uppercase();
                if u.is_ascii_uppercase()
                    || u.is_ascii_digit()
                    || (u.is_ascii() && SHORT_EXTRA.contains(&(u as u8)))
                {
                    u as u8
                } else {
                    b'_'
                }
            })
            .collect()
    };
    names
        .iter()
        .zip(exact)
        .map(|(name, exact)| {
            if let Some(s) = exact {
                return (s, false);
            }
            let trimmed = name.trim_start_matches('.');
            let (base, ext) = match trimmed.rfind('.') {
                Some(i) if i > 0 => (&trimmed[..i], &trimmed[i + 1..]),
                _ => (trimmed, ""),
            };
            let mut base = clean(base);
            if base.is_empty() {
                base.push(b'_');
            }
            let ext = clean(ext);
            let mut s = [b' '; 11];
            let e = &ext[..ext.len().min(3)];
            s[8..8 + e.len()].copy_from_slice(e);
            for n in 1u32.. {
                let tail = format!("~{n}");
                let keep = base.len().min(8 - tail.len());
                s[..8].fill(b' ');
                s[..keep].copy_from_slice(&base[..keep]);
                s[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
                if taken.insert(s) {
                    break;
                }
            }
            (s, true)
        })
        .collect()
}

/// The long-name checksum of a short name.
fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, &c| (sum >> 1 | (sum & 1) << 7).wrapping_add(c))
}

/// FAT date and time of a Unix time (UTC), clamped to 1980–2107.
fn fat_datetime(t: u64) -> (u16, u16) {
    let (y, m, d, h, mi, s) = crate::bytes::civil(t.clamp(315_532_800, 4_354_819_198));
    let date = ((y - 1980) as u16) << 9 | (m as u16) << 5 | d as u16;
    let time = (h as u16) << 11 | (mi as u16) << 5 | (s / 2) as u16;
    (date, time)
}

fn short_entry(name: &[u8; 11], attr: u8, cluster: u64, size: u64, mtime: u64) -> [u8; 32] {
    let (date, time) = fat_datetime(mtime);
    let mut e = [0u8; 32];
    e[0..11].copy_from_slice(name);
    e[11] = attr;
    e[14..16].copy_from_slice(&time.to_le_bytes());
    e[16..18].copy_from_slice(&date.to_le_bytes());
    e[18..20].copy_from_slice(&date.to_le_bytes());
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    e[22..24].copy_from_slice(&time.to_le_bytes());
    e[24..26].copy_from_slice(&date.to_le_bytes());
    e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    e[28..32].copy_from_slice(&(size as u32).to_le_bytes());
    e
}

/// The long-name entries for `name`, in on-disk order (last part first).
fn lfn_entries(name: &str, short: &[u8; 11]) -> Vec<[u8; 32]> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let n = units.len().div_ceil(13);
    let sum = lfn_checksum(short);
    (0..n)
        .rev()
        .map(|i| {
            let mut e = [0u8; 32];
            e[0] = (i + 1) as u8 | if i + 1 == n { 0x40 } else { 0 };
            e[11] = ATTR_LFN;
            e[13] = sum;
            let slots = (1..11)
                .step_by(2)
                .chain((14..26).step_by(2))
                .chain((28..32).step_by(2));
            for (k, at) in slots.enumerate() {
                let j = i * 13 + k;
                let u = match j.cmp(&units.len()) {
                    std::cmp::Ordering::Less => units[j],
                    std::cmp::Ordering::Equal => 0,
                    std::cmp::Ordering::Greater => 0xffff,
                };
                e[at..at + 2].copy_from_slice(&u.to_le_bytes());
            }
            e
        })
        .collect()
}

fn fsinfo(free: u64, next: u64) -> [u8; 512] {
    let mut s = [0u8; 512];
    s[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    s[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    s[488..492].copy_from_slice(&(free as u32).to_le_bytes());
    s[492..496].copy_from_slice(&(next as u32).to_le_bytes());
    s[508..512].copy_from_slice(&0xaa55_0000u32.to_le_bytes());
    s
}

enum What {
    Dir(usize),
    /// A directory's file.
    File(usize, usize),
}

/// A run of clusters.
struct Item {
    first: u64,
    clusters: u64,
    what: What,
}

struct Layout {
    fat_type: FatType,
    /// Sectors per cluster.
    spc: u64,
    reserved: u64,
    fat_sectors: u64,
    root_sectors: u64,
    total_sectors: u64,
    clusters: u64,
    data_start: u64,
    dirs: Vec<DirInfo>,
    items: Vec<Item>,
}

impl Layout {
    fn fat(&self) -> Vec<u8> {
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
    fn dir_bytes(&self, d: usize, mtime: u64, label: Option<[u8; 11]>) -> Vec<u8> {
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
