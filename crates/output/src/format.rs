//! The output formats `linuxkit build --format` names, as a type: each
//! knows its name (the reference's), the files it writes, what it is made
//! of (a kernel, the boot loaders) and how (`--size`, a stream, a disk
//! plan). Every other place asks the format; none matches on its name.
//!
//! This is a leaf: it depends on no other module of the crate (the disk
//! containers' vocabulary, [`DiskFormat`], lives here for that reason;
//! `disk` writes them).

use std::fmt;
use std::str::FromStr;

/// An output format, by its `--format` name ([`Format::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// `aws`: the BIOS disk, raw (`NAME.raw`), for importing into EC2.
    Aws,
    /// `azure`: the BIOS disk as a fixed VHD of whole MiB, as Azure requires (`NAME-azure.vhd`).
    Azure,
    /// `docker`: the root filesystem as a tar with a `Dockerfile` added (`NAME.docker`); needs no kernel.
    Docker,
    /// `dynamic-vhd`: the BIOS disk as a dynamic (sparse) VHD (`NAME.vhd`).
    DynamicVhd,
    /// `gcp`: the BIOS disk as `disk.raw` in a gzipped GNU tar (`NAME.img.tar.gz`), as GCE imports it.
    Gcp,
    /// `iso-bios`: an ISO 9660 image booting with isolinux from a CD or, isohybrid, a disk (`NAME.iso`).
    IsoBios,
    /// `iso-efi`: an ISO 9660 image whose El Torito UEFI image is an ESP with systemd-boot (`NAME-efi.iso`).
    IsoEfi,
    /// `iso-efi-initrd`: `iso-efi` with the kernel, initrd and command line in the ISO tree too (`NAME-efi-initrd.iso`).
    IsoEfiInitrd,
    /// `kernel+erofs`: the kernel, the command line and the root filesystem as EROFS (`NAME-erofs.img`).
    KernelErofs,
    /// `kernel+initrd`: the kernel, the initrd and the command line as three files, for direct kernel boot.
    KernelInitrd,
    /// `kernel+iso`: the kernel, the command line and the root filesystem as a non-bootable ISO 9660 image (`NAME.iso`).
    KernelIso,
    /// `kernel+squashfs`: the kernel, the command line and the root filesystem as squashfs (`NAME-squashfs.img`).
    KernelSquashfs,
    /// `qcow2-bios`: the BIOS disk in qcow2 (`NAME.qcow2`).
    Qcow2Bios,
    /// `qcow2-efi`: `raw-efi` in qcow2 (`NAME-efi.qcow2`).
    Qcow2Efi,
    /// `raw-bios`: the `iso-bios` image as a raw disk (`NAME-bios.img`).
    RawBios,
    /// `raw-efi`: a raw GPT disk with one FAT32 ESP holding systemd-boot, the kernel and the initrd (`NAME-efi.img`).
    RawEfi,
    /// The reference's Raspberry Pi 3 tarball; not implemented here
    /// ([`Format::is_implemented`]).
    Rpi3,
    /// `tar`: the root filesystem as a tar (`NAME.tar`); needs no kernel.
    Tar,
    /// `tar-kernel-initrd`: the kernel, initrd and command line in one tar (`NAME-initrd.tar`).
    TarKernelInitrd,
    /// `vhd`: the BIOS disk as a fixed VHD, the raw disk and a 512-byte footer (`NAME.vhd`).
    Vhd,
    /// `vmdk`: the BIOS disk as a streamOptimized VMDK (`NAME.vmdk`).
    Vmdk,
}

/// A disk container format: how a disk format stores its raw disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    /// Fixed VHD: the raw image and a 512-byte footer.
    Vhd,
    /// Fixed VHD with the size rounded up to a whole MiB, as Azure requires.
    AzureVhd,
    /// Dynamic (sparse) VHD.
    DynamicVhd,
    /// streamOptimized VMDK.
    Vmdk,
    /// qcow2 version 3.
    Qcow2,
    /// A gzipped GNU tar holding `disk.raw`, for GCE.
    Gcp,
}

/// What a disk format's disk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    /// The isohybrid BIOS ISO (`iso-bios`) as the disk: isolinux, booted
    /// by its MBR.
    Bios,
    /// A GPT disk with a FAT32 ESP holding systemd-boot.
    Efi,
}

impl Base {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Base::Bios => "BIOS",
            Base::Efi => "EFI",
        }
    }
}

/// How a disk format stores its disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    Raw,
    Disk(DiskFormat),
}

/// A disk format's disk, its container and its default size in MiB
/// (`None`: the content's size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DiskPlan {
    pub base: Base,
    pub container: Container,
    pub default_mb: Option<u64>,
}

/// What a file of a format holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `NAME-kernel`: the same whichever format writes it.
    Kernel,
    /// `NAME-initrd.img`.
    Initrd,
    /// `NAME-cmdline`: the same whichever format writes it.
    Cmdline,
    /// The format's image, archive or disk.
    Image,
}

impl Format {
    /// Every format, in the order of their names.
    pub const ALL: [Format; 21] = [
        Format::Aws,
        Format::Azure,
        Format::Docker,
        Format::DynamicVhd,
        Format::Gcp,
        Format::IsoBios,
        Format::IsoEfi,
        Format::IsoEfiInitrd,
        Format::KernelErofs,
        Format::KernelInitrd,
        Format::KernelIso,
        Format::KernelSquashfs,
        Format::Qcow2Bios,
        Format::Qcow2Efi,
        Format::RawBios,
        Format::RawEfi,
        Format::Rpi3,
        Format::Tar,
        Format::TarKernelInitrd,
        Format::Vhd,
        Format::Vmdk,
    ];

    /// The reference's name (`--format NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Aws => "aws",
            Format::Azure => "azure",
            Format::Docker => "docker",
            Format::DynamicVhd => "dynamic-vhd",
            Format::Gcp => "gcp",
            Format::IsoBios => "iso-bios",
            Format::IsoEfi => "iso-efi",
            Format::IsoEfiInitrd => "iso-efi-initrd",
            Format::KernelErofs => "kernel+erofs",
            Format::KernelInitrd => "kernel+initrd",
            Format::KernelIso => "kernel+iso",
            Format::KernelSquashfs => "kernel+squashfs",
            Format::Qcow2Bios => "qcow2-bios",
            Format::Qcow2Efi => "qcow2-efi",
            Format::RawBios => "raw-bios",
            Format::RawEfi => "raw-efi",
            Format::Rpi3 => "rpi3",
            Format::Tar => "tar",
            Format::TarKernelInitrd => "tar-kernel-initrd",
            Format::Vhd => "vhd",
            Format::Vmdk => "vmdk",
        }
    }

    /// The files the format writes: what each holds and its suffix after
    /// the output name, in the order [`Format::files`] gives them (the
    /// reference's names).
    fn layout(self) -> &'static [(FileKind, &'static str)] {
        use FileKind::{Cmdline, Image, Initrd, Kernel};
        match self {
            Format::Tar | Format::Rpi3 => &[(Image, ".tar")],
            Format::Docker => &[(Image, ".docker")],
            Format::KernelInitrd => &[
                (Kernel, "-kernel"),
                (Initrd, "-initrd.img"),
                (Cmdline, "-cmdline"),
            ],
            Format::TarKernelInitrd => &[(Image, "-initrd.tar")],
            Format::IsoBios => &[(Image, ".iso")],
            Format::KernelIso => &[(Kernel, "-kernel"), (Cmdline, "-cmdline"), (Image, ".iso")],
            Format::IsoEfi => &[(Image, "-efi.iso")],
            Format::IsoEfiInitrd => &[(Image, "-efi-initrd.iso")],
            Format::RawBios => &[(Image, "-bios.img")],
            Format::RawEfi => &[(Image, "-efi.img")],
            Format::Qcow2Bios => &[(Image, ".qcow2")],
            Format::Qcow2Efi => &[(Image, "-efi.qcow2")],
            Format::Vhd | Format::DynamicVhd => &[(Image, ".vhd")],
            Format::Azure => &[(Image, "-azure.vhd")],
            Format::Vmdk => &[(Image, ".vmdk")],
            Format::Gcp => &[(Image, ".img.tar.gz")],
            Format::Aws => &[(Image, ".raw")],
            Format::KernelSquashfs => &[
                (Kernel, "-kernel"),
                (Cmdline, "-cmdline"),
                (Image, "-squashfs.img"),
            ],
            Format::KernelErofs => &[
                (Kernel, "-kernel"),
                (Cmdline, "-cmdline"),
                (Image, "-erofs.img"),
            ],
        }
    }

    /// The files the format writes for output name `name`. The
    /// `kernel+...` formats give the kernel, then the command line (and
    /// `kernel+initrd` the initrd between them), then the image.
    pub fn files(self, name: &str) -> Vec<String> {
        self.layout()
            .iter()
            .map(|(_, s)| format!("{name}{s}"))
            .collect()
    }

    /// The format's file of kind `kind` for output name `name`, if it
    /// writes one (`run` finds a build's kernel, initrd and image so).
    pub fn file(self, name: &str, kind: FileKind) -> Option<String> {
        self.layout()
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, s)| format!("{name}{s}"))
    }

    /// Whether this build of linuxkit writes the format (all but `rpi3`).
    pub fn is_implemented(self) -> bool {
        self.not_implemented_why().is_none()
    }

    /// Why the format is not written, for [`Format::is_implemented`]'s
    /// exceptions.
    pub fn not_implemented_why(self) -> Option<&'static str> {
        match self {
            Format::Rpi3 => Some(
                "the Raspberry Pi image needs the Pi's boot firmware and device trees (bootcode, start*.elf, bcm27*.dtb, config.txt), which no package here provides yet; build `--arch arm64 --format tar` (or `raw-efi` for a Pi with UEFI firmware) and lay out the SD card yourself meanwhile",
            ),
            _ => None,
        }
    }

    /// Whether the format boots a machine, and so needs the boot loaders
    /// (from [`crate::BOOTLOADERS`]).
    pub fn needs_bootloader(self) -> bool {
        matches!(
            self,
            Format::IsoBios | Format::IsoEfi | Format::IsoEfiInitrd
        ) || self.disk_plan().is_some()
    }

    /// Whether the format boots through a PC BIOS (isolinux): `iso-bios`
    /// and the BIOS disks.
    pub fn boots_from_bios(self) -> bool {
        self == Format::IsoBios || self.disk_plan().is_some_and(|p| p.base == Base::Bios)
    }

    /// Whether the format boots through UEFI (systemd-boot): the EFI ISOs
    /// and disks.
    pub fn boots_from_uefi(self) -> bool {
        self.needs_bootloader() && !self.boots_from_bios()
    }

    /// Whether the format is made of the kernel (the configuration's
    /// `kernel` section): every format but `tar` and `docker` (and `rpi3`,
    /// which is not written).
    pub fn needs_kernel(self) -> bool {
        self.needs_bootloader()
            || matches!(
                self,
                Format::KernelInitrd
                    | Format::TarKernelInitrd
                    | Format::KernelSquashfs
                    | Format::KernelErofs
                    | Format::KernelIso
            )
    }

    /// Whether `--size` sets the size of the format's disk.
    pub fn takes_size(self) -> bool {
        self.disk_plan().is_some()
    }

    /// The default size of the format's disk in MiB, for the formats that
    /// take `--size` (`None`: the content's size).
    pub fn default_size_mb(self) -> Option<u64> {
        self.disk_plan().and_then(|p| p.default_mb)
    }

    /// Whether the format is one stream that can go to a single file or
    /// standard output (`build --o`).
    pub fn streams(self) -> bool {
        matches!(self, Format::Tar | Format::Docker)
    }

    /// A disk format's disk, container and default size.
    pub(crate) fn disk_plan(self) -> Option<DiskPlan> {
        const GIB: Option<u64> = Some(1024);
        let (base, container, default_mb) = match self {
            Format::RawBios => (Base::Bios, Container::Raw, None),
            Format::Aws => (Base::Bios, Container::Raw, GIB),
            Format::Qcow2Bios => (Base::Bios, Container::Disk(DiskFormat::Qcow2), GIB),
            Format::Vhd => (Base::Bios, Container::Disk(DiskFormat::Vhd), GIB),
            Format::DynamicVhd => (Base::Bios, Container::Disk(DiskFormat::DynamicVhd), GIB),
            Format::Vmdk => (Base::Bios, Container::Disk(DiskFormat::Vmdk), GIB),
            Format::Gcp => (Base::Bios, Container::Disk(DiskFormat::Gcp), GIB),
            Format::Azure => (Base::Bios, Container::Disk(DiskFormat::AzureVhd), GIB),
            Format::RawEfi => (Base::Efi, Container::Raw, None),
            Format::Qcow2Efi => (Base::Efi, Container::Disk(DiskFormat::Qcow2), None),
            _ => return None,
        };
        Some(DiskPlan {
            base,
            container,
            default_mb,
        })
    }

    /// The first two of `formats` that write the same file (other than
    /// the kernel and command line, which are the same whoever writes
    /// them), with that file's name for output name `NAME`.
    pub fn clash(formats: &[Format]) -> Option<(Format, Format, String)> {
        for (i, &a) in formats.iter().enumerate() {
            for &b in &formats[i + 1..] {
                if a == b {
                    continue;
                }
                // The kernel and the command line are the same whoever
                // writes them: writing them twice is no clash.
                let shared = |k: FileKind| matches!(k, FileKind::Kernel | FileKind::Cmdline);
                if let Some((_, s)) = a
                    .layout()
                    .iter()
                    .find(|(k, s)| !shared(*k) && b.layout().iter().any(|(_, t)| t == s))
                {
                    return Some((a, b, format!("NAME{s}")));
                }
            }
        }
        None
    }

    /// The names of `formats`, separated by commas.
    pub fn list(formats: impl IntoIterator<Item = Format>) -> String {
        formats
            .into_iter()
            .map(Format::name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--format` name that names no format: says which, the closest known
/// name when there is one, and every known name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormat {
    /// The name as given.
    pub given: String,
}

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown format `{}`", self.given)?;
        if let Some(c) = self.closest() {
            write!(f, ", did you mean `{c}`?")?;
        }
        write!(f, " (known formats: {})", Format::list(Format::ALL))
    }
}

impl std::error::Error for UnknownFormat {}

impl UnknownFormat {
    /// The known format closest to the misspelt one.
    pub fn closest(&self) -> Option<Format> {
        Format::ALL
            .iter()
            .map(|k| (strsim::jaro_winkler(&self.given, k.name()), *k))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| k)
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFormat {
                given: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_sorted() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
            assert_eq!(f.to_string(), f.name());
        }
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let mut all = Format::ALL.to_vec();
        all.dedup();
        assert_eq!(all.len(), Format::ALL.len());
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = "iso-bio".parse::<Format>().unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(
                "unknown format `iso-bio`, did you mean `iso-bios`? (known formats: aws, azure,"
            ),
            "{text}"
        );
        assert!(text.ends_with("vhd, vmdk)"), "{text}");
        let e = "zzz".parse::<Format>().unwrap_err();
        assert!(
            e.to_string().starts_with("unknown format `zzz` (known"),
            "{e}"
        );
    }

    #[test]
    fn the_reference_file_names() {
        assert_eq!(
            Format::KernelInitrd.files("x"),
            ["x-kernel", "x-initrd.img", "x-cmdline"]
        );
        assert_eq!(Format::Gcp.files("x"), ["x.img.tar.gz"]);
        assert_eq!(Format::KernelIso.files("x")[2], "x.iso");
        assert_eq!(
            Format::KernelSquashfs.file("x", FileKind::Image).as_deref(),
            Some("x-squashfs.img")
        );
        assert_eq!(Format::KernelSquashfs.file("x", FileKind::Initrd), None);
    }

    #[test]
    fn clashes_are_the_same_file_with_different_content() {
        use Format::*;
        assert_eq!(
            Format::clash(&[IsoBios, KernelIso]),
            Some((IsoBios, KernelIso, "NAME.iso".into()))
        );
        assert_eq!(
            Format::clash(&[Tar, Vhd, DynamicVhd]).map(|c| c.2),
            Some("NAME.vhd".into())
        );
        assert!(Format::clash(&[Tar, Rpi3]).is_some());
        // The kernel and command line are the same whoever writes them.
        assert_eq!(
            Format::clash(&[KernelInitrd, KernelSquashfs, KernelErofs]),
            None
        );
        // Every pair of distinct formats but those three writes apart.
        let mut pairs = 0;
        for a in Format::ALL {
            for b in Format::ALL {
                if a < b && Format::clash(&[a, b]).is_some() {
                    pairs += 1;
                }
            }
        }
        assert_eq!(pairs, 3);
    }

    #[test]
    fn what_each_format_needs() {
        assert!(!Format::Tar.needs_kernel() && !Format::Docker.needs_kernel());
        assert!(
            Format::KernelSquashfs.needs_kernel() && !Format::KernelSquashfs.needs_bootloader()
        );
        assert!(Format::IsoEfi.needs_bootloader() && !Format::IsoEfi.takes_size());
        assert!(Format::Qcow2Efi.takes_size() && Format::Qcow2Efi.default_size_mb().is_none());
        assert_eq!(Format::Vmdk.default_size_mb(), Some(1024));
        let streams: Vec<Format> = Format::ALL.into_iter().filter(|f| f.streams()).collect();
        assert_eq!(streams, [Format::Docker, Format::Tar]);
        let missing: Vec<Format> = Format::ALL
            .into_iter()
            .filter(|f| !f.is_implemented())
            .collect();
        assert_eq!(missing, [Format::Rpi3]);
    }
}
