//! `run qemu`: from what the user asked ([`QemuOptions`]) to a resolved VM
//! ([`Vm`], after [`prepare`] has made the state directory, the metadata
//! CD and the disks) to QEMU's command line ([`qemu_args`], a pure
//! function of the [`Vm`]).
//!
//! The boot mode is chosen as the reference does: `PATH-kernel` with
//! `PATH-squashfs.img` boots the squashfs as the root disk, `PATH-kernel`
//! with `PATH-initrd.img` boots kernel+initrd (with `PATH-cmdline` as the
//! command line), an existing `*.iso` boots from CD, and any other existing
//! file is the boot disk. `--kernel`, `--squashfs` and `--iso` force a
//! mode; `--uefi` adds UEFI firmware to any of them.

use std::path::{Path, PathBuf};

use linuxkit_base::Arch;
use linuxkit_output::{FileKind, Format};

use crate::error::{Error, IoContext, Result};
use crate::kvm;

/// The file of kind `kind` that `format` writes for the output path `p`
/// (`PATH-kernel`, `PATH-initrd.img`, ...).
fn built(format: Format, p: &str, kind: FileKind) -> String {
    format.file(p, kind).expect("the format writes that file")
}

/// The state directory's files.
pub const PID_FILE: &str = "qemu.pid";
pub const MAC_FILE: &str = "mac-addr";
pub const DATA_ISO: &str = "data.iso";
pub const QMP_SOCKET: &str = "qmp.sock";
pub const CONSOLE_LOG: &str = "console.log";
/// UEFI variables, copied from the firmware's template on first use.
pub const EFI_VARS: &str = "efivars.fd";

/// UEFI firmware looked for when `--fw` is not given, first found wins.
pub const DEFAULT_FIRMWARE_X86_64: &[&str] = &[
    "/usr/share/ovmf/OVMF.fd",
    "/usr/share/OVMF/OVMF_CODE.fd",
    "/usr/share/OVMF/OVMF_CODE_4M.fd",
    "/usr/share/qemu/OVMF.fd",
    "/usr/share/ovmf/bios.bin",
];
pub const DEFAULT_FIRMWARE_AARCH64: &[&str] = &[
    "/usr/share/AAVMF/AAVMF_CODE.fd",
    "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
];

/// A `--disk` flag: `[file=]PATH[,size=SIZE][,format=FORMAT]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskSpec {
    pub path: Option<PathBuf>,
    /// In MiB; 0 when not given.
    pub size_mb: u64,
    pub format: Option<String>,
}

impl DiskSpec {
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
pub fn parse_size_mb(s: &str) -> Result<u64> {
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
    pub host: u16,
    pub guest: u16,
    pub udp: bool,
}

impl PublishedPort {
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
    None,
}

impl Networking {
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

    /// The `-netdev` value (without port forwards), `None` for no network.
    fn netdev(&self) -> Option<String> {
        match self {
            Networking::User => Some("user,id=t0".into()),
            Networking::Tap(i) => Some(format!(
                "tap,id=t0,ifname={},script=no,downscript=no",
                escape(i)
            )),
            Networking::Bridge(b) => Some(format!("bridge,id=t0,br={}", escape(b))),
            Networking::None => None,
        }
    }
}

/// What the user asked for, in the terms of `run qemu`'s flags (parsed).
#[derive(Debug, Clone)]
pub struct QemuOptions {
    /// The image: a path prefix (`NAME` for `NAME-kernel`, ...), an ISO or a disk.
    pub path: String,
    pub kernel: bool,
    pub squashfs: bool,
    pub iso: bool,
    pub uefi: bool,
    /// The state directory; default `PATH-state` (`NAME-state` for `NAME.iso`).
    pub state: Option<PathBuf>,
    /// Metadata for the guest, written to a CD as the file `config`.
    pub data: Option<Vec<u8>>,
    /// UEFI firmware; default the first of [`DEFAULT_FIRMWARE_X86_64`] that exists.
    pub fw: Option<PathBuf>,
    /// `accel=` of `-machine`; `None` chooses (see [`choose_accel`]).
    pub accel: Option<String>,
    /// Guest architecture: amd64 (`x86_64`), arm64 (`aarch64`) or s390x
    /// (see [`supported_arch`]).
    pub arch: Arch,
    /// The QEMU binary; default `qemu-system-ARCH` from `PATH`.
    pub qemu: Option<PathBuf>,
    pub cpus: u32,
    /// MiB.
    pub mem: u32,
    pub disks: Vec<DiskSpec>,
    pub networking: Networking,
    pub publish: Vec<PublishedPort>,
    pub gui: bool,
    pub usb: bool,
    /// Extra `-device` values.
    pub devices: Vec<String>,
    /// Pass `-no-reboot`: a guest reboot ends QEMU (the boot test sets it).
    pub no_reboot: bool,
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
            arch: Arch::host(),
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
        }
    }
}

/// How the VM boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// `-kernel`, `-initrd`, `-append`.
    Kernel {
        kernel: PathBuf,
        initrd: PathBuf,
        cmdline: Option<String>,
    },
    /// `-kernel` and `-append CMDLINE root=/dev/sda`; the squashfs image is
    /// the first disk.
    Squashfs {
        kernel: PathBuf,
        cmdline: Option<String>,
    },
    /// From the first CD (`-boot d`).
    Iso,
    /// From the first disk.
    Disk,
}

/// A disk as QEMU gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    pub format: Option<String>,
}

/// UEFI firmware as QEMU gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firmware {
    /// One image with code and variables, mapped read-only (so the
    /// installed file is never written).
    Combined(PathBuf),
    /// A code image (read-only) and this VM's own copy of the variables.
    Split { code: PathBuf, vars: PathBuf },
}

/// Everything [`qemu_args`] needs, resolved.
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

/// Doubles commas, QEMU's escape inside `key=value,...` option strings.
fn escape(p: impl AsRef<str>) -> String {
    p.as_ref().replace(',', ",,")
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The `-machine` type for `arch` (`native`: KVM on an arm64 host, which
/// takes the host's interrupt controller).
fn machine(arch: Arch, native: bool) -> &'static str {
    match arch {
        Arch::Arm64 if native => "virt,gic-version=host",
        a => a.qemu_machine(),
    }
}

/// QEMU's command line for `vm` (without the binary), in the reference's
/// order, plus the QMP socket in the state directory.
pub fn qemu_args(vm: &Vm) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    let native = vm.arch == vm.host_arch;
    push(&["-smp", &vm.cpus.to_string(), "-m", &vm.mem.to_string()]);
    push(&["-uuid", &vm.uuid]);
    push(&["-pidfile", &path_str(&vm.state_dir.join(PID_FILE))]);
    if vm.arch == Arch::Arm64 {
        let kvm = vm.accel.as_deref().is_some_and(|a| a.contains("kvm"));
        push(&["-cpu", if native && kvm { "host" } else { "cortex-a57" }]);
    }
    // Acceleration only for the host's own architecture.
    let accel = vm.accel.as_deref().filter(|_| native);
    let m = machine(vm.arch, native && accel.is_some_and(|a| a.contains("kvm")));
    match accel {
        Some(acc) => push(&["-machine", &format!("{m},accel={acc}")]),
        None => push(&["-machine", m]),
    }
    let rng = if vm.arch == Arch::S390x {
        "virtio-rng-ccw,rng=rng0"
    } else {
        "virtio-rng-pci,rng=rng0"
    };
    push(&[
        "-object",
        "rng-random,id=rng0,filename=/dev/urandom",
        "-device",
        rng,
    ]);
    let iso_boot = vm.boot == Boot::Iso;
    for (i, d) in vm.disks.iter().enumerate() {
        // Index 2 (hdc) is the CD when booting from one.
        let index = if i >= 2 && iso_boot { i + 1 } else { i };
        let mut v = format!("file={}", escape(path_str(&d.path)));
        if let Some(f) = &d.format {
            v.push_str(&format!(",format={}", escape(f)));
        }
        v.push_str(&format!(",index={index},media=disk"));
        push(&["-drive", &v]);
    }
    if iso_boot {
        push(&["-boot", "d"]);
    }
    // The boot CD is QEMU's `-cdrom` (the firmware boots it). Other CDs,
    // such as the metadata CD, hang off virtio-scsi: on q35 `-cdrom` is an
    // AHCI device, and kernels made for clouds (Debian's cloud kernel among
    // them) have no AHCI driver, so the guest would never see the CD.
    let mut scsi = false;
    for (i, p) in vm.cdroms.iter().enumerate() {
        if vm.arch == Arch::S390x {
            if i == 0 {
                push(&["-device", "virtio-scsi-ccw", "-device", "scsi-cd,drive=cd1"]);
                push(&[
                    "-drive",
                    &format!("file={},format=raw,if=none,id=cd1", escape(path_str(p))),
                ]);
            }
            continue;
        }
        if i == 0 && iso_boot {
            push(&["-cdrom", &path_str(p)]);
            continue;
        }
        if !scsi {
            push(&["-device", "virtio-scsi-pci,id=lkscsi"]);
            scsi = true;
        }
        push(&[
            "-drive",
            &format!(
                "file={},format=raw,if=none,id=lkcd{i},media=cdrom,readonly=on",
                escape(path_str(p))
            ),
            "-device",
            &format!("scsi-cd,drive=lkcd{i},bus=lkscsi.0"),
        ]);
    }
    match &vm.firmware {
        Some(Firmware::Combined(fw)) => push(&[
            "-drive",
            &format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                escape(path_str(fw))
            ),
        ]),
        Some(Firmware::Split { code, vars }) => {
            push(&[
                "-drive",
                &format!(
                    "if=pflash,format=raw,unit=0,readonly=on,file={}",
                    escape(path_str(code))
                ),
            ]);
            push(&[
                "-drive",
                &format!(
                    "if=pflash,format=raw,unit=1,file={}",
                    escape(path_str(vars))
                ),
            ]);
        }
        None => {}
    }
    match &vm.boot {
        Boot::Kernel {
            kernel,
            initrd,
            cmdline,
        } => {
            push(&["-kernel", &path_str(kernel), "-initrd", &path_str(initrd)]);
            if let Some(c) = cmdline {
                push(&["-append", c]);
            }
        }
        Boot::Squashfs { kernel, cmdline } => {
            push(&["-kernel", &path_str(kernel)]);
            let c = match cmdline {
                Some(c) if !c.is_empty() => format!("{c} root=/dev/sda"),
                _ => "root=/dev/sda".to_string(),
            };
            push(&["-append", &c]);
        }
        Boot::Iso | Boot::Disk => {}
    }
    match vm.networking.netdev() {
        None => push(&["-net", "none"]),
        Some(mut netdev) => {
            let nic = if vm.arch == Arch::S390x {
                "virtio-net-ccw"
            } else {
                "virtio-net-pci"
            };
            push(&["-device", &format!("{nic},netdev=t0,mac={}", vm.mac)]);
            if vm.networking == Networking::User {
                for p in &vm.publish {
                    netdev.push(',');
                    netdev.push_str(&p.hostfwd());
                }
            }
            push(&["-netdev", &netdev]);
        }
    }
    if !vm.gui {
        push(&["-nographic"]);
    }
    if vm.usb {
        push(&["-usb"]);
    }
    for d in &vm.devices {
        push(&["-device", d]);
    }
    push(&[
        "-qmp",
        &format!(
            "unix:{},server=on,wait=off",
            escape(path_str(&vm.state_dir.join(QMP_SOCKET)))
        ),
    ]);
    if vm.no_reboot {
        push(&["-no-reboot"]);
    }
    a
}

/// The state directory for `path`: `state` if given, else `PATH-state`
/// (`NAME-state` for an existing `NAME.iso`), as the reference.
pub fn state_dir_for(path: &str, state: Option<&Path>) -> PathBuf {
    if let Some(s) = state {
        return s.to_path_buf();
    }
    let prefix = match path.strip_suffix(".iso") {
        Some(p) if Path::new(path).is_file() => p,
        _ => path,
    };
    PathBuf::from(format!("{prefix}-state"))
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

/// The boot mode for `o`, and the image's own disk or CD (see the module docs).
pub fn detect_boot(o: &QemuOptions) -> Result<(Boot, Option<PathBuf>)> {
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
pub fn boot_disk_format(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "vhd" => Some("vpc"),
        "vmdk" => Some("vmdk"),
        "qcow2" => Some("qcow2"),
        _ => None,
    }
}

/// The architectures `run qemu` runs (the reference's, less riscv64, for
/// which it would pick an x86 machine type).
pub const SUPPORTED_ARCHES: [Arch; 3] = [Arch::Amd64, Arch::Arm64, Arch::S390x];

/// `arch` if `run qemu` runs it, else [`Error::UnsupportedArch`].
pub fn supported_arch(arch: Arch) -> Result<Arch> {
    if SUPPORTED_ARCHES.contains(&arch) {
        Ok(arch)
    } else {
        Err(Error::UnsupportedArch { arch })
    }
}

/// The accelerator: `given` (`--accel`, `LINUXKIT_QEMU_ACCEL`) as it is;
/// otherwise `kvm:tcg` when `/dev/kvm` runs a test guest (see [`kvm`]),
/// else `tcg`, with a notice when KVM is there but does not work. Other
/// architectures than the host's get no accelerator.
pub fn choose_accel(given: Option<&str>, arch: Arch) -> Option<String> {
    if arch != Arch::host() {
        if given.is_some() {
            tracing::info!(
                "not using an accelerator: {} is not the host's architecture",
                arch.qemu()
            );
        }
        return None;
    }
    if let Some(g) = given.filter(|g| !g.is_empty()) {
        return Some(g.to_string());
    }
    if arch == Arch::S390x {
        return Some("kvm".into());
    }
    match kvm::probe(kvm::PROBE_TIMEOUT) {
        kvm::KvmStatus::Usable => Some("kvm:tcg".into()),
        kvm::KvmStatus::Absent => Some("tcg".into()),
        kvm::KvmStatus::Unusable(why) => {
            tracing::warn!(
                "KVM does not work here ({why}): using TCG, which is slower; --accel chooses"
            );
            Some("tcg".into())
        }
    }
}

/// 16 random bytes from the kernel.
fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    use std::io::Read;
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context(|| "cannot read /dev/urandom".into())?;
    Ok(b)
}

/// A random (version 4) UUID.
pub fn random_uuid() -> Result<String> {
    let mut b: [u8; 16] = random_bytes()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    ))
}

fn format_mac(b: [u8; 6]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn valid_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The VM's MAC address, from `STATE/mac-addr`, made (random, unicast,
/// locally administered) and kept there the first time.
pub fn state_mac(state_dir: &Path) -> Result<String> {
    let f = state_dir.join(MAC_FILE);
    match std::fs::read_to_string(&f) {
        Ok(s) => {
            let s = s.trim();
            if valid_mac(s) {
                return Ok(s.to_ascii_lowercase());
            }
            Err(Error::Usage(format!(
                "{}: {s:?} is not a MAC address",
                f.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b: [u8; 6] = random_bytes()?;
            b[0] = (b[0] & !0x01) | 0x02;
            let mac = format_mac(b);
            std::fs::write(&f, &mac).context(|| format!("cannot write {}", f.display()))?;
            Ok(mac)
        }
        Err(e) => Err(e).context(|| format!("cannot read {}", f.display())),
    }
}

/// Whether `pid` is a QEMU that has not exited (a zombie has).
pub fn is_running_qemu(pid: u32) -> bool {
    // /proc/PID/stat: `pid (comm) state ...`; comm may hold spaces or parentheses.
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    match (stat.find('('), stat.rfind(") ")) {
        (Some(a), Some(b)) if a < b => {
            stat[a + 1..b].starts_with("qemu") && !stat[b + 2..].starts_with('Z')
        }
        _ => false,
    }
}

/// Finds `name` in `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The UEFI firmware to use: `fw` if given, else the first default that
/// exists. A `*CODE*` image gets the VM's own copy of the matching `*VARS*`
/// template (kept in the state directory, as the variables are the VM's).
pub fn firmware(fw: Option<&Path>, arch: Arch, state_dir: &Path) -> Result<Firmware> {
    let fw = match fw {
        Some(f) => {
            if !f.is_file() {
                return Err(Error::Usage(format!(
                    "the UEFI firmware {} does not exist (install OVMF, or give --fw)",
                    f.display()
                )));
            }
            f.to_path_buf()
        }
        None => {
            let candidates = if arch == Arch::Arm64 {
                DEFAULT_FIRMWARE_AARCH64
            } else {
                DEFAULT_FIRMWARE_X86_64
            };
            candidates
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "no UEFI firmware found (looked for {}): install OVMF, or give --fw",
                        candidates.join(", ")
                    ))
                })?
        }
    };
    let name = fw
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains("CODE") {
        return Ok(Firmware::Combined(fw));
    }
    let template = fw.with_file_name(name.replacen("CODE", "VARS", 1));
    let vars = state_dir.join(EFI_VARS);
    if !vars.exists() {
        if !template.is_file() {
            return Err(Error::Usage(format!(
                "the UEFI firmware {} needs its variable store {}, which does not exist",
                fw.display(),
                template.display()
            )));
        }
        std::fs::copy(&template, &vars)
            .context(|| format!("cannot copy {} to {}", template.display(), vars.display()))?;
    }
    Ok(Firmware::Split { code: fw, vars })
}

/// Creates a missing disk of `size_mb` MiB: qcow2 with `qemu-img`, raw as
/// a sparse file (also for qcow2 when `qemu-img` is not installed and the
/// format was not asked for explicitly).
pub fn create_disk(path: &Path, size_mb: u64, format: &str, explicit: bool) -> Result<String> {
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

/// Makes the state directory, the metadata CD and missing disks, chooses
/// the accelerator and firmware: everything [`qemu_args`] needs.
pub fn prepare(o: &QemuOptions) -> Result<Vm> {
    let arch = supported_arch(o.arch)?;
    if o.cpus == 0 || o.mem == 0 {
        return Err(Error::Usage("--cpus and --mem must be positive".into()));
    }
    if !o.publish.is_empty() && o.networking != Networking::User {
        return Err(Error::Usage(
            "--publish needs user networking (--networking user)".into(),
        ));
    }
    let (boot, image) = detect_boot(o)?;
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
    let firmware = if o.uefi {
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

/// The QEMU binary: `qemu` if given, else `qemu-system-ARCH` from `PATH`.
pub fn qemu_binary(qemu: Option<&Path>, arch: Arch) -> Result<PathBuf> {
    match qemu {
        Some(q) => {
            if q.components().count() > 1 || q.is_file() {
                Ok(q.to_path_buf())
            } else {
                which(&q.to_string_lossy())
                    .ok_or_else(|| Error::Usage(format!("cannot find {} in PATH", q.display())))
            }
        }
        None => {
            let name = arch.qemu_system();
            which(name).ok_or_else(|| {
                Error::Usage(format!(
                    "cannot find {name} in PATH: install QEMU (Debian: qemu-system-x86 / qemu-system-arm), or give --qemu"
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(boot: Boot) -> Vm {
        Vm {
            arch: Arch::Amd64,
            host_arch: Arch::Amd64,
            cpus: 2,
            mem: 512,
            uuid: "11111111-2222-4333-8444-555555555555".into(),
            state_dir: PathBuf::from("/s"),
            accel: Some("tcg".into()),
            boot,
            firmware: None,
            disks: vec![],
            cdroms: vec![],
            networking: Networking::User,
            mac: "02:00:00:00:00:01".into(),
            publish: vec![],
            gui: false,
            usb: false,
            devices: vec![],
            no_reboot: false,
        }
    }

    fn joined(v: &Vm) -> String {
        qemu_args(v).join(" ")
    }

    #[test]
    fn kernel_initrd_command_line() {
        let v = vm(Boot::Kernel {
            kernel: "/i/x-kernel".into(),
            initrd: "/i/x-initrd.img".into(),
            cmdline: Some("console=ttyS0 quiet".into()),
        });
        let a = qemu_args(&v);
        assert_eq!(
            a,
            [
                "-smp",
                "2",
                "-m",
                "512",
                "-uuid",
                "11111111-2222-4333-8444-555555555555",
                "-pidfile",
                "/s/qemu.pid",
                "-machine",
                "q35,accel=tcg",
                "-object",
                "rng-random,id=rng0,filename=/dev/urandom",
                "-device",
                "virtio-rng-pci,rng=rng0",
                "-kernel",
                "/i/x-kernel",
                "-initrd",
                "/i/x-initrd.img",
                "-append",
                "console=ttyS0 quiet",
                "-device",
                "virtio-net-pci,netdev=t0,mac=02:00:00:00:00:01",
                "-netdev",
                "user,id=t0",
                "-nographic",
                "-qmp",
                "unix:/s/qmp.sock,server=on,wait=off",
            ]
        );
    }

    #[test]
    fn publish_builds_hostfwd_for_user_networking_only() {
        let mut v = vm(Boot::Disk);
        v.publish = vec![
            PublishedPort::parse("8080:80").unwrap(),
            PublishedPort::parse("5353:53/UDP").unwrap(),
        ];
        assert!(
            joined(&v).contains("-netdev user,id=t0,hostfwd=tcp::8080-:80,hostfwd=udp::5353-:53 ")
        );
        v.networking = Networking::Tap("tap0".into());
        let j = joined(&v);
        assert!(j.contains("-netdev tap,id=t0,ifname=tap0,script=no,downscript=no "));
        assert!(!j.contains("hostfwd"));
        v.networking = Networking::None;
        let j = joined(&v);
        assert!(j.contains("-net none") && !j.contains("virtio-net"));
    }

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
    fn disks_cdroms_and_indexes() {
        let mut v = vm(Boot::Iso);
        v.cdroms = vec!["/i/boot.iso".into(), "/s/data.iso".into()];
        v.disks = (0..3)
            .map(|i| Disk {
                path: format!("/d/{i},x.img").into(),
                format: (i == 1).then(|| "qcow2".to_string()),
            })
            .collect();
        let j = joined(&v);
        assert!(j.contains("-drive file=/d/0,,x.img,index=0,media=disk "));
        assert!(j.contains("-drive file=/d/1,,x.img,format=qcow2,index=1,media=disk "));
        // hdc (index 2) is the boot CD.
        assert!(j.contains("-drive file=/d/2,,x.img,index=3,media=disk "));
        assert!(j.contains("-boot d -cdrom /i/boot.iso "));
        assert!(j.contains(
            "-device virtio-scsi-pci,id=lkscsi -drive file=/s/data.iso,format=raw,if=none,id=lkcd1,media=cdrom,readonly=on -device scsi-cd,drive=lkcd1,bus=lkscsi.0 "
        ));
        // Booting a kernel, even the first CD (the metadata) is on virtio-scsi.
        let mut k = vm(Boot::Kernel {
            kernel: "/k".into(),
            initrd: "/i".into(),
            cmdline: None,
        });
        k.cdroms = vec!["/s/data.iso".into()];
        let j = joined(&k);
        assert!(!j.contains("-cdrom"), "{j}");
        assert!(j.contains("id=lkcd0,media=cdrom"), "{j}");
    }

    #[test]
    fn squashfs_uefi_gui_usb_devices_no_reboot() {
        let mut v = vm(Boot::Squashfs {
            kernel: "/i/x-kernel".into(),
            cmdline: Some("console=ttyS0".into()),
        });
        v.disks = vec![Disk {
            path: "/i/x-squashfs.img".into(),
            format: None,
        }];
        v.firmware = Some(Firmware::Split {
            code: "/fw/OVMF_CODE.fd".into(),
            vars: "/s/efivars.fd".into(),
        });
        v.gui = true;
        v.usb = true;
        v.devices = vec!["usb-tablet".into()];
        v.no_reboot = true;
        let j = joined(&v);
        assert!(j.contains("-drive file=/i/x-squashfs.img,index=0,media=disk "));
        assert!(j.contains("-append console=ttyS0 root=/dev/sda "));
        assert!(j.contains(
            "-drive if=pflash,format=raw,unit=0,readonly=on,file=/fw/OVMF_CODE.fd -drive if=pflash,format=raw,unit=1,file=/s/efivars.fd "
        ));
        assert!(!j.contains("-nographic"));
        assert!(j.contains("-usb -device usb-tablet "));
        assert!(j.ends_with("-no-reboot"));
    }

    #[test]
    fn cross_architecture_drops_the_accelerator() {
        let mut v = vm(Boot::Disk);
        v.arch = Arch::Arm64;
        let j = joined(&v);
        assert!(j.contains("-cpu cortex-a57 -machine virt "), "{j}");
        v.host_arch = Arch::Arm64;
        v.accel = Some("kvm:tcg".into());
        let j = joined(&v);
        assert!(
            j.contains("-cpu host -machine virt,gic-version=host,accel=kvm:tcg "),
            "{j}"
        );
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

    #[test]
    fn macs_are_kept_and_uuids_are_v4() {
        let d = tempfile::tempdir().unwrap();
        let a = state_mac(d.path()).unwrap();
        assert!(valid_mac(&a));
        let first = u8::from_str_radix(&a[..2], 16).unwrap();
        assert_eq!(first & 0x03, 0x02, "unicast, locally administered");
        assert_eq!(state_mac(d.path()).unwrap(), a);
        let u = random_uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn firmware_choice() {
        let d = tempfile::tempdir().unwrap();
        let code = d.path().join("OVMF_CODE_4M.fd");
        std::fs::write(&code, b"code").unwrap();
        let state = d.path().join("state");
        std::fs::create_dir(&state).unwrap();
        // The template is missing.
        assert!(firmware(Some(&code), Arch::Amd64, &state).is_err());
        std::fs::write(d.path().join("OVMF_VARS_4M.fd"), b"vars").unwrap();
        let fw = firmware(Some(&code), Arch::Amd64, &state).unwrap();
        assert_eq!(
            fw,
            Firmware::Split {
                code: code.clone(),
                vars: state.join(EFI_VARS)
            }
        );
        assert_eq!(std::fs::read(state.join(EFI_VARS)).unwrap(), b"vars");
        let combined = d.path().join("OVMF.fd");
        std::fs::write(&combined, b"fw").unwrap();
        assert_eq!(
            firmware(Some(&combined), Arch::Amd64, &state).unwrap(),
            Firmware::Combined(combined)
        );
        assert!(firmware(Some(&d.path().join("nope.fd")), Arch::Amd64, &state).is_err());
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
