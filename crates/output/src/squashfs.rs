//! The `kernel+squashfs` root file system: a squashfs 4.0 image written with
//! the pure-Rust `backhand` crate (with a fix of ours, `vendor/README.md`),
//! gzip-compressed with 128 KiB blocks as
//! `mksquashfs` does by default.
//!
//! The image is reproducible: nodes are added in path order, the
//! superblock's time is the latest modification time in the tree (at least
//! [`linuxkit_rootfs::DEFAULT_MTIME`]), and nothing random is written.
//! File contents come from the tree's spool, one block at a time.
//!
//! Limitations of the writer: hard links become separate files with the
//! same content (data of at least one block is stored once, as backhand
//! deduplicates it); symbolic link targets longer than 255 bytes are
//! refused; extended attributes are not written; the root directory's time
//! is 0.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};

use backhand::compression::Compressor;
use backhand::{FilesystemCompressor, FilesystemWriter, NodeHeader};

use crate::fstree::{FsTree, Kind, encode_dev};

/// Why an image could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the squashfs image: {0}")]
pub struct SquashfsError(String);

fn err(e: impl std::fmt::Display) -> SquashfsError {
    SquashfsError(e.to_string())
}

/// Writes `tree` as a squashfs image at the start of `out`, truncated to
/// the image (backhand seeks back over duplicate data, which may leave
/// bytes past the end); returns the image size.
pub fn write_squashfs(tree: &FsTree, out: &mut File) -> Result<u64, SquashfsError> {
    // backhand writes directories recursively, a stack frame per level:
    // a deep tree gets a thread with a stack to match (memory is only
    // reserved; a 5000-deep chain overflows the 2 MiB of a default thread).
    let mut depth = 0;
    tree.walk(|path, _| {
        depth = depth.max(path.split('/').count());
        Ok(())
    })
    .ok();
    let stack = (8 << 20) + depth * (16 << 10);
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("squashfs".into())
            .stack_size(stack)
            .spawn_scoped(s, || write_on_this_thread(tree, out))
            .map_err(err)?
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

fn write_on_this_thread(tree: &FsTree, out: &mut File) -> Result<u64, SquashfsError> {
    let mut fs = FilesystemWriter::default();
    fs.set_compressor(FilesystemCompressor::new(Compressor::Gzip, None).map_err(err)?);
    fs.set_time(tree.max_mtime().min(u32::MAX as u64) as u32);
    let root = &tree.nodes[0];
    fs.set_root_mode(root.mode as u16);
    fs.set_root_uid(root.uid);
    fs.set_root_gid(root.gid);
    let mut result = Ok(());
    tree.walk(|path, n| {
        let node = &tree.nodes[n];
        let header = NodeHeader::new(
            node.mode as u16,
            node.uid,
            node.gid,
            node.mtime.min(u32::MAX as u64) as u32,
        );
        let name = path.rsplit('/').next().unwrap_or(path);
        if name.len() > 255 {
            result = Err(SquashfsError(format!(
                "{path}: names are limited to 255 bytes"
            )));
            return Err(std::io::Error::other("stop"));
        }
        if let Kind::Symlink(t) = &node.kind
            && t.len() > 255
        {
            result = Err(SquashfsError(format!(
                "{path}: symbolic link targets are limited to 255 bytes"
            )));
            return Err(std::io::Error::other("stop"));
        }
        let r = match &node.kind {
            Kind::Dir(_) => fs.push_dir(path, header),
            Kind::File { .. } => fs.push_file(tree.content(node), path, header),
            Kind::Symlink(target) => fs.push_symlink(target, path, header),
            Kind::Char(ma, mi) => fs.push_char_device(encode_dev(*ma, *mi), path, header),
            Kind::Block(ma, mi) => fs.push_block_device(encode_dev(*ma, *mi), path, header),
            Kind::Fifo => fs.push_fifo(path, header),
        };
        if let Err(e) = r {
            result = Err(SquashfsError(format!("{path}: {e}")));
            return Err(std::io::Error::other("stop"));
        }
        Ok(())
    })
    .ok();
    result?;
    out.seek(SeekFrom::Start(0)).map_err(err)?;
    let mut w = BufWriter::with_capacity(1 << 20, &mut *out);
    let (_, size) = fs.write(&mut w).map_err(err)?;
    w.flush().map_err(err)?;
    drop(w);
    out.set_len(size).map_err(err)?;
    Ok(size)
}
