//! Boots what the native writers make, in QEMU (TCG, no KVM needed): an
//! ISO with isolinux (BIOS) and systemd-boot in an El Torito ESP (UEFI,
//! OVMF), as a CD and, through its isohybrid MBR, as a disk. The kernel is
//! Debian's cloud kernel (fetched once with `apt-get download`), the initrd
//! a static busybox whose `/init` prints a marker and powers off.
//!
//! Each boot takes some 10–60 s under TCG. A boot file, QEMU or OVMF that
//! is missing, or a kernel that cannot be fetched, fails the test:
//! `scripts/setup` installs them all.

use std::io::{BufRead, BufReader, Cursor};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use linuxkit_output::fat::FatBuilder;
use linuxkit_output::{BiosBoot, CpioWriter, ElTorito, FsTree, Hybrid, IsoOptions, write_iso_with};
use linuxkit_rootfs::{Entry, EntryKind, EntrySink};

const ISOLINUX: &str = "/usr/lib/ISOLINUX/isolinux.bin";
const ISOHDPFX: &str = "/usr/lib/ISOLINUX/isohdpfx.bin";
const LDLINUX: &str = "/usr/lib/syslinux/modules/bios/ldlinux.c32";
const SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
const OVMF: &str = "/usr/share/ovmf/OVMF.fd";
const BUSYBOX: &str = "/bin/busybox";
const MARKER: &str = "LINUXKIT-NATIVE-BOOT-OK";
const CMDLINE: &str = "console=ttyS0 panic=-1";

/// Fails unless every one of `paths` exists.
fn require(paths: &[&str]) {
    let gone: Vec<&&str> = paths.iter().filter(|p| !Path::new(p).exists()).collect();
    assert!(
        gone.is_empty(),
        "{gone:?} missing: run scripts/setup, which installs them"
    );
}

/// Debian's cloud kernel, fetched once into the test's scratch directory.
fn kernel() -> PathBuf {
    // The tests run in parallel and all need it: one fetches, the others
    // wait (three fetches at once also raced for the rename into place).
    static KERNEL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    KERNEL.get_or_init(fetch_kernel).clone()
}

fn fetch_kernel() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("debian-cloud-kernel");
    let k = dir.join("vmlinuz");
    if k.exists() {
        return k;
    }
    let fetch = || -> Result<(), String> {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let deps = Command::new("apt-cache")
            .args(["depends", "linux-image-cloud-amd64"])
            .output()
            .map_err(|e| e.to_string())?;
        let deps = String::from_utf8_lossy(&deps.stdout);
        let pkg = deps
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-"))
            .ok_or("apt-cache knows no linux-image-cloud-amd64 (run apt-get update)")?
            .to_string();
        let work = tempfile::tempdir_in(&dir).map_err(|e| e.to_string())?;
        let st = Command::new("apt-get")
            .args(["download", "-q", &pkg])
            .current_dir(work.path())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        let deb = std::fs::read_dir(work.path())
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or(format!("apt-get download {pkg} failed ({st})"))?;
        let x = work.path().join("x");
        let st = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&x)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("dpkg-deb -x {} failed", deb.display()));
        }
        let vmlinuz = std::fs::read_dir(x.join("boot"))
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
            })
            .ok_or("no vmlinuz in the package")?;
        // Into place whole, from this fetch's own directory.
        let tmp = work.path().join("vmlinuz.partial");
        std::fs::copy(&vmlinuz, &tmp).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &k).map_err(|e| e.to_string())
    };
    if let Err(e) = fetch() {
        panic!("cannot fetch Debian's cloud kernel: {e}");
    }
    k
}

/// A static busybox initrd whose init prints the marker and powers off.
fn initrd() -> Vec<u8> {
    let busybox = std::fs::read(BUSYBOX).unwrap();
    let init = format!("#!/bin/sh\necho {MARKER}\n/bin/busybox poweroff -f\n");
    let mut w = CpioWriter::new(Vec::new());
    add_busybox_init(&mut w, &busybox, &init);
    w.finish().unwrap()
}

/// Adds `e` with `data` as its content (a file's size is the data's).
fn put(sink: &mut dyn EntrySink, e: Entry, data: &[u8]) {
    let e = Entry {
        size: if e.kind == EntryKind::File {
            data.len() as u64
        } else {
            0
        },
        ..e
    };
    sink.add(&e, &mut Cursor::new(data.to_vec())).unwrap()
}

/// What every test initrd starts with: `/bin/busybox` (and `sh`), the
/// console, and `/init`, the shell script `init`.
fn add_busybox_init(sink: &mut dyn EntrySink, busybox: &[u8], init: &str) {
    put(sink, Entry::dir("bin"), b"");
    put(sink, Entry::dir("dev"), b"");
    put(
        sink,
        Entry {
            kind: EntryKind::Char { major: 5, minor: 1 },
            mode: 0o600,
            ..Entry::file("dev/console", 0)
        },
        b"",
    );
    put(
        sink,
        Entry {
            mode: 0o755,
            ..Entry::file("bin/busybox", 0)
        },
        busybox,
    );
    put(sink, Entry::symlink("bin/sh", "busybox"), b"");
    put(
        sink,
        Entry {
            mode: 0o755,
            ..Entry::file("init", 0)
        },
        init.as_bytes(),
    );
}

fn add(t: &mut FsTree, path: &str, data: &[u8]) {
    t.add(
        &Entry::file(path, data.len() as u64),
        &mut Cursor::new(data.to_vec()),
    )
    .unwrap();
}

/// The ESP: systemd-boot as the removable-media loader, one entry, the
/// kernel and initrd beside it (systemd-boot reads only its own volume).
fn esp(kernel: &Path, initrd: &[u8]) -> Vec<u8> {
    let mut b = FatBuilder::new().label("LINUXKIT").unwrap();
    b.add_file("EFI/BOOT/BOOTX64.EFI", Path::new(SYSTEMD_BOOT))
        .unwrap();
    b.add_bytes(
        "loader/loader.conf",
        b"timeout 0\ndefault linuxkit.conf\n".to_vec(),
    )
    .unwrap();
    b.add_bytes(
        "loader/entries/linuxkit.conf",
        format!("title LinuxKit\nlinux /kernel\ninitrd /initrd.img\noptions {CMDLINE}\n")
            .into_bytes(),
    )
    .unwrap();
    b.add_file("kernel", kernel).unwrap();
    b.add_bytes("initrd.img", initrd.to_vec()).unwrap();
    let mut out = Vec::new();
    b.write(&mut out).unwrap();
    out
}

/// The hybrid ISO: isolinux for BIOS, the ESP for UEFI.
fn iso(kernel: &Path, path: &Path) {
    let initrd = initrd();
    let k = std::fs::read(kernel).unwrap();
    let mut t = FsTree::new(None).unwrap();
    add(
        &mut t,
        "isolinux/isolinux.bin",
        &std::fs::read(ISOLINUX).unwrap(),
    );
    add(
        &mut t,
        "isolinux/ldlinux.c32",
        &std::fs::read(LDLINUX).unwrap(),
    );
    add(
        &mut t,
        "isolinux/isolinux.cfg",
        format!(
            "SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL /kernel\n  INITRD /initrd.img\n  APPEND {CMDLINE}\n"
        )
        .as_bytes(),
    );
    add(&mut t, "kernel", &k);
    add(&mut t, "initrd.img", &initrd);
    add(&mut t, "EFI/efiboot.img", &esp(kernel, &initrd));
    let opts = IsoOptions {
        volume_id: Some("LinuxKit".into()),
        joliet: true,
        el_torito: Some(ElTorito {
            bios: Some(BiosBoot::isolinux("isolinux/isolinux.bin")),
            efi: Some("EFI/efiboot.img".into()),
        }),
        hybrid: Some(Hybrid {
            boot_code: std::fs::read(ISOHDPFX).unwrap()[..432].to_vec(),
        }),
        aliases: Vec::new(),
    };
    let f = std::fs::File::create(path).unwrap();
    write_iso_with(&t, &opts, f).unwrap();
}

/// Runs QEMU until the marker shows on the serial console (then waits for
/// the power-off) or the time is up; returns the console output.
fn boot(args: &[&str]) -> (bool, String) {
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "q35,accel=tcg",
            "-m",
            "512",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-no-reboot",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            if tx
                .send(String::from_utf8_lossy(&line).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut log = String::new();
    let mut seen = false;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(l) => {
                seen |= l.contains(MARKER);
                log.push_str(&l);
                log.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let tail: String = log
        .lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    (seen, tail)
}

fn prepared() -> (tempfile::TempDir, PathBuf) {
    require(&[ISOLINUX, ISOHDPFX, LDLINUX, SYSTEMD_BOOT, OVMF, BUSYBOX]);
    let kernel = kernel();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("linuxkit.iso");
    iso(&kernel, &img);
    (dir, img)
}

#[test]
fn iso_boots_with_isolinux_from_cd_and_as_a_disk() {
    let (_dir, img) = prepared();
    let img = img.to_str().unwrap();
    let (ok, log) = boot(&["-cdrom", img]);
    assert!(ok, "BIOS CD boot did not reach init:\n{log}");
    let (ok, log) = boot(&[
        "-drive",
        &format!("file={img},format=raw,if=virtio,readonly=on"),
    ]);
    assert!(ok, "BIOS isohybrid disk boot did not reach init:\n{log}");
}

#[test]
fn iso_boots_with_systemd_boot_under_uefi_from_cd_and_as_a_disk() {
    let (dir, img) = prepared();
    let (ok, log) = boot(&["-bios", OVMF, "-cdrom", img.to_str().unwrap()]);
    assert!(ok, "UEFI CD boot did not reach init:\n{log}");
    // OVMF also finds El Torito on a disk; without the boot record it can
    // only find the ESP through the MBR's 0xEF partition.
    let disk = dir.path().join("no-el-torito.img");
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[17 * 2048..18 * 2048].fill(0);
    std::fs::write(&disk, bytes).unwrap();
    let (ok, log) = boot(&[
        "-bios",
        OVMF,
        "-drive",
        &format!("file={},format=raw,if=virtio,readonly=on", disk.display()),
    ]);
    assert!(ok, "UEFI isohybrid disk boot did not reach init:\n{log}");
}

/// A GPT disk with a FAT32 ESP (systemd-boot, kernel, initrd): the
/// reference's `raw-efi` layout.
fn efi_disk(kernel: &Path, path: &Path) {
    use linuxkit_output::fat::FatType;
    use linuxkit_output::gpt::{ALIGN, Guid, Layout};
    let initrd = initrd();
    let mut b = FatBuilder::new()
        .label("ESP")
        .unwrap()
        .fat_type(FatType::Fat32)
        .hidden_sectors(ALIGN as u32);
    b.add_file("EFI/BOOT/BOOTX64.EFI", Path::new(SYSTEMD_BOOT))
        .unwrap();
    b.add_bytes("loader/loader.conf", b"timeout 0\n".to_vec())
        .unwrap();
    b.add_bytes(
        "loader/entries/linuxkit.conf",
        format!("title LinuxKit\nlinux /kernel\ninitrd /initrd.img\noptions {CMDLINE}\n")
            .into_bytes(),
    )
    .unwrap();
    b.add_file("kernel", kernel).unwrap();
    b.add_bytes("initrd.img", initrd).unwrap();
    let size = b.image_size().unwrap();
    let mut l = Layout::new(Layout::disk_size_for(&[size]), &b.serial().to_le_bytes());
    l.add(Guid::EFI_SYSTEM, "EFI system", size, 0).unwrap();
    let mut fat = Vec::new();
    b.write(&mut fat).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    l.write_disk(None, &mut [(&mut &fat[..], size)], &mut f)
        .unwrap();
}

#[test]
fn gpt_esp_disk_boots_under_uefi_as_raw_qcow2_vhd_and_vmdk() {
    use linuxkit_output::disk::{DiskFormat, convert_file};
    require(&[SYSTEMD_BOOT, OVMF, BUSYBOX]);
    let kernel = kernel();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    efi_disk(&kernel, &raw);
    let mut disks = vec![(raw.clone(), "raw")];
    for (format, name, driver) in [
        (DiskFormat::Qcow2, "disk.qcow2", "qcow2"),
        (DiskFormat::DynamicVhd, "disk.vhd", "vpc"),
        (DiskFormat::Vmdk, "disk.vmdk", "vmdk"),
    ] {
        let p = dir.path().join(name);
        convert_file(format, &raw, &p).unwrap();
        disks.push((p, driver));
    }
    for (p, driver) in disks {
        let (ok, log) = boot(&[
            "-bios",
            OVMF,
            "-drive",
            &format!("file={},format={driver},if=virtio,readonly=on", p.display()),
        ]);
        assert!(ok, "{driver} disk did not boot:\n{log}");
    }
}

/// A busybox initrd whose stream meets symbolic links the way several
/// images and `files:` can (issue 18), written as it is or through
/// `Resolve`; `/init` prints what the VM sees at each path.
fn linked_initrd(resolve: bool) -> Vec<u8> {
    let busybox = std::fs::read(BUSYBOX).unwrap();
    let mut init = String::from("#!/bin/sh\nfor p in");
    for p in [
        "/x",
        "/x/y",
        "/lib",
        "/z",
        "/up",
        "/r",
        "/r/w",
        "/etc/resolv.conf",
        "/d",
        "/d/k",
    ] {
        init.push(' ');
        init.push_str(p);
    }
    init.push_str(
        "; do\n  if [ -L $p ]; then echo \"VIEW $p link $(/bin/busybox readlink $p)\"\n  elif [ -d $p ]; then echo \"VIEW $p dir\"\n  elif [ -f $p ]; then echo \"VIEW $p file $(/bin/busybox cat $p)\"\n  else echo \"VIEW $p none\"; fi\ndone\n",
    );
    init.push_str(&format!("echo {MARKER}\n/bin/busybox poweroff -f\n"));
    let mut w = CpioWriter::new(Vec::new());
    {
        let mut resolved;
        let sink: &mut dyn EntrySink = if resolve {
            resolved = linuxkit_rootfs::Resolve::new(&mut w);
            &mut resolved
        } else {
            &mut w
        };
        add_busybox_init(sink, &busybox, &init);
        let mut add = |e: Entry, data: &[u8]| put(sink, e, data);
        // Beneath links, with no directory entry in between.
        add(Entry::dir("x"), b"");
        add(Entry::symlink("lib", "/x"), b"");
        add(Entry::file("lib/y", 0), b"Y");
        add(Entry::symlink("up", "../../.."), b"");
        add(Entry::file("up/z", 0), b"Z");
        // Links replaced by a directory and by a file.
        add(Entry::symlink("r", "/x"), b"");
        add(Entry::dir("r"), b"");
        add(Entry::file("r/w", 0), b"W");
        add(Entry::dir("etc"), b"");
        add(Entry::symlink("etc/resolv.conf", "/run/resolv.conf"), b"");
        add(Entry::file("etc/resolv.conf", 0), b"NS");
        // A link over a directory with entries.
        add(Entry::dir("d"), b"");
        add(Entry::file("d/k", 0), b"K");
        add(Entry::symlink("d", "/x"), b"");
    }
    w.finish().unwrap()
}

/// The `VIEW` lines of a boot of `initrd`.
fn view(kernel: &Path, dir: &Path, name: &str, initrd: &[u8]) -> Vec<String> {
    let path = dir.join(name);
    std::fs::write(&path, initrd).unwrap();
    let (ok, log) = boot(&[
        "-kernel",
        kernel.to_str().unwrap(),
        "-initrd",
        path.to_str().unwrap(),
        "-append",
        CMDLINE,
    ]);
    assert!(ok, "{name} did not reach init:\n{log}");
    log.lines()
        .filter_map(|l| l.trim_end_matches('\r').split_once("VIEW "))
        .map(|(_, v)| v.to_string())
        .collect()
}

#[test]
fn the_kernel_unpacks_links_in_the_stream_as_resolve_writes_them() {
    require(&[BUSYBOX]);
    let kernel = kernel();
    let dir = tempfile::tempdir().unwrap();
    let raw = view(&kernel, dir.path(), "raw.img", &linked_initrd(false));
    // What the kernel does with the stream as the reference writes it:
    // parents resolved through links inside the VM, a link replaced by
    // what comes at its path, a link over a directory with entries skipped.
    assert_eq!(
        raw,
        [
            "/x dir",
            "/x/y file Y",
            "/lib link /x",
            "/z file Z",
            "/up link ../../..",
            "/r dir",
            "/r/w file W",
            "/etc/resolv.conf file NS",
            "/d dir",
            "/d/k file K",
        ],
        "the kernel's view of the raw stream"
    );
    let resolved = view(&kernel, dir.path(), "resolved.img", &linked_initrd(true));
    assert_eq!(resolved, raw, "Resolve changed what the VM sees");
}
