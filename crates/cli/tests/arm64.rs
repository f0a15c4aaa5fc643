//! The second architecture, end to end: this repository's packages built
//! for arm64 on this (amd64) machine by `linuxkit pkg build --platforms
//! linux/arm64` (Debian's arm64 packages, the init cross-compiled to
//! aarch64 musl, containerd cross-compiled with GOARCH), the examples built
//! with `linuxkit build --arch arm64`, and booted by `linuxkit run qemu`
//! under `qemu-system-aarch64 -machine virt` (TCG, through the AAVMF UEFI
//! firmware), which picks the architecture up from the image itself:
//!
//! - `examples/check.yml` prints `suite PASSED` as kernel+initrd and from
//!   the UEFI disk `qcow2-efi` (systemd-boot's BOOTAA64.EFI), and the
//!   poweroff container powers the machine off;
//! - `examples/linuxkit.yml` starts every service, nginx answers through
//!   `--publish`, and the ACPI power button (`--stop`) runs onshutdown;
//! - BIOS formats are refused for arm64, naming what to use.
//!
//! TCG emulating arm64 is several times slower than x86 on x86, so these
//! are the few boots that prove the most; `bench/boot.sh` measures them.
//! The packages go to a cache of their own under Cargo's target tmp dir
//! (tags are content hashes, so a rebuild is skipped when nothing
//! changed).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

mod common;
use common::{linuxkit, nginx_answers_then_powers_off, platform_manifest, root, succeeded};

/// The packages `examples/check.yml` and `examples/linuxkit.yml` use, and
/// the boot loaders.
const PACKAGES: &[&str] = &[
    "kernel",
    "bootloader",
    "init",
    "crun",
    "containerd",
    "busybox",
    "ca-certificates",
    "sysctl",
    "dhcpcd",
    "getty",
    "rngd",
    "nginx",
    "check",
    "poweroff",
];

/// The arm64 cache with the package set built, once per test run, and
/// the boot loader image's digest `pkg build` printed.
fn built() -> &'static (PathBuf, String) {
    static CACHE: OnceLock<(PathBuf, String)> = OnceLock::new();
    CACHE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("boot-cache-arm64");
        std::fs::create_dir_all(&dir).unwrap();
        let dirs: Vec<String> = PACKAGES.iter().map(|p| format!("pkg/{p}")).collect();
        let out = succeeded(
            "linuxkit pkg build --platforms linux/arm64",
            linuxkit(&dir)
                .args(["pkg", "build", "--platforms", "linux/arm64"])
                .args(&dirs)
                .output()
                .unwrap(),
        );
        let stdout = text(&out.stdout);
        let bootloader = stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("docker.io/linuxkit/bootloader:"))
            .filter_map(|l| l.split_once('@').map(|(_, d)| d.to_string()))
            .next_back()
            .unwrap_or_else(|| panic!("no boot loader reference in pkg build's output:\n{stdout}"));
        let bootloader = platform_manifest(&dir, &bootloader);
        (dir, bootloader)
    })
}

fn cache() -> &'static Path {
    &built().0
}

/// One VM at a time: two cores, and TCG is slow enough.
fn vm_slot() -> MutexGuard<'static, ()> {
    static SLOT: Mutex<()> = Mutex::new(());
    SLOT.lock().unwrap_or_else(|e| e.into_inner())
}

/// `linuxkit build --arch arm64 --format FORMATS` of `yml` into `out`;
/// returns the image's path prefix.
fn build(yml: &Path, out: &Path, formats: &str) -> PathBuf {
    std::fs::create_dir_all(out).unwrap();
    succeeded(
        "linuxkit build --arch arm64",
        linuxkit(cache())
            .args(["build", "--arch", "arm64", "--format", formats, "--dir"])
            .arg(out)
            .arg(yml)
            .output()
            .unwrap(),
    );
    out.join(yml.file_stem().unwrap())
}

/// `run qemu` without `--arch`: the image says it is arm64.
fn run_qemu(image: &Path, args: &[&str]) -> Output {
    let _slot = vm_slot();
    linuxkit(cache())
        .args(["run", "qemu", "--accel", "tcg", "--mem", "1024"])
        .args(args)
        .arg(image)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Boots `image`: the check suite must pass and the machine power off.
fn check_boots(what: &str, image: &Path) {
    let state = tempfile::tempdir().unwrap();
    let out = run_qemu(
        image,
        &[
            "--timeout",
            "1800",
            "--expect",
            "suite PASSED",
            "--fail-on",
            "FAILED",
            "--state",
            state.path().to_str().unwrap(),
        ],
    );
    let console = text(&out.stdout);
    assert!(
        out.status.success(),
        "{what} did not pass:\n--- console\n{console}\n--- stderr\n{}",
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("the image is for arm64"), "{stderr}");
    assert!(console.contains("Welcome to LinuxKit"), "{console}");
    assert!(
        console.contains("linuxkit: shutting down (power off)"),
        "{console}"
    );
}

#[test]
fn arm64_check_passes_as_kernel_initrd_and_from_a_uefi_disk() {
    let out = tempfile::tempdir().unwrap();
    let yml = root().join("examples/check.yml");
    let image = build(&yml, out.path(), "kernel+initrd,qcow2-efi");
    let kernel = std::fs::read(out.path().join("check-kernel")).unwrap();
    assert_eq!(&kernel[0x38..0x3c], b"ARMd", "not an arm64 Image");
    check_boots("kernel+initrd", &image);
    check_boots("qcow2-efi", &out.path().join("check-efi.qcow2"));
}

#[test]
fn arm64_bootloader_digest_is_the_pinned_one() {
    let built = &built().1;
    let pinned = linuxkit_output::BootloaderImage::of(linuxkit_base::Arch::Arm64)
        .unwrap()
        .image
        .split_once('@')
        .unwrap()
        .1;
    assert_eq!(
        built, pinned,
        "pkg/bootloader now builds to {built} for arm64, but BOOTLOADERS in crates/output/src/bootable.rs pins {pinned}: \
         if pkg/bootloader (build.yml or debian.lock) changed on purpose, update arm64's `image` there"
    );
}

#[test]
fn arm64_bios_formats_are_refused_with_what_to_use() {
    let out = tempfile::tempdir().unwrap();
    for format in ["iso-bios", "raw-bios", "vmdk", "aws"] {
        let o = linuxkit(cache())
            .args(["build", "--arch", "arm64", "--format", format, "--dir"])
            .arg(out.path())
            .arg(root().join("examples/check.yml"))
            .output()
            .unwrap();
        let err = text(&o.stderr);
        assert!(!o.status.success(), "{format} was built for arm64");
        assert!(
            err.contains(&format!("format {format} boots through a PC BIOS"))
                && err.contains("raw-efi")
                && err.contains("--arch arm64"),
            "{err}"
        );
    }
}

#[test]
fn arm64_standard_example_serves_nginx_and_shuts_down_cleanly() {
    let out = tempfile::tempdir().unwrap();
    // examples/linuxkit.yml with arm64's serial console last: its
    // `console=tty0 console=ttyS0` makes /dev/console the (invisible)
    // virtual terminal on arm64, which has no ttyS0, and adding ttyAMA0 to
    // the example does the same to amd64, which has no ttyAMA0: the last
    // `console=` that exists nowhere leaves /dev/console on tty0.
    let yml = std::fs::read_to_string(root().join("examples/linuxkit.yml"))
        .unwrap()
        .replace("console=ttyS0\"", "console=ttyS0 console=ttyAMA0\"")
        .replace("@pkg:../pkg/", &format!("@pkg:{}/pkg/", root().display()));
    assert!(yml.contains("console=ttyAMA0"), "{yml}");
    let yml_path = out.path().join("linuxkit.yml");
    std::fs::write(&yml_path, yml).unwrap();
    let image = build(&yml_path, out.path(), "kernel+initrd");
    let _slot = vm_slot();
    // Generous: TCG emulating arm64 on a shared machine.
    nginx_answers_then_powers_off(
        || linuxkit(cache()),
        &image,
        out.path(),
        Duration::from_secs(1800),
        "300",
    );
}
