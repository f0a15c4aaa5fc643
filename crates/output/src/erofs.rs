//! The `kernel+erofs` root file system: an uncompressed EROFS image, written
//! by hand from the on-disk format (`fs/erofs/erofs_fs.h`), since no Rust
//! crate writes EROFS.
//!
//! Layout, in 4 KiB blocks:
//!
//! - block 0: the superblock at byte 1024, with a crc32c checksum
//!   (`COMPAT_SB_CHKSUM`);
//! - from block 1 (`meta_blkaddr`): the inodes, all 64-byte extended
//!   inodes (32-bit uid/gid, 64-bit size and time), the root directory first
//!   (nid 0). Directories, symbolic links and files of at most
//!   [`INLINE_MAX`] bytes keep their data right after their inode
//!   (`FLAT_INLINE`), never across a block boundary;
//! - then the data of larger objects, each in whole contiguous blocks
//!   (`FLAT_PLAIN`).
//!
//! Directories are dirent blocks sorted by name, with `.` and `..`. Hard
//! links are directory entries naming one inode (its `nlink` counts them).
//! Extended attributes are not written. The image is reproducible: inodes
//! follow the path order, the build time is the latest modification time
//! in the tree, and the UUID and volume name are left empty.

use std::io::Write;

use crate::bytes::copy_exact;
use crate::fstree::{FsTree, Kind, Node, encode_dev};

const BLOCK: u64 = 4096;
const BLOCK_BITS: u8 = 12;
const SUPER_OFFSET: usize = 1024;
const MAGIC: u32 = 0xE0F5_E1E2;
const COMPAT_SB_CHKSUM: u32 = 0x1;
const INODE_SIZE: u64 = 64;
const DIRENT_SIZE: usize = 12;
/// The first metadata block; nids count 32-byte slots from there.
const META_BLKADDR: u64 = 1;
/// Objects up to this size are stored inline, after their inode.
pub const INLINE_MAX: u64 = 2048;

const FLAT_PLAIN: u16 = 0;
const FLAT_INLINE: u16 = 2;

/// Why an image could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ErofsError {
    /// Writing the image failed.
    #[error("cannot write the EROFS image: {0}")]
    Io(#[from] std::io::Error),
    /// The tree does not fit the format's limits (what, in the message).
    #[error("cannot write the EROFS image: {0}")]
    TooLarge(String),
}

/// Where one inode and its data go.
#[derive(Debug, Clone, Default)]
struct Slot {
    nid: u64,
    /// The directory (node index) an inode was first found in, for `..`.
    parent: usize,
    size: u64,
    inline: bool,
    /// First data block (`FLAT_PLAIN` with data).
    blkaddr: u64,
}

/// The dirents of a directory: (name, node index), sorted by name.
fn dirents(tree: &FsTree, dir: usize, parent: usize) -> Vec<(&[u8], usize)> {
    let mut v: Vec<(&[u8], usize)> = vec![(b".", dir), (b"..", parent)];
    if let Some(c) = tree.nodes[dir].children() {
        v.extend(c.iter().map(|(n, &i)| (n.as_bytes(), i)));
    }
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// Splits sorted dirents into blocks; returns each block's entry count
/// and the directory's size (full blocks plus what the last one uses).
fn dir_blocks(entries: &[(&[u8], usize)]) -> (Vec<usize>, u64) {
    let mut counts = Vec::new();
    let (mut n, mut used) = (0usize, 0usize);
    for (name, _) in entries {
        let need = DIRENT_SIZE + name.len();
        if used + need > BLOCK as usize {
            counts.push(n);
            (n, used) = (0, 0);
        }
        n += 1;
        used += need;
    }
    counts.push(n);
    let size = (counts.len() as u64 - 1) * BLOCK + used as u64;
    (counts, size)
}

fn file_type(node: &Node) -> u8 {
    match node.kind {
        Kind::File { .. } => 1,
        Kind::Dir(_) => 2,
        Kind::Char(..) => 3,
        Kind::Block(..) => 4,
        Kind::Fifo => 5,
        Kind::Symlink(_) => 7,
    }
}

/// A directory's content.
fn dir_content(tree: &FsTree, slots: &[Option<Slot>], dir: usize) -> Vec<u8> {
    let parent = slots[dir].as_ref().expect("laid out").parent;
    let entries = dirents(tree, dir, parent);
    let (counts, size) = dir_blocks(&entries);
    let mut out = Vec::with_capacity(size as usize);
    let mut rest = &entries[..];
    for (i, &count) in counts.iter().enumerate() {
        let (block, tail) = rest.split_at(count);
        rest = tail;
        let start = out.len();
        let mut nameoff = DIRENT_SIZE * count;
        for (name, node) in block {
            let nid = slots[*node].as_ref().expect("laid out").nid;
            out.extend_from_slice(&nid.to_le_bytes());
            out.extend_from_slice(&(nameoff as u16).to_le_bytes());
            out.push(file_type(&tree.nodes[*node]));
            out.push(0);
            nameoff += name.len();
        }
        for (name, _) in block {
            out.extend_from_slice(name);
        }
        if i + 1 < counts.len() {
            out.resize(start + BLOCK as usize, 0);
        }
    }
    debug_assert_eq!(out.len() as u64, size);
    out
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// CRC-32C (Castagnoli) as the kernel's `crc32c(~0, ...)`: no final
/// inversion.
fn crc32c_raw(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Writes `tree` as an EROFS image to `out`; returns the image size.
pub fn write_erofs(tree: &FsTree, out: &mut dyn Write) -> Result<u64, ErofsError> {
    // Inode order: the root, then first appearances in path order.
    let mut order = vec![0usize];
    let mut slots: Vec<Option<Slot>> = vec![None; tree.nodes.len()];
    slots[0] = Some(Slot::default());
    tree.walk(|_, n| {
        if slots[n].is_none() {
            slots[n] = Some(Slot::default());
            order.push(n);
        }
        Ok(())
    })?;
    // Parents of directories: each directory has exactly one name.
    for (d, node) in tree.nodes.iter().enumerate() {
        if let (Some(children), Some(_)) = (node.children(), &slots[d]) {
            for &c in children.values() {
                if let (Kind::Dir(_), Some(s)) = (&tree.nodes[c].kind, slots[c].as_mut()) {
                    s.parent = d;
                }
            }
        }
    }

    // Sizes, then the metadata layout.
    let mut pos = 0u64;
    for &n in &order {
        let node = &tree.nodes[n];
        let size = match &node.kind {
            Kind::Dir(_) => {
                let parent = slots[n].as_ref().expect("laid out").parent;
                dir_blocks(&dirents(tree, n, parent)).1
            }
            Kind::File { .. } => node.size,
            Kind::Symlink(t) => t.len() as u64,
            _ => 0,
        };
        let inline = size > 0 && size <= INLINE_MAX;
        let need = INODE_SIZE + if inline { size } else { 0 };
        if pos % BLOCK + need > BLOCK {
            pos = round_up(pos, BLOCK);
        }
        let s = slots[n].as_mut().expect("laid out");
        s.nid = pos / 32;
        s.size = size;
        s.inline = inline;
        pos = round_up(pos + need, 32);
    }
    let meta_blocks = round_up(pos, BLOCK) / BLOCK;
    let mut next_block = META_BLKADDR + meta_blocks;
    for &n in &order {
        let s = slots[n].as_mut().expect("laid out");
        if !s.inline && s.size > 0 {
            s.blkaddr = next_block;
            next_block += s.size.div_ceil(BLOCK);
        }
    }
    let total_blocks = next_block;
    if total_blocks > u32::MAX as u64 {
        return Err(ErofsError::TooLarge(format!(
            "{total_blocks} blocks; at most {} fit",
            u32::MAX
        )));
    }

    // The superblock.
    let build_time = tree.max_mtime();
    let mut block0 = vec![0u8; BLOCK as usize];
    {
        let sb = &mut block0[SUPER_OFFSET..SUPER_OFFSET + 128];
        sb[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        sb[8..12].copy_from_slice(&COMPAT_SB_CHKSUM.to_le_bytes());
        sb[12] = BLOCK_BITS;
        sb[14..16].copy_from_slice(&0u16.to_le_bytes()); // root nid
        sb[16..24].copy_from_slice(&(order.len() as u64).to_le_bytes());
        sb[24..32].copy_from_slice(&build_time.to_le_bytes());
        sb[36..40].copy_from_slice(&(total_blocks as u32).to_le_bytes());
        sb[40..44].copy_from_slice(&(META_BLKADDR as u32).to_le_bytes());
    }
    let crc = crc32c_raw(&block0[SUPER_OFFSET..]);
    block0[SUPER_OFFSET + 4..SUPER_OFFSET + 8].copy_from_slice(&crc.to_le_bytes());
    out.write_all(&block0)?;

    // The metadata area.
    let mut meta = Vec::with_capacity((meta_blocks * BLOCK) as usize);
    for (ino, &n) in order.iter().enumerate() {
        let node = &tree.nodes[n];
        let s = slots[n].as_ref().expect("laid out");
        meta.resize((s.nid * 32) as usize, 0);
        let layout = if s.inline { FLAT_INLINE } else { FLAT_PLAIN };
        let nlink = match node.children() {
            Some(c) => {
                2 + c
                    .values()
                    .filter(|&&c| matches!(tree.nodes[c].kind, Kind::Dir(_)))
                    .count() as u32
            }
            None => node.links.max(1),
        };
        let u = match node.kind {
            Kind::Char(ma, mi) | Kind::Block(ma, mi) => encode_dev(ma, mi),
            _ => s.blkaddr as u32,
        };
        let mode = (node.type_bits() | node.mode) as u16;
        meta.extend_from_slice(&(1 | (layout << 1)).to_le_bytes()); // i_format: extended
        meta.extend_from_slice(&0u16.to_le_bytes()); // i_xattr_icount
        meta.extend_from_slice(&mode.to_le_bytes());
        meta.extend_from_slice(&0u16.to_le_bytes());
        meta.extend_from_slice(&s.size.to_le_bytes());
        meta.extend_from_slice(&u.to_le_bytes());
        meta.extend_from_slice(&(ino as u32 + 1).to_le_bytes());
        meta.extend_from_slice(&node.uid.to_le_bytes());
        meta.extend_from_slice(&node.gid.to_le_bytes());
        meta.extend_from_slice(&node.mtime.to_le_bytes());
        meta.extend_from_slice(&0u32.to_le_bytes()); // mtime nsec
        meta.extend_from_slice(&nlink.to_le_bytes());
        meta.extend_from_slice(&[0u8; 16]);
        if s.inline {
            match &node.kind {
                Kind::Dir(_) => meta.extend_from_slice(&dir_content(tree, &slots, n)),
                Kind::Symlink(t) => meta.extend_from_slice(t.as_bytes()),
                Kind::File { .. } => copy_exact(&mut tree.content(node), &mut meta, s.size)?,
                _ => {}
            }
        }
    }
    meta.resize((meta_blocks * BLOCK) as usize, 0);
    out.write_all(&meta)?;
    drop(meta);

    // The data blocks.
    let zeros = [0u8; BLOCK as usize];
    for &n in &order {
        let node = &tree.nodes[n];
        let s = slots[n].as_ref().expect("laid out");
        if s.inline || s.size == 0 {
            continue;
        }
        match &node.kind {
            Kind::Dir(_) => out.write_all(&dir_content(tree, &slots, n))?,
            Kind::Symlink(t) => out.write_all(t.as_bytes())?,
            Kind::File { .. } => copy_exact(&mut tree.content(node), out, s.size)?,
            _ => {}
        }
        let pad = round_up(s.size, BLOCK) - s.size;
        out.write_all(&zeros[..pad as usize])?;
    }
    Ok(total_blocks * BLOCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_reference_value() {
        // The standard check value of CRC-32C is 0xE3069283 (with the
        // final inversion the kernel's helper leaves out).
        assert_eq!(!crc32c_raw(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn dirents_split_into_blocks() {
        let long = [b'x'; 200];
        let entries: Vec<(&[u8], usize)> = (0..40).map(|_| (&long[..], 0)).collect();
        let (counts, size) = dir_blocks(&entries);
        // 212 bytes each: 19 fit in a block.
        assert_eq!(counts, vec![19, 19, 2]);
        assert_eq!(size, 2 * BLOCK + 2 * 212);
    }
}
