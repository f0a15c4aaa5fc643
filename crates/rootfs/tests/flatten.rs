//! Layer flattening: merge semantics, ordering, hard links, metadata,
//! compressions, filters, and a corpus of malicious layers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use linuxkit_rootfs::{
    Compression, DEFAULT_MTIME, Entry, EntryKind, EntrySink, Error, Filter, FlattenStats, Layer,
    MAX_SPARSE_HOLES, Replacement, flatten_layers,
};

// ---------------------------------------------------------------------------
// Helpers

const MTIME: u64 = 1_600_000_000;

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    path: String,
    kind: EntryKind,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    size: u64,
    hash: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Rec {
    fn new(path: &str, kind: EntryKind, mode: u32, data: &[u8]) -> Rec {
        Rec {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: MTIME,
            size: data.len() as u64,
            hash: fnv(data),
            xattrs: Vec::new(),
        }
    }
    fn dir(path: &str, mode: u32) -> Rec {
        Rec::new(path, EntryKind::Dir, mode, b"")
    }
    fn file(path: &str, mode: u32, data: &[u8]) -> Rec {
        Rec::new(path, EntryKind::File, mode, data)
    }
}

#[derive(Default)]
struct Recorder {
    recs: Vec<Rec>,
}

impl EntrySink for Recorder {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
        let mut buf = Vec::new();
        data.read_to_end(&mut buf).map_err(|source| Error::Io {
            context: format!("reading {}", e.path),
            source,
        })?;
        assert_eq!(buf.len() as u64, e.size, "{}: data length != size", e.path);
        if e.kind != EntryKind::File {
            assert_eq!(e.size, 0, "{}: non-file with a size", e.path);
        }
        assert!(e.provenance.is_none());
        self.recs.push(Rec {
            path: e.path.clone(),
            kind: e.kind.clone(),
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime: e.mtime,
            size: e.size,
            hash: fnv(&buf),
            xattrs: e.xattrs.clone(),
        });
        Ok(())
    }
}

/// Writes tars through raw headers, so any name can be used.
struct T {
    b: tar::Builder<Vec<u8>>,
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = 1 + key.len() + 1 + value.len() + 1; // " key=value\n"
    let mut len = body_len + 1;
    while len != body_len + len.to_string().len() {
        len = body_len + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    assert_eq!(out.len(), len);
    out
}

impl T {
    fn new() -> T {
        T {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(name: &[u8], ty: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        assert!(name.len() <= 100, "use longname() for long names");
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(ty);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(size);
        h
    }

    fn push(&mut self, mut h: tar::Header, link: &[u8], data: &[u8]) -> &mut T {
        assert!(link.len() <= 100);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    fn raw(&mut self, name: &[u8], ty: tar::EntryType, link: &[u8], data: &[u8]) -> &mut T {
        let h = T::header(name, ty, 0o644, data.len() as u64);
        self.push(h, link, data)
    }

    /// A pre-POSIX directory: type byte NUL and a trailing slash.
    fn old_style_dir(&mut self, name: &[u8]) -> &mut T {
        let mut h = T::header(name, tar::EntryType::Regular, 0o755, 0);
        h.as_old_mut().linkflag = [0];
        self.push(h, b"", b"")
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut T {
        self.file_as(name, data, 0o644, 0, 0)
    }

    fn file_as(&mut self, name: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> &mut T {
        let mut h = T::header(
            name.as_bytes(),
            tar::EntryType::Regular,
            mode,
            data.len() as u64,
        );
        h.set_uid(uid);
        h.set_gid(gid);
        self.push(h, b"", data)
    }

    fn dir(&mut self, name: &str) -> &mut T {
        self.dir_mode(name, 0o755)
    }

    fn dir_mode(&mut self, name: &str, mode: u32) -> &mut T {
        let h = T::header(name.as_bytes(), tar::EntryType::Directory, mode, 0);
        self.push(h, b"", b"")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut T {
        let h = T::header(name.as_bytes(), tar::EntryType::Symlink, 0o777, 0);
        self.push(h, target.as_bytes(), b"")
    }

    fn link(&mut self, name: &str, target: &str) -> &mut T {
        let h = T::header(name.as_bytes(), tar::EntryType::Link, 0o644, 0);
        self.push(h, target.as_bytes(), b"")
    }

    fn device(&mut self, name: &str, ty: tar::EntryType, major: u32, minor: u32) -> &mut T {
        let mut h = T::header(name.as_bytes(), ty, 0o660, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.push(h, b"", b"")
    }

    fn empty(&mut self, name: &str) -> &mut T {
        self.file(name, b"")
    }

    /// A PAX extended header for the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut T {
        let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        self.raw(b"PaxHeaders/x", tar::EntryType::XHeader, b"", &data)
    }

    /// A GNU long name for the next entry (a trailing NUL is added).
    fn longname(&mut self, name: &[u8]) -> &mut T {
        let mut data = name.to_vec();
        data.push(0);
        self.raw(b"././@LongLink", tar::EntryType::GNULongName, b"", &data)
    }

    fn build(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

fn layers(tars: Vec<Vec<u8>>) -> Vec<Layer> {
    tars.into_iter()
        .enumerate()
        .map(|(i, t)| Layer::from_bytes(format!("sha256:{i:064}"), Compression::None, t))
        .collect()
}

fn keep(_: &str) -> Filter {
    Filter::Keep
}

fn run_with(
    layers: &[Layer],
    prefix: &str,
    filter: &dyn Fn(&str) -> Filter,
) -> linuxkit_rootfs::Result<(Vec<Rec>, FlattenStats)> {
    let mut sink = Recorder::default();
    let stats = flatten_layers("test/image", layers, prefix, filter, &mut sink)?;
    check_order(&sink.recs, prefix);
    assert_eq!(stats.entries, sink.recs.len() as u64);
    Ok((sink.recs, stats))
}

fn run(tars: Vec<Vec<u8>>) -> Vec<Rec> {
    run_with(&layers(tars), "", &keep).unwrap().0
}

fn paths(recs: &[Rec]) -> Vec<&str> {
    recs.iter().map(|r| r.path.as_str()).collect()
}

fn find<'a>(recs: &'a [Rec], path: &str) -> &'a Rec {
    recs.iter()
        .find(|r| r.path == path)
        .unwrap_or_else(|| panic!("no `{path}` in {:?}", paths(recs)))
}

/// The stream invariants: no duplicates, every parent directory (below the
/// prefix) and every hard link target precede the entry.
fn check_order(recs: &[Rec], prefix: &str) {
    let prefix: Vec<&str> = prefix
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let prefix = prefix.join("/");
    let prefix = prefix.as_str();
    let mut seen: HashMap<&str, &EntryKind> = HashMap::new();
    for r in recs {
        assert!(!r.path.is_empty());
        assert!(
            !r.path.starts_with('/') && !r.path.ends_with('/'),
            "{}",
            r.path
        );
        assert!(
            r.path
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."),
            "{}",
            r.path
        );
        if !prefix.is_empty() {
            assert!(r.path.starts_with(&format!("{prefix}/")), "{}", r.path);
        }
        if let Some(i) = r.path.rfind('/') {
            let parent = &r.path[..i];
            if parent != prefix {
                assert_eq!(
                    seen.get(parent),
                    Some(&&EntryKind::Dir),
                    "parent of `{}` not emitted before it as a directory",
                    r.path
                );
            }
        }
        if let EntryKind::Hardlink { target } = &r.kind {
            let t = seen
                .get(target.as_str())
                .unwrap_or_else(|| panic!("link `{}` before its target `{target}`", r.path));
            assert!(!matches!(t, EntryKind::Dir | EntryKind::Hardlink { .. }));
        }
        assert!(
            seen.insert(&r.path, &r.kind).is_none(),
            "duplicate {}",
            r.path
        );
    }
}

fn unsafe_err(err: Error) -> (String, String) {
    match err {
        Error::UnsafeEntry {
            image,
            path,
            reason,
        } => {
            assert_eq!(image, "test/image");
            (path, reason)
        }
        other => panic!("expected UnsafeEntry, got {other:?}"),
    }
}

fn layer_err(err: Error) -> String {
    match err {
        Error::Layer {
            image, reason: r, ..
        } => {
            assert_eq!(image, "test/image");
            r
        }
        other => panic!("expected Layer error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Basics and metadata

#[test]
fn single_layer_keeps_metadata() {
    let recs = run(vec![
        T::new()
            .dir("./")
            .dir_mode("./tmp/", 0o1777)
            .dir("usr")
            .dir("usr/bin")
            .file_as("usr/bin/su", b"su!", 0o4755, 0, 0)
            .file_as("usr/bin/wall", b"w", 0o2755, 0, 5)
            .file_as("home-file", b"mine", 0o600, 1000, 1001)
            .symlink("bin", "usr/bin")
            .symlink("abs", "/etc/../etc/x")
            .build(),
    ]);
    let mut su = Rec::file("usr/bin/su", 0o4755, b"su!");
    su.size = 3;
    let mut wall = Rec::file("usr/bin/wall", 0o2755, b"w");
    wall.gid = 5;
    let mut home = Rec::file("home-file", 0o600, b"mine");
    home.uid = 1000;
    home.gid = 1001;
    assert_eq!(
        recs,
        vec![
            Rec::dir("tmp", 0o1777),
            Rec::dir("usr", 0o755),
            Rec::dir("usr/bin", 0o755),
            su,
            wall,
            home,
            Rec::new(
                "bin",
                EntryKind::Symlink {
                    target: "usr/bin".into()
                },
                0o777,
                b""
            ),
            Rec::new(
                "abs",
                EntryKind::Symlink {
                    target: "/etc/../etc/x".into()
                },
                0o777,
                b""
            ),
        ]
    );
}

#[test]
fn empty_input() {
    let (recs, stats) = run_with(&[], "", &keep).unwrap();
    assert!(recs.is_empty());
    assert_eq!(stats, FlattenStats::default());
    assert!(run(vec![T::new().dir("./").dir("/").build()]).is_empty());
}

#[test]
fn names_are_normalised() {
    let recs = run(vec![
        T::new()
            .dir("./a/")
            .file("a//b", b"1")
            .file("/a/./c", b"2")
            .dir("./d//")
            .build(),
    ]);
    assert_eq!(paths(&recs), ["a", "a/b", "a/c", "d"]);
}

#[test]
fn missing_parents_are_synthesised() {
    let (recs, stats) = run_with(
        &layers(vec![T::new().file("a/b/c", b"x").dir("a/e").build()]),
        "",
        &keep,
    )
    .unwrap();
    let mut a = Rec::dir("a", 0o755);
    a.mtime = DEFAULT_MTIME;
    let mut ab = Rec::dir("a/b", 0o755);
    ab.mtime = DEFAULT_MTIME;
    assert_eq!(
        recs,
        vec![
            a,
            ab,
            Rec::file("a/b/c", 0o644, b"x"),
            Rec::dir("a/e", 0o755)
        ]
    );
    assert_eq!(stats.synthesized, 2);
}

#[test]
fn devices_and_fifos() {
    let recs = run(vec![
        T::new()
            .dir("dev")
            .device("dev/null", tar::EntryType::Char, 1, 3)
            .device("dev/sda", tar::EntryType::Block, 8, 0)
            .device("dev/fifo", tar::EntryType::Fifo, 0, 0)
            .build(),
    ]);
    assert_eq!(
        recs[1..],
        [
            Rec::new(
                "dev/null",
                EntryKind::Char { major: 1, minor: 3 },
                0o660,
                b""
            ),
            Rec::new(
                "dev/sda",
                EntryKind::Block { major: 8, minor: 0 },
                0o660,
                b""
            ),
            Rec::new("dev/fifo", EntryKind::Fifo, 0o660, b""),
        ]
    );
}

#[test]
fn pax_xattrs_mtime_and_ids_round_trip() {
    let cap = [
        1u8, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let recs = run(vec![
        T::new()
            .pax(&[
                ("SCHILY.xattr.user.z", b"last"),
                ("SCHILY.xattr.security.capability", &cap),
                ("mtime", b"1700000000.123456789"),
                ("uid", b"70000"),
                ("gid", b"70001"),
                ("path", b"bin/ping"),
            ])
            .file("ignored-name", b"ping")
            .pax(&[("linkpath", b"a/very/long/target"), ("path", b"lnk")])
            .symlink("ignored", "")
            .build(),
    ]);
    let ping = find(&recs, "bin/ping");
    assert_eq!(
        ping.xattrs,
        vec![
            ("security.capability".to_string(), cap.to_vec()),
            ("user.z".to_string(), b"last".to_vec()),
        ]
    );
    assert_eq!(
        (ping.mtime, ping.uid, ping.gid),
        (1_700_000_000, 70000, 70001)
    );
    assert_eq!(ping.hash, fnv(b"ping"));
    assert_eq!(
        find(&recs, "lnk").kind,
        EntryKind::Symlink {
            target: "a/very/long/target".into()
        }
    );
}

#[test]
fn long_names_and_old_style_dirs() {
    let long = format!("{}/{}", "d".repeat(90), "f".repeat(90));
    let recs = run(vec![
        T::new()
            .old_style_dir(b"old/")
            .longname(long.as_bytes())
            .file("short", b"long")
            .build(),
    ]);
    assert_eq!(recs[0], Rec::dir("old", 0o755));
    assert_eq!(recs[1].path, "d".repeat(90));
    assert_eq!(recs[2].path, long);
    assert_eq!(recs[2].hash, fnv(b"long"));
}

#[test]
fn unsupported_types_are_skipped() {
    let (recs, stats) = run_with(
        &layers(vec![
            T::new()
                .raw(
                    b"g",
                    tar::EntryType::XGlobalHeader,
                    b"",
                    &pax_record("comment", b"x"),
                )
                .raw(b"label", tar::EntryType::new(b'V'), b"", b"")
                .raw(b"dump", tar::EntryType::new(b'D'), b"", b"")
                .file("kept", b"k")
                .build(),
        ]),
        "",
        &keep,
    )
    .unwrap();
    assert_eq!(paths(&recs), ["kept"]);
    assert_eq!(stats.skipped, 3);
}

// ---------------------------------------------------------------------------
// Whiteouts and replacement across layers

#[test]
fn whiteout_hides_file_in_lower_layers() {
    let (recs, stats) = run_with(
        &layers(vec![
            T::new()
                .dir("a")
                .file("a/b", b"b")
                .file("a/c", b"c")
                .build(),
            T::new()
                .dir("a")
                .empty("a/.wh.b")
                .empty(".wh.nothing")
                .build(),
        ]),
        "",
        &keep,
    )
    .unwrap();
    assert_eq!(paths(&recs), ["a", "a/c"]);
    assert_eq!(stats.whiteouts, 2);
    assert_eq!(stats.hidden, 2); // lower `a` and `a/b`
}

#[test]
fn whiteout_hides_a_whole_subtree_through_several_layers() {
    let recs = run(vec![
        T::new()
            .dir("d")
            .dir("d/x")
            .file("d/x/y", b"y")
            .file("keep", b"k")
            .build(),
        T::new().dir("d").file("d/z", b"z").build(),
        T::new().empty(".wh.d").build(),
        T::new().file("top", b"t").build(),
    ]);
    assert_eq!(paths(&recs), ["keep", "top"]);
}

#[test]
fn whiteout_and_recreate_in_the_same_layer() {
    let recs = run(vec![
        T::new().dir_mode("d", 0o700).file("d/old", b"o").build(),
        // The whiteout comes after the new entries: it still only hides
        // the lower layer.
        T::new().dir("d").file("d/new", b"n").empty(".wh.d").build(),
    ]);
    assert_eq!(paths(&recs), ["d", "d/new"]);
    assert_eq!(recs[0].mode, 0o755);
}

#[test]
fn whiteout_does_not_apply_to_its_own_layer() {
    let recs = run(vec![T::new().file("f", b"f").empty(".wh.f").build()]);
    assert_eq!(paths(&recs), ["f"]);
}

#[test]
fn whiteout_in_a_middle_layer() {
    let recs = run(vec![
        T::new().file("f", b"1").file("g", b"g").build(),
        T::new().empty(".wh.f").build(),
        T::new().file("f", b"3").build(),
    ]);
    assert_eq!(
        recs,
        [Rec::file("g", 0o644, b"g"), Rec::file("f", 0o644, b"3")]
    );
}

#[test]
fn opaque_directory_hides_lower_children_only() {
    let recs = run(vec![
        T::new()
            .dir("d")
            .file("d/a", b"a")
            .dir("d/sub")
            .file("d/sub/b", b"b")
            .file("d2", b"sibling")
            .build(),
        T::new()
            .dir_mode("d", 0o750)
            .empty("d/.wh..wh..opq")
            .file("d/c", b"c")
            .build(),
        T::new().file("d/top", b"t").build(),
    ]);
    assert_eq!(paths(&recs), ["d2", "d", "d/c", "d/top"]);
    assert_eq!(find(&recs, "d").mode, 0o750);
}

#[test]
fn opaque_marker_before_its_directory_and_children_in_same_layer() {
    let recs = run(vec![
        T::new().dir("d").file("d/a", b"a").build(),
        T::new()
            .file("d/c", b"c")
            .empty("d/.wh..wh..opq")
            .file("d/e", b"e")
            .build(),
    ]);
    // `d` itself still comes from the lower layer; its children do not.
    assert_eq!(paths(&recs), ["d", "d/c", "d/e"]);
}

#[test]
fn opaque_root_hides_every_lower_layer() {
    let recs = run(vec![
        T::new().file("a", b"a").build(),
        T::new().file("b", b"b").build(),
        T::new().empty(".wh..wh..opq").file("c", b"c").build(),
    ]);
    assert_eq!(paths(&recs), ["c"]);
}

#[test]
fn aufs_metadata_is_ignored() {
    let recs = run(vec![
        T::new()
            .dir(".wh..wh.plnk")
            .file(".wh..wh.plnk/123.456", b"x")
            .empty(".wh..wh.aufs")
            .file("f", b"f")
            .build(),
    ]);
    assert_eq!(paths(&recs), ["f"]);
}

#[test]
fn file_replaced_by_directory() {
    let recs = run(vec![
        T::new().file("x", b"file").build(),
        T::new().dir("x").file("x/y", b"y").build(),
    ]);
    assert_eq!(recs, [Rec::dir("x", 0o755), Rec::file("x/y", 0o644, b"y")]);
}

#[test]
fn directory_replaced_by_file_symlink_or_device() {
    let recs = run(vec![
        T::new()
            .dir("x")
            .file("x/y", b"y")
            .dir("s")
            .dir("s/deep")
            .file("s/deep/z", b"z")
            .dir("n")
            .file("n/q", b"q")
            .build(),
        T::new()
            .file("x", b"now a file")
            .symlink("s", "/elsewhere")
            .device("n", tar::EntryType::Char, 1, 3)
            .build(),
    ]);
    assert_eq!(paths(&recs), ["x", "s", "n"]);
    assert_eq!(find(&recs, "x").hash, fnv(b"now a file"));
}

#[test]
fn upper_directory_metadata_wins_and_lower_children_merge() {
    let recs = run(vec![
        T::new()
            .dir("usr")
            .dir("usr/lib")
            .file("usr/lib/a", b"a")
            .build(),
        T::new()
            .dir_mode("usr", 0o700)
            .dir("usr/bin")
            .file("usr/bin/b", b"b")
            .build(),
    ]);
    assert_eq!(
        paths(&recs),
        ["usr", "usr/lib", "usr/lib/a", "usr/bin", "usr/bin/b"]
    );
    assert_eq!(recs[0].mode, 0o700);
}

#[test]
fn last_duplicate_in_a_layer_wins() {
    let recs = run(vec![
        T::new()
            .file("f", b"first")
            .file("g", b"g")
            .file("f", b"second")
            .build(),
    ]);
    assert_eq!(
        recs,
        [
            Rec::file("g", 0o644, b"g"),
            Rec::file("f", 0o644, b"second")
        ]
    );
}

#[test]
fn symlink_replaced_by_directory_in_an_upper_layer_is_safe() {
    let recs = run(vec![
        T::new().symlink("etc", "/tmp/evil").build(),
        T::new().dir("etc").file("etc/passwd", b"root").build(),
    ]);
    assert_eq!(
        recs,
        [
            Rec::dir("etc", 0o755),
            Rec::file("etc/passwd", 0o644, b"root")
        ]
    );
}

// ---------------------------------------------------------------------------
// Hard links

#[test]
fn hardlink_to_kept_file() {
    let recs = run(vec![
        T::new()
            .dir("bin")
            .file_as("bin/busybox", b"bb", 0o755, 0, 0)
            .link("bin/sh", "bin/busybox")
            .build(),
    ]);
    assert_eq!(
        recs[2],
        Rec::new(
            "bin/sh",
            EntryKind::Hardlink {
                target: "bin/busybox".into()
            },
            0o644,
            b""
        )
    );
}

#[test]
fn hardlink_target_sorting_after_the_link_is_still_emitted_first() {
    let recs = run(vec![
        T::new()
            .dir("z")
            .file("z/file", b"z")
            .dir("a")
            .link("a/link", "/z/file")
            .build(),
    ]);
    assert_eq!(paths(&recs), ["z", "z/file", "a", "a/link"]);
}

#[test]
fn hardlink_whose_target_is_whited_out_becomes_a_copy() {
    let (recs, stats) = run_with(
        &layers(vec![
            T::new()
                .file_as("a", b"payload", 0o751, 3, 4)
                .dir("d")
                .link("d/b", "a")
                .build(),
            T::new().empty(".wh.a").build(),
        ]),
        "",
        &keep,
    )
    .unwrap();
    let mut b = Rec::file("d/b", 0o751, b"payload");
    b.uid = 3;
    b.gid = 4;
    assert_eq!(recs, [Rec::dir("d", 0o755), b]);
    assert_eq!(stats.link_copies, 1);
}

#[test]
fn hardlink_whose_target_is_overridden_keeps_the_old_contents() {
    let recs = run(vec![
        T::new().file("a", b"old").link("b", "a").build(),
        T::new().file("a", b"new").build(),
    ]);
    assert_eq!(
        recs,
        [Rec::file("b", 0o644, b"old"), Rec::file("a", 0o644, b"new")]
    );
}

#[test]
fn hardlink_to_an_entry_replaced_later_in_the_same_layer() {
    let recs = run(vec![
        T::new()
            .file("a", b"old")
            .link("b", "a")
            .file("a", b"new")
            .build(),
    ]);
    assert_eq!(
        recs,
        [Rec::file("b", 0o644, b"old"), Rec::file("a", 0o644, b"new")]
    );
}

#[test]
fn surviving_links_of_a_removed_target_still_share_one_inode() {
    let (recs, stats) = run_with(
        &layers(vec![
            T::new()
                .file("a", b"shared")
                .link("c", "a")
                .link("b", "a")
                .link("d", "b")
                .build(),
            T::new().empty(".wh.a").build(),
        ]),
        "",
        &keep,
    )
    .unwrap();
    let hl = |t: &str| EntryKind::Hardlink { target: t.into() };
    assert_eq!(
        recs,
        [
            Rec::file("c", 0o644, b"shared"),
            Rec::new("b", hl("c"), 0o644, b""),
            Rec::new("d", hl("c"), 0o644, b""),
        ]
    );
    assert_eq!(stats.link_copies, 1);
}

#[test]
fn hardlink_chains_resolve_to_the_file() {
    let recs = run(vec![
        T::new()
            .file("a", b"x")
            .link("b", "a")
            .link("c", "b")
            .build(),
    ]);
    assert_eq!(recs[2].kind, EntryKind::Hardlink { target: "a".into() });
}

#[test]
fn hardlink_to_a_dropped_or_replaced_target_becomes_a_copy() {
    let l = layers(vec![
        T::new()
            .dir("etc")
            .file("etc/hostname", b"h")
            .link("etc/hostname.bak", "etc/hostname")
            .file("etc/hosts", b"orig")
            .link("etc/hosts.bak", "etc/hosts")
            .build(),
    ]);
    let filter = |p: &str| match p {
        "etc/hostname" => Filter::Drop,
        "etc/hosts" => Filter::Replace(Replacement {
            kind: EntryKind::File,
            data: b"127.0.0.1 localhost\n".to_vec(),
        }),
        _ => Filter::Keep,
    };
    let (recs, stats) = run_with(&l, "", &filter).unwrap();
    assert_eq!(
        recs,
        [
            Rec::dir("etc", 0o755),
            Rec::file("etc/hostname.bak", 0o644, b"h"),
            Rec::file("etc/hosts", 0o644, b"127.0.0.1 localhost\n"),
            Rec::file("etc/hosts.bak", 0o644, b"orig"),
        ]
    );
    assert_eq!(stats.link_copies, 2);
}

#[test]
fn hardlink_to_a_symlink() {
    let recs = run(vec![T::new().symlink("s", "target").link("h", "s").build()]);
    assert_eq!(recs[1].kind, EntryKind::Hardlink { target: "s".into() });
}

// ---------------------------------------------------------------------------
// Prefix and filter

#[test]
fn prefix_is_prepended_everywhere() {
    let l = layers(vec![
        T::new()
            .dir("./")
            .dir("bin")
            .file("bin/a", b"a")
            .link("bin/b", "bin/a")
            .file("x/y", b"y")
            .build(),
    ]);
    for prefix in [
        "containers/onboot/000-x/lower",
        "containers/onboot/000-x/lower/",
        "./containers//onboot/000-x/lower/",
    ] {
        let (recs, _) = run_with(&l, prefix, &keep).unwrap();
        let p = "containers/onboot/000-x/lower";
        assert_eq!(
            paths(&recs),
            [
                format!("{p}/bin"),
                format!("{p}/bin/a"),
                format!("{p}/bin/b"),
                format!("{p}/x"),
                format!("{p}/x/y"),
            ]
        );
        assert_eq!(
            recs[2].kind,
            EntryKind::Hardlink {
                target: format!("{p}/bin/a")
            }
        );
    }
}

#[test]
fn filter_drops_paths_and_subtrees() {
    let l = layers(vec![
        T::new()
            .empty(".dockerenv")
            .empty("Dockerfile")
            .dir("dev")
            .device("dev/console", tar::EntryType::Char, 5, 1)
            .dir("dev/pts")
            .device("dev/pts/0", tar::EntryType::Char, 136, 0)
            .device("dev/null", tar::EntryType::Char, 1, 3)
            .dir("etc")
            .file("etc/hostname", b"h")
            .file("etc/os-release", b"os")
            .build(),
    ]);
    let seen = std::cell::RefCell::new(Vec::new());
    let filter = |p: &str| {
        seen.borrow_mut().push(p.to_string());
        match p {
            ".dockerenv" | "Dockerfile" | "dev/console" | "dev/pts" | "dev/shm"
            | "etc/hostname" => Filter::Drop,
            _ => Filter::Keep,
        }
    };
    let (recs, stats) = run_with(&l, "p", &filter).unwrap();
    assert_eq!(
        paths(&recs),
        ["p/dev", "p/dev/null", "p/etc", "p/etc/os-release"]
    );
    assert_eq!(stats.dropped, 6);
    // The filter is asked without the prefix, parents first, never about
    // what is under a dropped directory.
    assert_eq!(
        *seen.borrow(),
        [
            ".dockerenv",
            "Dockerfile",
            "dev",
            "dev/console",
            "dev/null",
            "dev/pts",
            "etc",
            "etc/hostname",
            "etc/os-release"
        ]
    );
}

#[test]
fn filter_replaces_in_place() {
    let l = layers(vec![
        T::new()
            .dir("etc")
            .file_as("etc/hosts", b"orig", 0o600, 1, 2)
            .file("etc/resolv.conf", b"nameserver 1.1.1.1")
            .dir("etc/dir")
            .file("etc/dir/child", b"c")
            .build(),
    ]);
    let filter = |p: &str| match p {
        "etc/hosts" => Filter::Replace(Replacement {
            kind: EntryKind::File,
            data: b"127.0.0.1 localhost\n".to_vec(),
        }),
        "etc/resolv.conf" => Filter::Replace(Replacement {
            kind: EntryKind::Symlink {
                target: "/run/resolvconf/resolv.conf".into(),
            },
            data: Vec::new(),
        }),
        "etc/dir" => Filter::Replace(Replacement {
            kind: EntryKind::File,
            data: b"flat".to_vec(),
        }),
        "etc/absent" => panic!("asked about an absent path"),
        _ => Filter::Keep,
    };
    let (recs, stats) = run_with(&l, "", &filter).unwrap();
    let mut hosts = Rec::file("etc/hosts", 0o600, b"127.0.0.1 localhost\n");
    hosts.uid = 1;
    hosts.gid = 2;
    assert_eq!(
        recs,
        [
            Rec::dir("etc", 0o755),
            hosts,
            Rec::new(
                "etc/resolv.conf",
                EntryKind::Symlink {
                    target: "/run/resolvconf/resolv.conf".into()
                },
                0o644,
                b""
            ),
            Rec::file("etc/dir", 0o755, b"flat"),
        ]
    );
    assert_eq!((stats.replaced, stats.dropped), (3, 1));
}

#[test]
fn filter_cannot_replace_with_a_hardlink() {
    let l = layers(vec![T::new().file("a", b"a").build()]);
    let filter = |_: &str| {
        Filter::Replace(Replacement {
            kind: EntryKind::Hardlink { target: "x".into() },
            data: Vec::new(),
        })
    };
    let err = run_with(&l, "", &filter).unwrap_err();
    assert!(
        matches!(&err, Error::Other(m) if m.contains("`a` with a hard link")),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Compression, sources, media types

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn sample_layers() -> Vec<Vec<u8>> {
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    vec![
        T::new()
            .dir("usr")
            .file("usr/big", &big)
            .file("usr/small", b"s")
            .file("gone", b"g")
            .link("usr/big2", "usr/big")
            .build(),
        T::new()
            .empty(".wh.gone")
            .dir("etc")
            .file("etc/x", b"x")
            .build(),
    ]
}

#[test]
fn three_compressions_give_the_same_stream() {
    let tars = sample_layers();
    let expected = run(tars.clone());
    assert_eq!(find(&expected, "usr/big").size, 3_000_000);

    let dir = tempfile::tempdir().unwrap();
    let mut variants: Vec<(&str, Vec<Layer>)> = Vec::new();
    let mk = |c: Compression, f: &dyn Fn(&[u8]) -> Vec<u8>| -> Vec<Layer> {
        tars.iter()
            .enumerate()
            .map(|(i, t)| Layer::from_bytes(format!("l{i}"), c, f(t)))
            .collect()
    };
    variants.push(("gzip", mk(Compression::Gzip, &|t| gzip(t))));
    variants.push((
        "gzip multi-member",
        mk(Compression::Gzip, &|t| {
            let mid = t.len() / 2;
            let mut out = gzip(&t[..mid]);
            out.extend(gzip(&t[mid..]));
            out
        }),
    ));
    variants.push((
        "zstd",
        mk(Compression::Zstd, &|t| zstd::encode_all(t, 3).unwrap()),
    ));
    // Files on disk: uncompressed (read with seeks) and gzip.
    let mut on_disk = Vec::new();
    let mut on_disk_gz = Vec::new();
    for (i, t) in tars.iter().enumerate() {
        let p = dir.path().join(format!("l{i}"));
        std::fs::write(&p, t).unwrap();
        on_disk.push(Layer::from_path(format!("l{i}"), Compression::None, p));
        let p = dir.path().join(format!("l{i}.gz"));
        std::fs::write(&p, gzip(t)).unwrap();
        on_disk_gz.push(Layer::from_path(format!("l{i}"), Compression::Gzip, p));
    }
    variants.push(("file", on_disk));
    variants.push(("file gzip", on_disk_gz));
    let shared: Arc<[u8]> = zstd::encode_all(&tars[1][..], 1).unwrap().into();
    let mut opened = vec![Layer::from_bytes("l0", Compression::None, tars[0].clone())];
    opened.push(Layer::from_opener("l1", Compression::Zstd, move || {
        Ok(Box::new(io::Cursor::new(shared.clone())) as Box<dyn Read + Send>)
    }));
    variants.push(("opener", opened));

    for (name, ls) in variants {
        let (recs, _) = run_with(&ls, "", &keep).unwrap();
        assert_eq!(recs, expected, "{name}");
    }
}

#[test]
fn media_types() {
    for (m, c) in [
        ("application/vnd.oci.image.layer.v1.tar", Compression::None),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::Zstd,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip; foo=bar",
            Compression::Gzip,
        ),
    ] {
        assert_eq!(Compression::from_media_type(m).unwrap(), c, "{m}");
    }
    for m in [
        "application/vnd.oci.image.layer.v1.tar+bzip2",
        "application/vnd.oci.image.config.v1+json",
        "",
    ] {
        let err = Compression::from_media_type(m).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("unsupported layer media type `{m}`")),
            "{err}"
        );
    }
}

#[test]
fn cached_layer_from_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let cache = linuxkit_oci::Cache::open(dir.path()).unwrap();
    let blob = gzip(&T::new().file("hello", b"world").build());
    let digest = cache.write_blob(&blob).unwrap();
    let mut desc = linuxkit_oci::Descriptor {
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        digest: digest.as_str().to_string(),
        size: blob.len() as u64,
        platform: None,
        annotations: Default::default(),
    };
    let layer = Layer::cached("test/image", &cache, &desc).unwrap();
    assert_eq!(layer.digest(), digest.as_str());
    assert_eq!(layer.compression(), Compression::Gzip);
    let (recs, _) = run_with(&[layer], "", &keep).unwrap();
    assert_eq!(recs, [Rec::file("hello", 0o644, b"world")]);

    desc.media_type = "application/x-unknown".into();
    let err = Layer::cached("test/image", &cache, &desc).unwrap_err();
    assert!(
        matches!(&err, Error::Layer { image, layer, reason }
            if image == "test/image" && layer == digest.as_str()
            && reason.contains("unsupported layer media type `application/x-unknown`")),
        "{err:?}"
    );
}

#[test]
fn fully_hidden_layers_are_not_read_again() {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = |t: Vec<u8>, count: Arc<AtomicUsize>| {
        let t: Arc<[u8]> = t.into();
        Layer::from_opener("counted", Compression::None, move || {
            count.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(io::Cursor::new(t.clone())) as Box<dyn Read + Send>)
        })
    };
    let ls = vec![
        counted(T::new().file("a", b"a").dir("d").build(), count.clone()),
        Layer::from_bytes("top", Compression::None, T::new().file("a", b"A").build()),
    ];
    let (recs, _) = run_with(&ls, "", &keep).unwrap();
    assert_eq!(recs, [Rec::dir("d", 0o755), Rec::file("a", 0o644, b"A")]);
    assert_eq!(count.load(Ordering::SeqCst), 1, "lower layer read twice");
}

// ---------------------------------------------------------------------------
// Broken layers (Error::Layer)

#[test]
fn broken_layers() {
    let good = T::new().file("a", b"contents").build();

    // Corrupt header checksum.
    let mut bad = good.clone();
    bad[0] = b'b';
    let r = layer_err(run_with(&layers(vec![bad]), "", &keep).unwrap_err());
    assert!(r.contains("checksum"), "{r}");

    // Truncated gzip.
    let gz = gzip(&good);
    let ls = [Layer::from_bytes(
        "t",
        Compression::Gzip,
        gz[..gz.len() / 2].to_vec(),
    )];
    layer_err(run_with(&ls, "", &keep).unwrap_err());

    // Not gzip at all.
    let ls = [Layer::from_bytes("t", Compression::Gzip, good.clone())];
    layer_err(run_with(&ls, "", &keep).unwrap_err());

    // Missing blob file.
    let ls = [Layer::from_path(
        "sha256:gone",
        Compression::Gzip,
        "/nonexistent/blob",
    )];
    match run_with(&ls, "", &keep).unwrap_err() {
        Error::Layer { layer, reason, .. } => {
            assert_eq!(layer, "sha256:gone");
            assert!(reason.starts_with("cannot open: "), "{reason}");
        }
        e => panic!("{e:?}"),
    }

    // uid that does not fit.
    let t = T::new()
        .pax(&[("uid", b"99999999999")])
        .file("a", b"")
        .build();
    let r = layer_err(run_with(&layers(vec![t]), "", &keep).unwrap_err());
    assert_eq!(r, "`a`: uid 99999999999 is too large");
}

#[test]
fn blob_changing_between_passes_is_detected() {
    let calls = Arc::new(AtomicUsize::new(0));
    let first: Arc<[u8]> = T::new().file("a", b"first").build().into();
    let second: Arc<[u8]> = T::new().file("b", b"other").build().into();
    let c = calls.clone();
    let ls = [Layer::from_opener("flaky", Compression::None, move || {
        let data = if c.fetch_add(1, Ordering::SeqCst) == 0 {
            first.clone()
        } else {
            second.clone()
        };
        Ok(Box::new(io::Cursor::new(data)) as Box<dyn Read + Send>)
    })];
    let r = layer_err(run_with(&ls, "", &keep).unwrap_err());
    assert_eq!(
        r,
        "the blob changed while it was read: tar entry 0 is no longer `a` (5 bytes)"
    );
}

#[test]
fn sink_errors_propagate() {
    struct Fail;
    impl EntrySink for Fail {
        fn add(&mut self, _: &Entry, _: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
            Err(Error::Other("disk full".into()))
        }
    }
    let ls = layers(vec![T::new().file("a", b"a").build()]);
    let err = flatten_layers("i", &ls, "", &keep, &mut Fail).unwrap_err();
    assert!(matches!(err, Error::Other(m) if m == "disk full"));
}

// ---------------------------------------------------------------------------
// The unsafe corpus

struct Case {
    name: &'static str,
    layers: Vec<Vec<u8>>,
    path: &'static str,
    reason: &'static str,
}

fn corpus() -> Vec<Case> {
    use tar::EntryType as E;
    let c = |name, layers, path, reason| Case {
        name,
        layers,
        path,
        reason,
    };
    vec![
        c(
            "dotdot file",
            vec![
                T::new()
                    .raw(b"../etc/passwd", E::Regular, b"", b"x")
                    .build(),
            ],
            "../etc/passwd",
            "path has a `..` component",
        ),
        c(
            "dotdot in the middle",
            vec![T::new().raw(b"a/../../x", E::Regular, b"", b"x").build()],
            "a/../../x",
            "path has a `..` component",
        ),
        c(
            "absolute escaping path",
            vec![
                T::new()
                    .raw(b"/../root/.ssh/authorized_keys", E::Regular, b"", b"k")
                    .build(),
            ],
            "/../root/.ssh/authorized_keys",
            "path has a `..` component",
        ),
        c(
            "dotdot directory",
            vec![T::new().raw(b"a/..", E::Directory, b"", b"").build()],
            "a/..",
            "path has a `..` component",
        ),
        c(
            "NUL in GNU long name",
            vec![T::new().longname(b"etc/pass\0wd").file("x", b"").build()],
            "etc/pass\\x00wd",
            "path contains a NUL byte",
        ),
        c(
            "NUL in PAX path",
            vec![
                T::new()
                    .pax(&[("path", b"a\0/../b")])
                    .file("x", b"")
                    .build(),
            ],
            "a\\x00/../b",
            "path contains a NUL byte",
        ),
        c(
            "non-UTF-8 name",
            vec![T::new().raw(b"bad\xff\xfe", E::Regular, b"", b"").build()],
            "bad\\xff\\xfe",
            "path is not valid UTF-8",
        ),
        c(
            "regular file as the root",
            vec![T::new().raw(b"/", E::Regular, b"", b"x").build()],
            "",
            "a regular file replaces the image root (`/`)",
        ),
        c(
            "symlink as the root",
            vec![T::new().raw(b"./", E::Symlink, b"/tmp", b"").build()],
            "",
            "a symlink replaces the image root (`./`)",
        ),
        c(
            "write through a symlink from a lower layer",
            vec![
                T::new().symlink("etc", "/tmp/evil").build(),
                T::new().file("etc/passwd", b"root::0:0::/:/bin/sh").build(),
            ],
            "etc/passwd",
            "it would be written through the symlink `etc` -> `/tmp/evil`",
        ),
        c(
            "write through a symlink in the same layer",
            vec![T::new().symlink("x", "/").file("x/y", b"y").build()],
            "x/y",
            "it would be written through the symlink `x` -> `/`",
        ),
        c(
            "write through a deep relative symlink with implicit parents",
            vec![
                T::new().dir("a").symlink("a/b", "../../..").build(),
                T::new().file("a/b/c/d", b"d").build(),
            ],
            "a/b/c/d",
            "it would be written through the symlink `a/b` -> `../../..`",
        ),
        c(
            "directory replaced by a symlink later in the same layer",
            vec![
                T::new()
                    .dir("d")
                    .symlink("d", "/etc")
                    .file("d/x", b"x")
                    .build(),
            ],
            "d/x",
            "it would be written through the symlink `d` -> `/etc`",
        ),
        c(
            "child of a regular file from a lower layer",
            vec![
                T::new().file("a", b"file").build(),
                T::new().file("a/b", b"b").build(),
            ],
            "a/b",
            "parent `a` is not a directory but a regular file",
        ),
        c(
            "child of a device",
            vec![
                T::new()
                    .device("n", E::Char, 1, 3)
                    .file("n/x", b"x")
                    .build(),
            ],
            "n/x",
            "parent `n` is not a directory but a character device",
        ),
        c(
            "hard link escaping the root",
            vec![T::new().link("shadow", "../../etc/shadow").build()],
            "shadow",
            "hard link target `../../etc/shadow` has a `..` component (it must stay inside the image)",
        ),
        c(
            "hard link escaping through an absolute target",
            vec![T::new().link("shadow", "/../etc/shadow").build()],
            "shadow",
            "hard link target `/../etc/shadow` has a `..` component (it must stay inside the image)",
        ),
        c(
            "hard link to a nonexistent target",
            vec![T::new().file("a", b"a").link("b", "nope").build()],
            "b",
            "hard link target `nope` is not an earlier entry of the same layer",
        ),
        c(
            "hard link to a later entry",
            vec![T::new().link("b", "a").file("a", b"a").build()],
            "b",
            "hard link target `a` is not an earlier entry of the same layer",
        ),
        c(
            "hard link to a lower layer",
            vec![
                T::new().file("a", b"a").build(),
                T::new().link("b", "a").build(),
            ],
            "b",
            "hard link target `a` is not an earlier entry of the same layer",
        ),
        c(
            "hard link to a whited-out path of its own layer",
            vec![T::new().empty(".wh.a").link("b", "a").build()],
            "b",
            "hard link target `a` is not an earlier entry of the same layer",
        ),
        c(
            "hard link to a directory",
            vec![T::new().dir("d").link("l", "d/").build()],
            "l",
            "hard link target `d` is a directory",
        ),
        c(
            "hard link to the root",
            vec![T::new().link("l", "/").build()],
            "l",
            "hard link target `/` is a directory",
        ),
        c(
            "hard link with an empty target",
            vec![T::new().link("l", "").build()],
            "l",
            "hard link with an empty target",
        ),
        c(
            "hard link target with a NUL byte",
            vec![
                T::new()
                    .file("a", b"a")
                    .pax(&[("linkpath", b"a\0")])
                    .link("l", "a")
                    .build(),
            ],
            "l",
            "hard link target `a\\x00` contains a NUL byte (it must stay inside the image)",
        ),
        c(
            "whiteout of dotdot",
            vec![T::new().empty("etc/.wh...").build()],
            "etc/.wh...",
            "whiteout of `..`",
        ),
        c(
            "whiteout of dot",
            vec![T::new().empty("etc/.wh..").build()],
            "etc/.wh..",
            "whiteout of `.`",
        ),
        c(
            "whiteout in a dotdot directory",
            vec![T::new().raw(b"../.wh.passwd", E::Regular, b"", b"").build()],
            "../.wh.passwd",
            "path has a `..` component",
        ),
        c(
            "empty whiteout name",
            vec![T::new().empty("etc/.wh.").build()],
            "etc/.wh.",
            "empty whiteout name",
        ),
        c(
            "whiteout used as a directory",
            vec![T::new().file(".wh.etc/passwd", b"x").build()],
            ".wh.etc/passwd",
            "whiteout name `.wh.etc` used as a directory",
        ),
        c(
            "symlink with an empty target",
            vec![T::new().symlink("s", "").build()],
            "s",
            "symlink with an empty target",
        ),
        c(
            "symlink target with a NUL byte",
            vec![
                T::new()
                    .pax(&[("linkpath", b"/etc\0x")])
                    .symlink("s", "x")
                    .build(),
            ],
            "s",
            "symlink target contains a NUL byte",
        ),
        c(
            "symlink target not UTF-8",
            vec![T::new().raw(b"s", E::Symlink, b"\xff", b"").build()],
            "s",
            "symlink target is not valid UTF-8",
        ),
    ]
}

#[test]
fn unsafe_corpus_is_rejected_with_exact_errors() {
    let cases = corpus();
    assert!(cases.len() >= 20);
    let mut names = HashSet::new();
    for case in cases {
        assert!(names.insert(case.name));
        let mut sink = Recorder::default();
        let err = flatten_layers(
            "test/image",
            &layers(case.layers.clone()),
            "p",
            &keep,
            &mut sink,
        )
        .expect_err(case.name);
        let (path, reason) = unsafe_err(err);
        assert_eq!(
            (path.as_str(), reason.as_str()),
            (case.path, case.reason),
            "{}",
            case.name
        );
        // Errors are found before anything is emitted.
        assert!(
            sink.recs.is_empty(),
            "{}: emitted {:?}",
            case.name,
            sink.recs
        );
        // Compressed, the same.
        let gz: Vec<Layer> = case
            .layers
            .iter()
            .map(|t| Layer::from_bytes("gz", Compression::Gzip, gzip(t)))
            .collect();
        let err = flatten_layers("test/image", &gz, "", &keep, &mut Recorder::default())
            .expect_err(case.name);
        assert_eq!(
            unsafe_err(err),
            (case.path.to_string(), case.reason.to_string())
        );
    }
}

#[test]
fn unsafe_error_message() {
    let err = run_with(
        &layers(vec![
            T::new().symlink("etc", "/tmp/evil").build(),
            T::new().file("etc/passwd", b"x").build(),
        ]),
        "",
        &keep,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "test/image: unsafe layer entry `etc/passwd`: it would be written through the symlink `etc` -> `/tmp/evil`"
    );
    let err = run_with(&[], "../up", &keep).unwrap_err();
    assert_eq!(
        unsafe_err(err),
        (
            "../up".to_string(),
            "invalid prefix: has a `..` component".to_string()
        )
    );
}

// ---------------------------------------------------------------------------
// Ordering, determinism and a model check on generated layers

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum M {
    Dir(u32),
    File(u32, u64),
    Symlink(String),
}

/// The tree extracting the layers in order would give, applying each
/// layer's whiteouts to the layers below it first.
#[derive(Default)]
struct Model {
    tree: BTreeMap<String, M>,
}

impl Model {
    fn remove_subtree(&mut self, p: &str) {
        self.tree.remove(p);
        let pre = format!("{p}/");
        self.tree.retain(|k, _| !k.starts_with(&pre));
    }
}

enum Op {
    Dir(String, u32),
    File(String, Vec<u8>, u32),
    Symlink(String, String),
    Link(String, String),
    Whiteout(String),
    Opaque(String),
}

fn random_layers(seed: u64) -> (Vec<Vec<u8>>, BTreeMap<String, M>) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let names = ["a", "b", "c", "dd"];
    let mut model = Model::default();
    let mut tars = Vec::new();
    for _ in 0..(2 + rng.below(4)) {
        let mut ops = Vec::new();
        // Per layer: paths that were directories or parents here, and files
        // available as hard link targets (with their contents).
        let mut dirs_here: HashSet<String> = HashSet::new();
        let mut files_here: Vec<(String, Vec<u8>, u32)> = Vec::new();
        for _ in 0..(1 + rng.below(12)) {
            let depth = 1 + rng.below(3);
            let path: Vec<&str> = (0..depth).map(|_| names[rng.below(names.len())]).collect();
            let path = path.join("/");
            let parents: Vec<String> = path
                .match_indices('/')
                .map(|(i, _)| path[..i].to_string())
                .collect();
            let add_parents =
                |ops: &mut Vec<Op>,
                 rng: &mut Rng,
                 dirs_here: &mut HashSet<String>,
                 files_here: &mut Vec<(String, Vec<u8>, u32)>| {
                    for p in &parents {
                        ops.push(Op::Dir(p.clone(), [0o755, 0o700, 0o1777][rng.below(3)]));
                        dirs_here.insert(p.clone());
                        files_here.retain(|(f, ..)| f != p);
                    }
                };
            let non_dir_ok = !dirs_here.contains(&path)
                && !dirs_here.iter().any(|d| d.starts_with(&format!("{path}/")));
            match rng.below(7) {
                0 | 1 if non_dir_ok => {
                    add_parents(&mut ops, &mut rng, &mut dirs_here, &mut files_here);
                    let data: Vec<u8> = (0..rng.below(2000)).map(|_| rng.next() as u8).collect();
                    let mode = [0o644, 0o4755, 0o600][rng.below(3)];
                    files_here.retain(|(p, ..)| *p != path);
                    files_here.push((path.clone(), data.clone(), mode));
                    ops.push(Op::File(path, data, mode));
                }
                2 => {
                    add_parents(&mut ops, &mut rng, &mut dirs_here, &mut files_here);
                    dirs_here.insert(path.clone());
                    files_here.retain(|(p, ..)| *p != path);
                    ops.push(Op::Dir(path, [0o755, 0o750][rng.below(2)]));
                }
                3 if non_dir_ok => {
                    add_parents(&mut ops, &mut rng, &mut dirs_here, &mut files_here);
                    files_here.retain(|(p, ..)| *p != path);
                    ops.push(Op::Symlink(path, format!("/target/{}", rng.below(9))));
                }
                4 if non_dir_ok && !files_here.is_empty() => {
                    let (t, ..) = files_here[rng.below(files_here.len())].clone();
                    if t != path && !parents.contains(&t) {
                        add_parents(&mut ops, &mut rng, &mut dirs_here, &mut files_here);
                        ops.push(Op::Link(path, t));
                    }
                }
                5 => ops.push(Op::Whiteout(path)),
                6 => {
                    add_parents(&mut ops, &mut rng, &mut dirs_here, &mut files_here);
                    dirs_here.insert(path.clone());
                    files_here.retain(|(p, ..)| *p != path);
                    ops.push(Op::Dir(path.clone(), 0o755));
                    ops.push(Op::Opaque(path));
                }
                _ => {}
            }
        }
        // Model: whiteouts of this layer first, on the lower layers.
        for op in &ops {
            match op {
                Op::Whiteout(p) => model.remove_subtree(p),
                Op::Opaque(d) => {
                    let pre = format!("{d}/");
                    model.tree.retain(|k, _| !k.starts_with(&pre));
                }
                _ => {}
            }
        }
        // Then the entries in order (links copy the target's current state).
        let mut t = T::new();
        for op in &ops {
            match op {
                Op::Dir(p, mode) => {
                    if !matches!(model.tree.get(p), Some(M::Dir(_))) {
                        model.remove_subtree(p);
                    }
                    model.tree.insert(p.clone(), M::Dir(*mode));
                    t.dir_mode(p, *mode);
                }
                Op::File(p, data, mode) => {
                    model.remove_subtree(p);
                    model.tree.insert(p.clone(), M::File(*mode, fnv(data)));
                    t.file_as(p, data, *mode, 0, 0);
                }
                Op::Symlink(p, target) => {
                    model.remove_subtree(p);
                    model.tree.insert(p.clone(), M::Symlink(target.clone()));
                    t.symlink(p, target);
                }
                Op::Link(p, target) => {
                    let m = model
                        .tree
                        .get(target)
                        .cloned()
                        .expect("link target in model");
                    model.remove_subtree(p);
                    model.tree.insert(p.clone(), m);
                    t.link(p, target);
                }
                Op::Whiteout(p) => {
                    let (d, b) = p.rsplit_once('/').map_or(("", p.as_str()), |(d, b)| (d, b));
                    let wh = if d.is_empty() {
                        format!(".wh.{b}")
                    } else {
                        format!("{d}/.wh.{b}")
                    };
                    t.empty(&wh);
                }
                Op::Opaque(d) => {
                    t.empty(&format!("{d}/.wh..wh..opq"));
                }
            }
        }
        tars.push(t.build());
    }
    (tars, model.tree)
}

/// Turns a stream into the same shape as the model (hard links resolved).
fn as_model(recs: &[Rec]) -> BTreeMap<String, M> {
    let mut out: BTreeMap<String, M> = BTreeMap::new();
    for r in recs {
        let m = match &r.kind {
            EntryKind::Dir => M::Dir(r.mode),
            EntryKind::File => M::File(r.mode, r.hash),
            EntryKind::Symlink { target } => M::Symlink(target.clone()),
            EntryKind::Hardlink { target } => out[target].clone(),
            k => panic!("unexpected {k:?}"),
        };
        out.insert(r.path.clone(), m);
    }
    out
}

#[test]
fn generated_layers_match_the_extraction_model() {
    for seed in 0..400 {
        let (tars, mut expected) = random_layers(seed);

        let (recs, _) = run_with(&layers(tars.clone()), "", &keep)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        // Parents the layers never created are synthesised.
        for p in recs.iter().filter(|r| r.mtime == DEFAULT_MTIME) {
            expected.entry(p.path.clone()).or_insert(M::Dir(0o755));
        }
        assert_eq!(as_model(&recs), expected, "seed {seed}");
        // Deterministic, also through another compression.
        let (again, _) = run_with(&layers(tars.clone()), "", &keep).unwrap();
        assert_eq!(again, recs, "seed {seed}");
        let zs: Vec<Layer> = tars
            .iter()
            .map(|t| {
                Layer::from_bytes("z", Compression::Zstd, zstd::encode_all(&t[..], 1).unwrap())
            })
            .collect();
        assert_eq!(run_with(&zs, "", &keep).unwrap().0, recs, "seed {seed}");
    }
}

#[test]
fn ordering_parents_from_upper_layers_precede_lower_children() {
    // The reference (top layer first) would emit `a/b/c` from layer 2
    // before layer 0's `a`; lower children under an upper directory must
    // come after it too.
    let recs = run(vec![
        T::new().dir("a").file("a/x", b"x").build(),
        T::new().dir("a/b").build(),
        T::new().dir_mode("a", 0o711).file("a/b/c", b"c").build(),
    ]);
    assert_eq!(paths(&recs), ["a", "a/x", "a/b", "a/b/c"]);
    assert_eq!(recs[0].mode, 0o711);
}

/// A GNU sparse tar made by GNU tar (`-S`) of files of `size` bytes holding
/// `data` at offset 4096 (the rest a hole), one per name.
fn gnu_sparse_tar(names: &[&str], size: u64, data: &[u8]) -> Vec<u8> {
    let d = tempfile::tempdir().unwrap();
    for n in names {
        let f = std::fs::File::create(d.path().join(n)).unwrap();
        f.set_len(size).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, data, 4096).unwrap();
    }
    let out = std::process::Command::new("tar")
        .args(["--format=gnu", "-S", "--numeric-owner", "-cf", "-", "-C"])
        .arg(d.path())
        .args(names)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Counts what it is given and keeps nothing.
#[derive(Default)]
struct Counter {
    files: usize,
    bytes: u64,
}

impl EntrySink for Counter {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
        let n = io::copy(data, &mut io::sink()).unwrap();
        assert_eq!(n, e.size, "{}", e.path);
        self.files += 1;
        self.bytes += n;
        Ok(())
    }
}

/// A small sparse file is expanded, its hole zeros, as LinuxKit's tar
/// reader does.
#[test]
fn a_sparse_file_is_expanded() {
    let tar = gnu_sparse_tar(&["s"], 1 << 20, b"data");
    assert!(tar.len() < 1 << 20, "GNU tar wrote it sparse");
    let recs = run(vec![tar]);
    let mut want = vec![0u8; 1 << 20];
    want[4096..4100].copy_from_slice(b"data");
    let want = Rec::file("s", 0o644, &want);
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (&recs[0].path, recs[0].size, recs[0].hash),
        (&want.path, want.size, want.hash)
    );
}

/// A layer of a few kilobytes whose sparse files claim 3 GiB is refused,
/// naming the file, before anything is written: every output would hold
/// the zeros in full (issue 18.5).
#[test]
fn sparse_files_cannot_expand_a_layer_without_bound() {
    let tar = gnu_sparse_tar(&["a", "b", "c"], 1 << 30, b"data");
    assert!(tar.len() < 64 << 10, "{} bytes", tar.len());
    let mut sink = Counter::default();
    let e = flatten_layers("img", &layers(vec![tar]), "", &keep, &mut sink).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("`b`: a sparse file of 1073741824 bytes storing")
            && msg.contains("more than 1 GiB of zeros"),
        "{msg}"
    );
    assert_eq!(sink.files, 0, "nothing was emitted");
    // At the limit, it is expanded.
    let tar = gnu_sparse_tar(&["a"], MAX_SPARSE_HOLES, b"data");
    let mut sink = Counter::default();
    flatten_layers("img", &layers(vec![tar]), "", &keep, &mut sink).unwrap();
    assert_eq!(sink.bytes, MAX_SPARSE_HOLES);
}
