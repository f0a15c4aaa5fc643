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
    pub path: PathBuf,
    pub format: Option<String>,
}

/// Everything [`super::qemu_args`] needs, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    pub arch: Arch,
    /// The host's architecture.
    pub host_arch: Arch,
    pub cpus: u32,
    pub mem: u32,
    pub uuid: String,
    pub state_dir: PathBuf,
    pub accel: Option<String>,
    pub boot: Boot,
    pub firmware: Option<Firmware>,
    pub disks: Vec<Disk>,
    /// CDs: the boot ISO first when booting from CD, then the metadata CD.
    pub cdroms: Vec<PathBuf>,
    pub networking: Networking,
    pub mac: String,
    pub publish: Vec<PublishedPort>,
    pub gui: bool,
    pub usb: bool,
    pub devices: Vec<String>,
    pub no_reboot: bool,
}
