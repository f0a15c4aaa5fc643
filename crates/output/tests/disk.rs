//! The virtual disk containers checked by `qemu-img` (QEMU's own readers:
//! `check`, `info`, and `compare` against the raw image) and, for the GCE
//! tarball, GNU tar and gzip.

use std::io::{Cursor, Seek, Write};
use std::path::Path;
use std::process::Command;

use linuxkit_output::disk::{self, DiskFormat};
use linuxkit_testing::generate::noise;

/// A raw disk of `len` bytes: zeros with islands of data, including one
/// right at the end and one straddling block boundaries.
fn raw_disk(len: usize) -> Vec<u8> {
    let mut d = vec![0u8; len];
    let mut put = |at: usize, n: usize, seed: u32| {
        if at >= len {
            return;
        }
        let n = n.min(len - at);
        d[at..at + n].copy_from_slice(&noise(n, seed));
    };
    put(0, 4096, 1);
    put(3 * 65536 - 100, 300, 2);
    put((2 << 20) - 512, 1024, 3);
    put(len / 2, 200_000, 4);
    put(len - 700, 700, 5);
    d
}

fn write(format: DiskFormat, raw: &[u8], path: &Path) {
    let mut out = Cursor::new(Vec::new());
    let len = raw.len() as u64;
    match format {
        DiskFormat::Vhd => disk::vhd::write_fixed(raw, len, &mut out),
        DiskFormat::AzureVhd => disk::vhd::write_azure(raw, len, &mut out),
        DiskFormat::DynamicVhd => disk::vhd::write_dynamic(raw, len, &mut out),
        DiskFormat::Vmdk => disk::vmdk::write_stream_optimized(raw, len, "disk.vmdk", &mut out),
        DiskFormat::Qcow2 => disk::qcow2::write(raw, len, &mut out),
        DiskFormat::Gcp => disk::gcp::write(raw, len, &mut out),
    }
    .unwrap();
    // Writers leave the position at the end.
    assert_eq!(out.stream_position().unwrap(), out.get_ref().len() as u64);
    std::fs::write(path, out.into_inner()).unwrap();
}

fn qemu_img(args: &[&str]) -> (bool, String) {
    let o = Command::new("qemu-img").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn info(fmt: &str, path: &Path) -> String {
    let (ok, text) = qemu_img(&["info", "--output=json", "-f", fmt, path.to_str().unwrap()]);
    assert!(ok, "{text}");
    text
}

fn json_u64(json: &str, key: &str) -> u64 {
    let at = json.find(&format!("\"{key}\": ")).expect(key) + key.len() + 4;
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// Writes `format` twice (the same bytes), then lets `qemu-img` read it:
/// its format and virtual size, `check` where the driver has one, and
/// `compare` against the raw image.
fn check(format: DiskFormat, fmt: &str, raw: &[u8], virtual_size: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let raw_path = dir.path().join("disk.raw");
    std::fs::write(&raw_path, raw).unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    write(format, raw, &a);
    write(format, raw, &b);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    let json = info(fmt, &a);
    assert!(json.contains(&format!("\"format\": \"{fmt}\"")), "{json}");
    assert_eq!(json_u64(&json, "virtual-size"), virtual_size, "{json}");
    if fmt != "vpc" {
        let (ok, text) = qemu_img(&["check", "-f", fmt, a.to_str().unwrap()]);
        assert!(ok && text.contains("No errors were found"), "{text}");
    }
    let (ok, text) = qemu_img(&[
        "compare",
        "-f",
        "raw",
        "-F",
        fmt,
        raw_path.to_str().unwrap(),
        a.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    std::fs::metadata(&a).unwrap().len()
}

const LEN: usize = (5 << 20) + 4096 + 512;

#[test]
fn fixed_vhd() {
    let raw = raw_disk(LEN);
    let size = check(DiskFormat::Vhd, "vpc", &raw, LEN as u64);
    assert_eq!(size, LEN as u64 + 512);
}

#[test]
fn azure_vhd_is_whole_mebibytes() {
    let raw = raw_disk(LEN);
    let size = check(DiskFormat::AzureVhd, "vpc", &raw, 6 << 20);
    assert_eq!(size, (6 << 20) + 512);
}

#[test]
fn dynamic_vhd_leaves_zero_blocks_out() {
    let raw = raw_disk(64 << 20);
    let size = check(DiskFormat::DynamicVhd, "vpc", &raw, 64 << 20);
    // Blocks 0, 1, 16 and 31 hold data.
    assert_eq!(size, 512 + 1024 + 512 + 4 * (512 + (2 << 20)) + 512);
    // An odd size: the last block is partly past the disk's end.
    check(
        DiskFormat::DynamicVhd,
        "vpc",
        &raw_disk(3_000_001),
        3_000_320,
    );
}

#[test]
fn stream_optimized_vmdk() {
    let raw = raw_disk(64 << 20);
    let dir = tempfile::tempdir().unwrap();
    let size = check(DiskFormat::Vmdk, "vmdk", &raw, 64 << 20);
    assert!(size < 1 << 20, "{size}");
    let p = dir.path().join("x.vmdk");
    write(DiskFormat::Vmdk, &raw, &p);
    let json = info("vmdk", &p);
    assert!(
        json.contains("\"create-type\": \"streamOptimized\""),
        "{json}"
    );
    assert!(json.contains("\"compressed\": true"), "{json}");
    // An odd size (not whole grains, not whole sectors).
    check(DiskFormat::Vmdk, "vmdk", &raw_disk(300_001), 300_032);
}

#[test]
fn qcow2_version_3() {
    let raw = raw_disk(64 << 20);
    let size = check(DiskFormat::Qcow2, "qcow2", &raw, 64 << 20);
    assert!(size < 2 << 20, "{size}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.qcow2");
    write(DiskFormat::Qcow2, &raw, &p);
    let json = info("qcow2", &p);
    assert!(json.contains("\"compat\": \"1.1\""), "{json}");
    // An odd size, an empty disk, and one that needs more than one L2
    // table.
    check(DiskFormat::Qcow2, "qcow2", &raw_disk(300_001), 300_032);
    check(DiskFormat::Qcow2, "qcow2", &[0u8; 1 << 20], 1 << 20);
    let mut big = raw_disk(600 << 20);
    big[(600 << 20) - 1] = 1;
    check(DiskFormat::Qcow2, "qcow2", &big, 600 << 20);
}

#[test]
fn gcp_tarball_holds_disk_raw() {
    let raw = raw_disk(LEN);
    let dir = tempfile::tempdir().unwrap();
    let raw_path = dir.path().join("in.raw");
    std::fs::write(&raw_path, &raw).unwrap();
    let a = dir.path().join("a.img.tar.gz");
    let b = dir.path().join("b.img.tar.gz");
    disk::convert_file(DiskFormat::Gcp, &raw_path, &a).unwrap();
    disk::convert_file(DiskFormat::Gcp, &raw_path, &b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let list = Command::new("tar").arg("-tvzf").arg(&a).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(
        list.contains("root/root") && list.contains(" 1073741824 ") && list.ends_with("disk.raw\n"),
        "{list}"
    );
    // GNU format: the oldgnu magic.
    let head = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -dc {} | head -c 512", a.display()))
        .output()
        .unwrap();
    assert_eq!(&head.stdout[257..265], b"ustar  \0");
    // A GNU sparse member, as Google's `tar --format=oldgnu -Sczf` makes:
    // only the content is archived, the padding is a hole.
    assert_eq!(head.stdout[156], b'S');
    // The content: the raw image, then zeros.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let st = Command::new("tar")
        .arg("-xSzf")
        .arg(&a)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let got = std::fs::read(out.join("disk.raw")).unwrap();
    assert_eq!(got.len(), 1 << 30);
    assert_eq!(&got[..LEN], &raw[..]);
    assert!(got[LEN..].iter().all(|&b| b == 0));
    // Unpacked sparse: far less allocated than the GiB.
    let st = Command::new("du")
        .args(["-k", out.join("disk.raw").to_str().unwrap()])
        .output()
        .unwrap();
    let kib: u64 = String::from_utf8_lossy(&st.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(kib < 64 << 10, "{kib} KiB allocated");
}

#[test]
fn files_are_written_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let raw_path = dir.path().join("in.raw");
    let mut f = std::fs::File::create(&raw_path).unwrap();
    f.write_all(&raw_disk(1 << 20)).unwrap();
    drop(f);
    let dest = dir.path().join("x.qcow2");
    disk::convert_file(DiskFormat::Qcow2, &raw_path, &dest).unwrap();
    let (ok, text) = qemu_img(&["check", dest.to_str().unwrap()]);
    assert!(ok, "{text}");
    // A missing raw image leaves nothing behind.
    let missing = dir.path().join("missing.raw");
    assert!(disk::convert_file(DiskFormat::Vhd, &missing, &dir.path().join("y.vhd")).is_err());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
