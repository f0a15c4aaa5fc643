//! The orchestrator: writes the formats of one build ([`write_formats`]),
//! sharing what they have in common, so that a failed build leaves no
//! partial file behind.
//!
//! This is the top of the crate: it dispatches each [`Format`] to the
//! writers below it (tar, the initrd, the file system images, the bootable
//! images and the disk containers), which know nothing of each other's
//! formats nor of this module.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use linuxkit_rootfs::{Entry, EntryKind, EntrySink, Resolve};

use linuxkit_rootfs::Part;

use crate::bootable::{BootFiles, Bootloader};
use crate::compress::Compression;
use crate::error::{Error, Result, io};
use crate::format::{Base, Container, DiskFormat, DiskPlan, FileKind, Format};
use crate::fstree::FsTree;
use crate::initrd::{InitrdOptions, InitrdReport, SegmentCache, build_initrd_with_id};
use crate::tar::TarWriter;
use linuxkit_base::staged::Staged;

/// Options shared by the formats.
#[derive(Debug, Clone, Default)]
pub struct OutputOptions {
    /// How the initrd is compressed.
    pub compression: Compression,
    /// The initrd's compression level; `None` for the method's default.
    pub level: Option<i32>,
    /// Where compressed initrd parts are cached between builds.
    pub segments: Option<SegmentCache>,
    /// Write the kernel uncompressed (`--decompress-kernel`).
    pub decompress_kernel: bool,
    /// The boot loaders, which the bootable formats need
    /// ([`Format::needs_bootloader`]).
    pub bootloader: Option<Bootloader>,
    /// `--size` in MiB: the size of the disk formats ([`Format::takes_size`]);
    /// `None` for each format's default.
    pub size_mb: Option<u64>,
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

/// Writes `format` for `name` into `dir`; returns the files written. All
/// files of a format appear together, only once everything succeeded.
pub fn write_format(
    format: Format,
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
/// written before it stay. Formats that would write the same file are
/// refused before anything is written ([`Format::clash`]).
pub fn write_formats(
    formats: &[Format],
    dir: &Path,
    name: &str,
    opts: &OutputOptions,
    parts: &[Part],
) -> Result<Vec<PathBuf>> {
    write_formats_report(formats, dir, name, opts, parts).map(|(w, _)| w)
}

/// Refuses formats that would write the same file in one build
/// ([`Format::clash`]).
pub fn check_together(formats: &[Format]) -> Result<()> {
    match Format::clash(formats) {
        Some((first, second, file)) => Err(Error::SameFile {
            first,
            second,
            file,
        }),
        None => Ok(()),
    }
}

/// [`write_formats`], also returning where the initrd's bytes went (when a
/// format built an initrd).
pub fn write_formats_report(
    formats: &[Format],
    dir: &Path,
    name: &str,
    opts: &OutputOptions,
    parts: &[Part],
) -> Result<(Vec<PathBuf>, Option<InitrdReport>)> {
    check_together(formats)?;
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
            .filter_map(|f| f.disk_plan().map(|p| p.base))
            .chain(
                formats
                    .iter()
                    .filter(|f| **f == Format::IsoBios)
                    .map(|_| Base::Bios),
            )
            .collect(),
    };
    let mut written = Vec::new();
    for &f in formats {
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
    /// Staged as `NAME-initrd.img` until `kernel+initrd` commits it.
    initrd: Initrd,
    /// The initrd's handle, which readers use (see `BootFiles::initrd`).
    initrd_file: Arc<File>,
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
    /// `format`'s file of kind `kind` in the output directory.
    fn path(&self, format: Format, kind: FileKind) -> PathBuf {
        let file = format.file(self.name, kind);
        self.dir.join(file.expect("the format writes that file"))
    }

    fn write(&mut self, format: Format) -> Result<Vec<PathBuf>> {
        // For the formats of one file (the image), `paths[0]`; the others
        // name theirs by kind (`Session::path`).
        let paths: Vec<PathBuf> = format
            .files(self.name)
            .into_iter()
            .map(|f| self.dir.join(f))
            .collect();
        if let Some(DiskPlan {
            base,
            container,
            default_mb,
        }) = format.disk_plan()
        {
            return self.disk(format, base, container, default_mb, &paths[0]);
        }
        match format {
            Format::Tar | Format::Docker => {
                let mut s = Staged::create(paths[0].clone())?;
                write_stream(format, self.opts.decompress_kernel, s.file(), self.parts)?;
                Ok(vec![s.commit()?])
            }
            Format::KernelInitrd => self.kernel_initrd(format),
            Format::TarKernelInitrd => self.tar_kernel_initrd(format, &paths[0]),
            Format::KernelSquashfs | Format::KernelErofs | Format::KernelIso => {
                self.kernel_image(format)
            }
            Format::IsoBios => {
                self.bios_image(format)?;
                Ok(vec![self.publish(Base::Bios, &paths[0], None)?])
            }
            Format::IsoEfi | Format::IsoEfiInitrd => {
                let bl = self.bootloader(format)?;
                self.boot(format)?;
                let b = self.boot_files();
                let mut s = Staged::create(paths[0].clone())?;
                let mut w = BufWriter::with_capacity(1 << 20, s.file());
                crate::bootable::write_efi_iso(
                    &b,
                    bl,
                    format == Format::IsoEfiInitrd,
                    self.dir,
                    &mut w,
                )
                .and_then(|()| w.flush())
                .map_err(io(format!("cannot write {}", paths[0].display())))?;
                drop(w);
                Ok(vec![s.commit()?])
            }
            Format::Rpi3 => Err(Error::not_implemented(format)),
            // The disk formats, above.
            Format::Aws
            | Format::Azure
            | Format::DynamicVhd
            | Format::Gcp
            | Format::Qcow2Bios
            | Format::Qcow2Efi
            | Format::RawBios
            | Format::RawEfi
            | Format::Vhd
            | Format::Vmdk => unreachable!("{format} has a disk plan"),
        }
    }

    /// The kernel as the formats write it: decompressed with
    /// `--decompress-kernel`.
    fn kernel(&self, kernel: Vec<u8>) -> Result<Vec<u8>> {
        if self.opts.decompress_kernel {
            crate::kernel::decompress_kernel(&kernel)
        } else {
            Ok(kernel)
        }
    }

    /// Writes `kernel+squashfs`, `kernel+erofs` or `kernel+iso`: the
    /// kernel, the command line and the image. The command line is skipped
    /// when empty, as for `kernel+initrd`.
    fn kernel_image(&mut self, format: Format) -> Result<Vec<PathBuf>> {
        let image_path = self.path(format, FileKind::Image);
        let mut tree = FsTree::new(Some(self.dir)).map_err(io(format!(
            "cannot create a spool file in {}",
            self.dir.display()
        )))?;
        // The tree follows links as the kernel would anyway; through
        // `Resolve` it sees what every other format writes.
        let mut resolved = Resolve::new(&mut tree);
        for p in self.parts {
            p.produce(&mut resolved)?;
        }
        let kernel = tree
            .boot
            .remove("boot/kernel")
            .ok_or(Error::NoKernel(format))?;
        let kernel = self.kernel(kernel)?;
        let cmdline = tree.boot.remove("boot/cmdline").unwrap_or_default();
        let mut image = Staged::create(image_path.clone())?;
        let image_err = io(format!("cannot write {}", image_path.display()));
        match format {
            Format::KernelSquashfs => crate::squashfs::write_squashfs(&tree, image.file())
                .map(drop)
                .map_err(std::io::Error::other),
            Format::KernelErofs => {
                let mut w = BufWriter::with_capacity(1 << 20, image.file());
                crate::erofs::write_erofs(&tree, &mut w)
                    .map(drop)
                    .map_err(std::io::Error::other)
                    .and_then(|()| w.flush())
            }
            _ => crate::iso::write_iso(&tree, image.file()),
        }
        .map_err(image_err)?;
        drop(tree);
        let mut k = Staged::create(self.path(format, FileKind::Kernel))?;
        k.file()
            .write_all(&kernel)
            .map_err(io("cannot write the kernel"))?;
        let mut c = None;
        if !cmdline.is_empty() {
            let mut s = Staged::create(self.path(format, FileKind::Cmdline))?;
            s.file()
                .write_all(&cmdline)
                .map_err(io("cannot write the cmdline"))?;
            c = Some(s);
        }
        let mut written = vec![k.commit()?];
        if let Some(c) = c {
            written.push(c.commit()?);
        }
        written.push(image.commit()?);
        Ok(written)
    }

    /// Builds the kernel, initrd and command line, once.
    fn boot(&mut self, format: Format) -> Result<&mut BootSet> {
        if self.boot.is_none() {
            let built = build_initrd_with_id(
                self.parts,
                // Staged under kernel+initrd's name: that format commits it.
                self.path(Format::KernelInitrd, FileKind::Initrd),
                &InitrdOptions {
                    compression: self.opts.compression,
                    level: self.opts.level,
                },
                self.opts.segments.as_ref(),
            )?;
            let (initrd, mut boot, initrd_id, report) =
                (built.staged, built.boot, built.id, built.report);
            let kernel = boot.remove("boot/kernel").ok_or(Error::NoKernel(format))?;
            let kernel = self.kernel(kernel)?;
            let mut initrd = initrd;
            let initrd_len = initrd
                .file()
                .metadata()
                .map_err(io("cannot read the initrd"))?
                .len();
            let initrd_file = Arc::new(
                initrd
                    .file()
                    .try_clone()
                    .map_err(io("cannot read the initrd"))?,
            );
            self.boot = Some(BootSet {
                kernel: Arc::new(kernel),
                initrd: Initrd::Staged(initrd),
                initrd_file,
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
            initrd: &b.initrd_file,
            initrd_len: b.initrd_len,
            cmdline: cmdline_str(&b.cmdline),
            initrd_id: &b.initrd_id,
            seed: &b.seed,
        }
    }

    fn bootloader(&self, format: Format) -> Result<&'a Bootloader> {
        let bl = self
            .opts
            .bootloader
            .as_ref()
            .ok_or(Error::NoBootloader { format })?;
        match crate::format_unavailable(format, bl.image().arch) {
            Some(why) => Err(Error::FormatArch(why)),
            None => Ok(bl),
        }
    }

    fn kernel_initrd(&mut self, format: Format) -> Result<Vec<PathBuf>> {
        let [kernel, initrd, cmdline] =
            [FileKind::Kernel, FileKind::Initrd, FileKind::Cmdline].map(|k| self.path(format, k));
        self.boot(format)?;
        let b = self.boot.as_mut().expect("built above");
        let mut k = Staged::create(kernel)?;
        k.file()
            .write_all(&b.kernel)
            .map_err(io("cannot write the kernel"))?;
        let mut c = None;
        if !b.cmdline.is_empty() {
            let mut s = Staged::create(cmdline)?;
            s.file()
                .write_all(&b.cmdline)
                .map_err(io("cannot write the cmdline"))?;
            c = Some(s);
        }
        let mut written = vec![k.commit()?];
        match std::mem::replace(&mut b.initrd, Initrd::Committed(initrd.clone())) {
            Initrd::Staged(s) => written.push(s.commit_to(initrd)?),
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

    fn tar_kernel_initrd(&mut self, format: Format, dest: &Path) -> Result<Vec<PathBuf>> {
        self.boot(format)?;
        let b = self.boot.as_ref().expect("built above");
        let mut s = Staged::create(dest.to_path_buf())?;
        let mut tar = TarWriter::new(BufWriter::new(s.file()));
        let mut add = |n: &str, data: &mut dyn Read, size: u64| -> Result<()> {
            tar.add(&Entry::file(n, size), data).map_err(Error::from)
        };
        add("kernel", &mut &b.kernel[..], b.kernel.len() as u64)?;
        let mut f = crate::bytes::ReadAt {
            file: &b.initrd_file,
            offset: 0,
        };
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
    fn bios_image(&mut self, format: Format) -> Result<()> {
        if self.bios.is_none() {
            self.bios = Some(self.scratch(format, Base::Bios)?);
        }
        Ok(())
    }

    /// The EFI disk (GPT, FAT32 ESP), built once into a scratch file.
    fn efi_image(&mut self, format: Format) -> Result<()> {
        if self.efi.is_none() {
            self.efi = Some(self.scratch(format, Base::Efi)?);
        }
        Ok(())
    }

    /// Lays out a base image: what it holds and how long it is, before
    /// any of it is written.
    fn lay_out(&mut self, format: Format, base: Base) -> Result<LaidOut> {
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
    fn scratch(&mut self, format: Format, base: Base) -> Result<Scratch> {
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
    fn size(&self, format: Format, content: u64, default_mb: Option<u64>) -> Result<u64> {
        match self.opts.size_mb {
            Some(mb) => {
                let size = mb << 20;
                if content > size {
                    return Err(Error::TooSmall {
                        format,
                        content,
                        size,
                    });
                }
                Ok(size)
            }
            None => Ok(default_mb.map_or(content, |mb| (mb << 20).max(content))),
        }
    }

    /// Writes a disk format.
    fn disk(
        &mut self,
        format: Format,
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
        format: Format,
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
            return Ok(scratch.staged.commit_to(dest.to_path_buf())?);
        }
        let scratch = slot.as_mut().expect("built before publishing");
        let mut s = Staged::create(dest.to_path_buf())?;
        let src = scratch.staged.file();
        src.seek(SeekFrom::Start(0)).map_err(io(context.clone()))?;
        std::io::copy(&mut src.take(scratch.len), s.file()).map_err(io(context.clone()))?;
        grow(s.file(), scratch.len)?;
        Ok(s.commit()?)
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

const DOCKERFILE: &[u8] = b"FROM scratch\nWORKDIR /\nENTRYPOINT [\"/bin/rc.init\"]\nCOPY . ./\n";

/// Writes a format that is one stream ([`Format::streams`]: `tar`,
/// `docker`) to any writer: `build --o FILE` and `build --o -`. With
/// `decompress_kernel`, its `boot/kernel` is the decompressed kernel, as
/// the reference's is.
pub fn write_stream(
    format: Format,
    decompress_kernel: bool,
    out: impl Write,
    parts: &[Part],
) -> Result<()> {
    match format {
        Format::Tar => write_tar_to(out, parts, false, decompress_kernel),
        Format::Docker => write_tar_to(out, parts, true, decompress_kernel),
        _ => Err(Error::NotStreamable(format)),
    }
}

/// The root filesystem stream with `boot/kernel` decompressed
/// (`--decompress-kernel`), for the formats that carry the kernel as a
/// file of the stream.
struct DecompressKernel<'a> {
    inner: &'a mut dyn EntrySink,
}

impl EntrySink for DecompressKernel<'_> {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
        if e.path != "boot/kernel" || e.kind != EntryKind::File {
            return self.inner.add(e, data);
        }
        let mut kernel = Vec::new();
        data.take(e.size)
            .read_to_end(&mut kernel)
            .map_err(|source| linuxkit_rootfs::Error::Io {
                context: format!("cannot read {}", e.path),
                source,
            })?;
        let kernel = crate::kernel::decompress_kernel(&kernel)
            .map_err(|err| linuxkit_rootfs::Error::Other(err.to_string()))?;
        let e = Entry {
            size: kernel.len() as u64,
            ..e.clone()
        };
        self.inner.add(&e, &mut &kernel[..])
    }
}

/// Writes the `tar` (or, with `dockerfile`, the `docker`) format.
fn write_tar_to(
    out: impl Write,
    parts: &[Part],
    dockerfile: bool,
    decompress_kernel: bool,
) -> Result<()> {
    let mut tar = TarWriter::new(BufWriter::with_capacity(1 << 20, out));
    {
        let mut kernel = DecompressKernel { inner: &mut tar };
        let inner: &mut dyn EntrySink = if decompress_kernel {
            &mut kernel
        } else {
            kernel.inner
        };
        // No entry written through or over a link of an earlier one.
        let mut resolved = Resolve::new(inner);
        for p in parts {
            p.produce(&mut resolved)?;
        }
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
