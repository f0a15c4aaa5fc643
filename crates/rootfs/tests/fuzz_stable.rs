//! The `layers` fuzz target's body (`tests/fuzz/layer_body.rs`) as a plain
//! test, so stable CI runs it too: over any inputs cargo-fuzz has found
//! (`fuzz/corpus/layers`, `fuzz/artifacts/layers`) and generated layers:
//! tars built entry by entry from hostile pieces (`..`, absolute paths,
//! whiteouts, links out of the tree and to themselves, devices, PAX paths,
//! sparse sizes, names past the limits), then cut or with a byte changed.
//! `LINUXKIT_FUZZ_CASES` sets the count (default 3000).

#[path = "fuzz/layer_body.rs"]
mod layer_body;

use std::path::Path;

use linuxkit_testing::generate::{Rng, damage, files_in};

const NAMES: &[&str] = &[
    "a",
    "b",
    "etc",
    "usr",
    "bin",
    "lib",
    ".wh.a",
    ".wh.b",
    ".wh..wh..opq",
    "dev",
    "x y",
    "é",
];
/// Rarer: each makes most readers refuse the whole layer.
const HOSTILE: &[&str] = &[
    "..",
    ".",
    "",
    "/",
    "//",
    ".wh.",
    ".wh...",
    "\u{0}",
    "very-long-name-that-goes-on-and-on-and-on-and-on-and-on-and-on-and-on-and-on-and-on-and-on-and-on-and-on-and-on",
];

fn path(rng: &mut Rng) -> String {
    let n = 1 + rng.below(3);
    let mut parts: Vec<&str> = (0..n)
        .map(|_| {
            if rng.below(40) == 0 {
                rng.pick(HOSTILE)
            } else {
                rng.pick(NAMES)
            }
        })
        .collect();
    if rng.below(20) == 0 {
        parts.insert(0, "");
    }
    parts.join("/")
}

/// A tar of random entries, header fields written raw so that nothing the
/// tar crate's builder would refuse is left out.
fn layer(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(12) {
        let mut h = tar::Header::new_gnu();
        let p = path(rng);
        let kind = [
            tar::EntryType::Regular,
            tar::EntryType::Directory,
            tar::EntryType::Symlink,
            tar::EntryType::Link,
            tar::EntryType::Char,
            tar::EntryType::Block,
            tar::EntryType::Fifo,
            tar::EntryType::GNUSparse,
            tar::EntryType::XHeader,
            tar::EntryType::GNULongName,
        ][[0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9][rng.below(14)]];
        let data: Vec<u8> = match kind {
            tar::EntryType::Regular | tar::EntryType::GNUSparse => {
                vec![b'x'; rng.below(3000)]
            }
            tar::EntryType::XHeader => {
                let rec = format!(" path={}\n", path(rng));
                format!("{}{rec}", rec.len() + 2).into_bytes()
            }
            tar::EntryType::GNULongName => path(rng).into_bytes(),
            _ => Vec::new(),
        };
        {
            let name = &mut h.as_old_mut().name;
            let b = p.as_bytes();
            let n = b.len().min(name.len());
            name[..n].copy_from_slice(&b[..n]);
        }
        h.set_entry_type(kind);
        h.set_mode([0o644, 0o755, 0o4755, 0o7777, 0][rng.below(5)]);
        h.set_mtime(1_500_000_000);
        h.set_uid([0, 0, 1000][rng.below(3)]);
        h.set_gid(0);
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        // Sometimes a size that is not the data's.
        let size = match rng.below(40) {
            0 => 1 << 40,
            1 => data.len() as u64 + 1,
            _ => data.len() as u64,
        };
        h.set_size(size);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            let t = path(rng);
            let link = &mut h.as_old_mut().linkname;
            let n = t.len().min(link.len());
            link[..n].copy_from_slice(&t.as_bytes()[..n]);
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    damage(rng, &mut out, 12);
    out
}

#[test]
fn layer_fuzz_body_on_corpus_and_generated_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for dir in ["corpus/layers", "artifacts/layers"] {
        for p in files_in(&root.join(dir)) {
            let data = std::fs::read(&p).unwrap();
            let r = std::panic::catch_unwind(|| layer_body::check(&data));
            assert!(r.is_ok(), "panic on {}", p.display());
        }
    }
    let cases: u64 = std::env::var("LINUXKIT_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut rng = Rng(0x1a7e_5eed);
    for case in 0..cases {
        let data = layer(&mut rng);
        if std::env::var_os("LINUXKIT_FUZZ_DEBUG").is_some() {
            layer_body::explain(&data);
        }
        let r = std::panic::catch_unwind(|| layer_body::check(&data));
        if r.is_err() {
            let keep = std::env::temp_dir().join(format!("linuxkit-layer-fuzz-{case}.tar"));
            std::fs::write(&keep, &data).unwrap();
            panic!("case {case} panicked; its layer is {}", keep.display());
        }
    }
    let emitted = layer_body::EMITTED.load(std::sync::atomic::Ordering::Relaxed) as u64;
    assert!(
        emitted >= cases / 2,
        "only {emitted} entries from {cases} layers: the generator no longer gets past the tar reader"
    );
    eprintln!("{emitted} entries from {cases} generated layers");
}
