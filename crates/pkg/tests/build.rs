//! The daemonless builder's offline half: `data.tar`s of hand-made `.deb`s
//! merged into one layer, the image config, and reproducible manifests.

mod common;

use std::io::Read;
use std::path::Path;

use linuxkit_base::Arch;
use linuxkit_oci::{Cache, Digest};
use linuxkit_pkg::build;
use linuxkit_pkg::debian::DebArchive;
use linuxkit_pkg::filter::PathPatterns;
use linuxkit_pkg::image::store_image;
use linuxkit_pkg::layer::LayerTree;
use linuxkit_pkg::{BuildError, Package, PkgOptions};

/// One `data.tar` entry: (path, type, mode, uid, content or link target).
type Spec<'a> = (&'a str, tar::EntryType, u32, u64, &'a [u8]);

fn tar_of(entries: &[Spec<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, mode, uid, body) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_uid(*uid);
        h.set_gid(0);
        h.set_mtime(1_700_000_000 + *uid);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            h.set_size(0);
            b.append_link(&mut h, name, std::str::from_utf8(body).unwrap())
                .unwrap();
        } else {
            h.set_size(body.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, name, *body).unwrap();
        }
    }
    b.into_inner().unwrap()
}

/// Writes `NAME.deb` (gzip control, zstd data) with `ar`, like dpkg-deb.
fn fake_deb(dir: &Path, name: &str, data: &[Spec<'_>]) -> DebArchive {
    let control = tar_of(&[(
        "./control",
        tar::EntryType::Regular,
        0o644,
        0,
        format!("Package: {name}\nVersion: 1.0-1\nArchitecture: all\n").as_bytes(),
    )]);
    let ar = common::deb_bytes(&control, &tar_of(data));
    let p = dir.join(format!("{name}.deb"));
    std::fs::write(&p, ar).unwrap();
    DebArchive::open(&p).unwrap()
}

use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as S};

/// Two packages: `a` then `b`, which overwrites one of `a`'s files.
fn two_debs(dir: &Path) -> (DebArchive, DebArchive) {
    let a = fake_deb(
        dir,
        "a",
        &[
            ("./", D, 0o755, 0, b""),
            ("./bin/", D, 0o755, 0, b""),
            ("./bin/tool", F, 0o4755, 0, b"tool v1"),
            ("./bin/alias", H, 0o755, 0, b"./bin/tool"),
            ("./bin/sh", S, 0o777, 0, b"tool"),
            ("./etc/", D, 0o700, 0, b""),
            ("./etc/conf", F, 0o640, 42, b"owned by 42"),
            ("./usr/share/doc/a/copyright", F, 0o644, 0, b"legal"),
            ("./usr/share/docs-not-doc", F, 0o644, 0, b"kept"),
            (
                "./usr/lib/x86_64-linux-gnu/gconv/IBM1047.so",
                F,
                0o644,
                0,
                b"charset",
            ),
            ("./usr/lib/x86_64-linux-gnu/libz.a", F, 0o644, 0, b"static"),
            (
                "./usr/lib/x86_64-linux-gnu/libz.so.1",
                F,
                0o644,
                0,
                b"shared",
            ),
        ],
    );
    let b = fake_deb(
        dir,
        "b",
        &[
            ("./etc/", D, 0o755, 0, b""),
            ("./bin/tool", F, 0o755, 0, b"tool v2"),
            ("./lib/x", F, 0o644, 0, b"x"),
            ("./lib/y", H, 0o644, 0, b"lib/x"),
        ],
    );
    (a, b)
}

/// (path, type, mode, uid, mtime, link or content) of every entry.
fn listing(tar_bytes: &[u8]) -> Vec<(String, char, u32, u64, u64, String)> {
    let mut ar = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let kind = match h.entry_type() {
            F => 'f',
            D => 'd',
            S => 's',
            H => 'h',
            other => panic!("{other:?}"),
        };
        let mut body = String::new();
        if kind == 'f' {
            e.read_to_string(&mut body).unwrap();
        } else if let Some(l) = e.link_name().unwrap() {
            body = l.to_string_lossy().into_owned();
        }
        out.push((
            e.path().unwrap().to_string_lossy().into_owned(),
            kind,
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.mtime().unwrap(),
            body,
        ));
    }
    out
}

/// `layer` as a tar after the default `debian.exclude`.
fn default_excluded(mut layer: LayerTree) -> Vec<u8> {
    let exclude: Vec<String> = linuxkit_pkg::DEFAULT_DEBIAN_EXCLUDE
        .iter()
        .map(|s| s.to_string())
        .collect();
    layer.keep_paths(
        &PathPatterns::new(&[], false).unwrap(),
        &PathPatterns::new(&exclude, true).unwrap(),
    );
    layer.to_tar().unwrap()
}

#[test]
fn layer_merges_packages_in_order_and_drops_excluded_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_debs(dir.path());
    let layer = || {
        let mut layer = LayerTree::new();
        layer.add_deb("a 1.0-1", &a).unwrap();
        layer.add_deb("b 1.0-1", &b).unwrap();
        layer
    };
    let got = listing(&default_excluded(layer()));
    let m = linuxkit_rootfs::DEFAULT_MTIME;
    let row = |p: &str, k: char, mode: u32, uid: u64, body: &str| {
        (p.to_string(), k, mode, uid, m, body.to_string())
    };
    assert_eq!(
        got,
        [
            row("bin/", 'd', 0o755, 0, ""),
            // `b` replaced `a`'s tool, so `a`'s hard link to the old
            // content becomes a copy of it.
            row("bin/alias", 'f', 0o4755, 0, "tool v1"),
            row("bin/sh", 's', 0o777, 0, "tool"),
            row("bin/tool", 'f', 0o755, 0, "tool v2"),
            // Directories merge: the first package's metadata stays.
            row("etc/", 'd', 0o700, 0, ""),
            row("etc/conf", 'f', 0o640, 42, "owned by 42"),
            // Parents the tar did not list are made up.
            row("lib/", 'd', 0o755, 0, ""),
            row("lib/x", 'f', 0o644, 0, "x"),
            row("usr/", 'd', 0o755, 0, ""),
            row("usr/lib/", 'd', 0o755, 0, ""),
            row("usr/lib/x86_64-linux-gnu/", 'd', 0o755, 0, ""),
            // Globs: static libraries and iconv modules are gone.
            row(
                "usr/lib/x86_64-linux-gnu/libz.so.1",
                'f',
                0o644,
                0,
                "shared"
            ),
            row("usr/share/", 'd', 0o755, 0, ""),
            // A prefix matches whole components only.
            row("usr/share/docs-not-doc", 'f', 0o644, 0, "kept"),
            // Hard links come last, after their targets.
            row("lib/y", 'h', 0o644, 0, "lib/x"),
        ]
    );
    // Without exclusions the documentation is there.
    let all = listing(&layer().to_tar().unwrap());
    assert!(all.iter().any(|r| r.0 == "usr/share/doc/a/copyright"));
    assert!(all.iter().any(|r| r.0 == "usr/lib/x86_64-linux-gnu/libz.a"));
    // The same inputs give the same bytes.
    assert_eq!(default_excluded(layer()), default_excluded(layer()));
}

#[test]
fn unsafe_paths_and_dangling_hard_links_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // `tar::Builder` refuses `..`, so write the name into the header by hand.
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..12].copy_from_slice(b"./../evil/sh");
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"x"[..]).unwrap();
    let bytes = b.into_inner().unwrap();
    let e = LayerTree::new()
        .add_tar("evil", tar::Archive::new(&bytes[..]))
        .unwrap_err();
    assert!(matches!(e, BuildError::Layer { .. }), "{e}");
    assert!(e.to_string().contains("unsafe path"), "{e}");

    let deb = fake_deb(dir.path(), "c", &[("./l", H, 0o644, 0, b"./nowhere")]);
    let e = LayerTree::new().add_deb("c", &deb).unwrap_err();
    assert!(e.to_string().contains("not an earlier regular file"), "{e}");
}

fn package(dir: &Path, build_yml: &str) -> Package {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("build.yml"), build_yml).unwrap();
    Package::load(dir, &PkgOptions::default()).unwrap()
}

#[test]
fn images_are_reproducible_and_carry_the_runtime_config() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_debs(dir.path());
    let pkg = package(
        &dir.path().join("p"),
        "image: t\ndebian:\n  packages: [a, b]\nentrypoint: [/bin/tool]\ncmd: [-v]\nenv: [A=1]\nworkdir: /etc\nconfig:\n  binds: [/a:/a]\n",
    );
    let digests: Vec<_> = (0..2)
        .map(|i| {
            let cache = Cache::open(&dir.path().join(format!("cache{i}"))).unwrap();
            let mut layer = LayerTree::new();
            layer.add_deb("a", &a).unwrap();
            layer.add_deb("b", &b).unwrap();
            let tar = default_excluded(layer);
            let desc = store_image(&cache, &pkg, Arch::Amd64, &tar).unwrap();
            let manifest: linuxkit_oci::Manifest = serde_json::from_slice(
                &cache
                    .read_blob(&Digest::parse(&desc.digest).unwrap())
                    .unwrap(),
            )
            .unwrap();
            let config: serde_json::Value = serde_json::from_slice(
                &cache
                    .read_blob(&Digest::parse(&manifest.config.digest).unwrap())
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(config["architecture"], "amd64");
            assert_eq!(config["os"], "linux");
            assert!(config.get("created").is_none());
            let c = &config["config"];
            assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/tool"]));
            assert_eq!(c["Cmd"], serde_json::json!(["-v"]));
            assert_eq!(c["Env"], serde_json::json!(["A=1"]));
            assert_eq!(c["WorkingDir"], "/etc");
            let label = c["Labels"]["org.mobyproject.config"].as_str().unwrap();
            let back: linuxkit_config::ImageConfig = serde_json::from_str(label).unwrap();
            assert_eq!(back.binds.unwrap(), ["/a:/a"]);
            // The diff ID is the uncompressed layer's digest.
            assert_eq!(
                config["rootfs"]["diff_ids"][0],
                Digest::of(&tar).to_string()
            );
            desc.digest
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn packages_without_a_debian_source_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let p = package(&dir.path().join("d"), "image: d\n");
    std::fs::write(dir.path().join("d/Dockerfile"), "FROM scratch\n").unwrap();
    let e = build::debian_source(&p).unwrap_err();
    assert!(
        e.to_string()
            .contains("is a Dockerfile package, built with `pkg build` (buildah), not from a `debian:` section"),
        "{e}"
    );
    let p = package(&dir.path().join("e"), "image: e\n");
    let e = build::debian_source(&p).unwrap_err();
    assert!(e.to_string().contains("no `debian:` section"), "{e}");
}
