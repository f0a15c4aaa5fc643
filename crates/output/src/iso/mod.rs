//! An ISO 9660 image of a gathered tree, with Rock Ridge, and optionally
//! Joliet, El Torito boot entries (BIOS and UEFI) and an isohybrid MBR,
//! written natively (the reference runs `genisoimage -l -J -R`, `xorriso`
//! and `isohybrid`).
//!
//! The image is laid out first and written after, front to back, so the
//! output is a plain stream:
//!
//! | sectors | content |
//! |---|---|
//! | 0–15 | system area: zeros, or the isohybrid MBR in its first 512 bytes |
//! | 16 | primary volume descriptor |
//! | 17 | El Torito boot record (when booting; El Torito fixes it at 17) |
//! | … | Joliet supplementary volume descriptor (with Joliet) |
//! | … | volume descriptor set terminator |
//! | … | L-type path table, then M-type path table (then Joliet's two) |
//! | … | directories, breadth first (path table order); then Joliet's |
//! | … | Rock Ridge continuation areas |
//! | … | the El Torito boot catalog (not in any directory) |
//! | … | file contents, in directory order; hard links share one extent; the UEFI boot image last |
//! | … | isohybrid: zeros up to a whole MiB |
//!
//! ISO 9660 names are level 2 (at most 30 characters of d-characters for
//! a file's name and extension, 31 for a directory), made unique within
//! each directory; Rock Ridge carries the real names (`NM`), the modes,
//! owners and inode numbers (`PX`), device numbers (`PN`), symbolic link
//! targets (`SL`) and modification times (`TF`). System use fields that do
//! not fit in a directory record go to continuation areas (`CE`), which
//! never cross a sector. The image's own dates are the tree's latest
//! modification time, so the same tree always gives the same bytes.
//!
//! Limits: files of 4 GiB and more (they would need multi-extent records)
//! and more than 65535 directories (path table parent numbers) are refused;
//! deep directories are not relocated (`RR_MOVED`), which only readers
//! without Rock Ridge care about; symbolic link targets lose empty
//! components (`a//b`, a trailing `/`), which `SL` cannot express.
//!
//! Joliet (for Windows, and for readers without Rock Ridge) is a second
//! directory tree over the same file extents, with UCS-2 names of up to 64
//! characters (files get `;1`, as genisoimage and libisofs write).
//! Symbolic links and device nodes are only in the Rock Ridge tree.
//!
//! El Torito boot images are files of the tree, named by path: a BIOS
//! no-emulation image (isolinux.bin, with its boot info table filled in as
//! `genisoimage -boot-info-table` does) as the default entry, and a UEFI
//! image (a FAT file system holding `EFI/BOOT/BOOTX64.EFI`) in a platform
//! 0xEF section. See [`IsoOptions`].
//!
//! The front of a directory of modules, one per concern: `options` (what
//! the caller asks for), `names` (ISO 9660 identifiers), `rock_ridge`,
//! `joliet`, `records` (directory records), `layout` (where everything
//! goes), `boot` (El Torito, the isohybrid MBR) and `write` (the bytes).
//! They import each other downwards only (`layout` uses the others,
//! `write` and `boot` use `layout`); none imports this front.

mod boot;
mod encode;
mod joliet;
mod layout;
mod names;
mod options;
mod records;
mod rock_ridge;
mod write;

use std::io::{self, BufWriter, Write};

use crate::fstree::FsTree;

pub(crate) use encode::SECTOR;
use layout::IsoLayout;
pub(crate) use options::Generated;
pub use options::{BiosBoot, ElTorito, Hybrid, IsoAlias, IsoOptions};

/// Writes the ISO 9660 image of `tree` to `out` (see the module docs):
/// Rock Ridge only, not bootable.
pub fn write_iso<W: Write>(tree: &FsTree, out: W) -> io::Result<()> {
    write_iso_with(tree, &IsoOptions::default(), out)
}

/// The length in bytes of the image [`write_iso_with`] writes, without
/// writing it.
pub(crate) fn iso_len(tree: &FsTree, opts: &IsoOptions) -> io::Result<u64> {
    Ok(u64::from(IsoLayout::new(tree, opts)?.total) * SECTOR as u64)
}

/// Writes the ISO 9660 image of `tree` to `out` with `opts`.
pub fn write_iso_with<W: Write>(tree: &FsTree, opts: &IsoOptions, out: W) -> io::Result<()> {
    write_iso_generating(tree, opts, None, out)
}

/// [`write_iso_with`], with one file's content from `generated`.
pub(crate) fn write_iso_generating<W: Write>(
    tree: &FsTree,
    opts: &IsoOptions,
    generated: Option<Generated<'_>>,
    out: W,
) -> io::Result<()> {
    let layout = IsoLayout::new(tree, opts)?;
    let generated = match generated {
        Some(g) => {
            let n = tree
                .find(g.path)
                .ok_or_else(|| io::Error::other(format!("{}: not in the tree", g.path)))?;
            Some((n, g.write))
        }
        None => None,
    };
    let mut w = BufWriter::with_capacity(1 << 20, out);
    layout.write(tree, opts, generated, &mut w)?;
    w.flush()
}
