//! Bootable ISO images (El Torito BIOS and UEFI entries, Joliet,
//! isohybrid) checked by `xorriso -report_el_torito`/`-report_system_area`,
//! `isoinfo` and `isovfy`.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use linuxkit_output::fat::FatBuilder;
use linuxkit_output::{BiosBoot, ElTorito, FsTree, Hybrid, IsoOptions, write_iso_with};
use linuxkit_rootfs::{Entry, EntrySink};
use linuxkit_testing::generate::noise;

const ISOLINUX: &str = "/usr/lib/ISOLINUX/isolinux.bin";
const ISOHDPFX: &str = "/usr/lib/ISOLINUX/isohdpfx.bin";

fn add(t: &mut FsTree, path: &str, data: &[u8]) {
    t.add(
        &Entry::file(path, data.len() as u64),
        &mut Cursor::new(data.to_vec()),
    )
    .unwrap();
}

/// An ESP image holding a (fake) BOOTX64.EFI.
fn esp() -> Vec<u8> {
    let mut b = FatBuilder::new().label("EFIBOOT").unwrap().free_space(0);
    b.add_bytes("EFI/BOOT/BOOTX64.EFI", noise(100_000, 9))
        .unwrap();
    let mut out = Vec::new();
    b.write(&mut out).unwrap();
    out
}

fn tree(isolinux: &[u8]) -> FsTree {
    let mut t = FsTree::new(None).unwrap();
    add(&mut t, "isolinux/isolinux.bin", isolinux);
    add(&mut t, "isolinux/isolinux.cfg", b"default linux\n");
    add(&mut t, "kernel", &noise(300_000, 1));
    add(&mut t, "EFI/BOOT/efiboot.img", &esp());
    add(
        &mut t,
        "A file name far longer than the sixty-four characters Joliet allows in one name.txt",
        b"long",
    );
    add(&mut t, "ünïcödé ☃", b"utf");
    t
}

fn options(hybrid: bool) -> IsoOptions {
    IsoOptions {
        volume_id: Some("LinuxKit".into()),
        joliet: true,
        el_torito: Some(ElTorito {
            bios: Some(BiosBoot::isolinux("isolinux/isolinux.bin")),
            efi: Some("EFI/BOOT/efiboot.img".into()),
        }),
        hybrid: hybrid.then(|| Hybrid {
            boot_code: std::fs::read(ISOHDPFX).unwrap()[..432].to_vec(),
        }),
        aliases: Vec::new(),
    }
}

fn build(opts: &IsoOptions, path: &Path) -> Vec<u8> {
    let t = tree(&std::fs::read(ISOLINUX).unwrap());
    let mut out = Vec::new();
    write_iso_with(&t, opts, &mut out).unwrap();
    std::fs::write(path, &out).unwrap();
    out
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

fn have_isolinux() -> bool {
    let ok = Path::new(ISOLINUX).exists() && Path::new(ISOHDPFX).exists();
    // No silent skips: scripts/setup installs the isolinux package.
    assert!(
        ok,
        "{ISOLINUX} is missing: run scripts/setup, which installs the isolinux package"
    );
    ok
}

/// Whitespace-normalised lines.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn assert_has(text: &str, want: &str) {
    let want = want.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        lines(text).iter().any(|l| l.contains(&want)),
        "missing {want:?} in\n{text}"
    );
}

fn extract(img: &Path, path: &str) -> Vec<u8> {
    let out = Command::new("isoinfo")
        .args(["-R", "-x", path, "-i"])
        .arg(img)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// The sector of `path` according to isoinfo's Rock Ridge listing.
fn lba_of(img: &Path, dir: &str, name: &str) -> u32 {
    let list = run(Command::new("isoinfo").args(["-R", "-l", "-i"]).arg(img));
    let mut in_dir = false;
    for l in list.lines() {
        if let Some(d) = l.strip_prefix("Directory listing of ") {
            in_dir = d.trim().trim_end_matches('/') == dir.trim_end_matches('/');
            continue;
        }
        if in_dir && l.trim_end().ends_with(&format!(" {name}")) {
            // "... [ LBA 00] name"
            let at = l.find('[').unwrap();
            return l[at + 1..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    }
    panic!("{dir}/{name} not listed:\n{list}");
}

#[test]
fn bios_and_uefi_el_torito_with_joliet_and_isohybrid() {
    if !have_isolinux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.iso");
    let bytes = build(&options(true), &img);
    let again = build(&options(true), &dir.path().join("b.iso"));
    assert!(bytes == again, "two builds differ");
    assert_eq!(bytes.len() % (1 << 20), 0, "isohybrid pads to a MiB");

    let bios_lba = lba_of(&img, "/isolinux", "isolinux.bin");
    let efi_lba = lba_of(&img, "/EFI/BOOT", "efiboot.img");
    let esp = esp();
    let report = run(Command::new("xorriso").arg("-indev").arg(&img).args([
        "-report_el_torito",
        "plain",
        "-report_system_area",
        "plain",
    ]));
    assert_has(
        &report,
        &format!("El Torito boot img : 1 BIOS y none 0x0000 0x00 4 {bios_lba}"),
    );
    assert_has(
        &report,
        &format!(
            "El Torito boot img : 2 UEFI y none 0x0000 0x00 {} {efi_lba}",
            esp.len() / 512
        ),
    );
    assert_has(&report, "El Torito img path : 1 /isolinux/isolinux.bin");
    assert_has(
        &report,
        "El Torito img opts : 1 boot-info-table isohybrid-suitable",
    );
    assert_has(&report, "El Torito img path : 2 /EFI/BOOT/efiboot.img");
    assert_has(&report, "System area summary: MBR isohybrid cyl-align-on");
    assert_has(&report, "MBR heads per cyl : 64");
    let sectors = bytes.len() / 512;
    assert_has(&report, &format!("MBR partition : 1 0x80 0x00 0 {sectors}"));
    assert_has(
        &report,
        &format!(
            "MBR partition : 2 0x00 0xef {} {}",
            efi_lba * 4,
            esp.len() / 512
        ),
    );
    assert_has(&report, "MBR partition path : 2 /EFI/BOOT/efiboot.img");
    assert_has(&report, "Volume id : 'LinuxKit'");

    // The boot code, and where it finds isolinux.bin.
    let pfx = std::fs::read(ISOHDPFX).unwrap();
    assert_eq!(&bytes[..432], &pfx[..432]);
    assert_eq!(bytes[432..436], (bios_lba * 4).to_le_bytes());
    // The ESP partition holds the FAT image.
    let at = efi_lba as usize * 2048;
    assert!(bytes[at..at + esp.len()] == esp[..]);

    let info = run(Command::new("isoinfo").args(["-d", "-J", "-i"]).arg(&img));
    for want in [
        "Volume id: LinuxKit",
        "El Torito VD version 1 found, boot catalog is in sector",
        "Joliet with UCS level 3 found",
        "Rock Ridge signatures version 1 found",
        "Arch 0 (x86)",
        "Bootid 88 (bootable)",
        "Boot media 0 (No Emulation Boot)",
        "Nsect 4",
        &format!("Bootoff {bios_lba:X} {bios_lba}"),
    ] {
        assert_has(&info, want);
    }
    let vfy = run(Command::new("isovfy").arg(&img));
    assert!(vfy.contains("No errors found"), "{vfy}");

    // The boot info table: the primary descriptor's sector, the image's
    // sector and length, the sum of its words from byte 64.
    let original = std::fs::read(ISOLINUX).unwrap();
    let patched = extract(&img, "/isolinux/isolinux.bin");
    assert_eq!(patched.len(), original.len());
    let word = |at: usize| u32::from_le_bytes(patched[at..at + 4].try_into().unwrap());
    assert_eq!(word(8), 16);
    assert_eq!(word(12), bios_lba);
    assert_eq!(word(16), original.len() as u32);
    let sum = original[64..].chunks(4).fold(0u32, |s, w| {
        s.wrapping_add(u32::from_le_bytes(w.try_into().unwrap()))
    });
    assert_eq!(word(20), sum);
    assert_eq!(&patched[..8], &original[..8]);
    assert!(patched[64..] == original[64..]);
    assert!(extract(&img, "/EFI/BOOT/efiboot.img") == esp);
}

#[test]
fn joliet_names() {
    if !have_isolinux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.iso");
    let mut opts = options(false);
    opts.el_torito = None;
    let bytes = build(&opts, &img);
    assert_eq!(bytes[..32768], [0u8; 32768]);
    // isoinfo shows Joliet names in Latin-1 at best (the snowman, which
    // it cannot show, as `_`); the UCS-2 bytes are checked below.
    let out = Command::new("isoinfo")
        .args(["-J", "-j", "iso8859-1", "-f", "-i"])
        .arg(&img)
        .output()
        .unwrap();
    let list: String = out.stdout.iter().map(|&b| char::from(b)).collect();
    let snowman: Vec<u8> = " ☃;1".encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert!(bytes.windows(snowman.len()).any(|w| w == snowman));
    for want in [
        "/A file name far longer than the sixty-four characters Joliet a;1",
        "/ünïcödé _;1",
        "/EFI/BOOT/efiboot.img;1",
        "/isolinux/isolinux.bin;1",
    ] {
        assert!(
            list.lines().any(|l| l == want),
            "missing {want:?} in\n{list}"
        );
    }
    // Joliet reads the same content.
    let out = Command::new("isoinfo")
        .args(["-J", "-x", "/isolinux/isolinux.cfg;1", "-i"])
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"default linux\n");
    let vfy = run(Command::new("isovfy").arg(&img));
    assert!(vfy.contains("No errors found"), "{vfy}");
}

#[test]
fn uefi_only_el_torito() {
    if !have_isolinux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.iso");
    let opts = IsoOptions {
        el_torito: Some(ElTorito {
            bios: None,
            efi: Some("EFI/BOOT/efiboot.img".into()),
        }),
        hybrid: Some(Hybrid::default()),
        ..IsoOptions::default()
    };
    let bytes = build(&opts, &img);
    let efi_lba = lba_of(&img, "/EFI/BOOT", "efiboot.img");
    let report = run(Command::new("xorriso").arg("-indev").arg(&img).args([
        "-report_el_torito",
        "plain",
        "-report_system_area",
        "plain",
    ]));
    assert_has(
        &report,
        &format!(
            "El Torito boot img : 1 UEFI y none 0x0000 0x00 {} {efi_lba}",
            esp().len() / 512
        ),
    );
    assert_has(
        &report,
        &format!("MBR partition : 1 0x00 0x00 0 {}", bytes.len() / 512),
    );
    assert_has(
        &report,
        &format!("MBR partition : 2 0x00 0xef {}", efi_lba * 4),
    );
    let info = run(Command::new("isoinfo").args(["-d", "-i"]).arg(&img));
    assert_has(&info, "Arch 239");
}

#[test]
fn boot_options_are_checked() {
    let t = tree(&noise(4096, 3));
    let mut out = Vec::new();
    let missing = IsoOptions {
        el_torito: Some(ElTorito {
            bios: Some(BiosBoot::isolinux("isolinux/missing.bin")),
            efi: None,
        }),
        ..IsoOptions::default()
    };
    assert!(write_iso_with(&t, &missing, &mut out).is_err());
    let hybrid_alone = IsoOptions {
        hybrid: Some(Hybrid::default()),
        ..IsoOptions::default()
    };
    assert!(write_iso_with(&t, &hybrid_alone, &mut out).is_err());
    let too_much_code = IsoOptions {
        hybrid: Some(Hybrid {
            boot_code: vec![0; 440],
        }),
        ..options(false)
    };
    assert!(write_iso_with(&t, &too_much_code, &mut out).is_err());
    let empty_et = IsoOptions {
        el_torito: Some(ElTorito::default()),
        ..IsoOptions::default()
    };
    assert!(write_iso_with(&t, &empty_et, &mut out).is_err());
}
