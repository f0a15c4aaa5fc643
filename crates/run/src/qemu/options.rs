//! `run qemu`'s flags as types, parsed and checked where they are read
//! (`--disk`, `--publish`, `--networking`), and [`QemuOptions`], all of
//! them together: what the user asked for, before anything is looked up
//! on the host.

use std::path::PathBuf;

use linuxkit_base::Arch;

use crate::error::{Error, Result};

/// A `--disk` flag: `[file=]PATH[,size=SIZE][,format=FORMAT]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskSpec {
    /// The disk file; `None` puts it in the state directory (`disk.img`,
    /// then `disk1.img`, ... by position).
    pub path: Option<PathBuf>,
    /// In MiB; 0 when not given. A disk that does not exist yet is created
    /// with this size; without one it must exist.
    pub size_mb: u64,
    /// QEMU's disk format (`raw`, `qcow2`, ...); `None`: `qcow2` for a disk
    /// with a size, else QEMU probes the file.
    pub format: Option<String>,
}

impl DiskSpec {
    /// Parses one `--disk` value; refuses unknown settings, a bad size, and
    /// a disk with neither path nor size.
    pub fn parse(s: &str) -> Result<DiskSpec> {
        let mut d = DiskSpec::default();
        for part in s.split(',') {
            match part.split_once('=') {
                None => d.path = Some(PathBuf::from(part)),
                Some(("file", p)) => d.path = Some(PathBuf::from(p)),
                Some(("size", v)) => d.size_mb = parse_size_mb(v)?,
                Some(("format", f)) => d.format = Some(f.to_string()),
                Some((k, _)) => {
                    return Err(Error::Usage(format!(
                        "--disk {s:?}: unknown setting {k:?} (expected file=, size=, format=)"
                    )));
                }
            }
        }
        if d.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            d.path = None;
        }
        if d.path.is_none() && d.size_mb == 0 {
            return Err(Error::Usage(format!(
                "--disk {s:?}: a disk needs a path or a size"
            )));
        }
        Ok(d)
    }
}

/// A disk size: `NM` (MiB), `NG` or a bare `N` (GiB), as the reference.
pub(super) fn parse_size_mb(s: &str) -> Result<u64> {
    let bad = || Error::Usage(format!("invalid disk size {s:?}: expected e.g. 512M or 4G"));
    let (n, mult) = if let Some(n) = s.strip_suffix('M') {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('G') {
        (n, 1024)
    } else {
        (s, 1024)
    };
    let n: u64 = n.parse().map_err(|_| bad())?;
    n.checked_mul(mult).ok_or_else(bad)
}

/// A `--publish` flag: `[ADDRESS:]HOST:GUEST[/tcp|udp]`. Without an
/// address QEMU listens on every interface, as the reference does;
/// `127.0.0.1:8080:80` keeps the port on the loopback interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedPort {
    /// The host address to listen on; `None`: all.
    pub address: Option<std::net::IpAddr>,
    /// The port QEMU listens on, on the host (never 0).
    pub host: u16,
    /// The guest's port the connections are forwarded to (never 0).
    pub guest: u16,
    /// UDP instead of TCP.
    pub udp: bool,
}

impl PublishedPort {
    /// Parses one `--publish` value; refuses a bad address, port 0 and
    /// protocols other than `tcp` and `udp`.
    pub fn parse(s: &str) -> Result<PublishedPort> {
        let bad = |why: &str| {
            Error::Usage(format!(
                "--publish {s:?}: {why} (expected [ADDRESS:]HOST:GUEST or [ADDRESS:]HOST:GUEST/udp)"
            ))
        };
        let (ports, proto) = match s.split_once('/') {
            Some((g, p)) => (g, p.trim().to_ascii_lowercase()),
            None => (s, "tcp".to_string()),
        };
        let (address, host, guest) = match ports.rsplitn(3, ':').collect::<Vec<_>>().as_slice() {
            [guest, host] => (None, *host, *guest),
            [guest, host, addr] => {
                let addr = addr.trim_start_matches('[').trim_end_matches(']');
                let ip = addr
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| bad(&format!("invalid address {addr:?}")))?;
                (Some(ip), *host, *guest)
            }
            _ => return Err(bad("no ':'")),
        };
        let port = |p: &str, what: &str| -> Result<u16> {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(bad(&format!("invalid {what} port {p:?}"))),
            }
        };
        let udp = match proto.as_str() {
            "tcp" => false,
            "udp" => true,
            other => return Err(bad(&format!("unknown protocol {other:?}"))),
        };
        Ok(PublishedPort {
            address,
            host: port(host, "host")?,
            guest: port(guest, "guest")?,
            udp,
        })
    }

    /// The `hostfwd=` setting of a user-mode `-netdev`.
    pub fn hostfwd(&self) -> String {
        let proto = if self.udp { "udp" } else { "tcp" };
        let addr = self.address.map(|a| a.to_string()).unwrap_or_default();
        format!("hostfwd={proto}:{addr}:{}-:{}", self.host, self.guest)
    }
}

/// `--networking`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Networking {
    /// QEMU's user-mode network (SLIRP); the only one `--publish` works with.
    User,
    /// An existing tap device.
    Tap(String),
    /// An existing bridge, through QEMU's bridge helper.
    Bridge(String),
    /// No network device at all.
    None,
}

impl Networking {
    /// Parses `--networking`: `user` (or `default`, or empty), `tap,NAME`,
    /// `bridge,NAME` or `none`.
    pub fn parse(s: &str) -> Result<Networking> {
        let (mode, arg) = match s.split_once(',') {
            Some((m, a)) => (m, Some(a)),
            None => (s, None),
        };
        let need = |what: &str| {
            arg.filter(|a| !a.is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "--networking {mode} needs the {what}: --networking {mode},NAME"
                    ))
                })
        };
        Ok(match mode {
            "" | "default" | "user" => Networking::User,
            "tap" => Networking::Tap(need("tap device")?),
            "bridge" => Networking::Bridge(need("bridge")?),
            "none" => Networking::None,
            other => {
                return Err(Error::Usage(format!(
                    "invalid networking mode {other:?}: expected user, tap,NAME, bridge,NAME or none"
                )));
            }
        })
    }
}

/// What the user asked for, in the terms of `run qemu`'s flags (parsed).
#[derive(Debug, Clone)]
pub struct QemuOptions {
    /// The image: a path prefix (`NAME` for `NAME-kernel`, ...), an ISO or a disk.
    pub path: String,
    /// `--kernel`: boot `PATH-kernel` with `PATH-initrd.img`, whatever
    /// else exists at `PATH`.
    pub kernel: bool,
    /// `--squashfs`: boot `PATH-kernel` with `PATH-squashfs.img` as the
    /// root disk.
    pub squashfs: bool,
    /// `--iso`: boot `PATH` as a CD. With none of `kernel`, `squashfs`,
    /// `iso`, the mode is found from the files (see [`super::Boot`]).
    pub iso: bool,
    /// `--uefi`: boot through UEFI firmware (see `fw`) instead of QEMU's
    /// default firmware.
    pub uefi: bool,
    /// The state directory; default `PATH-state` (`NAME-state` for `NAME.iso`).
    pub state: Option<PathBuf>,
    /// Metadata for the guest, written to a CD as the file `config`.
    pub data: Option<Vec<u8>>,
    /// UEFI firmware; default the first of [`super::DEFAULT_FIRMWARE_X86_64`]
    /// (or `_AARCH64`) that exists.
    pub fw: Option<PathBuf>,
    /// `accel=` of `-machine`; `None` chooses: KVM where it runs a guest, else TCG.
    pub accel: Option<String>,
    /// Guest architecture: amd64 (`x86_64`), arm64 (`aarch64`) or s390x
    /// (see [`super::supported_arch`]); `None`: the image's (its kernel's
    /// header, or the EFI loader on its disk), else the host's.
    pub arch: Option<Arch>,
    /// The QEMU binary; default `qemu-system-ARCH` from `PATH`.
    pub qemu: Option<PathBuf>,
    /// Virtual CPUs (`-smp`).
    pub cpus: u32,
    /// Guest memory in MiB (`-m`).
    pub mem: u32,
    /// Extra disks (`--disk`), attached after the image's own disk, in order.
    pub disks: Vec<DiskSpec>,
    /// How the guest's network device is connected.
    pub networking: Networking,
    /// Host ports forwarded into the guest (user-mode networking only).
    pub publish: Vec<PublishedPort>,
    /// Show QEMU's graphical display; without it QEMU runs with
    /// `-nographic`.
    pub gui: bool,
    /// Add a USB controller (`-usb`).
    pub usb: bool,
    /// Extra `-device` values.
    pub devices: Vec<String>,
    /// Pass `-no-reboot`: a guest reboot ends QEMU (the boot test sets it).
    pub no_reboot: bool,
    /// Network boot: the URL of the iPXE script as the guest reaches it
    /// (QEMU's user network hands it out as the boot file); no disk and
    /// no `-kernel` (see [`crate::netboot`]).
    pub netboot: Option<String>,
}

impl QemuOptions {
    /// Defaults as the command line has them, for `path`.
    pub fn new(path: impl Into<String>) -> QemuOptions {
        QemuOptions {
            path: path.into(),
            kernel: false,
            squashfs: false,
            iso: false,
            uefi: false,
            state: None,
            data: None,
            fw: None,
            accel: None,
            arch: None,
            qemu: None,
            cpus: 1,
            mem: 1024,
            disks: Vec::new(),
            networking: Networking::User,
            publish: Vec::new(),
            gui: false,
            usb: false,
            devices: Vec::new(),
            no_reboot: false,
            netboot: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_parsing() {
        assert_eq!(
            PublishedPort::parse("2222:22").unwrap(),
            PublishedPort {
                address: None,
                host: 2222,
                guest: 22,
                udp: false
            }
        );
        assert!(PublishedPort::parse("2222:22/udp").unwrap().udp);
        let lo = PublishedPort::parse("127.0.0.1:8080:80").unwrap();
        assert_eq!(lo.address, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(lo.hostfwd(), "hostfwd=tcp:127.0.0.1:8080-:80");
        for bad in [
            "22", "0:22", "22:0", "a:22", "22:b", "1:2/sctp", "70000:1", "x:1:2", "1:2:3:4",
        ] {
            assert!(PublishedPort::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn disk_specs() {
        assert_eq!(
            DiskSpec::parse("file=a.img,size=2G,format=raw").unwrap(),
            DiskSpec {
                path: Some("a.img".into()),
                size_mb: 2048,
                format: Some("raw".into())
            }
        );
        assert_eq!(DiskSpec::parse("b.img").unwrap().size_mb, 0);
        assert_eq!(DiskSpec::parse("size=512M").unwrap().path, None);
        assert_eq!(DiskSpec::parse("size=3").unwrap().size_mb, 3072);
        assert!(DiskSpec::parse("x.img,colour=red").is_err());
        assert!(DiskSpec::parse("format=raw").is_err());
        assert!(DiskSpec::parse("x,size=1T").is_err());
    }

    #[test]
    fn networking_modes() {
        assert_eq!(Networking::parse("default").unwrap(), Networking::User);
        assert_eq!(
            Networking::parse("bridge,br0").unwrap(),
            Networking::Bridge("br0".into())
        );
        assert!(Networking::parse("tap").is_err());
        assert!(Networking::parse("vde").is_err());
    }
}
