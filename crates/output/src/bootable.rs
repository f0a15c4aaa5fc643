//! The bootable formats' building blocks: the boot loaders (from the
//! `pkg/bootloader` image), the BIOS ISO with isolinux, the UEFI system
//! partition with systemd-boot, the UEFI ISO and the GPT disk around the
//! ESP. `formats.rs` turns them into the output files.
//!
//! Every bootable format boots the kernel with the initrd `kernel+initrd`
//! writes (our init runs from it; Debian's kernel also needs the modules it
//! holds to read a CD or a disk), with the configuration's command line.
//!
//! | format | what boots | where the kernel and initrd are |
//! |---|---|---|
//! | `iso-bios` (and the BIOS disks) | isolinux, from El Torito or, as a disk, the isohybrid MBR | `/boot/kernel`, `/boot/initrd.img` in the ISO 9660 tree |
//! | `iso-efi` | systemd-boot in the El Torito UEFI image (also the 0xEF partition of the hybrid MBR) | `/kernel`, `/initrd.img` in that FAT image |
//! | `iso-efi-initrd` | the same | the same, and also `/kernel`, `/initrd.img`, `/cmdline` in the ISO tree |
//! | `raw-efi`, `qcow2-efi` | systemd-boot on a FAT32 ESP, the GPT's only partition | `/kernel`, `/initrd.img` on the ESP |
//!
//! Each architecture has its own boot loaders ([`BOOTLOADERS`]): amd64 has
//! both; arm64 machines have no BIOS, so only the UEFI formats exist for
//! it, with systemd-boot's arm64 build as `EFI/BOOT/BOOTAA64.EFI` (a BIOS
//! format is refused: [`format_unavailable`]).

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use linuxkit_base::Arch;
use linuxkit_rootfs::{Entry, EntryKind, EntrySink};
use sha2::{Digest, Sha256};

use crate::Format;
use crate::fat::{FatBuilder, FatType};
use crate::fstree::FsTree;
use crate::gpt::{ALIGN, Guid, Layout};
use crate::iso::{
    BiosBoot, ElTorito, Generated, Hybrid, IsoAlias, IsoOptions, iso_len, write_iso_generating,
    write_iso_with,
};

/// The package directory the boot loader images are built from.
pub const BOOTLOADER_PACKAGE: &str = "pkg/bootloader";

const ISOLINUX_BIN: &str = "usr/lib/ISOLINUX/isolinux.bin";
const ISOHDPFX_BIN: &str = "usr/lib/ISOLINUX/isohdpfx.bin";
const LDLINUX_C32: &str = "usr/lib/syslinux/modules/bios/ldlinux.c32";
const BIOS_FILES: [&str; 3] = [ISOLINUX_BIN, ISOHDPFX_BIN, LDLINUX_C32];

/// The boot loaders of one architecture: its platform of the
/// `pkg/bootloader` image and what the formats take from it.
#[derive(Debug, PartialEq, Eq)]
pub struct BootloaderImage {
    /// The architecture.
    pub arch: Arch,
    /// The image, by the digest of this platform's manifest:
    /// `pkg/bootloader` built by `linuxkit pkg build` from its
    /// `debian.lock`, which makes the digest stable. When the lockfile
    /// changes, this digest must change with it (`cargo test -p linuxkit
    /// --test formats` says so).
    pub image: &'static str,
    /// systemd-boot's build for the architecture, as Debian installs it.
    pub efi_loader: &'static str,
    /// Where UEFI firmware of the architecture looks for the loader of a
    /// removable medium (so no boot entry is needed).
    pub efi_removable: &'static str,
    /// Whether the architecture's machines have a PC BIOS, and so the
    /// image has isolinux for the BIOS formats.
    pub bios: bool,
}

/// Every architecture's boot loaders (a third architecture is one more
/// row: its `pkg/bootloader` platform built and its digest here).
pub const BOOTLOADERS: [BootloaderImage; 2] = [
    BootloaderImage {
        arch: Arch::Amd64,
        image: "docker.io/linuxkit/bootloader@sha256:9b716833515ab4f884d37539efb45179434fae70a27f3539660374366d880c91",
        efi_loader: "usr/lib/systemd/boot/efi/systemd-bootx64.efi",
        efi_removable: "EFI/BOOT/BOOTX64.EFI",
        bios: true,
    },
    BootloaderImage {
        arch: Arch::Arm64,
        image: "docker.io/linuxkit/bootloader@sha256:bb25795864785ae6079df5fc794f5ab41439793a4dcbd9ab0c8e6076d135fe98",
        efi_loader: "usr/lib/systemd/boot/efi/systemd-bootaa64.efi",
        efi_removable: "EFI/BOOT/BOOTAA64.EFI",
        bios: false,
    },
];

impl BootloaderImage {
    /// The boot loaders of `arch`, if there are any.
    pub fn of(arch: Arch) -> Option<&'static BootloaderImage> {
        BOOTLOADERS.iter().find(|b| b.arch == arch)
    }

    /// The files of the image the formats use (paths in the image, as
    /// Debian installs them).
    pub fn files(&self) -> Vec<&'static str> {
        let mut f = vec![self.efi_loader];
        if self.bios {
            f.extend(BIOS_FILES);
        }
        f
    }
}

/// Why `format` cannot be written for `arch`, or `None` if it can: the
/// BIOS formats need isolinux, which only PC machines run, and the
/// bootable formats need the architecture's boot loaders.
pub fn format_unavailable(format: Format, arch: Arch) -> Option<String> {
    if !format.needs_bootloader() {
        return None;
    }
    let with_loaders = || {
        BOOTLOADERS
            .iter()
            .map(|b| b.arch.to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    };
    match BootloaderImage::of(arch) {
        None => Some(format!(
            "format {format} needs boot loaders, which exist for {} only, not {arch}",
            with_loaders()
        )),
        Some(b) if format.boots_from_bios() && !b.bios => Some(format!(
            "format {format} boots through a PC BIOS (isolinux), which {arch} machines do not have: use a UEFI format instead ({})",
            Format::list(Format::ALL.into_iter().filter(|f| f.boots_from_uefi()))
        )),
        Some(_) => None,
    }
}

/// The boot loader files of one architecture. Collect them by flattening
/// that platform's boot loader image into it (it is an [`EntrySink`]
/// keeping only [`BootloaderImage::files`]), or read them from a
/// directory with [`Bootloader::from_dir`].
#[derive(Clone)]
pub struct Bootloader {
    image: &'static BootloaderImage,
    files: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for Bootloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.files.iter().map(|(k, v)| (k, v.len())))
            .finish()
    }
}

impl Bootloader {
    /// An empty collection for `arch`'s boot loaders (`None`: there are
    /// none for it).
    pub fn new(arch: Arch) -> Option<Bootloader> {
        Some(Bootloader {
            image: BootloaderImage::of(arch)?,
            files: BTreeMap::new(),
        })
    }

    /// Reads `arch`'s files under `root` (`/` for the host's own
    /// `isolinux`, `syslinux-common` and `systemd-boot-efi` packages).
    pub fn from_dir(root: &Path, arch: Arch) -> io::Result<Bootloader> {
        let mut b = Bootloader::new(arch).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no boot loaders for {arch}"),
            )
        })?;
        for f in b.image.files() {
            let p = root.join(f);
            let data = std::fs::read(&p)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            b.files.insert(f.to_string(), data);
        }
        Ok(b)
    }

    /// Which architecture's boot loaders these are.
    pub fn image(&self) -> &'static BootloaderImage {
        self.image
    }

    /// The files of [`BootloaderImage::files`] not collected (empty when
    /// complete).
    pub fn missing(&self) -> Vec<&'static str> {
        self.image
            .files()
            .into_iter()
            .filter(|f| !self.files.contains_key(*f))
            .collect()
    }

    fn get(&self, path: &str) -> io::Result<&[u8]> {
        self.files.get(path).map(Vec::as_slice).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("the {} boot loader image has no {path}", self.image.arch),
            )
        })
    }
}

impl EntrySink for Bootloader {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
        let path = e.path.trim_start_matches("./").trim_start_matches('/');
        if e.kind != EntryKind::File || !self.image.files().contains(&path) {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(e.size as usize);
        data.take(e.size)
            .read_to_end(&mut buf)
            .map_err(|source| linuxkit_rootfs::Error::Io {
                context: format!("cannot read {path} of the boot loader image"),
                source,
            })?;
        self.files.insert(path.to_string(), buf);
        Ok(())
    }
}

/// What the bootable formats boot: the kernel, the initrd (a file: it can
/// be large) and the command line.
pub(crate) struct BootFiles<'a> {
    /// Shared with the images that hold it, not copied.
    pub kernel: &'a Arc<Vec<u8>>,
    /// The staged initrd, read through this handle (never reopened by
    /// name: see [`crate::bytes::ReadAt`]).
    pub initrd: &'a Arc<File>,
    pub initrd_len: u64,
    pub cmdline: &'a str,
    /// Stands for the initrd's bytes (see [`boot_seed`]).
    pub initrd_id: &'a [u8; 32],
    /// Where [`BootFiles::seed`] keeps the seed once made.
    pub seed: &'a OnceCell<[u8; 32]>,
}

impl BootFiles<'_> {
    /// A SHA-256 of the kernel, the command line and the initrd: the seed
    /// of every derived identifier. Made on first use: hashing the kernel
    /// costs about 10 ms, which the formats without such identifiers (the
    /// BIOS ISO, `qcow2-*`, `gcp`) do without.
    pub(crate) fn seed(&self) -> [u8; 32] {
        *self
            .seed
            .get_or_init(|| boot_seed(self.kernel, self.cmdline, self.initrd_id))
    }
}

/// The SHA-256 the identifiers of a bootable image derive from: of the
/// kernel, the command line and the initrd's identifier (which stands for
/// its bytes without reading them again).
pub(crate) fn boot_seed(kernel: &[u8], cmdline: &str, initrd_id: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"linuxkit boot\0");
    h.update((kernel.len() as u64).to_le_bytes());
    h.update(kernel);
    h.update((cmdline.len() as u64).to_le_bytes());
    h.update(cmdline.as_bytes());
    h.update(initrd_id);
    h.finalize().into()
}

fn add_file(t: &mut FsTree, path: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
    t.add_entry(&Entry::file(path, size), data)
        .map_err(io::Error::other)
}

fn add_bytes(t: &mut FsTree, path: &str, data: &[u8]) -> io::Result<()> {
    add_file(t, path, data.len() as u64, &mut &data[..])
}

/// The initrd, read in place when the image is written.
fn add_initrd(t: &mut FsTree, path: &str, b: &BootFiles) -> io::Result<()> {
    t.add_external(path, b.initrd.try_clone()?, b.initrd_len)
        .map(drop)
}

/// isolinux's configuration: boot the kernel and initrd at once, on the
/// serial console too.
fn isolinux_cfg(cmdline: &str) -> String {
    let mut s = String::from(
        "SERIAL 0 115200\nDEFAULT linuxkit\nPROMPT 0\nTIMEOUT 0\nLABEL linuxkit\n  KERNEL /boot/kernel\n  INITRD /boot/initrd.img\n",
    );
    if !cmdline.is_empty() {
        s.push_str(&format!("  APPEND {cmdline}\n"));
    }
    s
}

/// The BIOS ISO, laid out: isolinux, the kernel, the initrd and the
/// command line, booting from El Torito and, through the isohybrid MBR,
/// as a disk. Its length is known before it is written, which a disk
/// container made from it while it is written needs.
pub(crate) struct BiosIso {
    tree: FsTree,
    opts: IsoOptions,
    len: u64,
}

impl BiosIso {
    /// The image's length in bytes: a whole number of MiB.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Writes the image.
    pub(crate) fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        write_iso_with(&self.tree, &self.opts, out)
    }
}

/// Lays out the BIOS ISO (see [`BiosIso`]). `spool` is where the tree's
/// file contents wait.
pub(crate) fn bios_iso(b: &BootFiles, bl: &Bootloader, spool: &Path) -> io::Result<BiosIso> {
    let mut t = FsTree::new(Some(spool))?;
    t.add_shared("boot/kernel", b.kernel.clone())?;
    add_initrd(&mut t, "boot/initrd.img", b)?;
    add_bytes(&mut t, "boot/cmdline", b.cmdline.as_bytes())?;
    add_bytes(&mut t, "isolinux/isolinux.bin", bl.get(ISOLINUX_BIN)?)?;
    add_bytes(&mut t, "isolinux/ldlinux.c32", bl.get(LDLINUX_C32)?)?;
    add_bytes(
        &mut t,
        "isolinux/isolinux.cfg",
        isolinux_cfg(b.cmdline).as_bytes(),
    )?;
    let mbr = bl.get(ISOHDPFX_BIN)?;
    if mbr.len() < 432 {
        return Err(io::Error::other(format!(
            "the boot loader image's {ISOHDPFX_BIN} has {} bytes, expected at least 432",
            mbr.len()
        )));
    }
    let opts = IsoOptions {
        volume_id: None,
        joliet: true,
        el_torito: Some(ElTorito {
            bios: Some(BiosBoot::isolinux("isolinux/isolinux.bin")),
            efi: None,
        }),
        hybrid: Some(Hybrid {
            boot_code: mbr[..432].to_vec(),
        }),
        aliases: Vec::new(),
    };
    let len = iso_len(&t, &opts)?;
    Ok(BiosIso { tree: t, opts, len })
}

/// The kernel as UEFI firmware loads it: systemd-boot starts the kernel
/// through its EFI stub, so the file must be a PE image. x86's bzImage and
/// arm64's `Image` (Debian's) are; arm64 kernels shipped as `Image.gz`
/// (the reference's kernel images) are not, and GRUB, the reference's
/// loader, unpacks them itself: here they are stored unpacked on the ESP.
fn efi_kernel(b: &BootFiles, bl: &Bootloader) -> io::Result<Arc<Vec<u8>>> {
    if bl.image.arch == Arch::Amd64 || !b.kernel.starts_with(&[0x1f, 0x8b]) {
        return Ok(b.kernel.clone());
    }
    crate::kernel::decompress_kernel(b.kernel)
        .map(Arc::new)
        .map_err(|e| io::Error::other(format!("cannot unpack the gzip'd kernel for UEFI: {e}")))
}

/// The ESP: systemd-boot as the removable-media loader (so no boot entry
/// in the firmware is needed), one loader entry, and the kernel, initrd
/// and command line beside it (systemd-boot only reads its own volume).
pub(crate) fn esp(b: &BootFiles, bl: &Bootloader, fat32: bool) -> io::Result<FatBuilder> {
    let mut f = FatBuilder::new()
        .label("LINUXKIT")?
        .volume_id(crate::ids::id32(&b.seed(), "esp volume id"));
    if fat32 {
        f = f.fat_type(FatType::Fat32).hidden_sectors(ALIGN as u32);
    }
    f.add_bytes(
        bl.image.efi_removable,
        bl.get(bl.image.efi_loader)?.to_vec(),
    )?;
    f.add_bytes(
        "loader/loader.conf",
        b"timeout 0\ndefault linuxkit.conf\n".to_vec(),
    )?;
    let mut entry = String::from("title LinuxKit\nlinux /kernel\ninitrd /initrd.img\n");
    if !b.cmdline.is_empty() {
        entry.push_str(&format!("options {}\n", b.cmdline));
    }
    f.add_bytes("loader/entries/linuxkit.conf", entry.into_bytes())?;
    f.add_shared("kernel", efi_kernel(b, bl)?)?;
    f.add_open("initrd.img", b.initrd.clone())?;
    f.add_bytes("cmdline", b.cmdline.as_bytes().to_vec())?;
    Ok(f)
}

/// Writes the UEFI ISO: the ESP as the El Torito UEFI image (and, through
/// the hybrid MBR's 0xEF partition, as a disk's ESP); with `with_files`
/// (`iso-efi-initrd`) the kernel, initrd and command line are also files
/// of the ISO, as the reference's `iso-efi-initrd` has them: the ESP's
/// files are aligned to ISO sectors and the ISO's directory records point
/// at them, so they are stored once.
pub(crate) fn write_efi_iso(
    b: &BootFiles,
    bl: &Bootloader,
    with_files: bool,
    spool: &Path,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut esp = esp(b, bl, false)?;
    if with_files {
        esp = esp.align_files(crate::iso::SECTOR as u64);
    }
    // The ESP is written straight into the image when the ISO writer
    // reaches it (see `Generated`); its source in the tree is an empty
    // file of its size, never read.
    let len = esp.image_size()?;
    let placeholder = tempfile::tempfile_in(spool)?;
    placeholder.set_len(len)?;
    let mut t = FsTree::new(Some(spool))?;
    let source = t.add_external("EFI/efiboot.img", placeholder, len)?;
    let mut aliases = Vec::new();
    if with_files {
        for (name, size) in [
            ("kernel", efi_kernel(b, bl)?.len() as u64),
            ("initrd.img", b.initrd_len),
            ("cmdline", b.cmdline.len() as u64),
        ] {
            match esp.file_offset(name)? {
                Some(offset) => {
                    t.add_external_part(name, source, offset, size)?;
                    aliases.push(IsoAlias {
                        path: name.into(),
                        within: "EFI/efiboot.img".into(),
                        offset,
                    });
                }
                None => add_bytes(&mut t, name, b"")?,
            }
        }
    }
    let opts = IsoOptions {
        volume_id: None,
        joliet: true,
        el_torito: Some(ElTorito {
            bios: None,
            efi: Some("EFI/efiboot.img".into()),
        }),
        hybrid: Some(Hybrid::default()),
        aliases,
    };
    let write_esp = |w: &mut dyn Write| esp.write(w);
    let generated = Generated {
        path: "EFI/efiboot.img",
        write: &write_esp,
    };
    write_iso_generating(&t, &opts, Some(generated), out)
}

/// The GPT of a disk of `disk` bytes whose only partition is an ESP of
/// `esp_len` bytes (`raw-efi`), its GUIDs derived from `seed`.
pub(crate) fn efi_disk_layout(seed: &[u8], esp_len: u64, disk: u64) -> io::Result<Layout> {
    let mut l = Layout::new(disk, seed);
    l.add(Guid::EFI_SYSTEM, "EFI system partition", esp_len, 0)?;
    Ok(l)
}

/// Writes the disk of `l` (see [`efi_disk_layout`]) to `out` (a new, empty file):
/// the tables, the ESP, the backup tables; the free space stays a hole.
pub(crate) fn write_efi_disk(fat: &FatBuilder, l: &Layout, out: &mut File) -> io::Result<u64> {
    efi_disk(fat, l, out, |out, n| {
        out.seek(SeekFrom::Current(n as i64)).map(drop)
    })
}

/// Writes the disk of `l` to a stream, such as a disk container's
/// writer: the free space is written as zeros.
pub(crate) fn stream_efi_disk(
    fat: &FatBuilder,
    l: &Layout,
    out: &mut dyn Write,
) -> io::Result<u64> {
    efi_disk(fat, l, out, |out, n| crate::bytes::write_zeros(out, n))
}

/// The EFI disk, in order; `gap(out, n)` passes over `n` bytes of free
/// space. Returns the disk's length.
fn efi_disk<W: Write>(
    fat: &FatBuilder,
    l: &Layout,
    out: W,
    mut gap: impl FnMut(&mut BufWriter<W>, u64) -> io::Result<()>,
) -> io::Result<u64> {
    let disk = l.sectors * crate::mbr::SECTOR;
    let mut w = BufWriter::with_capacity(1 << 20, out);
    let primary = l.primary(None)?;
    w.write_all(&primary)?;
    let p = &l.partitions[0];
    let esp_at = p.first_lba * crate::mbr::SECTOR;
    gap(&mut w, esp_at - primary.len() as u64)?;
    let mut counted = crate::bytes::Counted { w: &mut w, n: 0 };
    fat.write(&mut counted)?;
    let esp_end = esp_at + counted.n;
    let backup = l.backup()?;
    let free = (disk - backup.len() as u64)
        .checked_sub(esp_end)
        .ok_or_else(|| io::Error::other("the ESP overruns the backup GPT"))?;
    gap(&mut w, free)?;
    w.write_all(&backup)?;
    w.flush()?;
    Ok(disk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolinux_config_boots_the_initrd() {
        let c = isolinux_cfg("console=ttyS0");
        assert!(c.starts_with("SERIAL 0 115200\n"));
        assert!(
            c.contains("KERNEL /boot/kernel\n  INITRD /boot/initrd.img\n  APPEND console=ttyS0\n")
        );
        assert!(!isolinux_cfg("").contains("APPEND"));
    }

    #[test]
    fn the_collector_keeps_only_the_boot_loader_files() {
        let mut b = Bootloader::new(Arch::Amd64).unwrap();
        assert_eq!(b.missing().len(), 4);
        b.add(
            &Entry::file("usr/lib/ISOLINUX/isolinux.bin", 3),
            &mut &b"abc"[..],
        )
        .unwrap();
        b.add(
            &Entry::file("usr/share/doc/isolinux/copyright", 1),
            &mut &b"x"[..],
        )
        .unwrap();
        assert_eq!(b.files.len(), 1);
        assert_eq!(b.get(ISOLINUX_BIN).unwrap(), b"abc");
        assert!(!b.missing().contains(&ISOLINUX_BIN));
        let arm = Bootloader::new(Arch::Arm64).unwrap();
        assert_eq!(
            arm.missing(),
            ["usr/lib/systemd/boot/efi/systemd-bootaa64.efi"]
        );
        assert!(Bootloader::new(Arch::S390x).is_none());
    }

    #[test]
    fn a_gzipped_arm64_kernel_is_unpacked_for_uefi() {
        let image = b"MZ arm64 Image with its EFI stub".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&image).unwrap();
        let kernel = Arc::new(gz.finish().unwrap());
        let initrd = Arc::new(tempfile::tempfile().unwrap());
        let seed = OnceCell::new();
        let b = BootFiles {
            kernel: &kernel,
            initrd: &initrd,
            initrd_len: 0,
            cmdline: "",
            initrd_id: &[0; 32],
            seed: &seed,
        };
        let arm = Bootloader::new(Arch::Arm64).unwrap();
        assert_eq!(*efi_kernel(&b, &arm).unwrap(), image);
        let x86 = Bootloader::new(Arch::Amd64).unwrap();
        assert_eq!(*efi_kernel(&b, &x86).unwrap(), *kernel);
    }

    #[test]
    fn bios_formats_are_refused_where_there_is_no_bios() {
        for f in Format::ALL {
            let why = format_unavailable(f, Arch::Arm64);
            assert_eq!(why.is_some(), f.boots_from_bios(), "{f}");
            assert_eq!(format_unavailable(f, Arch::Amd64), None, "{f}");
            assert_eq!(
                format_unavailable(f, Arch::Riscv64).is_some(),
                f.needs_bootloader(),
                "{f}"
            );
        }
        let why = format_unavailable(Format::Vmdk, Arch::Arm64).unwrap();
        assert!(why.contains("format vmdk boots through a PC BIOS"), "{why}");
        assert!(
            why.contains("iso-efi, iso-efi-initrd, qcow2-efi, raw-efi"),
            "{why}"
        );
    }
}
