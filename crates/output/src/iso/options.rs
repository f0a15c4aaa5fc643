//! What an ISO image holds besides the Rock Ridge tree (Joliet, El
//! Torito, the isohybrid MBR, aliases), and files whose content is
//! written by a function.

use std::io::{self, Write};

/// What goes into an ISO image besides the Rock Ridge tree.
#[derive(Debug, Clone, Default)]
pub struct IsoOptions {
    /// The volume identifier (`LINUXKIT` when `None`); at most 32
    /// characters (16 in the Joliet descriptor). Linux shows it as the
    /// label (`/dev/disk/by-label/…`).
    pub volume_id: Option<String>,
    /// A Joliet tree.
    pub joliet: bool,
    /// El Torito boot entries.
    pub el_torito: Option<ElTorito>,
    /// An MBR in the system area so that the image also boots when written
    /// to a disk (a USB stick, a VM's disk). Needs El Torito.
    pub hybrid: Option<Hybrid>,
    /// Files whose content is not written again but found inside another
    /// file of the image (see [`IsoAlias`]).
    pub aliases: Vec<IsoAlias>,
}

/// A regular file of the tree (`path`) whose directory records point
/// inside another regular file (`within`), at byte `offset` (a multiple of
/// 2048): the same bytes are then stored once. The kernel and initrd of an
/// El Torito UEFI image (a FAT file system whose files are aligned, see
/// [`crate::fat::FatBuilder::align_files`]) are also files of the ISO this
/// way. `path`'s size is its node's; its content is never read.
#[derive(Debug, Clone)]
pub struct IsoAlias {
    /// The file whose records point elsewhere.
    pub path: String,
    /// The file that holds its bytes.
    pub within: String,
    /// Where in `within` they start, in bytes.
    pub offset: u64,
}

/// El Torito boot entries. At least one of the two.
#[derive(Debug, Clone, Default)]
pub struct ElTorito {
    /// The BIOS entry, the catalog's default one.
    pub bios: Option<BiosBoot>,
    /// The path, in the tree, of the UEFI boot image: a FAT file system
    /// image (see [`crate::fat::FatBuilder`]) whose `EFI/BOOT/BOOTX64.EFI`
    /// firmware runs. It is placed last in the image, so that firmware
    /// reading a large image's size as "to the end of the volume" (the
    /// entry counts 512-byte sectors in 16 bits, so images over 32 MiB say
    /// 0) reads exactly it.
    pub efi: Option<String>,
}

/// A BIOS no-emulation boot image.
#[derive(Debug, Clone)]
pub struct BiosBoot {
    /// Its path in the tree (`isolinux/isolinux.bin`).
    pub image: String,
    /// 512-byte sectors the BIOS loads (isolinux: 4, `-boot-load-size 4`).
    pub load_sectors: u16,
    /// Fill in the boot info table at bytes 8–63 of the image (volume
    /// descriptor, image location, length, checksum), which isolinux reads
    /// to find the rest of itself (`-boot-info-table`).
    pub boot_info_table: bool,
}

impl BiosBoot {
    /// isolinux's settings: load 4 sectors, fill in the boot info table.
    pub fn isolinux(image: &str) -> BiosBoot {
        BiosBoot {
            image: image.to_string(),
            load_sectors: 4,
            boot_info_table: true,
        }
    }
}

/// The isohybrid MBR (what syslinux's `isohybrid` and xorriso's
/// `-isohybrid-mbr` write): `boot_code` (the first 432 bytes of
/// `isohdpfx.bin`, which loads the BIOS boot image from the 512-byte
/// sector number stored right after it), a disk signature, partition 1
/// over the whole image from sector 0 and, with a UEFI image, partition 2
/// (type 0xEF) over that image, which UEFI firmware then mounts as the
/// ESP. With a UEFI image partition 1 has type 0, which UEFI skips (it
/// would otherwise overlap the ESP, and firmware refuses overlapping MBR
/// partitions); without, isohybrid's 0x17. The image is padded to a whole
/// MiB (isohybrid's cylinders: 64 heads × 32 sectors).
#[derive(Debug, Clone, Default)]
pub struct Hybrid {
    /// At most 432 bytes; may be empty for a UEFI-only image.
    pub boot_code: Vec<u8>,
}

/// A file of the tree whose content is written by a function when the
/// image reaches it, instead of read from its source (which is then never
/// read: it need only have the size). The UEFI ISOs write their ESP this
/// way, straight into the image, rather than to a temporary file that the
/// image then copies: that spares writing and reading the whole ESP
/// (kernel and initrd included) once more.
pub(crate) struct Generated<'a> {
    /// The file's path in the tree.
    pub path: &'a str,
    /// Writes exactly the file's size in bytes.
    pub write: WriteFn<'a>,
}

/// What writes a [`Generated`] file's content.
pub(crate) type WriteFn<'a> = &'a dyn Fn(&mut dyn Write) -> io::Result<()>;
