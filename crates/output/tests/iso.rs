//! The ISO 9660 writer checked by the real tools: `isoinfo` (genisoimage)
//! and `xorriso` (libisofs).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use linuxkit_output::{Format, FsTree, OutputOptions, write_format, write_iso};
use linuxkit_rootfs::{Entry, EntryKind, EntrySink};
use linuxkit_testing::generate::noise;

fn many_name(i: usize) -> String {
    format!("entry-{i:04}-{}", "n".repeat(40))
}

fn long_dir() -> String {
    format!("long/{}", "d".repeat(200))
}

fn long_file() -> String {
    // Its NM is split in two entries.
    format!("{}/{}", long_dir(), "f".repeat(255))
}

fn long_target() -> String {
    // Over several SL entries, with components split in two (over 248
    // bytes); libisofs reads targets of up to 1024 bytes.
    format!(
        "/{}/../x/./{}/{}/{}",
        "t".repeat(252),
        "u".repeat(255),
        "v".repeat(250),
        "w".repeat(200)
    )
}

fn deep_dir() -> String {
    (0..12)
        .map(|i| format!("level{i}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// Expected regular file contents by path.
type Files = BTreeMap<String, Vec<u8>>;

/// A tree touching every entry kind, with the file contents it should have.
fn sample(sink: &mut dyn EntrySink, target: &str) -> Files {
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
    // Names that map to the same ISO 9660 name.
    for n in [
        "Case",
        "case",
        "CASE",
        "case.txt",
        "CASE.TXT",
        "lib.so.1.2.3",
    ] {
        add(
            Entry::file(format!("etc/{n}"), n.len() as u64),
            n.as_bytes(),
        );
    }
    add(Entry::file("etc/ünïcödé ☃", 3), b"utf");
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
                major: 8,
                minor: 16,
            },
            mode: 0o660,
            gid: 6,
            ..Entry::file("dev/sdb", 0)
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
    add(Entry::file("usr/lib/zeros", 300_000), &vec![0u8; 300_000]);
    add(Entry::dir(long_dir()), b"");
    add(Entry::file(long_file(), 3), b"abc");
    add(Entry::symlink("long/target", target), b"");
    add(Entry::file(format!("{}/bottom", deep_dir()), 4), b"deep");
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
    files
}

fn build(target: &str) -> (FsTree, Files) {
    let mut tree = FsTree::new(None).unwrap();
    let files = sample(&mut tree, target);
    (tree, files)
}

fn image(target: &str) -> Vec<u8> {
    let (tree, _) = build(target);
    let mut out = Vec::new();
    write_iso(&tree, &mut out).unwrap();
    out
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

/// glibc's `makedev`.
fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfff) << 8) | ((major & !0xfff) << 32) | (minor & 0xff) | ((minor & !0xff) << 12)
}

/// Whitespace-normalised lines.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn assert_has(list: &[String], want: &str) {
    let want = want.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        list.iter()
            .any(|l| l.starts_with(&want) || l.ends_with(&want)),
        "missing {want:?} in\n{}",
        list.join("\n")
    );
}

/// The image of the sample tree in a temporary directory.
fn write_sample(dir: &Path, target: &str) -> std::path::PathBuf {
    let img = dir.join("root.iso");
    let (tree, _) = build(target);
    let mut f = std::fs::File::create(&img).unwrap();
    write_iso(&tree, &mut f).unwrap();
    img
}

#[test]
fn isoinfo_reads_the_volume_and_rock_ridge() {
    if !have("isoinfo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = write_sample(dir.path(), &long_target());
    let len = std::fs::metadata(&img).unwrap().len();
    assert_eq!(len % 2048, 0);

    let d = run(Command::new("isoinfo").arg("-d").arg("-i").arg(&img));
    for want in [
        "CD-ROM is in ISO 9660 format",
        "System id: LINUX",
        "Volume id: LINUXKIT",
        "Logical block size is: 2048",
        &format!("Volume size is: {}", len / 2048),
        "Rock Ridge signatures version 1 found",
    ] {
        assert!(d.contains(want), "missing {want:?} in\n{d}");
    }

    // Rock Ridge: real names, modes, owners (isoinfo prints them in octal),
    // sizes, symbolic link targets; times are the entries' own.
    let l = lines(&run(Command::new("isoinfo")
        .env("TZ", "UTC")
        .args(["-R", "-l", "-i"])
        .arg(&img)));
    for want in [
        "-rw-r--r-- 2 0 0 6 Apr 18 2017",
        "-rwxr-xr-x 1 144 145 2 Sep 13 2020",
        "link -> hello",
        &format!("target -> {}", long_target()),
        "crw-rw-rw- 1 0 0 0 Apr 18 2017 [ 0 00] null",
        "brw-rw---- 1 0 6 0 Apr 18 2017 [ 0 00] sdb",
        "frw------- 1 0 0 0 Apr 18 2017 [ 0 00] fifo",
        "Case",
        "case",
        "CASE.TXT",
        "lib.so.1.2.3",
        "ünïcödé ☃",
        &"d".repeat(200),
        &"f".repeat(255),
        "bottom",
        "Directory listing of /level0/level1/level2/level3/level4/level5/level6/level7/level8/level9/level10/level11/",
    ] {
        assert_has(&l, want);
    }
    assert!(
        l.iter()
            .any(|x| x.contains(" 3145728 ") && x.ends_with(" big"))
    );
    assert_eq!(
        l.iter()
            .filter(|x| x.contains("entry-") && x.starts_with("-rw-r--r-- 1 1751 0"))
            .count(),
        100
    );
    assert!(!l.iter().any(|x| x.ends_with(" boot")), "boot/ is left out");
    // The 300 entries take several directory sectors.
    let many: u64 = l
        .iter()
        .find(|x| x.starts_with("drwxr-xr-x 2 0 0 ") && x.ends_with("] many"))
        .and_then(|x| x.split(' ').nth(4))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no many/ in\n{}", l.join("\n")));
    assert!(many > 8 * 2048, "{many}");

    // The ISO 9660 names: level 2, made unique, sorted.
    let plain = lines(&run(Command::new("isoinfo").args(["-l", "-i"]).arg(&img)));
    let names: Vec<&str> = plain
        .iter()
        .skip_while(|x| *x != "Directory listing of /ETC/")
        .skip(3)
        .take_while(|x| !x.is_empty())
        .map(|x| x.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "CASE.;1",
            "CASE.TXT;1",
            "CASE1.;1",
            "CASE1.TXT;1",
            "CASE2.;1",
            "HARD.;1",
            "HELLO.;1",
            "LIB_SO_1_2.3;1",
            "LINK.;1",
            "SUID.;1",
            "_N_C_D___.;1",
        ]
    );
    assert_has(&plain, &format!("{}.;1", "F".repeat(30)));
    assert_has(&plain, &"D".repeat(31));
}

#[test]
fn isovfy_finds_no_errors() {
    if !have("isovfy") {
        return;
    }
    // isovfy overflows a fixed buffer on long symbolic link targets.
    let dir = tempfile::tempdir().unwrap();
    let img = write_sample(dir.path(), "../short/target");
    let out = run(Command::new("isovfy").arg("-i").arg(&img));
    assert!(out.contains("No errors found"), "{out}");
}

#[test]
fn xorriso_lists_and_extracts_the_tree() {
    if !have("xorriso") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = write_sample(dir.path(), &long_target());
    let (_, files) = build(&long_target());

    let l = lines(&run(Command::new("xorriso")
        .env("TZ", "UTC")
        .arg("-indev")
        .arg(&img)
        .args(["-find", "/", "-exec", "lsdl", "--"])));
    for want in [
        "-rwsr-xr-x 1 100 101 2 Sep 13 2020 '/etc/suid'",
        "-rw-r--r-- 1 0 0 6 Apr 18 2017 '/etc/hard'",
        "lrwxrwxrwx 1 0 0 0 Apr 18 2017 '/etc/link' -> 'hello'",
        "crw-rw-rw- 1 0 0 1,3 Apr 18 2017 '/dev/null'",
        "brw-rw---- 1 0 6 8,16 Apr 18 2017 '/dev/sdb'",
        "prw------- 1 0 0 0 Apr 18 2017 '/run/fifo'",
        "drwxrwxrwt 1 0 0 0 Apr 18 2017 '/tmp'",
        "-rw-r--r-- 1 0 0 3145728 Apr 18 2017 '/usr/lib/big'",
        "-rw-r--r-- 1 1002 0 4 Apr 18 2017 '/many/entry-0299-",
        &format!("'/long/target' -> '{}'", long_target()),
    ] {
        assert!(
            l.iter().any(|x| x.starts_with(want) || x.ends_with(want)),
            "missing {want:?} in\n{}",
            l.join("\n")
        );
    }
    assert_eq!(l.iter().filter(|x| x.contains("'/many/")).count(), 300);
    assert!(!l.iter().any(|x| x.contains("'/boot")));

    let out = dir.path().join("out");
    run(Command::new("xorriso")
        .args(["-hardlinks", "on", "-osirrox", "on:device_files", "-indev"])
        .arg(&img)
        .arg("-extract")
        .arg("/")
        .arg(&out));
    for (path, data) in &files {
        let got = std::fs::read(out.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(got == *data, "{path}: content differs");
    }
    assert!(!out.join("boot").exists(), "boot/ must not be in the image");
    assert_eq!(std::fs::read_dir(out.join("many")).unwrap().count(), 300);
    assert_eq!(std::fs::read_dir(out.join("etc")).unwrap().count(), 11);
    assert_eq!(
        std::fs::read_link(out.join("etc/link")).unwrap(),
        Path::new("hello")
    );
    assert_eq!(
        std::fs::read_link(out.join("long/target")).unwrap(),
        Path::new(&long_target())
    );
    // The PX inode numbers make the hard link one again.
    let ino = |p: &str| std::fs::metadata(out.join(p)).unwrap().ino();
    assert_eq!(ino("etc/hard"), ino("etc/hello"));
    let m = std::fs::metadata(out.join("tmp")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o1777);
    let m = std::fs::metadata(out.join("usr/lib/big")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.mtime()), (0o644, 1_492_533_000));
    if is_root() {
        let m = std::fs::symlink_metadata(out.join("etc/suid")).unwrap();
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
            (0o4755, 100, 101, 1_600_000_000)
        );
        let m = std::fs::metadata(out.join("many").join(many_name(299))).unwrap();
        assert_eq!(m.uid(), 1002);
        let m = std::fs::symlink_metadata(out.join("dev/null")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), makedev(1, 3));
        let m = std::fs::symlink_metadata(out.join("dev/sdb")).unwrap();
        assert!(m.file_type().is_block_device());
        assert_eq!((m.rdev(), m.gid()), (makedev(8, 16), 6));
        let m = std::fs::symlink_metadata(out.join("run/fifo")).unwrap();
        assert!(m.file_type().is_fifo());
        assert_eq!(m.mode() & 0o7777, 0o600);
    }
}

#[test]
fn images_are_reproducible() {
    let a = image(&long_target());
    assert!(a == image(&long_target()));
    // The volume's dates are the tree's latest time (2020-09-13 12:26:40).
    let pvd = &a[16 * 2048..17 * 2048];
    assert_eq!(&pvd[1..6], b"CD001");
    assert_eq!(&pvd[813..829], b"2020091312264000");
    assert_eq!(&pvd[830..846], b"2020091312264000");
}

#[test]
fn empty_trees_are_valid_images() {
    let tree = FsTree::new(None).unwrap();
    let mut bytes = Vec::new();
    write_iso(&tree, &mut bytes).unwrap();
    // System area, descriptors, path tables, root, its continuation area.
    assert_eq!(bytes.len(), 22 * 2048);
    if have("xorriso") {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("e.iso");
        std::fs::write(&img, &bytes).unwrap();
        let out = run(Command::new("xorriso")
            .arg("-indev")
            .arg(&img)
            .args(["-find", "/", "-exec", "lsdl", "--"]));
        assert!(out.contains("'/'"), "{out}");
    }
}

#[test]
fn kernel_iso_without_a_kernel_fails_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_format(
        Format::KernelIso,
        dir.path(),
        "x",
        &OutputOptions::default(),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("kernel+iso needs a kernel"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn aliases_point_inside_another_file() {
    use linuxkit_output::{IsoAlias, IsoOptions, write_iso_with};
    let outer = noise(5 * 2048 + 100, 3);
    let inner = outer[2 * 2048..2 * 2048 + 3000].to_vec();
    let mut t = FsTree::new(None).unwrap();
    for (path, data) in [("outer.img", &outer), ("inner", &inner)] {
        t.add(
            &Entry::file(path, data.len() as u64),
            &mut Cursor::new(data.clone()),
        )
        .unwrap();
    }
    let opts = |offset| IsoOptions {
        aliases: vec![IsoAlias {
            path: "inner".into(),
            within: "outer.img".into(),
            offset,
        }],
        ..IsoOptions::default()
    };
    let mut with = Vec::new();
    write_iso_with(&t, &opts(2 * 2048), &mut with).unwrap();
    let mut without = Vec::new();
    write_iso_with(&t, &IsoOptions::default(), &mut without).unwrap();
    // Stored once: two sectors fewer.
    assert_eq!(without.len() - with.len(), 2 * 2048);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.iso");
    std::fs::write(&p, &with).unwrap();
    let p = p.to_str().unwrap();
    for (path, data) in [("/inner", &inner), ("/outer.img", &outer)] {
        let out = Command::new("isoinfo")
            .args(["-R", "-i", p, "-x", path])
            .output()
            .expect("isoinfo (scripts/setup installs genisoimage)");
        assert!(out.stdout == *data, "{path} reads back differently");
    }
    // Misaligned, or reaching past the end: refused.
    for bad in [100, 4 * 2048] {
        let mut out = Vec::new();
        assert!(write_iso_with(&t, &opts(bad), &mut out).is_err(), "{bad}");
    }
}

#[test]
fn bootable_formats_need_the_boot_loaders_and_a_kernel() {
    let dir = tempfile::tempdir().unwrap();
    for format in [
        Format::IsoBios,
        Format::IsoEfi,
        Format::RawEfi,
        Format::Qcow2Bios,
        Format::Gcp,
    ] {
        let err = write_format(format, dir.path(), "x", &OutputOptions::default(), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs the boot loaders"), "{err}");
        let opts = OutputOptions {
            bootloader: Some(
                linuxkit_output::Bootloader::from_dir(Path::new("/"), linuxkit_base::Arch::Amd64)
                    .expect(
                        "the host's isolinux, syslinux-common and systemd-boot-efi (scripts/setup)",
                    ),
            ),
            ..OutputOptions::default()
        };
        let err = write_format(format, dir.path(), "x", &opts, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("{format} needs a kernel")), "{err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
