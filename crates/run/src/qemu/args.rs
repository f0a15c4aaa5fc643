//! QEMU's command line for a [`Vm`], in the reference's order: a pure
//! function (no file is read, nothing on the host is probed), so every
//! choice it makes is tested here without QEMU.

use std::path::Path;

use linuxkit_base::Arch;

use super::boot::Boot;
use super::firmware::Firmware;
use super::options::Networking;
use super::state::{PID_FILE, QMP_SOCKET};
use super::vm::Vm;

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

/// The guest's name for the first `-drive` disk: `virt`'s disks are
/// virtio-blk (`vda`); q35's and the others' are SCSI-named (`sda`), as
/// the reference's squashfs boot assumes everywhere.
fn first_disk(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm64 => "/dev/vda",
        _ => "/dev/sda",
    }
}

/// The `-netdev` value of `n` (without port forwards), `None` for no network.
fn netdev(n: &Networking) -> Option<String> {
    match n {
        Networking::User => Some("user,id=t0".into()),
        Networking::Tap(i) => Some(format!(
            "tap,id=t0,ifname={},script=no,downscript=no",
            escape(i)
        )),
        Networking::Bridge(b) => Some(format!("bridge,id=t0,br={}", escape(b))),
        Networking::None => None,
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
            let root = first_disk(vm.arch);
            let c = match cmdline {
                Some(c) if !c.is_empty() => format!("{c} root={root}"),
                _ => format!("root={root}"),
            };
            push(&["-append", &c]);
        }
        Boot::Net { .. } => push(&["-boot", "n"]),
        Boot::Iso | Boot::Disk => {}
    }
    match netdev(&vm.networking) {
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
                if let Boot::Net { bootfile } = &vm.boot {
                    netdev.push_str(&format!(",bootfile={}", escape(bootfile)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::options::PublishedPort;
    use crate::qemu::vm::Disk;
    use std::path::PathBuf;

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
        let mut sq = vm(Boot::Squashfs {
            kernel: "/k".into(),
            cmdline: None,
        });
        sq.arch = Arch::Arm64;
        assert!(joined(&sq).contains("-append root=/dev/vda "));
        v.host_arch = Arch::Arm64;
        v.accel = Some("kvm:tcg".into());
        let j = joined(&v);
        assert!(
            j.contains("-cpu host -machine virt,gic-version=host,accel=kvm:tcg "),
            "{j}"
        );
    }

    #[test]
    fn netboot_has_no_kernel_and_hands_out_the_script() {
        let mut v = vm(Boot::Net {
            bootfile: "http://10.0.2.2:8080/a,b.ipxe".into(),
        });
        v.publish = vec![PublishedPort::parse("2222:22").unwrap()];
        let a = qemu_args(&v);
        assert!(!a.iter().any(|x| x == "-kernel" || x == "-initrd"), "{a:?}");
        assert!(a.windows(2).any(|w| w == ["-boot", "n"]), "{a:?}");
        let netdev = a.iter().skip_while(|x| *x != "-netdev").nth(1).unwrap();
        assert!(
            netdev.starts_with("user,id=t0,hostfwd=")
                && netdev.ends_with(",bootfile=http://10.0.2.2:8080/a,,b.ipxe"),
            "{netdev}"
        );
    }
}
