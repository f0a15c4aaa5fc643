//! The `import` fuzz target's body (`tests/fuzz/import_body.rs`) as a plain
//! test, so stable CI runs it too: over any inputs cargo-fuzz has found
//! (`fuzz/corpus/import`, `fuzz/artifacts/import`), the committed seed
//! (`fuzz/seeds/import`), the exports of a real
//! image in both formats, and archives generated from their entries with
//! hostile changes (paths out of the layout, links named like blobs, blobs
//! whose content is not their name, index.json that is not one, entries
//! missing, cut short or with a byte changed). `LINUXKIT_FUZZ_CASES` sets
//! the count (default 200: each import syncs its blobs to disk).

#[path = "fuzz/import_body.rs"]
mod import_body;

use std::collections::BTreeMap;
use std::path::Path;

use linuxkit_oci::{Cache, Descriptor, ExportFormat, ImageRef, Platform, media_type};
use linuxkit_testing::generate::{Rng, damage, files_in};

/// The entries (path, data) of the export of a one-layer image, in the
/// OCI and the Docker format.
fn exports() -> Vec<Vec<(String, Vec<u8>)>> {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let layer = cache.write_blob(b"a layer that is not a tar").unwrap();
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_d = cache.write_blob(config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": {"mediaType": media_type::OCI_CONFIG, "digest": config_d.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.as_str(), "size": 25}],
    }))
    .unwrap();
    let md = cache.write_blob(&manifest).unwrap();
    cache
        .tag(
            "example.com/fuzz/seed:1",
            Descriptor {
                media_type: media_type::OCI_MANIFEST.into(),
                digest: md.to_string(),
                size: manifest.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
        )
        .unwrap();
    let image = cache
        .image(
            &ImageRef::parse("example.com/fuzz/seed:1").unwrap(),
            &Platform::linux(linuxkit_base::Arch::Amd64),
        )
        .unwrap()
        .unwrap();
    [ExportFormat::Oci, ExportFormat::Docker]
        .into_iter()
        .map(|f| {
            let mut tar = Vec::new();
            cache
                .export(&image, "example.com/fuzz/seed:1", f, &mut tar)
                .unwrap();
            let mut a = tar::Archive::new(&tar[..]);
            a.entries()
                .unwrap()
                .map(|e| {
                    let mut e = e.unwrap();
                    let p = e.path().unwrap().to_string_lossy().into_owned();
                    let mut d = Vec::new();
                    std::io::Read::read_to_end(&mut e, &mut d).unwrap();
                    (p, d)
                })
                .collect()
        })
        .collect()
}

const PATHS: &[&str] = &[
    "../escape",
    "/etc/escape",
    "blobs/sha256/../../../escape",
    "./index.json",
    "blobs/sha256/",
    "blobs/sha256/zz",
    "blobs/sha512/abc",
    "index.json/x",
];

const INDEXES: &[&str] = &[
    "",
    "{}",
    "[]",
    "null",
    r#"{"schemaVersion":2,"manifests":[{}]}"#,
    r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:00","size":1,"annotations":{"org.opencontainers.image.ref.name":"x"}}]}"#,
    r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"annotations":{"io.containerd.image.name":"UPPER/Case"}}]}"#,
];

/// A raw tar entry: `kind` and `link` as given, nothing checked.
fn entry(out: &mut Vec<u8>, path: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    let name = &mut h.as_old_mut().name;
    let n = path.len().min(name.len());
    name[..n].copy_from_slice(&path.as_bytes()[..n]);
    let l = &mut h.as_old_mut().linkname;
    let n = link.len().min(l.len());
    l[..n].copy_from_slice(&link.as_bytes()[..n]);
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn archive(rng: &mut Rng, seeds: &[Vec<(String, Vec<u8>)>]) -> Vec<u8> {
    let mut entries = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(entries.len());
        match rng.below(8) {
            0 => {
                entries.remove(i);
            }
            1 => entries[i].1.push(b'!'),
            2 => entries[i].0 = PATHS[rng.below(PATHS.len())].to_string(),
            3 => {
                let j = rng.below(INDEXES.len());
                entries.push(("index.json".into(), INDEXES[j].as_bytes().to_vec()));
            }
            4 => {
                let dup = entries[i].clone();
                entries.push(dup);
            }
            _ => {}
        }
        if entries.is_empty() {
            break;
        }
    }
    let mut out = Vec::new();
    for (p, d) in &entries {
        let kind = match rng.below(12) {
            0 => tar::EntryType::Symlink,
            1 => tar::EntryType::Link,
            2 => tar::EntryType::Directory,
            _ => tar::EntryType::Regular,
        };
        if kind == tar::EntryType::Regular {
            entry(&mut out, p, kind, "", d);
        } else {
            let target = ["/etc/passwd", "../../outside", "index.json"][rng.below(3)];
            entry(&mut out, p, kind, target, &[]);
        }
    }
    out.resize(out.len() + 1024, 0);
    damage(rng, &mut out, 10);
    out
}

#[test]
fn import_fuzz_body_on_corpus_exports_and_generated_archives() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for dir in ["seeds/import", "corpus/import", "artifacts/import"] {
        for p in files_in(&root.join(dir)) {
            let data = std::fs::read(&p).unwrap();
            let r = std::panic::catch_unwind(|| import_body::check(&data));
            assert!(r.is_ok(), "panic on {}", p.display());
        }
    }
    let seeds = exports();
    // The unchanged exports import.
    for s in &seeds {
        let mut out = Vec::new();
        for (p, d) in s {
            entry(&mut out, p, tar::EntryType::Regular, "", d);
        }
        out.resize(out.len() + 1024, 0);
        assert!(
            import_body::check(&out),
            "an unchanged export does not import"
        );
    }
    let cases: u64 = std::env::var("LINUXKIT_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mut rng = Rng(0x1e_5eed);
    let mut imported = 0;
    for case in 0..cases {
        let data = archive(&mut rng, &seeds);
        match std::panic::catch_unwind(|| import_body::check(&data)) {
            Ok(true) => imported += 1,
            Ok(false) => {}
            Err(_) => {
                let keep = std::env::temp_dir().join(format!("linuxkit-import-fuzz-{case}.tar"));
                std::fs::write(&keep, &data).unwrap();
                panic!("case {case} panicked; its archive is {}", keep.display());
            }
        }
    }
    // Both outcomes are exercised.
    assert!(
        imported > cases / 20 && imported < cases - cases / 20,
        "{imported} of {cases} generated archives imported"
    );
    eprintln!("{imported} of {cases} generated archives imported");
}
