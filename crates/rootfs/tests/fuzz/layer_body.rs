//! The body of the `layers` fuzz target (`fuzz/fuzz_targets/layers.rs`),
//! shared with `tests/fuzz_stable.rs`, which runs it on stable: arbitrary
//! bytes read as an uncompressed layer (alone, and stacked on itself, which
//! exercises whiteouts and replacements) must never make the flattener
//! panic, and every entry it emits keeps the stream's promises: a relative
//! path without `..` or empty components, under the prefix, parents first,
//! and exactly `size` bytes of data for a file.

use std::collections::BTreeSet;
use std::io::Read;

use linuxkit_rootfs::{Compression, Entry, EntryKind, EntrySink, Filter, Layer, flatten_layers};

/// Entries emitted over all checks so far: the stable test's measure that
/// its inputs get past the tar reader.
pub static EMITTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Data read per file at most: a sparse entry may declare gigabytes.
const READ_LIMIT: u64 = 16 << 20;

struct Check {
    prefix: &'static str,
    seen: BTreeSet<String>,
}

impl EntrySink for Check {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
        let p = &entry.path;
        assert!(!p.starts_with('/'), "absolute path {p:?}");
        assert!(
            p.split('/').all(|c| !c.is_empty() && c != ".." && c != "."),
            "bad component in {p:?}"
        );
        assert!(!p.contains('\0'), "NUL in {p:?}");
        if !self.prefix.is_empty() {
            assert!(
                p == self.prefix || p.starts_with(&format!("{}/", self.prefix)),
                "{p:?} is outside the prefix"
            );
            if let Some((parent, _)) = p.rsplit_once('/')
                && parent.len() > self.prefix.len()
            {
                assert!(self.seen.contains(parent), "{p:?} before its parent");
            }
        }
        if let EntryKind::Hardlink { target } = &entry.kind {
            assert!(
                self.seen.contains(target),
                "{p:?} links to {target:?}, not emitted before"
            );
        }
        // A read error (a truncated layer) is the flattener's to report.
        let Ok(n) = std::io::copy(&mut data.take(READ_LIMIT), &mut std::io::sink()) else {
            self.seen.insert(p.clone());
            return Ok(());
        };
        if entry.kind == EntryKind::File && entry.size <= READ_LIMIT {
            assert_eq!(n, entry.size, "{p:?}: data is not `size` bytes");
        } else if entry.kind != EntryKind::File {
            assert_eq!(n, 0, "{p:?}: data for a non-file");
        }
        self.seen.insert(p.clone());
        EMITTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

pub fn check(data: &[u8]) {
    let digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let layer = || Layer::from_bytes(digest, Compression::None, data.to_vec());
    for (layers, prefix) in [
        (vec![layer()], ""),
        (vec![layer(), layer()], "containers/onboot/000-x/lower"),
    ] {
        let mut sink = Check {
            prefix,
            seen: BTreeSet::new(),
        };
        if let Err(e) = flatten_layers("fuzz", &layers, prefix, &|_| Filter::Keep, &mut sink) {
            let msg = e.to_string();
            assert!(!msg.is_empty(), "an empty error");
        }
    }
}

/// Prints what the flattener says of `data` (for tuning generators).
#[allow(dead_code)]
pub fn explain(data: &[u8]) {
    let digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let layer = Layer::from_bytes(digest, Compression::None, data.to_vec());
    let mut sink = Check {
        prefix: "",
        seen: BTreeSet::new(),
    };
    match flatten_layers("fuzz", &[layer], "", &|_| Filter::Keep, &mut sink) {
        Ok(_) => eprintln!("ok: {:?}", sink.seen),
        Err(e) => eprintln!("error: {e}"),
    }
}
