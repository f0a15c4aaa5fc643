//! The output formats `linuxkit build --format` writes, their file names,
//! and writing them so that a failed build leaves no partial file behind.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use linuxkit_rootfs::{Entry, EntrySink};

use linuxkit_rootfs::Part;

use crate::bootable::{BootFiles, Bootloader};
use crate::cpio::Compression;
use crate::disk::DiskFormat;
use crate::initrd::{InitrdReport, SegmentCache, build_initrd_with_id};
use crate::tar::TarWriter;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rootfs(#[from] linuxkit_rootfs::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Options shared by the formats.
#[derive(Debug, Clone, Default)]
pub struct OutputOptions {
    /// How the initrd is compressed.
    pub compression: Compression,
    pub level: Option<i32>,
    /// Where compressed initrd parts are cached between builds.
    pub segments: Option<SegmentCache>,
    /// Write the kernel uncompressed (`--decompress-kernel`).
    pub decompress_kernel: bool,
    /// The boot loaders, which the bootable formats need
    /// ([`needs_bootloader`]).
    pub bootloader: Option<Bootloader>,
    /// `--size` in MiB: the size of the disk formats ([`takes_size`]);
    /// `None` for each format's default.
    pub size_mb: Option<u64>,
}

/// The files a format writes, for `NAME`. The reference's names.
pub fn output_files(format: &str, name: &str) -> Vec<String> {
    match format {
        "tar" => vec![format!("{name}.tar")],
        "docker" => vec![format!("{name}.docker")],
        "kernel+initrd" => vec![
            format!("{name}-kernel"),
            format!("{name}-initrd.img"),
            format!("{name}-cmdline"),
        ],
        "tar-kernel-initrd" => vec![format!("{name}-initrd.tar")],
        "iso-bios" => vec![format!("{name}.iso")],
        "kernel+iso" => vec![
            format!("{name}-kernel"),
            format!("{name}-cmdline"),
            format!("{name}.iso"),
        ],
        "iso-efi" => vec![format!("{name}-efi.iso")],
        "iso-efi-initrd" => vec![format!("{name}-efi-initrd.iso")],
        "raw-bios" => vec![format!("{name}-bios.img")],
        "raw-efi" => vec![format!("{name}-efi.img")],
        "qcow2-bios" => vec![format!("{name}.qcow2")],
        "qcow2-efi" => vec![format!("{name}-efi.qcow2")],
        "vhd" | "dynamic-vhd" => vec![format!("{name}.vhd")],
        "azure" => vec![format!("{name}-azure.vhd")],
        "vmdk" => vec![format!("{name}.vmdk")],
        "gcp" => vec![format!("{name}.img.tar.gz")],
        "aws" => vec![format!("{name}.raw")],
        "kernel+squashfs" => vec![
            format!("{name}-kernel"),
            format!("{name}-cmdline"),
            format!("{name}-squashfs.img"),
        ],
        "kernel+erofs" => vec![
            format!("{name}-kernel"),
            format!("{name}-cmdline"),
            format!("{name}-erofs.img"),
        ],
        "rpi3" => vec![format!("{name}.tar")],
        _ => Vec::new(),
    }
}

/// Formats this build of linuxkit can write.
pub const SUPPORTED: &[&str] = &[
    "tar",
    "docker",
    "kernel+initrd",
    "tar-kernel-initrd",
    "kernel+squashfs",
    "kernel+erofs",
    "kernel+iso",
    "iso-bios",
    "iso-efi",
    "iso-efi-initrd",
    "raw-bios",
    "raw-efi",
    "qcow2-bios",
    "qcow2-efi",
    "vhd",
    "dynamic-vhd",
    "vmdk",
    "gcp",
    "aws",
    "azure",
];

/// Whether `format` boots a machine, and so needs the boot loaders (from
/// [`crate::BOOTLOADER_IMAGE`]).
pub fn needs_bootloader(format: &str) -> bool {
    matches!(format, "iso-bios" | "iso-efi" | "iso-efi-initrd") || disk_plan(format).is_some()
}

/// Whether `format` is made of the kernel (the configuration's `kernel`
/// section): every format but `tar` and `docker`.
pub fn needs_kernel(format: &str) -> bool {
    needs_bootloader(format)
        || matches!(
            format,
            "kernel+initrd"
                | "tar-kernel-initrd"
                | "kernel+squashfs"
                | "kernel+erofs"
                | "kernel+iso"
        )
}

/// Whether `--size` sets the size of `format`'s disk.
pub fn takes_size(format: &str) -> bool {
    disk_plan(format).is_some()
}

/// What a disk format's disk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    /// The isohybrid BIOS ISO (`iso-bios`) as the disk: isolinux, booted
    /// by its MBR.
    Bios,
    /// A GPT disk with a FAT32 ESP holding systemd-boot.
    Efi,
}

impl Base {
    fn name(self) -> &'static str {
        match self {
            Base::Bios => "BIOS",
            Base::Efi => "EFI",
        }
    }
}

/// Whether a container's identifiers derive from the boot seed (the VHD
/// unique id, the VMDK content id; see `disk::write_disk`). qcow2 and the
/// GCE tarball have none, so they spare hashing the kernel.
fn uses_seed(d: DiskFormat) -> bool {
    !matches!(d, DiskFormat::Qcow2 | DiskFormat::Gcp)
}

/// A base image laid out, not yet written: its length is known, so a disk
/// container can be made from it while it is written.
enum LaidOut {
    Bios(crate::bootable::BiosIso),
    Efi {
        fat: crate::fat::FatBuilder,
        layout: crate::gpt::Layout,
    },
}

impl LaidOut {
    fn len(&self) -> u64 {
        match self {
            LaidOut::Bios(iso) => iso.len(),
            LaidOut::Efi { layout, .. } => layout.sectors * crate::mbr::SECTOR,
        }
    }

    /// Writes the image to a stream (the EFI disk's free space as zeros).
    fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            LaidOut::Bios(iso) => iso.write(out),
            LaidOut::Efi { fat, layout } => {
                crate::bootable::stream_efi_disk(fat, layout, out).map(drop)
            }
        }
    }
}

/// How a disk format stores its disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Raw,
    Disk(DiskFormat),
}

/// A disk format's disk, container and default size in MiB (`None`: the
/// content's size).
fn disk_plan(format: &str) -> Option<(Base, Container, Option<u64>)> {
    const GIB: Option<u64> = Some(1024);
    Some(match format {
        "raw-bios" => (Base::Bios, Container::Raw, None),
        "aws" => (Base::Bios, Container::Raw, GIB),
        "qcow2-bios" => (Base::Bios, Container::Disk(DiskFormat::Qcow2), GIB),
        "vhd" => (Base::Bios, Container::Disk(DiskFormat::Vhd), GIB),
        "dynamic-vhd" => (Base::Bios, Container::Disk(DiskFormat::DynamicVhd), GIB),
        "vmdk" => (Base::Bios, Container::Disk(DiskFormat::Vmdk), GIB),
        "gcp" => (Base::Bios, Container::Disk(DiskFormat::Gcp), GIB),
        "azure" => (Base::Bios, Container::Disk(DiskFormat::AzureVhd), GIB),
        "raw-efi" => (Base::Efi, Container::Raw, None),
        "qcow2-efi" => (Base::Efi, Container::Disk(DiskFormat::Qcow2), None),
        _ => return None,
    })
}

/// A file being written under a temporary name in its final directory;
/// [`Staged::commit`] renames it into place, dropping it deletes it.
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl Staged {
    pub fn create(dest: PathBuf) -> Result<Staged> {
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io(format!("cannot create {}", tmp.display())))?;
        Ok(Staged {
            tmp,
            dest,
            file: Some(file),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("open until committed")
    }

    /// Where the content is until the commit.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    pub fn commit(self) -> Result<PathBuf> {
        let dest = self.dest.clone();
        self.commit_to(dest)
    }

    /// Commits under another name than the one it was created for.
    pub fn commit_to(mut self, dest: PathBuf) -> Result<PathBuf> {
        let f = self.file.take().expect("open until committed");
        f.sync_all()
            .map_err(io(format!("cannot write {}", self.tmp.display())))?;
        drop(f);
        std::fs::rename(&self.tmp, &dest)
            .map_err(io(format!("cannot create {}", dest.display())))?;
        Ok(dest)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `format` for `name` into `dir`; returns the files written. All
/// files of a format appear together, only once everything succeeded.
pub fn write_format(
    format: &str,
    dir: &Path,
    name: &str,
    opts: &OutputOptions,
    parts: &[Part],
) -> Result<Vec<PathBuf>> {
    write_formats(&[format], dir, name, opts, parts)
}

/// Writes several formats for `name` into `dir`, in order, sharing what
/// they have in common: the initrd is built once, the BIOS image (the ISO
/// the BIOS disks are made of) once, the EFI disk once. Each format's files
/// appear together once that format succeeded; on an error the formats
/// written before it stay.
pub fn write_formats(
    formats: &[&str],
    dir: &Path,
    name: &str,
    opts: &OutputOptions,
    parts: &[Part],
) -> Result<Vec<PathBuf>> {
    write_formats_report(formats, dir, name, opts, parts).map(|(w, _)| w)
}

/// [`write_formats`], also returning where the initrd's bytes went (when a
/// format built an initrd).
pub fn write_formats_report(
    formats: &[&str],
    dir: &Path,
    name: &str,
    opts: &OutputOptions,
    parts: &[Part],
) -> Result<(Vec<PathBuf>, Option<InitrdReport>)> {
    let mut s = Session {
        dir,
        name,
        opts,
        parts,
        boot: None,
        bios: None,
        efi: None,
        uses: formats
            .iter()
            .filter_map(|f| disk_plan(f).map(|p| p.0))
            .chain(
                formats
                    .iter()
                    .filter(|f| **f == "iso-bios")
                    .map(|_| Base::Bios),
            )
            .collect(),
    };
    let mut written = Vec::new();
    for f in formats {
        written.extend(s.write(f)?);
    }
    let report = s.boot.take().map(|b| InitrdReport {
        kernel_bytes: b.kernel.len() as u64,
        ..b.report
    });
    Ok((written, report))
}

/// The kernel, the initrd, the command line and the microcode, built once
/// per build.
struct BootSet {
    /// Shared with the images that hold it (see `BootFiles::kernel`).
    kernel: Arc<Vec<u8>>,
    /// Staged as `NAME-initrd.img` until `kernel+initrd` commits it; then
    /// read from there.
    initrd: Initrd,
    initrd_len: u64,
    cmdline: Vec<u8>,
    ucode: Option<Vec<u8>>,
    /// Stands for the initrd's bytes (see `BuiltInitrd::id`).
    initrd_id: [u8; 32],
    /// The bootable formats' identifier seed, made on first use.
    seed: std::cell::OnceCell<[u8; 32]>,
    report: InitrdReport,
}

enum Initrd {
    Staged(Staged),
    Committed(PathBuf),
}

impl BootSet {
    fn initrd_path(&self) -> &Path {
        match &self.initrd {
            Initrd::Staged(s) => s.path(),
            Initrd::Committed(p) => p,
        }
    }
}

/// A scratch image shared by several formats (`Session::uses` counts
/// those still to come).
struct Scratch {
    staged: Staged,
    len: u64,
}

struct Session<'a, 'p> {
    dir: &'a Path,
    name: &'a str,
    opts: &'a OutputOptions,
    parts: &'a [Part<'p>],
    boot: Option<BootSet>,
    bios: Option<Scratch>,
    efi: Option<Scratch>,
    /// One entry per format still to use a base image.
    uses: Vec<Base>,
}

impl<'a> Session<'a, '_> {
    fn write(&mut self, format: &str) -> Result<Vec<PathBuf>> {
        let paths: Vec<PathBuf> = output_files(format, self.name)
            .into_iter()
            .map(|f| self.dir.join(f))
            .collect();
        match format {
            "tar" => {
                let mut s = Staged::create(paths[0].clone())?;
                write_tar_to(s.file(), self.parts, false)?;
                Ok(vec![s.commit()?])
            }
            "docker" => {
                let mut s = Staged::create(paths[0].clone())?;
                write_tar_to(s.file(), self.parts, true)?;
                Ok(vec![s.commit()?])
            }
            "kernel+initrd" => self.kernel_initrd(format, &paths),
            "tar-kernel-initrd" => self.tar_kernel_initrd(format, &paths[0]),
            "kernel+squashfs" | "kernel+erofs" | "kernel+iso" => {
                let kind = match format {
                    "kernel+squashfs" => crate::fstree::ImageKind::Squashfs,
                    "kernel+erofs" => crate::fstree::ImageKind::Erofs,
                    _ => crate::fstree::ImageKind::Iso,
                };
                crate::fstree::write_kernel_image(kind, format, self.dir, &paths, self.parts)
            }
            "iso-bios" => {
                self.bios_image(format)?;
                Ok(vec![self.publish(Base::Bios, &paths[0], None)?])
            }
            "iso-efi" | "iso-efi-initrd" => {
                let bl = self.bootloader(format)?;
                self.boot(format)?;
                let b = self.boot_files();
                let mut s = Staged::create(paths[0].clone())?;
                let mut w = BufWriter::with_capacity(1 << 20, s.file());
                crate::bootable::write_efi_iso(
                    &b,
                    bl,
                    format == "iso-efi-initrd",
                    self.dir,
                    &mut w,
                )
                .and_then(|()| w.flush())
                .map_err(io(format!("cannot write {}", paths[0].display())))?;
                drop(w);
                Ok(vec![s.commit()?])
            }
            f => match disk_plan(f) {
                Some((base, container, default_mb)) => {
                    self.disk(format, base, container, default_mb, &paths[0])
                }
                None => Err(Error::Usage(format!(
                    "output format {f} is not implemented yet (available: {})",
                    SUPPORTED.join(", ")
                ))),
            },
        }
    }

    /// Builds the kernel, initrd and command line, once.
    fn boot(&mut self, format: &str) -> Result<&mut BootSet> {
        if self.boot.is_none() {
            let built = build_initrd_with_id(
                self.parts,
                self.dir.join(format!("{}-initrd.img", self.name)),
                self.opts,
                self.opts.segments.as_ref(),
            )?;
            let (initrd, mut boot, initrd_id, report) =
                (built.staged, built.boot, built.id, built.report);
            let kernel = boot
                .remove("boot/kernel")
                .ok_or_else(|| no_kernel(format))?;
            let kernel = if self.opts.decompress_kernel {
                crate::kernel::decompress_kernel(&kernel)?
            } else {
                kernel
            };
            let mut initrd = initrd;
            let initrd_len = initrd
                .file()
                .metadata()
                .map_err(io("cannot read the initrd"))?
                .len();
            self.boot = Some(BootSet {
                kernel: Arc::new(kernel),
                initrd: Initrd::Staged(initrd),
                initrd_len,
                cmdline: boot.remove("boot/cmdline").unwrap_or_default(),
                ucode: boot.remove("boot/ucode.cpio"),
                initrd_id,
                seed: std::cell::OnceCell::new(),
                report,
            });
        }
        Ok(self.boot.as_mut().expect("built above"))
    }

    fn boot_files(&self) -> BootFiles<'_> {
        let b = self.boot.as_ref().expect("built by boot()");
        BootFiles {
            kernel: &b.kernel,
            initrd: b.initrd_path(),
            initrd_len: b.initrd_len,
            cmdline: cmdline_str(&b.cmdline),
            initrd_id: &b.initrd_id,
            seed: &b.seed,
        }
    }

    fn bootloader(&self, format: &str) -> Result<&'a Bootloader> {
        self.opts.bootloader.as_ref().ok_or_else(|| {
            Error::Usage(format!(
                "{format} needs the boot loaders of {}, which were not given",
                crate::BOOTLOADER_IMAGE
            ))
        })
    }

    fn kernel_initrd(&mut self, format: &str, paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
        self.boot(format)?;
        let b = self.boot.as_mut().expect("built above");
        let mut k = Staged::create(paths[0].clone())?;
        k.file()
            .write_all(&b.kernel)
            .map_err(io("cannot write the kernel"))?;
        let mut c = None;
        if !b.cmdline.is_empty() {
            let mut s = Staged::create(paths[2].clone())?;
            s.file()
                .write_all(&b.cmdline)
                .map_err(io("cannot write the cmdline"))?;
            c = Some(s);
        }
        let mut written = vec![k.commit()?];
        let initrd = std::mem::replace(&mut b.initrd, Initrd::Committed(paths[1].clone()));
        match initrd {
            Initrd::Staged(s) => written.push(s.commit_to(paths[1].clone())?),
            Initrd::Committed(p) => {
                // Already written for this build (the same format twice).
                b.initrd = Initrd::Committed(p.clone());
                written.push(p);
            }
        }
        if let Some(c) = c {
            written.push(c.commit()?);
        }
        Ok(written)
    }

    fn tar_kernel_initrd(&mut self, format: &str, dest: &Path) -> Result<Vec<PathBuf>> {
        self.boot(format)?;
        let b = self.boot.as_ref().expect("built above");
        let mut s = Staged::create(dest.to_path_buf())?;
        let mut tar = TarWriter::new(BufWriter::new(s.file()));
        let mut add = |n: &str, data: &mut dyn Read, size: u64| -> Result<()> {
            tar.add(&Entry::file(n, size), data).map_err(Error::from)
        };
        add("kernel", &mut &b.kernel[..], b.kernel.len() as u64)?;
        let mut f = File::open(b.initrd_path()).map_err(io("cannot read the initrd"))?;
        add("initrd.img", &mut f, b.initrd_len)?;
        add("cmdline", &mut &b.cmdline[..], b.cmdline.len() as u64)?;
        if let Some(u) = &b.ucode {
            add("ucode.cpio", &mut &u[..], u.len() as u64)?;
        }
        tar.finish()
            .and_then(|mut w| w.flush())
            .map_err(io("cannot write the tar"))?;
        Ok(vec![s.commit()?])
    }

    /// The BIOS ISO, built once into a scratch file.
    fn bios_image(&mut self, format: &str) -> Result<()> {
        if self.bios.is_none() {
            self.bios = Some(self.scratch(format, Base::Bios)?);
        }
        Ok(())
    }

    /// The EFI disk (GPT, FAT32 ESP), built once into a scratch file.
    fn efi_image(&mut self, format: &str) -> Result<()> {
        if self.efi.is_none() {
            self.efi = Some(self.scratch(format, Base::Efi)?);
        }
        Ok(())
    }

    /// Lays out a base image: what it holds and how long it is, before
    /// any of it is written.
    fn lay_out(&mut self, format: &str, base: Base) -> Result<LaidOut> {
        let bl = self.bootloader(format)?;
        self.boot(format)?;
        let b = self.boot_files();
        match base {
            Base::Bios => Ok(LaidOut::Bios(
                crate::bootable::bios_iso(&b, bl, self.dir)
                    .map_err(io("cannot write the BIOS image"))?,
            )),
            Base::Efi => {
                let fat =
                    crate::bootable::esp(&b, bl, true).map_err(io("cannot lay out the ESP"))?;
                let esp_len = fat.image_size().map_err(io("cannot lay out the ESP"))?;
                let content = crate::gpt::Layout::disk_size_for(&[esp_len]);
                let disk = self.size(format, content, None)?;
                let layout = crate::bootable::efi_disk_layout(&b.seed(), esp_len, disk)
                    .map_err(io("cannot lay out the EFI disk"))?;
                Ok(LaidOut::Efi { fat, layout })
            }
        }
    }

    /// Writes a base image to a scratch file, for several formats to use.
    fn scratch(&mut self, format: &str, base: Base) -> Result<Scratch> {
        let image = self.lay_out(format, base)?;
        let len = image.len();
        let context = format!("cannot write the {} image", base.name());
        let mut staged = Staged::create(self.dir.join(format!(
            "{}-{}.scratch",
            self.name,
            base.name().to_lowercase()
        )))?;
        match &image {
            LaidOut::Bios(iso) => {
                let mut w = BufWriter::with_capacity(1 << 20, staged.file());
                iso.write(&mut w)
                    .and_then(|()| w.flush())
                    .map_err(io(context.clone()))?;
                drop(w);
                let written = staged
                    .file()
                    .stream_position()
                    .map_err(io(context.clone()))?;
                if written != len {
                    return Err(Error::Io {
                        context,
                        source: std::io::Error::other(format!(
                            "wrote {written} bytes, laid out as {len}"
                        )),
                    });
                }
            }
            LaidOut::Efi { fat, layout } => {
                crate::bootable::write_efi_disk(fat, layout, staged.file())
                    .map_err(io(context.clone()))?;
                staged.file().set_len(len).map_err(io(context))?;
            }
        }
        Ok(Scratch { staged, len })
    }

    /// The size of a disk whose content takes `content` bytes: `--size`,
    /// else `default_mb` or the content's (whichever is larger).
    fn size(&self, format: &str, content: u64, default_mb: Option<u64>) -> Result<u64> {
        match self.opts.size_mb {
            Some(mb) => {
                let size = mb << 20;
                if content > size {
                    return Err(Error::Usage(format!(
                        "format {format}: {}",
                        crate::bootable::ContentTooLarge { content, size }
                    )));
                }
                Ok(size)
            }
            None => Ok(default_mb.map_or(content, |mb| (mb << 20).max(content))),
        }
    }

    /// Writes a disk format.
    fn disk(
        &mut self,
        format: &str,
        base: Base,
        container: Container,
        default_mb: Option<u64>,
        dest: &Path,
    ) -> Result<Vec<PathBuf>> {
        let built = match base {
            Base::Bios => self.bios.is_some(),
            Base::Efi => self.efi.is_some(),
        };
        let last = self.uses.iter().filter(|b| **b == base).count() == 1;
        if let Container::Disk(d) = container
            && last
            && !built
            && !matches!(d, DiskFormat::Vhd | DiskFormat::AzureVhd)
        {
            return self.stream_disk(format, base, d, default_mb, dest);
        }
        match base {
            Base::Bios => self.bios_image(format)?,
            Base::Efi => self.efi_image(format)?,
        }
        let len = match base {
            Base::Bios => self.bios.as_ref(),
            Base::Efi => self.efi.as_ref(),
        }
        .expect("built above")
        .len;
        let size = self.size(format, len, default_mb)?;
        match container {
            Container::Raw => Ok(vec![self.publish(base, dest, Some(size))?]),
            Container::Disk(d @ (DiskFormat::Vhd | DiskFormat::AzureVhd))
                if self.uses.iter().filter(|b| **b == base).count() == 1 =>
            {
                // A fixed VHD is the raw disk and a footer: the last user
                // of the disk turns it into one in place.
                let align = if d == DiskFormat::Vhd { 512 } else { 1 << 20 };
                let context = format!("cannot write {}", dest.display());
                let seed = self.boot_files().seed();
                let (size, footer) = crate::disk::vhd::fixed_footer(len, size, align, &seed)
                    .map_err(io(context.clone()))?;
                let mut scratch = match base {
                    Base::Bios => self.bios.take(),
                    Base::Efi => self.efi.take(),
                }
                .expect("built above");
                self.used(base);
                let f = scratch.staged.file();
                f.set_len(size).map_err(io(context.clone()))?;
                f.seek(SeekFrom::Start(size)).map_err(io(context.clone()))?;
                f.write_all(&footer).map_err(io(context))?;
                Ok(vec![scratch.staged.commit_to(dest.to_path_buf())?])
            }
            Container::Disk(d) => {
                let seed = uses_seed(d).then(|| self.boot_files().seed());
                let scratch = match base {
                    Base::Bios => self.bios.as_mut(),
                    Base::Efi => self.efi.as_mut(),
                }
                .expect("built above");
                let context = format!("cannot write {}", dest.display());
                let f = scratch.staged.file();
                f.seek(SeekFrom::Start(0)).map_err(io(context.clone()))?;
                let raw = std::io::BufReader::with_capacity(1 << 20, &*f);
                let mut s = Staged::create(dest.to_path_buf())?;
                write_container(d, raw, len, size, seed.as_ref(), dest, s.file())
                    .map_err(io(context))?;
                self.used(base);
                Ok(vec![s.commit()?])
            }
        }
    }

    /// Writes a disk container whose base image nothing else uses: the
    /// image is written straight into the container's writer (see
    /// [`crate::pipe`]), never stored. (A fixed VHD is the image itself
    /// with a footer, so it is written in place instead; see `disk`.)
    fn stream_disk(
        &mut self,
        format: &str,
        base: Base,
        d: DiskFormat,
        default_mb: Option<u64>,
        dest: &Path,
    ) -> Result<Vec<PathBuf>> {
        let image = self.lay_out(format, base)?;
        let len = image.len();
        let size = self.size(format, len, default_mb)?;
        let seed = uses_seed(d).then(|| self.boot_files().seed());
        let mut s = Staged::create(dest.to_path_buf())?;
        let out = s.file();
        crate::pipe::piped(
            |w| {
                image.write(w).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot write the {} image: {e}", base.name()),
                    )
                })
            },
            |raw| write_container(d, raw, len, size, seed.as_ref(), dest, out),
        )
        .map_err(io(format!("cannot write {}", dest.display())))?;
        self.used(base);
        Ok(vec![s.commit()?])
    }

    /// Marks one use of a base image; the last drops it.
    fn used(&mut self, base: Base) {
        if let Some(i) = self.uses.iter().position(|b| *b == base) {
            self.uses.remove(i);
        }
        if !self.uses.contains(&base) {
            match base {
                Base::Bios => self.bios = None,
                Base::Efi => self.efi = None,
            }
        }
    }

    /// Writes a base image as it is to `dest`, extended with zeros (a hole)
    /// to `size`: renamed into place by its last user, copied otherwise.
    fn publish(&mut self, base: Base, dest: &Path, size: Option<u64>) -> Result<PathBuf> {
        if let Some(i) = self.uses.iter().position(|b| *b == base) {
            self.uses.remove(i);
        }
        let last = !self.uses.contains(&base);
        let slot = match base {
            Base::Bios => &mut self.bios,
            Base::Efi => &mut self.efi,
        };
        let context = format!("cannot write {}", dest.display());
        let grow = |f: &mut File, len: u64| -> Result<()> {
            if let Some(size) = size
                && size > len
            {
                f.set_len(size).map_err(io(context.clone()))?;
            }
            Ok(())
        };
        if last {
            let mut scratch = slot.take().expect("built before publishing");
            grow(scratch.staged.file(), scratch.len)?;
            return scratch.staged.commit_to(dest.to_path_buf());
        }
        let scratch = slot.as_mut().expect("built before publishing");
        let mut s = Staged::create(dest.to_path_buf())?;
        let src = scratch.staged.file();
        src.seek(SeekFrom::Start(0)).map_err(io(context.clone()))?;
        std::io::copy(&mut src.take(scratch.len), s.file()).map_err(io(context.clone()))?;
        grow(s.file(), scratch.len)?;
        s.commit()
    }
}

/// Writes disk container `d` to `out` (the staged file of `dest`, whose
/// name a VMDK records) from a base image of `len` bytes read from `raw`,
/// as a disk of `size` bytes.
fn write_container(
    d: DiskFormat,
    raw: impl Read,
    len: u64,
    size: u64,
    seed: Option<&[u8; 32]>,
    dest: &Path,
    out: &File,
) -> std::io::Result<()> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut w = BufWriter::with_capacity(1 << 20, out);
    crate::disk::write_disk(d, raw, len, size, &name, seed, &mut w)?;
    w.flush()
}

/// The command line as text (without a trailing line end).
fn cmdline_str(c: &[u8]) -> &str {
    std::str::from_utf8(c)
        .unwrap_or("")
        .trim_end_matches(['\n', '\r'])
}

fn no_kernel(format: &str) -> Error {
    Error::Usage(format!(
        "{format} needs a kernel: the configuration has no `kernel` section"
    ))
}

const DOCKERFILE: &[u8] = b"FROM scratch\nWORKDIR /\nENTRYPOINT [\"/bin/rc.init\"]\nCOPY . ./\n";

/// Writes the `tar` (or, with `dockerfile`, the `docker`) format to any
/// writer: `build --o FILE` and `build --o -`.
pub fn write_tar_to(out: impl Write, parts: &[Part], dockerfile: bool) -> Result<()> {
    let mut tar = TarWriter::new(BufWriter::with_capacity(1 << 20, out));
    for p in parts {
        p.produce(&mut tar)?;
    }
    if dockerfile {
        tar.add(
            &Entry::file("Dockerfile", DOCKERFILE.len() as u64),
            &mut &DOCKERFILE[..],
        )?;
    }
    tar.finish()
        .and_then(|mut w| w.flush())
        .map_err(io("cannot write the tar"))
}
