//! Output format writers. Each takes the root filesystem stream (entries
//! pushed through [`linuxkit_rootfs::EntrySink`]) and writes one output
//! format; all are written natively, without helper containers, and
//! byte-for-byte reproducibly.

mod bootable;
mod cpio;
pub mod disk;
mod erofs;
pub mod fat;
mod formats;
mod fstree;
pub mod gpt;
pub mod ids;
mod initrd;
mod iso;
mod kernel;
mod links;
pub mod mbr;
mod pipe;
mod squashfs;
mod tar;

pub use bootable::{BOOTLOADER_FILES, BOOTLOADER_IMAGE, BOOTLOADER_PACKAGE, Bootloader};
pub use cpio::{
    Compression, Compressor, CpioWriter, InitrdSink, LZ4_LEGACY_BLOCK, LZ4_LEGACY_MAGIC,
    LinkAction, LinkPlan, Lz4Legacy, trailer_archive,
};
pub use erofs::{ErofsError, INLINE_MAX, write_erofs};
pub use formats::{
    Error, OutputOptions, Result, SUPPORTED, Staged, needs_bootloader, needs_kernel, output_files,
    takes_size, write_format, write_formats, write_formats_report, write_tar_to,
};
pub use fstree::FsTree;
pub use initrd::{InitrdReport, PartReport, SegmentCache, build_initrd};
pub use iso::{BiosBoot, ElTorito, Hybrid, IsoAlias, IsoOptions, write_iso, write_iso_with};
pub use kernel::decompress_kernel;
pub use links::DEDUP_MIN;
pub use squashfs::{SquashfsError, write_squashfs};
pub use tar::TarWriter;
