//! Output format writers. Each takes the root filesystem stream (entries
//! pushed through [`linuxkit_rootfs::EntrySink`]) and writes one output
//! format; all are written natively, without helper containers, and
//! byte-for-byte reproducibly.
//!
//! The modules form layers, and imports only go down (no module imports
//! one above it, so there is no import circle):
//!
//! - the top, `session`: [`write_formats`] dispatches each [`Format`] to
//!   the writers and shares what formats have in common (the initrd, the
//!   BIOS and EFI images);
//! - the images a bootable format is made of, `bootable` (isolinux,
//!   systemd-boot, the ESP, the UEFI ISOs, the GPT disk around the ESP);
//! - the writers: `tar`, `cpio` and `initrd` (with `links`, the
//!   deduplication plan, and `compress`), the file system images `squashfs`, `erofs` and
//!   `iso` (over `fstree`, the gathered tree), `fat`, `mbr` and `gpt`, the
//!   disk containers `disk`, and `kernel` (`--decompress-kernel`);
//! - the leaves, which import nothing above them: `format` (the vocabulary
//!   of formats), `error` (the atomic output file is `linuxkit_base::staged`), `bytes`
//!   (byte helpers), `ids` (content-derived identifiers), `pipe`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bootable;
mod bytes;
mod compress;
mod cpio;
pub mod disk;
mod erofs;
mod error;
pub mod fat;
mod format;
mod fstree;
pub mod gpt;
pub mod ids;
mod initrd;
mod iso;
mod kernel;
mod links;
pub mod mbr;
mod pipe;
mod session;
mod squashfs;
mod tar;

pub use bootable::{
    BOOTLOADER_PACKAGE, BOOTLOADERS, Bootloader, BootloaderImage, format_unavailable,
};
pub use compress::{Compression, Compressor, LZ4_LEGACY_BLOCK, LZ4_LEGACY_MAGIC, Lz4Legacy};
pub use cpio::{CpioWriter, InitrdSink, LinkAction, LinkPlan, trailer_archive};
pub use erofs::{ErofsError, INLINE_MAX, write_erofs};
pub use error::{Error, Result};
pub use format::{DiskFormat, FileKind, Format, UnknownFormat};
pub use fstree::FsTree;
pub use initrd::{InitrdOptions, InitrdReport, PartReport, SegmentCache, build_initrd};
pub use iso::{BiosBoot, ElTorito, Hybrid, IsoAlias, IsoOptions, write_iso, write_iso_with};
pub use kernel::decompress_kernel;
pub use links::DEDUP_MIN;
pub use linuxkit_base::staged::{Staged, StagedError};
pub use session::{
    OutputOptions, check_together, write_format, write_formats, write_formats_report, write_stream,
};
pub use squashfs::{SquashfsError, write_squashfs};
pub use tar::TarWriter;
