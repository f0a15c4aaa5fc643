//! The tar and cpio writers checked by the real tools: GNU tar, GNU cpio,
//! and Python's tarfile for PAX records.

use std::io::Cursor;
use std::process::Command;

use linuxkit_output::{Compression, CpioWriter, InitrdSink, TarWriter};
use linuxkit_rootfs::{Entry, EntryKind, EntrySink};

/// A small tree touching every entry kind.
fn sample(sink: &mut dyn EntrySink) {
    let mut add = |e: Entry, data: &[u8]| sink.add(&e, &mut Cursor::new(data.to_vec())).unwrap();
    add(Entry::dir("etc"), b"");
    add(Entry::file("etc/hello", 6), b"hello\n");
    add(
        Entry {
            mode: 0o4755,
            uid: 100,
            gid: 101,
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
    let long = format!("etc/{}", "d".repeat(120));
    add(Entry::dir(long.clone()), b"");
    add(
        Entry::file(format!("{long}/{}", "f".repeat(120)), 3),
        b"abc",
    );
    add(
        Entry {
            kind: EntryKind::Char { major: 1, minor: 3 },
            mode: 0o666,
            ..Entry::file("etc/null", 0)
        },
        b"",
    );
    add(
        Entry {
            xattrs: vec![("user.test".into(), b"value".to_vec())],
            provenance: Some(("docker.io/library/x:1".into(), "init[0]".into())),
            ..Entry::file("etc/attr", 1)
        },
        b"x",
    );
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn gnu_tar_reads_what_we_write() {
    let mut w = TarWriter::new(Vec::new());
    sample(&mut w);
    let bytes = w.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.tar");
    std::fs::write(&f, &bytes).unwrap();
    let listing = run(Command::new("tar")
        .arg("--numeric-owner")
        .arg("-tvf")
        .arg(&f));
    assert!(listing.contains("-rwsr-xr-x 100/101"), "{listing}");
    assert!(listing.contains("etc/link -> hello"), "{listing}");
    assert!(listing.contains("etc/hard link to etc/hello"), "{listing}");
    assert!(
        listing.contains(&"f".repeat(120)),
        "long names survive: {listing}"
    );
    assert!(
        listing.contains("crw-rw-rw- 0/0") && listing.contains("1,3"),
        "{listing}"
    );
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&f)
        .arg("-C")
        .arg(&out)
        .arg("--exclude=etc/null"));
    assert_eq!(std::fs::read(out.join("etc/hard")).unwrap(), b"hello\n");
    // PAX records: provenance and xattrs, as the reference writes them.
    let py = format!(
        "import tarfile\nt=tarfile.open('{}')\nm=t.getmember('etc/attr')\nprint(sorted(m.pax_headers.items()))",
        f.display()
    );
    let pax = run(Command::new("python3").arg("-c").arg(py));
    assert!(pax.contains("('LINUXKIT.location', 'init[0]')"), "{pax}");
    assert!(
        pax.contains("('LINUXKIT.source', 'docker.io/library/x:1')"),
        "{pax}"
    );
    assert!(pax.contains("('SCHILY.xattr.user.test', 'value')"), "{pax}");
}

#[test]
fn gnu_cpio_reads_the_initrd() {
    for compression in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Lz4,
        Compression::None,
    ] {
        let mut sink = InitrdSink::new(Vec::new(), compression, None).unwrap();
        sink.add(&Entry::dir("boot"), &mut Cursor::new(vec![]))
            .unwrap();
        sink.add(
            &Entry::file("boot/kernel", 4),
            &mut Cursor::new(b"KERN".to_vec()),
        )
        .unwrap();
        sample(&mut sink);
        let (bytes, boot) = sink.finish().unwrap();
        assert_eq!(boot["boot/kernel"], b"KERN");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("initrd");
        std::fs::write(&f, &bytes).unwrap();
        let decompress = match compression {
            Compression::Gzip => format!("zcat {}", f.display()),
            Compression::Zstd => format!("zstd -dc {}", f.display()),
            Compression::Lz4 => format!("lz4 -dc {}", f.display()),
            Compression::None => format!("cat {}", f.display()),
        };
        let listing = run(Command::new("sh")
            .arg("-c")
            .arg(format!("{decompress} | cpio -t --quiet")));
        assert!(
            !listing.contains("boot/"),
            "boot/ stays out of the initrd: {listing}"
        );
        assert!(listing.lines().any(|l| l == "etc/hello"), "{listing}");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        run(Command::new("sh").arg("-c").arg(format!(
            "cd {} && {decompress} | cpio -idm --quiet --no-absolute-filenames 2>&1",
            out.display()
        )));
        assert_eq!(std::fs::read(out.join("etc/hello")).unwrap(), b"hello\n");
        assert_eq!(
            std::fs::read(out.join("etc/hard")).unwrap(),
            b"hello\n",
            "hard link"
        );
        assert_eq!(
            std::fs::read_link(out.join("etc/link")).unwrap().to_str(),
            Some("hello")
        );
        assert_eq!(
            bytes.len()
                % if compression == Compression::None {
                    512
                } else {
                    1
                },
            0
        );
    }
}

#[test]
fn output_is_reproducible() {
    let build = || {
        let mut w = CpioWriter::new(Vec::new());
        sample(&mut w);
        w.finish().unwrap()
    };
    assert_eq!(build(), build());
    let tar = || {
        let mut w = TarWriter::new(Vec::new());
        sample(&mut w);
        w.finish().unwrap()
    };
    assert_eq!(tar(), tar());
}

#[test]
fn cpio_refuses_a_hard_link_to_nothing() {
    let mut w = CpioWriter::new(Vec::new());
    let e = Entry {
        kind: EntryKind::Hardlink {
            target: "nope".into(),
        },
        ..Entry::file("x", 0)
    };
    let err = w.add(&e, &mut Cursor::new(vec![])).unwrap_err().to_string();
    assert!(err.contains("hard link to `nope`"), "{err}");
}

/// Names Linux cannot create are refused, naming the entry and its image
/// (issue 18.8): a component beyond 255 bytes in every format (EROFS wrote
/// a corrupt image for it), a path beyond PATH_MAX in the initrd (the
/// kernel's unpacker skips it), a link target beyond PATH_MAX - 1.
#[test]
fn names_beyond_linux_limits_are_refused() {
    let from = |e: Entry| Entry {
        provenance: Some(("example/app:1".into(), "services[0]".into())),
        ..e
    };
    let long = format!("etc/{}", "n".repeat(256));
    let deep = "d/".repeat(2047) + "file";
    let far = Entry::symlink("etc/far", "t".repeat(4096));
    let sink = |format: &str| -> Box<dyn EntrySink> {
        match format {
            "tar" => Box::new(TarWriter::new(Vec::new())),
            "initrd" => Box::new(CpioWriter::new(Vec::new())),
            _ => Box::new(linuxkit_output::FsTree::new(None).unwrap()),
        }
    };
    for format in ["tar", "initrd", "image"] {
        let sink = || sink(format);
        let e = sink()
            .add(&from(Entry::file(long.clone(), 0)), &mut std::io::empty())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!(
                "cannot write `{long}` (from example/app:1) to the {format}"
            )) && e.contains("is 256 bytes long, and Linux file names are at most 255 bytes"),
            "{e}"
        );
        let e = sink()
            .add(&far, &mut std::io::empty())
            .unwrap_err()
            .to_string();
        assert!(e.contains("its link target is 4096 bytes long"), "{e}");
        // 255 bytes is fine.
        sink()
            .add(&Entry::file("n".repeat(255), 0), &mut std::io::empty())
            .unwrap();
        let deep = sink().add(&Entry::file(deep.clone(), 0), &mut std::io::empty());
        if format == "initrd" {
            let e = deep.unwrap_err().to_string();
            assert!(e.contains("the path is 4098 bytes long"), "{e}");
        } else {
            deep.unwrap();
        }
    }
}
