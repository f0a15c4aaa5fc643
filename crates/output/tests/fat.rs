//! The FAT writer checked by the real tools: `fsck.vfat -n` (dosfstools)
//! for the structure, mtools (`mdir`, `mcopy`, `minfo`) reading every file
//! back.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use linuxkit_output::fat::{FatBuilder, FatType};
use linuxkit_testing::generate::noise;

/// An ESP-like tree; returns the builder and the expected files.
fn sample(dir: &Path) -> (FatBuilder, BTreeMap<String, Vec<u8>>) {
    let mut files = BTreeMap::new();
    let mut b = FatBuilder::new().label("LINUXKIT").unwrap();
    let mut add = |b: &mut FatBuilder, path: &str, data: Vec<u8>| {
        b.add_bytes(path, data.clone()).unwrap();
        files.insert(path.to_string(), data);
    };
    add(&mut b, "EFI/BOOT/BOOTX64.EFI", noise(70_000, 1));
    add(&mut b, "loader/loader.conf", b"timeout 0\n".to_vec());
    add(
        &mut b,
        "loader/entries/linuxkit.conf",
        b"title LinuxKit\nlinux /kernel\ninitrd /initrd.img\n".to_vec(),
    );
    add(&mut b, "empty", Vec::new());
    add(&mut b, "exactly-one-cluster.bin", noise(512, 2));
    add(
        &mut b,
        "A Long File Name With Spaces.text",
        b"long".to_vec(),
    );
    add(&mut b, "ünïcödé ☃.txt", b"utf".to_vec());
    add(&mut b, "same-prefix-1.txt", b"1".to_vec());
    add(&mut b, "same-prefix-2.txt", b"2".to_vec());
    add(&mut b, ".hidden", b"h".to_vec());
    add(&mut b, "a/b/c/d/e/deep.txt", b"deep".to_vec());
    for i in 0..40 {
        add(
            &mut b,
            &format!("many/file-with-a-long-name-{i:03}.data"),
            noise(i * 37, i as u32),
        );
    }
    b.add_dir("empty-dir").unwrap();
    let big = dir.join("big");
    let content = noise(3 << 20, 7);
    std::fs::write(&big, &content).unwrap();
    b.add_file("kernel", &big).unwrap();
    files.insert("kernel".into(), content);
    (b, files)
}

fn build(b: &FatBuilder, path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    b.write(&mut out).unwrap();
    assert_eq!(out.len() as u64, b.image_size().unwrap());
    std::fs::write(path, &out).unwrap();
    out
}

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let o = Command::new(cmd)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// fsck finds nothing to fix, and mtools reads back every file.
fn verify(img: &Path, files: &BTreeMap<String, Vec<u8>>) {
    let p = img.to_str().unwrap();
    let (ok, text) = run("fsck.vfat", &["-n", "-v", p]);
    assert!(ok, "{text}");
    assert!(!text.contains("Free cluster summary wrong"), "{text}");
    assert!(!text.to_lowercase().contains("differ"), "{text}");
    for (path, data) in files {
        let o = Command::new("mcopy")
            .args(["-n", "-i", p, &format!("::/{path}"), "-"])
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.stdout == *data, "{path}: content differs");
    }
    if files.is_empty() {
        let (ok, text) = run("mdir", &["-i", p, "::/"]);
        assert!(ok && text.contains("No files"), "{text}");
        return;
    }
    let (ok, text) = run("mdir", &["-i", p, "-/", "-b", "::/"]);
    assert!(ok, "{text}");
    for path in files.keys() {
        assert!(
            text.contains(&format!("::/{path}")),
            "{path} not listed:\n{text}"
        );
    }
}

#[test]
fn fat16_esp_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (b, files) = sample(dir.path());
    let a = build(&b, &dir.path().join("a.img"));
    let again = build(&b, &dir.path().join("b.img"));
    assert!(a == again, "two builds differ");
    let img = dir.path().join("a.img");
    verify(&img, &files);
    assert_eq!(&a[54..62], b"FAT16   ");
    let (_, info) = run("minfo", &["-i", img.to_str().unwrap(), "::"]);
    assert!(info.contains("LINUXKIT"), "{info}");
    assert!(
        info.contains(&format!("serial number: {:08X}", b.serial())),
        "{info}"
    );
    // Files with spaces etc. are listed by their long names.
    let (_, list) = run("mdir", &["-i", img.to_str().unwrap(), "::/"]);
    assert!(list.contains("A Long File Name With Spaces.text"), "{list}");
}

#[test]
fn fat32_esp_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (b, files) = sample(dir.path());
    let b = b.fat_type(FatType::Fat32).hidden_sectors(2048);
    let a = build(&b, &dir.path().join("a.img"));
    assert_eq!(&a[82..90], b"FAT32   ");
    assert!(a.len() >= 33 << 20);
    verify(&dir.path().join("a.img"), &files);
}

#[test]
fn fixed_size_and_tiny_images() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = FatBuilder::new().size(64 << 20);
    b.add_bytes("x", b"x".to_vec()).unwrap();
    let img = dir.path().join("fixed.img");
    let bytes = build(&b, &img);
    assert_eq!(bytes.len(), 64 << 20);
    verify(&img, &BTreeMap::from([("x".to_string(), b"x".to_vec())]));
    // Empty: the smallest FAT16.
    let b = FatBuilder::new().free_space(0);
    let img = dir.path().join("tiny.img");
    let bytes = build(&b, &img);
    assert!(bytes.len() <= 3 << 20, "{}", bytes.len());
    verify(&img, &BTreeMap::new());
}

#[test]
fn bad_names_and_case_collisions_are_refused() {
    let mut b = FatBuilder::new();
    b.add_bytes("EFI/boot/x", vec![]).unwrap();
    assert!(b.add_bytes("efi/BOOT/X", vec![]).is_err());
    assert!(b.add_bytes("a:b", vec![]).is_err());
    assert!(b.add_bytes("trailing.", vec![]).is_err());
    assert!(FatBuilder::new().label("lower").is_err());
    // A file where a directory is needed.
    assert!(b.add_bytes("EFI/boot/x/y", vec![]).is_err());
}

#[test]
fn aligned_files_start_on_the_boundary_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    for (t, label) in [(FatType::Fat16, "16"), (FatType::Fat32, "32")] {
        let (b, files) = sample(dir.path());
        let b = b.fat_type(t).align_files(2048);
        let img = dir.path().join(format!("aligned{label}.img"));
        let bytes = build(&b, &img);
        verify(&img, &files);
        for (path, data) in &files {
            match b.file_offset(path).unwrap() {
                None => assert!(data.is_empty(), "{path}"),
                Some(at) => {
                    assert_eq!(at % 2048, 0, "{path} at {at}");
                    let at = at as usize;
                    assert!(bytes[at..at + data.len()] == data[..], "{path}");
                }
            }
        }
        assert!(b.file_offset("no/such").is_err());
        assert!(b.file_offset("loader").is_err(), "a directory");
    }
}
