//! How the VM boots ([`Boot`]), found as the reference finds it from the
//! files at `PATH` (see the module docs of `qemu`), and the format a boot
//! disk is attached in.

use std::path::{Path, PathBuf};

use linuxkit_output::{FileKind, Format};

use super::options::{Networking, QemuOptions};
use crate::error::{Error, IoContext, Result};

/// How the VM boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// `-kernel`, `-initrd`, `-append`.
    Kernel {
        /// The kernel image (`PATH-kernel`).
        kernel: PathBuf,
        /// The initial ramdisk holding the root filesystem (`PATH-initrd.img`).
        initrd: PathBuf,
        /// The contents of `PATH-cmdline`; `None` when that file does not
        /// exist (the kernel then gets an empty command line).
        cmdline: Option<String>,
    },
    /// `-kernel` and `-append CMDLINE root=/dev/sda` (`/dev/vda` on arm64); the squashfs image is
    /// the first disk.
    Squashfs {
        /// The kernel image (`PATH-kernel`).
        kernel: PathBuf,
        /// The contents of `PATH-cmdline`, before `root=/dev/sda`; `None`
        /// when that file does not exist.
        cmdline: Option<String>,
    },
    /// From the first CD (`-boot d`).
    Iso,
    /// From the first disk.
    Disk,
    /// From the network (`-boot n`): the NIC's iPXE fetches `bootfile`,
    /// which QEMU's user network hands out by DHCP.
    Net {
        /// The iPXE script's URL as the guest reaches it.
        bootfile: String,
    },
}

/// The file of kind `kind` that `format` writes for the output path `p`
/// (`PATH-kernel`, `PATH-initrd.img`, ...): the names come from `Format`.
fn built(format: Format, p: &str, kind: FileKind) -> String {
    format.file(p, kind).expect("the format writes that file")
}

fn exists(p: &str) -> bool {
    Path::new(p).exists()
}

fn read_cmdline(path: &str) -> Result<Option<String>> {
    let f = built(Format::KernelInitrd, path, FileKind::Cmdline);
    match std::fs::read(&f) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).trim_end().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!("{f} does not exist: booting with an empty kernel command line");
            Ok(None)
        }
        Err(e) => Err(e).context(|| format!("cannot read {f}")),
    }
}

fn need_file(p: &str, what: &str) -> Result<PathBuf> {
    if Path::new(p).is_file() {
        Ok(PathBuf::from(p))
    } else {
        Err(Error::Usage(format!("{what} {p} does not exist")))
    }
}

/// The boot mode for `o`, and the image's own disk or CD (see the `qemu` module docs).
pub(super) fn detect_boot(o: &QemuOptions) -> Result<(Boot, Option<PathBuf>)> {
    let p = o.path.as_str();
    let forced = [o.kernel, o.squashfs, o.iso].iter().filter(|b| **b).count();
    if forced > 1 {
        return Err(Error::Usage(
            "--kernel, --squashfs and --iso are exclusive".into(),
        ));
    }
    let kernel_boot = |p: &str| -> Result<(Boot, Option<PathBuf>)> {
        Ok((
            Boot::Kernel {
                kernel: need_file(
                    &built(Format::KernelInitrd, p, FileKind::Kernel),
                    "the kernel",
                )?,
                initrd: need_file(
                    &built(Format::KernelInitrd, p, FileKind::Initrd),
                    "the initrd",
                )?,
                cmdline: read_cmdline(p)?,
            },
            None,
        ))
    };
    let squashfs_boot = |p: &str| -> Result<(Boot, Option<PathBuf>)> {
        let kernel = need_file(
            &built(Format::KernelSquashfs, p, FileKind::Kernel),
            "the kernel",
        )?;
        let image = need_file(
            &built(Format::KernelSquashfs, p, FileKind::Image),
            "the squashfs image",
        )?;
        Ok((
            Boot::Squashfs {
                kernel,
                cmdline: read_cmdline(p)?,
            },
            Some(image),
        ))
    };
    if let Some(bootfile) = &o.netboot {
        if forced > 0 {
            return Err(Error::Usage(
                "--netboot cannot be combined with --kernel, --squashfs or --iso".into(),
            ));
        }
        if o.networking != Networking::User {
            return Err(Error::Usage(
                "--netboot needs --networking user: QEMU's user network hands out the boot file"
                    .into(),
            ));
        }
        return Ok((
            Boot::Net {
                bootfile: bootfile.clone(),
            },
            None,
        ));
    }
    if o.kernel {
        return kernel_boot(p);
    }
    if o.squashfs {
        return squashfs_boot(p);
    }
    if o.iso {
        return Ok((Boot::Iso, Some(need_file(p, "the ISO")?)));
    }
    if !exists(p) {
        if exists(&built(Format::KernelInitrd, p, FileKind::Kernel)) {
            if exists(&built(Format::KernelSquashfs, p, FileKind::Image)) {
                return squashfs_boot(p);
            }
            return kernel_boot(p);
        }
        return Err(Error::Usage(format!(
            "cannot find an image at {p}: neither {p} nor {p}-kernel exists"
        )));
    }
    if p.ends_with(".iso") {
        return Ok((Boot::Iso, Some(PathBuf::from(p))));
    }
    Ok((Boot::Disk, Some(PathBuf::from(p))))
}

/// QEMU's format for a boot disk, from its extension, when probing would
/// get it wrong or warn. A fixed VHD (`vhd`, `azure`) is the raw disk with
/// a footer at the end, and QEMU probes only a file's start, so it would
/// attach it as raw: that boots, but the guest then sees the footer as a
/// last sector, and a write there would corrupt the VHD. `vmdk` and `qcow2`
/// probe correctly; naming them spares the probe. Anything else (`.img`,
/// `.raw`, no extension) is probed, as QEMU does unaided: such a file may
/// be qcow2.
pub(super) fn boot_disk_format(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "vhd" => Some("vpc"),
        "vmdk" => Some("vmdk"),
        "qcow2" => Some("qcow2"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::state::state_dir_for;

    #[test]
    fn boot_mode_detection() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n).to_string_lossy().into_owned();
        let touch = |n: &str| std::fs::write(d.path().join(n), b"x").unwrap();
        let opts = |path: String| QemuOptions::new(path);
        assert!(detect_boot(&opts(p("img"))).is_err());
        touch("img-kernel");
        touch("img-initrd.img");
        std::fs::write(d.path().join("img-cmdline"), "console=ttyS0\n").unwrap();
        let (b, img) = detect_boot(&opts(p("img"))).unwrap();
        assert_eq!(
            b,
            Boot::Kernel {
                kernel: p("img-kernel").into(),
                initrd: p("img-initrd.img").into(),
                cmdline: Some("console=ttyS0".into())
            }
        );
        assert_eq!(img, None);
        touch("img-squashfs.img");
        let (b, img) = detect_boot(&opts(p("img"))).unwrap();
        assert!(matches!(b, Boot::Squashfs { .. }));
        assert_eq!(img, Some(p("img-squashfs.img").into()));
        let mut forced = opts(p("img"));
        forced.kernel = true;
        assert!(matches!(
            detect_boot(&forced).unwrap().0,
            Boot::Kernel { .. }
        ));
        touch("cd.iso");
        assert_eq!(detect_boot(&opts(p("cd.iso"))).unwrap().0, Boot::Iso);
        assert_eq!(
            state_dir_for(&p("cd.iso"), None),
            PathBuf::from(p("cd-state"))
        );
        touch("disk.qcow2");
        assert_eq!(detect_boot(&opts(p("disk.qcow2"))).unwrap().0, Boot::Disk);
        let mut iso = opts(p("disk.qcow2"));
        iso.iso = true;
        assert_eq!(detect_boot(&iso).unwrap().0, Boot::Iso);
        iso.kernel = true;
        assert!(detect_boot(&iso).is_err());
    }

    #[test]
    fn boot_disks_are_attached_in_their_format() {
        for (path, format) in [
            ("/d/linuxkit.vhd", Some("vpc")),
            ("linuxkit-azure.VHD", Some("vpc")),
            ("linuxkit.vmdk", Some("vmdk")),
            ("linuxkit-efi.qcow2", Some("qcow2")),
            ("linuxkit.raw", None),
            ("linuxkit-bios.img", None),
            ("disk", None),
        ] {
            assert_eq!(boot_disk_format(Path::new(path)), format, "{path}");
        }
    }
}
