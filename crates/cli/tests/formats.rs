//! Every bootable format of `linuxkit build`, end to end with the built
//! `linuxkit` binary: the repository's package set (`pkg/kernel`,
//! `pkg/init`, `pkg/crun`, `pkg/check`, `pkg/poweroff`, `pkg/bootloader`)
//! is built with `linuxkit pkg build` into a test cache, `examples/check.yml`
//! is built in every format, each file is checked by an independent tool
//! (xorriso, isoinfo, sgdisk, fsck.vfat, mtools, qemu-img, GNU tar), two
//! builds are compared byte for byte, and each boot loader path is booted
//! under QEMU (TCG) with `linuxkit run qemu`, where the check package must
//! print `linuxkit check suite PASSED` and power the machine off.
//!
//! Nothing is skipped: `scripts/setup` installs QEMU, OVMF and the
//! validators, and a missing one fails the test that needs it. The Debian
//! download cache (`~/.cache/linuxkit/debian`) is shared with other runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

mod common;
use common::{linuxkit, ok, platform_manifest, root};

use sha2::{Digest, Sha256};

/// The formats built together in one run (`dynamic-vhd` writes `NAME.vhd`
/// like `vhd`, so it has a run of its own).
const TOGETHER: &[&str] = &[
    "iso-bios",
    "iso-efi",
    "iso-efi-initrd",
    "raw-bios",
    "raw-efi",
    "qcow2-bios",
    "qcow2-efi",
    "vhd",
    "vmdk",
    "gcp",
    "aws",
    "azure",
];

/// The reference's file names (and ours for `azure`) for NAME `check`.
const FILES: &[(&str, &str)] = &[
    ("iso-bios", "check.iso"),
    ("iso-efi", "check-efi.iso"),
    ("iso-efi-initrd", "check-efi-initrd.iso"),
    ("raw-bios", "check-bios.img"),
    ("raw-efi", "check-efi.img"),
    ("qcow2-bios", "check.qcow2"),
    ("qcow2-efi", "check-efi.qcow2"),
    ("vhd", "check.vhd"),
    ("dynamic-vhd", "check.vhd"),
    ("vmdk", "check.vmdk"),
    ("gcp", "check.img.tar.gz"),
    ("aws", "check.raw"),
    ("azure", "check-azure.vhd"),
];

const GIB: u64 = 1 << 30;

fn check_yml() -> PathBuf {
    root().join("examples/check.yml")
}

/// Runs a validator; panics (naming it) when it is not installed or fails.
fn tool(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{prog} is needed (scripts/setup installs it): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{prog} {args:?} failed ({}):\n{text}",
        out.status
    );
    text
}

fn sha256(p: &Path) -> String {
    let mut f = std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    format!("{:x}", h.finalize())
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .len()
}

struct Fixture {
    cache: tempfile::TempDir,
    /// Every format from one build (and dynamic-vhd as `check-dynamic.vhd`).
    together: tempfile::TempDir,
    /// Each format built alone, in a directory named after it; these are
    /// the files that are booted.
    alone: tempfile::TempDir,
    /// The platform manifest digest of what `pkg build pkg/bootloader` built.
    bootloader: String,
    /// SHA-256 of every output, taken before any test touched them:
    /// (format, digest of the shared build, digest of the build alone).
    digests: Vec<(String, String, String)>,
}

impl Fixture {
    fn file(&self, format: &str) -> PathBuf {
        if format == "dynamic-vhd" {
            return self.together.path().join("check-dynamic.vhd");
        }
        self.together.path().join(file_name(format))
    }

    fn alone(&self, format: &str) -> PathBuf {
        self.alone.path().join(format).join(file_name(format))
    }

    /// `check-kernel`, `check-initrd.img`, `check-cmdline` of kernel+initrd.
    fn kernel_initrd(&self, file: &str) -> PathBuf {
        self.alone.path().join("kernel+initrd").join(file)
    }
}

fn file_name(format: &str) -> &'static str {
    FILES.iter().find(|(f, _)| *f == format).unwrap().1
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cache = tempfile::tempdir().unwrap();
        ok(linuxkit(cache.path()).args([
            "pkg",
            "build",
            "pkg/kernel",
            "pkg/init",
            "pkg/crun",
            "pkg/check",
            "pkg/poweroff",
        ]));
        // As a user would (`build` finds it by digest, whatever its tag).
        let out = ok(linuxkit(cache.path()).args(["pkg", "build", "pkg/bootloader"]));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let bootloader = stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("docker.io/linuxkit/bootloader:"))
            .filter_map(|l| l.split_once('@').map(|(_, d)| d.to_string()))
            .next_back()
            .unwrap_or_else(|| panic!("no image reference in pkg build's output:\n{stdout}"));
        // The tag names the index of the platform manifest and its
        // attestation (docs/sbom.md); the pin is the platform manifest's.
        let bootloader = platform_manifest(cache.path(), &bootloader);
        // Before anything looks for it by the pinned digest.
        assert_pinned(&bootloader);

        let together = tempfile::tempdir().unwrap();
        let t = together.path().to_str().unwrap();
        ok(linuxkit(cache.path())
            .args(["build", "--dir", t, "--format", &TOGETHER.join(",")])
            .arg(check_yml()));
        ok(linuxkit(cache.path())
            .args(["build", "--dir", t, "--name", "check-dynamic"])
            .args(["--format", "dynamic-vhd"])
            .arg(check_yml()));

        let alone = tempfile::tempdir().unwrap();
        // The kernel and initrd the bootable formats must hold.
        let kdir = alone.path().join("kernel+initrd");
        std::fs::create_dir(&kdir).unwrap();
        ok(linuxkit(cache.path())
            .args(["build", "--dir", kdir.to_str().unwrap()])
            .args(["--format", "kernel+initrd"])
            .arg(check_yml()));
        for (format, _) in FILES {
            let d = alone.path().join(format);
            std::fs::create_dir(&d).unwrap();
            ok(linuxkit(cache.path())
                .args(["build", "--dir", d.to_str().unwrap(), "--format", format])
                .arg(check_yml()));
        }
        let mut f = Fixture {
            cache,
            together,
            alone,
            bootloader,
            digests: Vec::new(),
        };
        f.digests = FILES
            .iter()
            .map(|(format, _)| {
                (
                    format.to_string(),
                    sha256(&f.file(format)),
                    sha256(&f.alone(format)),
                )
            })
            .collect();
        f
    })
}

/// Fails, naming the constant to update, unless `built` (what `pkg build
/// pkg/bootloader` printed) is the digest `linuxkit build` looks for.
fn assert_pinned(built: &str) {
    assert_pinned_for(linuxkit_base::Arch::Amd64, built)
}

/// Fails, naming the row to update, unless `built` (the digest `pkg build
/// pkg/bootloader` printed for `arch`) is what `linuxkit build` looks for.
pub fn assert_pinned_for(arch: linuxkit_base::Arch, built: &str) {
    let pinned = linuxkit_output::BootloaderImage::of(arch)
        .unwrap()
        .image
        .split_once('@')
        .map(|(_, d)| d)
        .unwrap();
    assert_eq!(
        built, pinned,
        "pkg/bootloader now builds to {built} for {arch}, but BOOTLOADERS in crates/output/src/bootable.rs pins {pinned}: \
         if pkg/bootloader (build.yml or debian.lock) changed on purpose, update {arch}'s `image` in BOOTLOADERS \
         to docker.io/linuxkit/bootloader@{built}"
    );
}

#[test]
fn the_bootloader_digest_is_the_pinned_one() {
    assert_pinned(&fixture().bootloader);
}

#[test]
fn files_have_the_reference_names() {
    let f = fixture();
    let mut names: Vec<String> = std::fs::read_dir(f.together.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = TOGETHER
        .iter()
        .map(|f| file_name(f).to_string())
        .chain(["check-dynamic.vhd".to_string()])
        .collect();
    want.sort();
    assert_eq!(names, want, "no scratch or partial file may be left");
    for (format, name) in FILES {
        assert!(f.alone(format).is_file(), "{format} did not write {name}");
    }
}

#[test]
fn builds_are_byte_identical() {
    let f = fixture();
    let mut differ = Vec::new();
    for (format, together, alone) in &f.digests {
        if together != alone {
            differ.push(format.as_str());
        }
    }
    assert!(
        differ.is_empty(),
        "built alone and together, these formats differ: {differ:?}"
    );
    // And again in the same directory, over the earlier files.
    let d = f.alone.path().join("again");
    std::fs::create_dir_all(&d).unwrap();
    ok(linuxkit(f.cache.path())
        .args([
            "build",
            "--dir",
            d.to_str().unwrap(),
            "--format",
            &TOGETHER.join(","),
        ])
        .arg(check_yml()));
    for format in TOGETHER {
        let (_, together, _) = f.digests.iter().find(|(x, _, _)| x == format).unwrap();
        assert_eq!(
            &sha256(&d.join(file_name(format))),
            together,
            "{format} is not reproducible"
        );
    }
}

#[test]
fn iso_bios_is_an_isohybrid_isolinux_image() {
    let f = fixture();
    let iso = f.file("iso-bios");
    let iso_s = iso.to_str().unwrap();
    let report = tool(
        "xorriso",
        &[
            "-indev",
            iso_s,
            "-report_el_torito",
            "plain",
            "-report_system_area",
            "plain",
        ],
    );
    for want in [
        "El Torito boot img :   1  BIOS  y   none",
        "El Torito img path :   1  /isolinux/isolinux.bin",
        "boot-info-table",
        "MBR isohybrid",
        "MBR partition      :   1   0x80  0x17            0",
    ] {
        assert!(report.contains(want), "no {want:?} in:\n{report}");
    }
    let files = tool("isoinfo", &["-R", "-f", "-i", iso_s]);
    for want in [
        "/boot/kernel",
        "/boot/initrd.img",
        "/boot/cmdline",
        "/isolinux/isolinux.bin",
        "/isolinux/ldlinux.c32",
        "/isolinux/isolinux.cfg",
    ] {
        assert!(files.lines().any(|l| l == want), "no {want} in:\n{files}");
    }
    let cfg = tool(
        "isoinfo",
        &["-R", "-i", iso_s, "-x", "/isolinux/isolinux.cfg"],
    );
    assert!(
        cfg.contains("KERNEL /boot/kernel") && cfg.contains("APPEND console=ttyS0"),
        "{cfg}"
    );
    let dir = tempfile::tempdir().unwrap();
    for (path, file) in [
        ("/boot/kernel", "check-kernel"),
        ("/boot/initrd.img", "check-initrd.img"),
    ] {
        let x = dir.path().join(file);
        let out = Command::new("isoinfo")
            .args(["-R", "-i", iso_s, "-x", path])
            .output()
            .expect("isoinfo (scripts/setup installs genisoimage)");
        std::fs::write(&x, out.stdout).unwrap();
        assert_eq!(sha256(&x), sha256(&f.kernel_initrd(file)), "{path}");
    }
    // raw-bios is this image, as a disk (docs/formats.md).
    assert_eq!(sha256(&f.file("raw-bios")), sha256(&iso));
    assert_eq!(size(&iso) % (1 << 20), 0, "isohybrid images are whole MiB");
}

/// Extracts the El Torito UEFI image of `iso` and checks the ESP in it.
fn check_efi_iso(f: &Fixture, iso: &Path, with_files: bool) {
    let s = iso.to_str().unwrap();
    let report = tool(
        "xorriso",
        &[
            "-indev",
            s,
            "-report_el_torito",
            "plain",
            "-report_system_area",
            "plain",
        ],
    );
    for want in [
        "El Torito boot img :   1  UEFI  y   none",
        "El Torito img path :   1  /EFI/efiboot.img",
        "0xef",
    ] {
        assert!(report.contains(want), "no {want:?} in:\n{report}");
    }
    let files = tool("isoinfo", &["-R", "-f", "-i", s]);
    for f in ["/kernel", "/initrd.img", "/cmdline"] {
        assert_eq!(
            files.lines().any(|l| l == f),
            with_files,
            "{f} in {}:\n{files}",
            iso.display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    if with_files {
        // The ISO's files are kernel+initrd's, read from inside the ESP.
        for (path, file) in [
            ("/kernel", "check-kernel"),
            ("/initrd.img", "check-initrd.img"),
            ("/cmdline", "check-cmdline"),
        ] {
            let x = dir.path().join(file);
            let out = Command::new("isoinfo")
                .args(["-R", "-i", s, "-x", path])
                .output()
                .expect("isoinfo (scripts/setup installs genisoimage)");
            std::fs::write(&x, out.stdout).unwrap();
            assert_eq!(
                sha256(&x),
                sha256(&f.kernel_initrd(file)),
                "{path} of {}",
                iso.display()
            );
        }
    }
    let esp = dir.path().join("esp.img");
    tool(
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-indev",
            s,
            "-extract",
            "/EFI/efiboot.img",
            esp.to_str().unwrap(),
        ],
    );
    check_esp(&esp);
    // The ESP's kernel and initrd are kernel+initrd's too.
    for (path, file) in [
        ("::/kernel", "check-kernel"),
        ("::/initrd.img", "check-initrd.img"),
    ] {
        let x = dir.path().join(file);
        tool(
            "mcopy",
            &["-n", "-i", esp.to_str().unwrap(), path, x.to_str().unwrap()],
        );
        assert_eq!(
            sha256(&x),
            sha256(&f.kernel_initrd(file)),
            "{path} in the ESP"
        );
    }
}

/// An ESP image: a clean FAT with systemd-boot, its entry, the kernel and
/// the initrd.
fn check_esp(esp: &Path) {
    let e = esp.to_str().unwrap();
    let fsck = tool("fsck.vfat", &["-n", e]);
    assert!(!fsck.contains("differ"), "{fsck}");
    let listing = tool("mdir", &["-/", "-b", "-i", e, "::"]);
    for want in [
        "::/EFI/BOOT/BOOTX64.EFI",
        "::/loader/loader.conf",
        "::/loader/entries/linuxkit.conf",
        "::/kernel",
        "::/initrd.img",
        "::/cmdline",
    ] {
        assert!(
            listing.lines().any(|l| l.eq_ignore_ascii_case(want)),
            "no {want} in:\n{listing}"
        );
    }
    let entry = tool("mtype", &["-i", e, "::/loader/entries/linuxkit.conf"]);
    assert!(
        entry.contains("linux /kernel")
            && entry.contains("initrd /initrd.img")
            && entry.contains("options console=ttyS0"),
        "{entry}"
    );
}

#[test]
fn iso_efi_images_hold_a_valid_esp() {
    let f = fixture();
    check_efi_iso(f, &f.file("iso-efi"), false);
    check_efi_iso(f, &f.file("iso-efi-initrd"), true);
    // iso-efi-initrd's files are the ESP's, not copies.
    assert!(
        size(&f.file("iso-efi-initrd")) < size(&f.file("iso-efi")) + (1 << 20),
        "iso-efi-initrd holds the kernel and initrd twice"
    );
}

#[test]
fn raw_efi_is_a_gpt_disk_with_a_fat32_esp() {
    let f = fixture();
    let img = f.file("raw-efi");
    let s = img.to_str().unwrap();
    let v = tool("sgdisk", &["-v", s]);
    assert!(v.contains("No problems found"), "{v}");
    let info = tool("sgdisk", &["-i", "1", s]);
    assert!(
        info.contains("C12A7328-F81F-11D2-BA4B-00A0C93EC93B (EFI system partition)"),
        "{info}"
    );
    let sector = |key: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {info}"))
    };
    let (first, last) = (sector("First sector: "), sector("Last sector: "));
    assert_eq!(first, 2048);
    // The ESP, extracted by offset.
    let bytes = std::fs::read(&img).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let esp = dir.path().join("esp.img");
    std::fs::write(
        &esp,
        &bytes[(first * 512) as usize..((last + 1) * 512) as usize],
    )
    .unwrap();
    check_esp(&esp);
    let minfo = tool("minfo", &["-i", esp.to_str().unwrap(), "::"]);
    assert!(minfo.contains("FAT32"), "{minfo}");
    // qcow2-efi is the same disk.
    let q = f.file("qcow2-efi");
    let q = q.to_str().unwrap();
    let check = tool("qemu-img", &["check", "-f", "qcow2", q]);
    assert!(check.contains("No errors were found"), "{check}");
    let qinfo = qemu_img_info(q, None);
    assert_eq!(qinfo.0, "qcow2");
    assert_eq!(qinfo.1, size(&img));
    let cmp = tool("qemu-img", &["compare", "-f", "qcow2", "-F", "raw", q, s]);
    assert!(cmp.contains("Images are identical"), "{cmp}");
}

/// (format, virtual size) as `qemu-img info` reports them.
fn qemu_img_info(path: &str, format: Option<&str>) -> (String, u64) {
    let mut args = vec!["info", "--output=json"];
    if let Some(f) = format {
        args.extend(["-f", f]);
    }
    args.push(path);
    let json: serde_json::Value = serde_json::from_str(&tool("qemu-img", &args)).unwrap();
    (
        json["format"].as_str().unwrap().to_string(),
        json["virtual-size"].as_u64().unwrap(),
    )
}

#[test]
fn bios_disk_containers_hold_the_bios_image() {
    let f = fixture();
    let aws = f.file("aws");
    let aws_s = aws.to_str().unwrap();
    let iso = f.file("iso-bios");
    // aws: the BIOS image, then zeros up to --size's default (1 GiB).
    assert_eq!(size(&aws), GIB);
    let cmp = tool(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "raw",
            aws_s,
            iso.to_str().unwrap(),
        ],
    );
    assert!(cmp.contains("Images are identical"), "{cmp}");
    // (format, qemu-img's driver, whether QEMU recognises it unaided,
    // whether qemu-img check supports it)
    for (format, driver, probed, checks) in [
        ("qcow2-bios", "qcow2", true, true),
        ("vmdk", "vmdk", true, true),
        ("dynamic-vhd", "vpc", true, false),
        // A fixed VHD is the raw disk and a footer: QEMU reads it as raw
        // unless told.
        ("vhd", "vpc", false, false),
        ("azure", "vpc", false, false),
    ] {
        let p = f.file(format);
        let s = p.to_str().unwrap();
        let (fmt, vsize) = qemu_img_info(s, (!probed).then_some(driver));
        assert_eq!(fmt, driver, "{format}");
        assert_eq!(vsize, GIB, "{format}: virtual size");
        if checks {
            let c = tool("qemu-img", &["check", "-f", driver, s]);
            assert!(c.contains("No errors were found"), "{format}: {c}");
        }
        let cmp = tool(
            "qemu-img",
            &["compare", "-f", driver, "-F", "raw", s, aws_s],
        );
        assert!(cmp.contains("Images are identical"), "{format}: {cmp}");
    }
    let vmdk = qemu_img_info_text(f.file("vmdk").to_str().unwrap());
    assert!(vmdk.contains("create type: streamOptimized"), "{vmdk}");
    // Fixed VHDs: the disk and a 512-byte footer; Azure's in whole MiB.
    for format in ["vhd", "azure"] {
        assert_eq!(size(&f.file(format)), GIB + 512, "{format}");
    }
    let footer = std::fs::read(f.file("azure")).unwrap();
    let footer = &footer[footer.len() - 512..];
    assert_eq!(&footer[..8], b"conectix");
    assert_eq!(
        u32::from_be_bytes(footer[60..64].try_into().unwrap()),
        2,
        "fixed"
    );
    // gcp: a GNU sparse tar of disk.raw (a whole GiB), gzipped, which is
    // aws; the padding is a hole, so only the content is archived.
    let gcp = f.file("gcp");
    let list = tool("tar", &["-tvzf", gcp.to_str().unwrap()]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 1, "{list}");
    assert!(
        lines[0].contains(&GIB.to_string()) && lines[0].ends_with(" disk.raw"),
        "{list}"
    );
    let mut header = [0u8; 512];
    std::io::Read::read_exact(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&gcp).unwrap()),
        &mut header,
    )
    .unwrap();
    assert_eq!(&header[257..265], b"ustar  \0", "oldgnu magic");
    assert_eq!(header[156], b'S', "a GNU sparse member");
    let raw = gcp_disk_raw(&gcp);
    assert_eq!(size(&raw.path()), GIB);
    assert_eq!(sha256(&raw.path()), sha256(&aws));
}

/// `disk.raw`, unpacked from a `gcp` archive as GNU tar does it
/// (`-S`: its holes stay holes).
struct DiskRaw(tempfile::TempDir);

impl DiskRaw {
    fn path(&self) -> PathBuf {
        self.0.path().join("disk.raw")
    }
}

fn gcp_disk_raw(archive: &Path) -> DiskRaw {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    tool("tar", &["-xSzf", archive.to_str().unwrap(), "-C", d]);
    DiskRaw(dir)
}

fn qemu_img_info_text(path: &str) -> String {
    tool("qemu-img", &["info", path])
}

#[test]
fn size_sets_the_disk_size_and_too_small_is_an_error() {
    let f = fixture();
    let d = tempfile::tempdir().unwrap();
    let ds = d.path().to_str().unwrap();
    ok(linuxkit(f.cache.path())
        .args(["build", "--dir", ds, "--size", "96M"])
        .args(["--format", "raw-efi,qcow2-bios,vhd,raw-bios"])
        .arg(check_yml()));
    let raw_efi = d.path().join("check-efi.img");
    assert_eq!(size(&raw_efi), 96 << 20);
    let v = tool("sgdisk", &["-v", raw_efi.to_str().unwrap()]);
    assert!(v.contains("No problems found"), "{v}");
    assert_eq!(size(&d.path().join("check-bios.img")), 96 << 20);
    let q = d.path().join("check.qcow2");
    assert_eq!(qemu_img_info(q.to_str().unwrap(), None).1, 96 << 20);
    let vhd = d.path().join("check.vhd");
    assert_eq!(
        qemu_img_info(vhd.to_str().unwrap(), Some("vpc")).1,
        96 << 20
    );

    for format in ["raw-efi", "qcow2-bios"] {
        let out = linuxkit(f.cache.path())
            .args(["build", "--dir", ds, "--name", "small", "--size", "8M"])
            .args(["--format", format])
            .arg(check_yml())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        let line = err.lines().find(|l| l.starts_with("Error:")).unwrap_or("");
        assert!(
            line.contains("content ")
                && line.contains(" MiB does not fit in --size 8M")
                && line.contains(format),
            "{format}: {err}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("small") || n.contains("partial") || n.contains("scratch"))
        .collect();
    assert!(left.is_empty(), "a failed build left {left:?}");
}

#[test]
fn a_configuration_without_a_kernel_cannot_boot() {
    let d = tempfile::tempdir().unwrap();
    let yml = d.path().join("nokernel.yml");
    std::fs::write(
        &yml,
        "init:\n  - linuxkit/init:v1.0.0\nonboot:\n  - name: x\n    image: busybox\n",
    )
    .unwrap();
    for format in ["iso-bios", "raw-efi", "qcow2-bios", "gcp"] {
        let out = linuxkit(&d.path().join("cache"))
            .args([
                "build",
                "--dir",
                d.path().to_str().unwrap(),
                "--format",
                format,
            ])
            .arg(&yml)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains(&format!("{}: format {format} cannot boot", yml.display()))
                && err.contains("no `kernel:` section"),
            "{err}"
        );
    }
}

#[test]
fn a_missing_bootloader_image_says_how_to_get_it() {
    let d = tempfile::tempdir().unwrap();
    let out = linuxkit(&d.path().join("empty-cache"))
        .args([
            "build",
            "--dir",
            d.path().to_str().unwrap(),
            "--format",
            "iso-efi",
        ])
        .arg(check_yml())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            linuxkit_output::BootloaderImage::of(linuxkit_base::Arch::Amd64)
                .unwrap()
                .image
        ) && err.contains("linuxkit pkg build --platforms linux/amd64 pkg/bootloader"),
        "{err}"
    );
}

/// Boots `image` with `linuxkit run qemu` as a user would attach it (an
/// ISO as a CD, anything else as the first disk); the check suite must
/// pass and the machine power off.
fn boot(format: &str, image: &Path, uefi: bool) {
    let f = fixture();
    let state = tempfile::tempdir().unwrap();
    let mut c = linuxkit(f.cache.path());
    c.args(["run", "qemu", "--accel", "tcg", "--timeout", "300"])
        .args(["--expect", "suite PASSED", "--fail-on", "FAILED"])
        .args(["--state", state.path().to_str().unwrap()]);
    if uefi {
        c.arg("--uefi");
    }
    let out = c.arg(image).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = stdout.lines().rev().take(40).collect();
    assert!(
        out.status.success(),
        "{format} ({}) did not boot:\n--- console (last lines)\n{}\n--- stderr\n{}",
        image.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn iso_bios_boots_as_a_cd() {
    boot("iso-bios", &fixture().alone("iso-bios"), false);
}

#[test]
fn raw_bios_the_isohybrid_image_boots_as_a_disk() {
    boot("raw-bios", &fixture().alone("raw-bios"), false);
}

#[test]
fn iso_efi_boots_as_a_cd_under_uefi() {
    boot("iso-efi", &fixture().alone("iso-efi"), true);
}

#[test]
fn iso_efi_initrd_boots_as_a_cd_under_uefi() {
    boot("iso-efi-initrd", &fixture().alone("iso-efi-initrd"), true);
}

#[test]
fn raw_efi_boots_under_uefi() {
    boot("raw-efi", &fixture().alone("raw-efi"), true);
}

#[test]
fn qcow2_efi_boots_under_uefi() {
    boot("qcow2-efi", &fixture().alone("qcow2-efi"), true);
}

#[test]
fn qcow2_bios_boots() {
    boot("qcow2-bios", &fixture().alone("qcow2-bios"), false);
}

#[test]
fn vmdk_boots() {
    boot("vmdk", &fixture().alone("vmdk"), false);
}

#[test]
fn dynamic_vhd_boots() {
    boot("dynamic-vhd", &fixture().alone("dynamic-vhd"), false);
}

#[test]
fn aws_boots() {
    boot("aws", &fixture().alone("aws"), false);
}

/// The fixed VHDs boot as QEMU's `vpc` (which `run qemu` picks from the
/// `.vhd` extension: QEMU probes a fixed VHD as raw).
fn fixed_vhd_boots(format: &str) {
    let vhd = fixture().alone(format);
    assert_eq!(
        qemu_img_info(vhd.to_str().unwrap(), Some("vpc")),
        ("vpc".to_string(), GIB)
    );
    boot(format, &vhd, false);
}

#[test]
fn vhd_boots() {
    fixed_vhd_boots("vhd");
}

#[test]
fn azure_boots() {
    fixed_vhd_boots("azure");
}

/// gcp's `disk.raw`, unpacked with GNU tar, boots as a raw disk.
#[test]
fn gcp_boots() {
    let raw = gcp_disk_raw(&fixture().alone("gcp"));
    boot("gcp", &raw.path(), false);
}
