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
//!
//! The front of a directory of modules: the builder is here; `tree` holds
//! the gathered files, `entries` the names and directory entries, and
//! `layout` the geometry and the placement of every cluster. They import
//! each other downwards only and nothing from here.

mod entries;
mod layout;
mod tree;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use entries::{check_name, invalid};
pub use layout::FatType;
use layout::{
    DirInfo, FAT16_MAX, FAT16_MIN, FAT16_ROOT_ENTRIES, FAT32_MAX, FAT32_MIN, FatLayout, Item,
    SECTOR, What, collect, fsinfo,
};
use tree::{Content, FatNode, find_key, hash_dir};

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

    /// Adds the open file `file` (read by position when the image is
    /// written).
    pub fn add_open(&mut self, path: &str, file: Arc<File>) -> io::Result<()> {
        let len = file.metadata()?.len();
        self.insert(path, FatNode::File(Content::Open(file, len)))
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
        let mut staged = linuxkit_base::staged::Staged::create(dest.to_path_buf())?;
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
                        Content::Open(f, len) => crate::bytes::copy_exact(
                            &mut BufReader::with_capacity(
                                1 << 20,
                                crate::bytes::ReadAt { file: f, offset: 0 },
                            ),
                            out,
                            *len,
                        )?,
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

    fn boot_sector(&self, l: &FatLayout, serial: u32) -> [u8; 512] {
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

    fn layout(&self) -> io::Result<FatLayout> {
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
        Ok(FatLayout {
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
