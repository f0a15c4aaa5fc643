//! The output formats `linuxkit build --format` writes, their file names,
//! and writing them so that a failed build leaves no partial file behind.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use linuxkit_rootfs::{Entry, EntrySink};

use crate::cpio::Compression;
use crate::tar::TarWriter;

use linuxkit_rootfs::Part;

use crate::initrd::{SegmentCache, build_initrd};

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
];

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

    pub fn commit(mut self) -> Result<PathBuf> {
        let f = self.file.take().expect("open until committed");
        f.sync_all()
            .map_err(io(format!("cannot write {}", self.tmp.display())))?;
        drop(f);
        std::fs::rename(&self.tmp, &self.dest)
            .map_err(io(format!("cannot create {}", self.dest.display())))?;
        Ok(self.dest.clone())
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
    let paths: Vec<PathBuf> = output_files(format, name)
        .into_iter()
        .map(|f| dir.join(f))
        .collect();
    match format {
        "tar" => {
            let mut s = Staged::create(paths[0].clone())?;
            write_tar_to(s.file(), parts, false)?;
            Ok(vec![s.commit()?])
        }
        "docker" => {
            let mut s = Staged::create(paths[0].clone())?;
            write_tar_to(s.file(), parts, true)?;
            Ok(vec![s.commit()?])
        }
        "kernel+initrd" => {
            let (kernel, initrd, cmdline, _) = kernel_initrd(dir, name, opts, parts)?;
            let mut written = Vec::new();
            let mut k = Staged::create(paths[0].clone())?;
            k.file()
                .write_all(&kernel)
                .map_err(io("cannot write the kernel"))?;
            let mut c = None;
            if !cmdline.is_empty() {
                let mut s = Staged::create(paths[2].clone())?;
                s.file()
                    .write_all(&cmdline)
                    .map_err(io("cannot write the cmdline"))?;
                c = Some(s);
            }
            written.push(k.commit()?);
            written.push(initrd.commit()?);
            if let Some(c) = c {
                written.push(c.commit()?);
            }
            Ok(written)
        }
        "tar-kernel-initrd" => {
            let (kernel, mut initrd, cmdline, ucode) = kernel_initrd(dir, name, opts, parts)?;
            let mut s = Staged::create(paths[0].clone())?;
            let mut tar = TarWriter::new(BufWriter::new(s.file()));
            let mut add = |n: &str, data: &mut dyn Read, size: u64| -> Result<()> {
                tar.add(&Entry::file(n, size), data).map_err(Error::from)
            };
            add("kernel", &mut &kernel[..], kernel.len() as u64)?;
            let f = initrd.file();
            let size = f
                .seek(SeekFrom::End(0))
                .map_err(io("cannot read the initrd"))?;
            f.seek(SeekFrom::Start(0))
                .map_err(io("cannot read the initrd"))?;
            add("initrd.img", f, size)?;
            add("cmdline", &mut &cmdline[..], cmdline.len() as u64)?;
            if let Some(u) = &ucode {
                add("ucode.cpio", &mut &u[..], u.len() as u64)?;
            }
            tar.finish()
                .and_then(|mut w| w.flush())
                .map_err(io("cannot write the tar"))?;
            drop(initrd);
            Ok(vec![s.commit()?])
        }
        "kernel+squashfs" | "kernel+erofs" | "kernel+iso" => {
            let kind = match format {
                "kernel+squashfs" => crate::fstree::ImageKind::Squashfs,
                "kernel+erofs" => crate::fstree::ImageKind::Erofs,
                _ => crate::fstree::ImageKind::Iso,
            };
            crate::fstree::write_kernel_image(kind, format, dir, &paths, parts)
        }
        other => Err(Error::Usage(format!(
            "output format {other} is not implemented yet (available: {})",
            SUPPORTED.join(", ")
        ))),
    }
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

/// The kernel, the staged initrd (microcode included), the command line
/// and the microcode.
type KernelInitrd = (Vec<u8>, Staged, Vec<u8>, Option<Vec<u8>>);

/// Builds the initrd into a staged `NAME-initrd.img`.
fn kernel_initrd(
    dir: &Path,
    name: &str,
    opts: &OutputOptions,
    parts: &[Part],
) -> Result<KernelInitrd> {
    let (initrd, mut boot) = build_initrd(
        parts,
        dir.join(format!("{name}-initrd.img")),
        opts,
        opts.segments.as_ref(),
    )?;
    let kernel = boot.remove("boot/kernel").ok_or_else(|| {
        Error::Usage(
            "kernel+initrd needs a kernel: the configuration has no `kernel` section".into(),
        )
    })?;
    let kernel = if opts.decompress_kernel {
        crate::kernel::decompress_kernel(&kernel)?
    } else {
        kernel
    };
    let cmdline = boot.remove("boot/cmdline").unwrap_or_default();
    Ok((kernel, initrd, cmdline, boot.remove("boot/ucode.cpio")))
}
