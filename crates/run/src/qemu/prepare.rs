//! From the options to a [`Vm`]: check them, find the boot mode, make the
//! state directory, the metadata CD and the disks that are missing, choose
//! the accelerator and the firmware.

use std::path::Path;

use linuxkit_base::Arch;

use super::boot::{Boot, boot_disk_format, detect_boot};
use super::firmware::firmware;
use super::host::{choose_accel, supported_arch, which};
use super::options::{Networking, QemuOptions};
use super::state::{DATA_ISO, random_uuid, state_dir_for, state_mac};
use super::vm::{Disk, Vm};
use crate::error::{Error, IoContext, Result};

/// Creates a missing disk of `size_mb` MiB: qcow2 with `qemu-img`, raw as
/// a sparse file (also for qcow2 when `qemu-img` is not installed and the
/// format was not asked for explicitly).
pub(super) fn create_disk(
    path: &Path,
    size_mb: u64,
    format: &str,
    explicit: bool,
) -> Result<String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .context(|| format!("cannot create {}", parent.display()))?;
    }
    let raw = |path: &Path| -> Result<String> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .context(|| format!("cannot create {}", path.display()))?;
        f.set_len(size_mb * 1024 * 1024)
            .context(|| format!("cannot size {}", path.display()))?;
        Ok("raw".to_string())
    };
    match format {
        "raw" => raw(path),
        _ => match which("qemu-img") {
            Some(qemu_img) => {
                let out = std::process::Command::new(&qemu_img)
                    .args(["create", "-q", "-f", format])
                    .arg(path)
                    .arg(format!("{size_mb}M"))
                    .output()
                    .context(|| format!("cannot run {}", qemu_img.display()))?;
                if !out.status.success() {
                    return Err(Error::Qemu(format!(
                        "qemu-img could not create {} ({format}, {size_mb}M): {}",
                        path.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
                Ok(format.to_string())
            }
            None if !explicit => {
                tracing::info!(
                    "qemu-img is not installed: creating {} as a raw disk",
                    path.display()
                );
                raw(path)
            }
            None => Err(Error::Usage(format!(
                "creating the {format} disk {} needs qemu-img, which is not installed",
                path.display()
            ))),
        },
    }
}

/// The guest's architecture: `given` (`--arch`), else the image's (see
/// [`super::guest_arch`]), else the host's.
pub(super) fn guest_arch(given: Option<Arch>, boot: &Boot, image: Option<&Path>) -> Arch {
    if let Some(a) = given {
        return a;
    }
    let found = match boot {
        Boot::Kernel { kernel, .. } | Boot::Squashfs { kernel, .. } => {
            super::guest_arch::kernel_file_arch(kernel)
        }
        Boot::Iso | Boot::Disk => image.and_then(super::guest_arch::disk_arch),
        // The kernel comes over the network: the host's, unless --arch.
        Boot::Net { .. } => None,
    };
    match found {
        Some(a) if a != Arch::host() => {
            tracing::info!(
                "the image is for {a}: running it on {} (--arch chooses)",
                a.qemu_system()
            );
            a
        }
        Some(a) => a,
        None => Arch::host(),
    }
}

/// Whether `arch`'s machine always boots through UEFI firmware: arm64's
/// `virt` has no BIOS to boot a disk, and a kernel booted by the firmware
/// gets ACPI, whose power button (through `virt`'s Generic Event Device)
/// is the one Debian's arm64 cloud kernel sees (it has no gpio-keys driver
/// for the device tree's), so `--powerdown-after` and `--stop` work.
pub(super) fn needs_firmware(arch: Arch) -> bool {
    arch == Arch::Arm64
}

/// Makes the state directory, the metadata CD and missing disks, chooses
/// the accelerator and firmware: everything [`super::qemu_args`] needs.
pub fn prepare(o: &QemuOptions) -> Result<Vm> {
    if o.cpus == 0 || o.mem == 0 {
        return Err(Error::Usage("--cpus and --mem must be positive".into()));
    }
    if !o.publish.is_empty() && o.networking != Networking::User {
        return Err(Error::Usage(
            "--publish needs user networking (--networking user)".into(),
        ));
    }
    let (boot, image) = detect_boot(o)?;
    let arch = supported_arch(guest_arch(o.arch, &boot, image.as_deref()))?;
    let state_dir = state_dir_for(&o.path, o.state.as_deref());
    std::fs::create_dir_all(&state_dir)
        .context(|| format!("cannot create the state directory {}", state_dir.display()))?;

    let mut cdroms = Vec::new();
    let mut disks = Vec::new();
    match (&boot, image) {
        (Boot::Iso, Some(iso)) => cdroms.push(iso),
        (_, Some(disk)) => disks.push(Disk {
            format: boot_disk_format(&disk).map(str::to_string),
            path: disk,
        }),
        (_, None) => {}
    }
    if let Some(data) = &o.data {
        let iso = state_dir.join(DATA_ISO);
        crate::metadata::create_metadata_iso(&iso, data)?;
        cdroms.push(iso);
    }
    for (i, d) in o.disks.iter().enumerate() {
        let mut format = d.format.clone();
        if d.size_mb != 0 && format.is_none() {
            format = Some("qcow2".into());
        }
        let path = match &d.path {
            Some(p) => p.clone(),
            None => {
                let id = if i == 0 { String::new() } else { i.to_string() };
                state_dir.join(format!("disk{id}.img"))
            }
        };
        if !path.exists() {
            if d.size_mb == 0 {
                return Err(Error::Usage(format!(
                    "the disk {} does not exist; give a size to create it (--disk {},size=1G)",
                    path.display(),
                    path.display()
                )));
            }
            let f = format.clone().unwrap_or_else(|| "qcow2".into());
            let made = create_disk(&path, d.size_mb, &f, d.format.is_some())?;
            tracing::info!(
                "created the disk {} ({made}, {}M)",
                path.display(),
                d.size_mb
            );
            format = Some(made);
        } else {
            tracing::debug!("using the existing disk {}", path.display());
        }
        disks.push(Disk { path, format });
    }
    let firmware = if o.uefi || needs_firmware(arch) {
        Some(firmware(o.fw.as_deref(), arch, &state_dir)?)
    } else {
        None
    };
    let mac = if o.networking == Networking::None {
        String::new()
    } else {
        state_mac(&state_dir)?
    };
    Ok(Vm {
        accel: choose_accel(o.accel.as_deref(), arch),
        arch,
        host_arch: Arch::host(),
        cpus: o.cpus,
        mem: o.mem,
        uuid: random_uuid()?,
        state_dir,
        boot,
        firmware,
        disks,
        cdroms,
        networking: o.networking.clone(),
        mac,
        publish: o.publish.clone(),
        gui: o.gui,
        usb: o.usb,
        devices: o.devices.clone(),
        no_reboot: o.no_reboot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_architecture_comes_from_the_image() {
        let d = tempfile::tempdir().unwrap();
        let kernel = d.path().join("k");
        let mut image = vec![0u8; 4096];
        image[0x38..0x3c].copy_from_slice(b"ARMd");
        std::fs::write(&kernel, &image).unwrap();
        let boot = Boot::Kernel {
            kernel: kernel.clone(),
            initrd: kernel.clone(),
            cmdline: None,
        };
        assert_eq!(guest_arch(None, &boot, None), Arch::Arm64);
        assert_eq!(guest_arch(Some(Arch::Amd64), &boot, None), Arch::Amd64);
        std::fs::write(&kernel, b"neither").unwrap();
        assert_eq!(guest_arch(None, &boot, None), Arch::host());
        assert!(needs_firmware(Arch::Arm64) && !needs_firmware(Arch::Amd64));
    }

    #[test]
    fn disks_are_created() {
        let d = tempfile::tempdir().unwrap();
        let raw = d.path().join("r.img");
        assert_eq!(create_disk(&raw, 4, "raw", true).unwrap(), "raw");
        assert_eq!(std::fs::metadata(&raw).unwrap().len(), 4 << 20);
        let q = d.path().join("q.qcow2");
        let made = create_disk(&q, 4, "qcow2", false).unwrap();
        let head = std::fs::read(&q).unwrap();
        if made == "qcow2" {
            assert_eq!(&head[..4], b"QFI\xfb");
        }
    }
}
