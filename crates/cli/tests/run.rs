//! `linuxkit run qemu` against real QEMU (always `--accel tcg`): a real
//! Debian kernel (linux-image-cloud-amd64) with an initrd whose `/init` is
//! a busybox script, driven by `lktest=MODE` on the kernel command line.
//!
//! The kernel and busybox come from the host's Debian mirror through the
//! project's own Debian client (cached in ~/.cache/linuxkit/debian), and
//! what the tests need from them is kept, keyed by the packages' hashes,
//! under Cargo's target temporary directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use linuxkit_output::CpioWriter;
use linuxkit_pkg::debian::{Client, sources};
use linuxkit_rootfs::{Entry, EntryKind, EntrySink};

/// The guest's `/init`. Modes: `ok` prints and powers off, `fail` prints a
/// failure text, `hang` never ends, `button` waits for the ACPI power
/// button (the kernel turns it into an input event; no acpid needed),
/// `exit` ends init, which panics the kernel (and, with panic=-1, reboots).
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
export PATH=/bin
/bin/busybox --install -s /bin
mode=ok
for a in $(cat /proc/cmdline); do
  case "$a" in lktest=*) mode=${a#lktest=};; esac
done
echo "LKTEST BOOTED mode=$mode"
case "$mode" in
ok)
  echo "LKTEST HELLO"
  ;;
fail)
  echo "LKTEST something FAILED here"
  ;;
hang)
  echo "LKTEST HANGING"
  while true; do sleep 1; done
  ;;
button)
  insmod /mod/evdev.ko
  insmod /mod/button.ko
  dev=
  for e in /sys/class/input/event*; do
    case "$(cat $e/device/name)" in "Power Button") dev=/dev/input/${e##*/};; esac
  done
  # Open the device before saying so: a press before that would be lost.
  exec 3<"$dev"
  echo "LKTEST WAITING on $dev"
  head -c 1 <&3 >/dev/null
  echo "LKTEST POWER BUTTON"
  ;;
exit)
  echo "LKTEST EXITING"
  exit 0
  ;;
esac
poweroff -f
"#;

struct Fixture {
    kernel: PathBuf,
    initrd: PathBuf,
}

/// Files taken out of the Debian packages, cached by package hash.
struct Extracted {
    vmlinuz: PathBuf,
    busybox: PathBuf,
    evdev: PathBuf,
    button: PathBuf,
}

/// Which `data.tar` path a wanted file has.
type Matcher = fn(&str) -> bool;

fn extract(
    client: &Client,
    pkg: &linuxkit_pkg::debian::Package,
    dir: &Path,
    wanted: &[(Matcher, &str)],
) {
    if wanted.iter().all(|(_, name)| dir.join(name).exists()) {
        return;
    }
    std::fs::create_dir_all(dir).unwrap();
    let deb = client
        .deb(pkg)
        .unwrap_or_else(|e| panic!("downloading {}: {e}", pkg.name));
    let mut ar = deb.data().unwrap();
    let mut found = 0;
    for entry in ar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").to_string();
        for (matches, name) in wanted {
            if matches(&path) && entry.header().entry_type().is_file() {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                let tmp = dir.join(format!("{name}.tmp"));
                std::fs::write(&tmp, &data).unwrap();
                std::fs::rename(&tmp, dir.join(name)).unwrap();
                found += 1;
                break;
            }
        }
        if found == wanted.len() {
            break;
        }
    }
    assert_eq!(found, wanted.len(), "{} lacks a wanted file", pkg.name);
}

fn download() -> Extracted {
    let mirror = sources::find_mirror(Some("bookworm"))
        .or_else(|_| sources::find_mirror(None))
        .expect("the host has a Debian apt source");
    let client = Client::for_mirror(&mirror, None);
    let release = client
        .release(&mirror.suite)
        .unwrap_or_else(|e| panic!("mirror {} unreachable or broken: {e}", mirror.uri));
    let index = client
        .packages(&release, &["main".to_string()], "amd64")
        .unwrap();
    let newest = |name: &str| {
        index
            .get(name)
            .max_by(|a, b| a.version.cmp(&b.version))
            .unwrap_or_else(|| panic!("{name} is not in {}", mirror.suite))
            .clone()
    };
    // The metapackage names the versioned kernel package.
    let meta = newest("linux-image-cloud-amd64");
    let image_name = meta
        .depends
        .iter()
        .flatten()
        .find(|d| d.name.starts_with("linux-image-"))
        .expect("linux-image-cloud-amd64 depends on a kernel")
        .name
        .clone();
    let image = newest(&image_name);
    let busybox = newest("busybox-static");
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("run-fixture");
    let kdir = root.join(&image.sha256[..16]);
    let bdir = root.join(&busybox.sha256[..16]);
    extract(
        &client,
        &image,
        &kdir,
        &[
            (|p: &str| p.starts_with("boot/vmlinuz-"), "vmlinuz"),
            (
                |p: &str| p.ends_with("/kernel/drivers/input/evdev.ko"),
                "evdev.ko",
            ),
            (
                |p: &str| p.ends_with("/kernel/drivers/acpi/button.ko"),
                "button.ko",
            ),
        ],
    );
    extract(
        &client,
        &busybox,
        &bdir,
        &[(|p: &str| p == "bin/busybox", "busybox")],
    );
    Extracted {
        vmlinuz: kdir.join("vmlinuz"),
        busybox: bdir.join("busybox"),
        evdev: kdir.join("evdev.ko"),
        button: kdir.join("button.ko"),
    }
}

/// Writes an uncompressed newc initrd (every kernel reads those).
fn write_initrd(path: &Path, x: &Extracted) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = CpioWriter::new(std::io::BufWriter::new(f));
    for d in ["bin", "dev", "mod", "proc", "sys"] {
        w.add(&Entry::dir(d), &mut std::io::empty()).unwrap();
    }
    w.add(
        &Entry {
            kind: EntryKind::Char { major: 5, minor: 1 },
            mode: 0o600,
            ..Entry::dir("dev/console")
        },
        &mut std::io::empty(),
    )
    .unwrap();
    let mut file = |name: &str, data: &[u8], mode: u32| {
        let e = Entry {
            mode,
            ..Entry::file(name, data.len() as u64)
        };
        w.add(&e, &mut &data[..]).unwrap();
    };
    file("init", INIT.as_bytes(), 0o755);
    file("bin/busybox", &std::fs::read(&x.busybox).unwrap(), 0o755);
    file("mod/evdev.ko", &std::fs::read(&x.evdev).unwrap(), 0o644);
    file("mod/button.ko", &std::fs::read(&x.button).unwrap(), 0o644);
    use std::io::Write;
    w.finish().unwrap().flush().unwrap();
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let x = download();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("run-fixture");
        // Rewritten each time (the init script may have changed), replaced
        // atomically (another test process may be booting the old one).
        let initrd = dir.join("initrd.img");
        let tmp = dir.join(format!("initrd.img.{}", std::process::id()));
        write_initrd(&tmp, &x);
        std::fs::rename(&tmp, &initrd).unwrap();
        Fixture {
            kernel: x.vmlinuz,
            initrd,
        }
    })
}

/// An image prefix `DIR/img` (img-kernel, img-initrd.img, img-cmdline)
/// booting in `mode`.
fn image(mode: &str) -> (tempfile::TempDir, String) {
    let f = fixture();
    // Short paths: the QMP socket lives in the state directory.
    let dir = tempfile::Builder::new()
        .prefix("lkrun")
        .tempdir_in("/tmp")
        .unwrap();
    let prefix = dir.path().join("img");
    std::os::unix::fs::symlink(&f.kernel, dir.path().join("img-kernel")).unwrap();
    std::os::unix::fs::symlink(&f.initrd, dir.path().join("img-initrd.img")).unwrap();
    std::fs::write(
        dir.path().join("img-cmdline"),
        format!("console=ttyS0 quiet panic=-1 lktest={mode}\n"),
    )
    .unwrap();
    (dir, prefix.to_string_lossy().into_owned())
}

fn linuxkit() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_linuxkit"));
    c.env_remove("LINUXKIT_QEMU_ACCEL").stdin(Stdio::null());
    c
}

/// `run qemu --accel tcg --mem 512 ARGS... PATH`.
fn run_qemu(args: &[&str], path: &str) -> (i32, String, String, Duration) {
    let t = Instant::now();
    let out: Output = linuxkit()
        .args(["run", "qemu", "--accel", "tcg", "--mem", "512"])
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    let r = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed(),
    );
    eprintln!(
        "run qemu {args:?}: status {} in {:?}\n--- stdout\n{}\n--- stderr\n{}",
        r.0, r.3, r.1, r.2
    );
    r
}

/// Whether `pid` is a running (not zombie) QEMU.
fn qemu_runs(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // pid (comm) state ...
    match stat.rsplit_once(") ") {
        Some((head, rest)) => head.contains("(qemu") && !rest.starts_with('Z'),
        None => false,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_boot_test_passes_with_metadata_a_disk_and_a_published_port() {
    let (dir, img) = image("ok");
    let port = free_port().to_string();
    let publish = format!("{port}:22");
    let (code, out, err, _) = run_qemu(
        &[
            "-v",
            "2",
            "--expect",
            "LKTEST BOOTED mode=ok",
            "--expect",
            "LKTEST HELLO",
            "--fail-on",
            "FAILED",
            "--timeout",
            "180",
            "--data",
            "{\"hello\": \"guest\"}",
            "--disk",
            "size=64M",
            "--publish",
            &publish,
        ],
        &img,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("LKTEST HELLO"), "the console is echoed");
    assert!(err.contains("boot test passed"), "{err}");
    // The QEMU command line (debug log) has the pieces.
    assert!(err.contains(&format!("hostfwd=tcp::{port}-:22")), "{err}");
    assert!(err.contains("-no-reboot"), "{err}");
    let state = dir.path().join("img-state");
    for f in ["data.iso", "mac-addr", "disk.img"] {
        assert!(state.join(f).exists(), "{f} in the state directory");
    }
    // The metadata CD is on virtio-scsi (cloud kernels have no AHCI driver).
    assert!(
        err.contains(&format!(
            "file={},format=raw,if=none,id=lkcd0,media=cdrom",
            state.join("data.iso").display()
        )),
        "{err}"
    );
    let iso = Command::new("isoinfo")
        .args(["-R", "-x", "/config", "-i"])
        .arg(state.join("data.iso"))
        .output()
        .expect("isoinfo (genisoimage) is installed");
    assert_eq!(
        String::from_utf8_lossy(&iso.stdout),
        "{\"hello\": \"guest\"}"
    );
    let disk = std::fs::read(state.join("disk.img")).unwrap();
    assert_eq!(&disk[..4], b"QFI\xfb", "a qcow2 disk was created");
    // The MAC address is kept across runs.
    let mac = std::fs::read_to_string(state.join("mac-addr")).unwrap();
    let (code, _, err, _) = run_qemu(&["-q", "--expect", "LKTEST HELLO"], &img);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(state.join("mac-addr")).unwrap(),
        mac
    );
}

#[test]
fn a_failure_text_ends_the_run_with_the_console_tail() {
    let (_dir, img) = image("fail");
    let (code, _, err, _) = run_qemu(
        &[
            "-q",
            "--fail-on",
            "FAILED",
            "--expect",
            "LKTEST HELLO",
            "--timeout",
            "180",
        ],
        &img,
    );
    assert_eq!(code, 1);
    assert!(err.starts_with("Error: boot test failed: "), "{err}");
    assert!(
        err.contains("the console printed the failure text \"FAILED\""),
        "{err}"
    );
    assert!(err.contains("console lines ---"), "{err}");
    assert!(err.contains("LKTEST something FAILED"), "{err}");
}

#[test]
fn a_missing_text_fails_after_power_off_with_the_default_backend() {
    let (_dir, img) = image("ok");
    // `linuxkit run PATH`: QEMU is the default backend.
    let out = linuxkit()
        .args(["run", "--accel", "tcg", "--mem", "512", "-q"])
        .args(["--expect", "LKTEST HELLO", "--expect", "NEVER PRINTED"])
        .args(["--timeout", "180"])
        .arg(&img)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "-q keeps the console quiet");
    assert!(
        err.contains("the guest powered off but the console never printed \"NEVER PRINTED\""),
        "{err}"
    );
    assert!(err.contains("LKTEST HELLO"), "the tail is shown: {err}");
}

#[test]
fn the_timeout_kills_a_guest_that_does_not_power_off() {
    let (dir, img) = image("hang");
    let (code, _, err, took) = run_qemu(&["--timeout", "10"], &img);
    assert_eq!(code, 1);
    assert!(err.contains("timed out after 10 s"), "{err}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    // QEMU is gone: its pid file is removed or names no QEMU.
    std::thread::sleep(Duration::from_millis(200));
    let pid = std::fs::read_to_string(dir.path().join("img-state/qemu.pid")).unwrap_or_default();
    if let Ok(pid) = pid.trim().parse::<u32>() {
        assert!(!qemu_runs(pid), "QEMU {pid} still runs");
    }
}

#[test]
fn a_reboot_is_not_a_clean_power_off() {
    let (_dir, img) = image("exit");
    let (code, _, err, _) = run_qemu(&["--expect", "LKTEST EXITING", "--timeout", "180"], &img);
    assert_eq!(code, 1);
    assert!(err.contains("rebooted instead of powering off"), "{err}");
}

#[test]
fn powerdown_after_presses_the_acpi_power_button() {
    let (_dir, img) = image("button");
    let (code, out, err, _) = run_qemu(
        &[
            "--powerdown-after",
            "LKTEST WAITING",
            "--expect",
            "LKTEST POWER BUTTON",
            "--timeout",
            "180",
        ],
        &img,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("LKTEST POWER BUTTON"));
}

#[test]
fn a_detached_vm_runs_in_the_background_and_stops_with_the_power_button() {
    let (dir, img) = image("button");
    let (code, _, err, took) = run_qemu(&["--detached"], &img);
    assert_eq!(code, 0, "{err}");
    assert!(took < Duration::from_secs(30));
    assert!(err.contains("--stop"), "tells how to stop it: {err}");
    let state = dir.path().join("img-state");
    let pid: u32 = std::fs::read_to_string(state.join("qemu.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let log = state.join("console.log");
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("LKTEST WAITING")
    {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the guest did not boot: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A second VM on the same state directory is refused.
    let (code, _, err, _) = run_qemu(&["--detached"], &img);
    assert_eq!(code, 1);
    assert!(err.contains("already running"), "{err}");

    let out = linuxkit()
        .args(["run", "qemu", "--stop", "--timeout", "120"])
        .arg(&img)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("stopped"), "{err}");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("LKTEST POWER BUTTON")
    );
    assert!(!qemu_runs(pid), "QEMU {pid} still runs");
    // Nothing runs any more.
    let out = linuxkit()
        .args(["run", "qemu", "--stop"])
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no VM is running"));
}

#[test]
fn bad_flags_are_one_error_line() {
    let (_dir, img) = image("ok");
    for (args, want) in [
        (vec!["--publish", "80"], "--publish \"80\""),
        (
            vec!["--networking", "none", "--publish", "80:80"],
            "user networking",
        ),
        (vec!["--disk", "nope.img"], "does not exist"),
        (vec!["--networking", "vde"], "invalid networking mode"),
        (
            vec!["--detached", "--expect", "x"],
            "--detached cannot be combined",
        ),
    ] {
        let (code, _, err, _) = run_qemu(&args, &img);
        assert_eq!(code, 1, "{args:?}");
        assert!(
            err.starts_with("Error: ") && err.contains(want),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn uefi_boots_with_the_default_firmware() {
    let (dir, img) = image("ok");
    let (code, _, err, _) = run_qemu(
        &[
            "-v",
            "2",
            "--uefi",
            "--expect",
            "LKTEST HELLO",
            "--timeout",
            "180",
        ],
        &img,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("if=pflash,format=raw,unit=0,readonly=on,file="),
        "{err}"
    );
    // A split firmware keeps the VM's own variables in the state directory.
    let vars_template = Path::new("/usr/share/OVMF/OVMF_VARS_4M.fd");
    if vars_template.exists() {
        let (code, _, err, _) = run_qemu(
            &[
                "-q",
                "--uefi",
                "--fw",
                "/usr/share/OVMF/OVMF_CODE_4M.fd",
                "--expect",
                "LKTEST HELLO",
                "--timeout",
                "180",
            ],
            &img,
        );
        assert_eq!(code, 0, "{err}");
        assert!(dir.path().join("img-state/efivars.fd").exists());
    }
}

#[test]
fn metadata_create_writes_a_config_iso() {
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("meta.iso");
    let out = linuxkit()
        .args(["metadata", "create"])
        .arg(&iso)
        .arg("{\"a\": 1}")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let first = std::fs::read(&iso).unwrap();
    let x = Command::new("isoinfo")
        .args(["-R", "-x", "/config", "-i"])
        .arg(&iso)
        .output()
        .unwrap();
    assert_eq!(x.stdout, b"{\"a\": 1}");
    // Reproducible.
    linuxkit()
        .args(["metadata", "create"])
        .arg(&iso)
        .arg("{\"a\": 1}")
        .output()
        .unwrap();
    assert_eq!(std::fs::read(&iso).unwrap(), first);
}
