//! The squashfs and EROFS writers checked by the real tools: squashfs-tools
//! (`unsquashfs`) and erofs-utils (`fsck.erofs`, `dump.erofs`).

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use linuxkit_output::{Format, FsTree, OutputOptions, write_erofs, write_format, write_squashfs};
use linuxkit_rootfs::{Entry, EntryKind, EntrySink};
use linuxkit_testing::generate::noise;

fn many_name(i: usize) -> String {
    format!("entry-{i:04}-{}", "n".repeat(40))
}

/// Expected regular file contents by path.
type Files = BTreeMap<String, Vec<u8>>;

/// A tree touching every entry kind, with the file contents it should have.
fn sample(sink: &mut dyn EntrySink, long_target: usize) -> Files {
    let mut files = Files::new();
    let mut add = |e: Entry, data: &[u8]| {
        if e.kind == EntryKind::File && !e.path.starts_with("boot") {
            files.insert(e.path.clone(), data.to_vec());
        }
        sink.add(&e, &mut Cursor::new(data.to_vec())).unwrap();
    };
    add(Entry::dir("boot"), b"");
    add(Entry::file("boot/kernel", 6), b"KERNEL");
    add(Entry::file("boot/cmdline", 13), b"console=ttyS0");
    add(Entry::dir("etc"), b"");
    add(Entry::file("etc/hello", 6), b"hello\n");
    add(
        Entry {
            mode: 0o4755,
            uid: 100,
            gid: 101,
            mtime: 1_600_000_000,
            ..Entry::file("etc/suid", 2)
        },
        b"#!",
    );
    add(Entry::symlink("etc/link", "hello"), b"");
    add(
        Entry {
            kind: EntryKind::Hardlink {
                target: "etc/hello".into(),
            },
            ..Entry::file("etc/hard", 0)
        },
        b"",
    );
    add(
        Entry {
            kind: EntryKind::Char { major: 1, minor: 3 },
            mode: 0o666,
            ..Entry::file("dev/null", 0)
        },
        b"",
    );
    add(
        Entry {
            kind: EntryKind::Block {
                major: 259,
                minor: 300,
            },
            mode: 0o660,
            gid: 6,
            ..Entry::file("dev/nvme", 0)
        },
        b"",
    );
    add(
        Entry {
            kind: EntryKind::Fifo,
            mode: 0o600,
            ..Entry::file("run/fifo", 0)
        },
        b"",
    );
    add(
        Entry {
            mode: 0o1777,
            ..Entry::dir("tmp")
        },
        b"",
    );
    add(Entry::file("empty", 0), b"");
    add(Entry::file("medium", 3000), &noise(3000, 1));
    let big = noise(3 << 20, 2);
    add(Entry::file("usr/lib/big", big.len() as u64), &big);
    // Same content twice, and one file of zeros.
    add(Entry::file("usr/lib/big-copy", big.len() as u64), &big);
    add(Entry::file("usr/lib/zeros", 300_000), &vec![0u8; 300_000]);
    let long = format!("long/{}", "d".repeat(200));
    add(Entry::dir(long.clone()), b"");
    add(
        Entry::file(format!("{long}/{}", "f".repeat(250)), 3),
        b"abc",
    );
    add(
        Entry::symlink("long/target", format!("/{}", "t".repeat(long_target - 1))),
        b"",
    );
    for i in 0..300 {
        let data = format!("{i}\n");
        add(
            Entry {
                uid: 1000 + i as u32 % 3,
                ..Entry::file(format!("many/{}", many_name(i)), data.len() as u64)
            },
            data.as_bytes(),
        );
    }
    // Replaced: the last entry wins.
    add(Entry::file("etc/motd", 3), b"old");
    add(Entry::file("etc/motd", 3), b"new");
    files
}

/// The sample tree; squashfs (backhand) takes symbolic link targets of up
/// to 255 bytes, EROFS up to a block.
fn build(long_target: usize) -> (FsTree, Files) {
    let mut tree = FsTree::new(None).unwrap();
    let files = sample(&mut tree, long_target);
    assert_eq!(tree.boot["boot/kernel"], b"KERNEL");
    (tree, files)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Whether `tool` is installed; fails the test when it is not.
fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    // No silent skips: scripts/setup installs every tool the tests use.
    assert!(
        ok,
        "{tool} is not installed: run scripts/setup, which installs it"
    );
    ok
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Compares an extracted tree with what was written.
fn check_extracted(root: &Path, files: &Files, long_target: usize, erofs: bool) {
    for (path, data) in files {
        let got = std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(got == *data, "{path}: content differs");
    }
    assert!(
        !root.join("boot").exists(),
        "boot/ must not be in the image"
    );
    assert_eq!(std::fs::read(root.join("etc/hard")).unwrap(), b"hello\n");
    assert_eq!(
        std::fs::read_link(root.join("etc/link")).unwrap(),
        Path::new("hello")
    );
    assert_eq!(
        std::fs::read_link(root.join("long/target"))
            .unwrap()
            .as_os_str()
            .len(),
        long_target
    );
    assert_eq!(std::fs::read_dir(root.join("many")).unwrap().count(), 300);
    if is_root() {
        // fsck.erofs extracts with chmod before chown, which drops the
        // setuid bit; the inode's mode is checked through dump.erofs.
        let m = std::fs::symlink_metadata(root.join("etc/suid")).unwrap();
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
            (if erofs { 0o755 } else { 0o4755 }, 100, 101, 1_600_000_000)
        );
        let m = std::fs::symlink_metadata(root.join("dev/null")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), libc_makedev(1, 3));
        let m = std::fs::symlink_metadata(root.join("dev/nvme")).unwrap();
        assert!(m.file_type().is_block_device());
        assert_eq!(m.rdev(), libc_makedev(259, 300));
        assert!(
            std::fs::symlink_metadata(root.join("run/fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        let m = std::fs::symlink_metadata(root.join("tmp")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o1777);
    }
}

/// glibc's `makedev`.
fn libc_makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfff) << 8) | ((major & !0xfff) << 32) | (minor & 0xff) | ((minor & !0xff) << 12)
}

#[test]
fn squashfs_is_read_by_unsquashfs() {
    if !have("unsquashfs") {
        return;
    }
    let (tree, files) = build(255);
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("root.img");
    let mut f = std::fs::File::create(&img).unwrap();
    let size = write_squashfs(&tree, &mut f).unwrap();
    assert_eq!(size % 4096, 0);
    drop(f);
    assert_eq!(std::fs::metadata(&img).unwrap().len(), size);

    let sb = run(Command::new("unsquashfs")
        .env("TZ", "UTC")
        .arg("-s")
        .arg(&img));
    assert!(sb.contains("Compression gzip"), "{sb}");
    assert!(sb.contains("Block size 131072"), "{sb}");
    // The latest mtime of the tree (the defaults are 2017).
    assert!(sb.contains("Sun Sep 13 12:26:40 2020"), "{sb}");

    let list = run(Command::new("unsquashfs")
        .env("TZ", "UTC")
        .arg("-lln")
        .arg(&img));
    for want in [
        "-rwsr-xr-x 100/101                2 2020-09-13 12:26 squashfs-root/etc/suid",
        "lrwxrwxrwx 0/0                    5 2017-04-18 16:30 squashfs-root/etc/link -> hello",
        "crw-rw-rw- 0/0                1,  3 2017-04-18 16:30 squashfs-root/dev/null",
        // unsquashfs lists minors above 255 in the old 8-bit split; the
        // extraction below checks the real device number (259, 300).
        "brw-rw---- 0/6",
        "prw------- 0/0                    0 2017-04-18 16:30 squashfs-root/run/fifo",
        "drwxrwxrwt 0/0",
        "-rw-r--r-- 0/0              3145728 2017-04-18 16:30 squashfs-root/usr/lib/big",
        "-rw-r--r-- 1002/0                 4 2017-04-18 16:30 squashfs-root/many/entry-0299",
    ] {
        assert!(
            list.lines().any(|l| l
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .starts_with(&want.split_whitespace().collect::<Vec<_>>().join(" "))),
            "missing {want:?} in\n{list}"
        );
    }
    assert!(!list.contains("squashfs-root/boot"), "{list}");

    let out = dir.path().join("out");
    run(Command::new("unsquashfs")
        .arg("-no-xattrs")
        .arg("-d")
        .arg(&out)
        .arg(&img));
    check_extracted(&out, &files, 255, false);
}

#[test]
fn squashfs_refuses_long_symlink_targets() {
    let mut tree = FsTree::new(None).unwrap();
    tree.add(&Entry::symlink("l", "x".repeat(256)), &mut std::io::empty())
        .unwrap();
    let err = write_squashfs(&tree, &mut tempfile::tempfile().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("255"), "{err}");
}

#[test]
fn squashfs_is_reproducible() {
    let write = || {
        let (tree, _) = build(255);
        let mut f = tempfile::tempfile().unwrap();
        write_squashfs(&tree, &mut f).unwrap();
        let mut out = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut out).unwrap();
        out
    };
    assert!(write() == write());
}

#[test]
fn erofs_passes_fsck_and_extracts() {
    if !have("fsck.erofs") {
        return;
    }
    let (tree, files) = build(3001);
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("root.img");
    let mut bytes = Vec::new();
    let size = write_erofs(&tree, &mut bytes).unwrap();
    assert_eq!(bytes.len() as u64, size);
    assert_eq!(size % 4096, 0);
    std::fs::write(&img, &bytes).unwrap();

    run(Command::new("fsck.erofs").arg(&img));
    let out = dir.path().join("out");
    run(Command::new("fsck.erofs")
        .arg(format!("--extract={}", out.display()))
        .arg(&img));
    check_extracted(&out, &files, 3001, true);

    if have("dump.erofs") {
        let sb = run(Command::new("dump.erofs").arg("-s").arg(&img));
        assert!(sb.contains("sb_csum"), "{sb}");
        assert!(
            sb.contains("Filesystem inode metadata start block:        1"),
            "{sb}"
        );
        let hard = run(Command::new("dump.erofs").arg("--path=/etc/hard").arg(&img));
        assert!(hard.contains("Links: 2"), "{hard}");
        // fsck.erofs extracts hard links as copies; the inode is shared.
        let nid = |out: &str| {
            out.split("NID: ")
                .nth(1)
                .map(|r| r.split_whitespace().next().unwrap().to_string())
        };
        let hello = run(Command::new("dump.erofs")
            .arg("--path=/etc/hello")
            .arg(&img));
        assert_eq!(nid(&hard), nid(&hello));
        assert!(nid(&hard).is_some());
        let suid = run(Command::new("dump.erofs").arg("--path=/etc/suid").arg(&img));
        assert!(suid.contains("Uid: 100   Gid: 101"), "{suid}");
        // dump.erofs prints only the permission bits: read i_mode at the
        // nid it reports.
        let nid: usize = suid
            .split("NID: ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{suid}"));
        let at = 4096 + nid * 32 + 4;
        let mode = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        assert_eq!(mode, 0o104755);
        let dev = run(Command::new("dump.erofs").arg("--path=/dev/nvme").arg(&img));
        assert!(dev.contains("Gid: 6"), "{dev}");
    }
}

#[test]
fn erofs_is_reproducible() {
    let write = || {
        let (tree, _) = build(3001);
        let mut out = Vec::new();
        write_erofs(&tree, &mut out).unwrap();
        out
    };
    assert!(write() == write());
}

#[test]
fn formats_without_a_kernel_fail_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for format in [Format::KernelSquashfs, Format::KernelErofs] {
        let err = write_format(format, dir.path(), "x", &OutputOptions::default(), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs a kernel"), "{err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn empty_trees_are_valid_images() {
    let tree = FsTree::new(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    if have("fsck.erofs") {
        let img = dir.path().join("e.img");
        let mut bytes = Vec::new();
        write_erofs(&tree, &mut bytes).unwrap();
        std::fs::write(&img, &bytes).unwrap();
        run(Command::new("fsck.erofs").arg(&img));
    }
    if have("unsquashfs") {
        let img = dir.path().join("s.img");
        write_squashfs(&tree, &mut std::fs::File::create(&img).unwrap()).unwrap();
        run(Command::new("unsquashfs").arg("-lln").arg(&img));
    }
}

/// A 5000-deep directory chain: every writer is linear in it (backhand's
/// squashfs writer was cubic, over 5 minutes, and then overflowed its
/// thread's stack; issue 18.5), and the tools read the images to the bottom.
#[test]
fn a_deep_directory_chain_is_written() {
    const DEPTH: usize = 5000;
    let mut tree = FsTree::new(None).unwrap();
    let mut tar = linuxkit_output::TarWriter::new(Vec::new());
    let mut path = String::new();
    for _ in 0..DEPTH {
        if !path.is_empty() {
            path.push('/');
        }
        path.push('d');
        let e = Entry::dir(path.clone());
        tree.add(&e, &mut std::io::empty()).unwrap();
        tar.add(&e, &mut std::io::empty()).unwrap();
    }
    let deepest = format!("/{path}");
    let dir = tempfile::tempdir().unwrap();

    let t = dir.path().join("t.tar");
    std::fs::write(&t, tar.finish().unwrap()).unwrap();
    let list = run(Command::new("tar").arg("-tf").arg(&t));
    assert_eq!(list.lines().count(), DEPTH);

    if have("unsquashfs") {
        let img = dir.path().join("s.img");
        write_squashfs(&tree, &mut std::fs::File::create(&img).unwrap()).unwrap();
        let list = run(Command::new("unsquashfs")
            .arg("-lc")
            .arg("-d")
            .arg("")
            .arg(&img));
        assert!(
            list.lines().any(|l| l == deepest),
            "the deepest directory is listed"
        );
    }
    if have("fsck.erofs") {
        let img = dir.path().join("e.img");
        let mut bytes = Vec::new();
        write_erofs(&tree, &mut bytes).unwrap();
        std::fs::write(&img, &bytes).unwrap();
        // fsck.erofs recurses too: it needs more than 8 MiB of stack here.
        run(Command::new("sh")
            .arg("-c")
            .arg("ulimit -s unlimited 2>/dev/null || ulimit -s \"$(ulimit -Hs)\"; exec fsck.erofs \"$0\"")
            .arg(&img));
    }
    let mut iso = Vec::new();
    linuxkit_output::write_iso(&tree, &mut iso).unwrap();
    assert!(iso.len() > 16 * 2048);
}
