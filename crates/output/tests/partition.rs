//! MBR and GPT partition tables checked by the real tools: `sgdisk -v`
//! (gdisk), `sfdisk --dump` and `fdisk -l` (util-linux), and mtools
//! reading the file system inside a partition.

use std::path::Path;
use std::process::Command;

use linuxkit_output::fat::{FatBuilder, FatType};
use linuxkit_output::gpt::{Guid, Layout};
use linuxkit_output::mbr::{Mbr, MbrPartition};

fn run(cmd: &mut Command) -> String {
    let out = cmd.env("MTOOLS_SKIP_CHECK", "1").output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

/// Whether `tool` is installed; fails the test when it is not.
fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    // No silent skips: scripts/setup installs every tool the tests use.
    assert!(
        ok,
        "{tool} is not installed: run scripts/setup, which installs it"
    );
    ok
}

/// Without spaces (sfdisk aligns its columns).
fn squeeze(s: &str) -> String {
    s.chars().filter(|c| *c != ' ').collect()
}

fn esp() -> Vec<u8> {
    let mut b = FatBuilder::new()
        .label("ESP")
        .unwrap()
        .fat_type(FatType::Fat32)
        .hidden_sectors(2048);
    b.add_bytes("EFI/BOOT/BOOTX64.EFI", b"MZ not really".to_vec())
        .unwrap();
    let mut out = Vec::new();
    b.write(&mut out).unwrap();
    out
}

fn gpt_disk(path: &Path) -> (Vec<u8>, Layout) {
    let esp = esp();
    let data = vec![0x5a; 3 << 20];
    let size = Layout::disk_size_for(&[esp.len() as u64, data.len() as u64]);
    let mut l = Layout::new(size, b"content hash");
    l.add(Guid::EFI_SYSTEM, "EFI system", esp.len() as u64, 1 << 2)
        .unwrap();
    l.add(Guid::LINUX_FS, "root", data.len() as u64, 0).unwrap();
    let mut out = Vec::new();
    l.write_disk(
        None,
        &mut [
            (&mut &esp[..], esp.len() as u64),
            (&mut &data[..], data.len() as u64),
        ],
        &mut out,
    )
    .unwrap();
    assert_eq!(out.len() as u64, size);
    std::fs::write(path, &out).unwrap();
    (out, l)
}

#[test]
fn gpt_is_valid_and_deterministic() {
    if !have("sgdisk") || !have("sfdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    let (a, l) = gpt_disk(&img);
    let (b, _) = gpt_disk(&dir.path().join("again.img"));
    assert!(a == b, "two builds differ");

    let v = run(Command::new("sgdisk").arg("-v").arg(&img));
    assert!(v.contains("No problems found"), "{v}");
    let p = run(Command::new("sgdisk").arg("-p").arg(&img));
    assert!(
        p.to_lowercase()
            .contains(&format!("disk identifier (guid): {}", l.disk_guid)),
        "{p}"
    );
    let esp = &l.partitions[0];
    assert_eq!(esp.first_lba, 2048);
    let i = run(Command::new("sgdisk").arg("-i").arg("1").arg(&img));
    assert!(i.contains("EFI system partition"), "{i}");
    assert!(i.to_lowercase().contains(&esp.guid.to_string()), "{i}");
    assert!(i.contains("Partition name: 'EFI system'"), "{i}");
    assert!(i.contains("Attribute flags: 0000000000000004"), "{i}");

    let dump = run(Command::new("sfdisk").arg("--dump").arg(&img));
    assert!(dump.contains("label: gpt"), "{dump}");
    assert!(
        dump.to_lowercase()
            .contains(&format!("label-id: {}", l.disk_guid)),
        "{dump}"
    );
    let root = &l.partitions[1];
    let want = format!(
        "start={}, size={}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid={}, name=\"root\"",
        root.first_lba,
        root.last_lba + 1 - root.first_lba,
        root.guid.to_string().to_uppercase()
    );
    assert!(
        squeeze(&dump).contains(&squeeze(&want)),
        "missing {want} in\n{dump}"
    );
    let fdisk = run(Command::new("fdisk").arg("-l").arg(&img));
    assert!(fdisk.contains("Disklabel type: gpt"), "{fdisk}");
    assert!(fdisk.contains("EFI System"), "{fdisk}");

    // The ESP inside, read by mtools at the partition's offset.
    let list = run(Command::new("mdir")
        .arg("-i")
        .arg(format!("{}@@{}", img.display(), 2048 * 512))
        .arg("-/")
        .arg("::/"));
    assert!(list.contains("BOOTX64  EFI"), "{list}");
}

#[test]
fn mbr_disk_is_read_by_sfdisk_and_fdisk() {
    if !have("sfdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    let mut fat = FatBuilder::new().hidden_sectors(2048);
    fat.add_bytes("syslinux.cfg", b"DEFAULT linux\n".to_vec())
        .unwrap();
    let mut fs = Vec::new();
    fat.write(&mut fs).unwrap();
    let sectors = 2048 + fs.len() as u64 / 512 + 2048;
    let mut mbr = Mbr::new(0x1234_abcd);
    mbr.boot_code = vec![0xfa, 0xeb, 0xfe];
    mbr.partitions.push(MbrPartition {
        bootable: true,
        kind: 0x0e,
        start: 2048,
        sectors: fs.len() as u64 / 512,
    });
    let mut out = Vec::new();
    mbr.write_disk(sectors, &mut [(&mut &fs[..], fs.len() as u64)], &mut out)
        .unwrap();
    assert_eq!(out.len() as u64, sectors * 512);
    std::fs::write(&img, &out).unwrap();

    let dump = run(Command::new("sfdisk").arg("--dump").arg(&img));
    assert!(dump.contains("label: dos"), "{dump}");
    assert!(dump.contains("label-id: 0x1234abcd"), "{dump}");
    let want = format!("start=2048, size={}, type=e, bootable", fs.len() / 512);
    assert!(
        squeeze(&dump).contains(&squeeze(&want)),
        "missing {want} in\n{dump}"
    );
    let fdisk = run(Command::new("fdisk").arg("-l").arg(&img));
    assert!(fdisk.contains("Disklabel type: dos"), "{fdisk}");
    assert!(fdisk.contains("W95 FAT16 (LBA)"), "{fdisk}");
    // fdisk warns when the CHS fields disagree with the LBA ones.
    assert!(!fdisk.contains("physical/logical"), "{fdisk}");
    let v = run(Command::new("sfdisk").arg("--verify").arg(&img));
    assert!(v.contains("No errors detected"), "{v}");
    let list = run(Command::new("mdir")
        .arg("-i")
        .arg(format!("{}@@{}", img.display(), 2048 * 512))
        .arg("::/"));
    assert!(list.contains("syslinux.cfg"), "{list}");
}

#[test]
fn partitions_must_fit() {
    let mut l = Layout::new(4 << 20, b"x");
    assert!(l.add(Guid::LINUX_FS, "big", 4 << 20, 0).is_err());
    let mut m = Mbr::new(1);
    m.boot_code = vec![0; 441];
    assert!(m.to_bytes().is_err());
}
