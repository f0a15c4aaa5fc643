//! [`Vm`]: everything QEMU's command line is made from, resolved. It is
//! the boundary between [`super::prepare`], which looks at the host and
//! makes files, and [`super::qemu_args`], which does neither.

use std::path::PathBuf;

use linuxkit_base::Arch;

use super::boot::Boot;
use super::firmware::Firmware;
use super::options::{Networking, PublishedPort};

/// A disk as QEMU gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// The disk file, which exists by now.
    pub path: PathBuf,
    /// QEMU's `format=`; `None` lets QEMU probe the file.
    pub format: Option<String>,
}

/// Everything [`super::qemu_args`] needs, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    /// The guest's architecture (which QEMU system emulator and machine).
    pub arch: Arch,
    /// The host's architecture.
    pub host_arch: Arch,
    /// Virtual CPUs (`-smp`).
    pub cpus: u32,
    /// Guest memory in MiB (`-m`).
    pub mem: u32,
    /// The VM's UUID (`-uuid`), new at every run.
    pub uuid: String,
    /// Where the pid file, QMP socket, MAC address, metadata CD and
    /// created disks live.
    pub state_dir: PathBuf,
    /// `accel=` of `-machine` (`kvm:tcg`, `tcg`, ...); `None` for a guest
    /// of another architecture than the host's, which gets QEMU's default.
    pub accel: Option<String>,
    /// How the VM boots.
    pub boot: Boot,
    /// The UEFI firmware; `None` (no `--uefi`): QEMU's default firmware.
    pub firmware: Option<Firmware>,
    /// Disks in attachment order: the image's own disk (if it boots from
    /// one) first, then the `--disk` ones.
    pub disks: Vec<Disk>,
    /// CDs: the boot ISO first when booting from CD, then the metadata CD.
    pub cdroms: Vec<PathBuf>,
    /// How the guest's network device is connected.
    pub networking: Networking,
    /// The network device's MAC address, kept in the state directory;
    /// empty with no networking.
    pub mac: String,
    /// Host ports forwarded into the guest (user-mode networking only).
    pub publish: Vec<PublishedPort>,
    /// Show QEMU's graphical display instead of `-nographic`.
    pub gui: bool,
    /// Add a USB controller (`-usb`).
    pub usb: bool,
    /// Extra `-device` values, passed as given.
    pub devices: Vec<String>,
    /// Pass `-no-reboot`: a guest reboot ends QEMU.
    pub no_reboot: bool,
}
