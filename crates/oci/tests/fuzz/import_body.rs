//! The body of the `import` fuzz target (`fuzz/fuzz_targets/import.rs`),
//! shared with `tests/fuzz_stable.rs`, which runs it on stable: arbitrary
//! bytes given to `cache import` must never make it panic, write outside
//! the cache, leave a temporary file behind, or name an image whose blobs
//! are not all there and verified.

use std::path::Path;

use linuxkit_oci::{Cache, Digest, ImageRef};

/// Returns whether the archive imported.
pub fn check(data: &[u8]) -> bool {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path().join("cache");
    let cache = Cache::open(&root).expect("a new cache opens");
    let result = cache.import(&mut &data[..]);
    // Nothing beside the cache, nothing left in its .tmp/.
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["cache"], "the import wrote beside the cache");
    let temps = std::fs::read_dir(root.join(".tmp")).unwrap().count();
    assert_eq!(temps, 0, "the import left temporary files");
    // Every blob hashes to its name.
    for e in std::fs::read_dir(root.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let d = Digest::parse(&format!("sha256:{name}")).expect("blobs are named by digest");
        assert_eq!(Digest::of(&std::fs::read(e.path()).unwrap()), d);
    }
    let imported = result.is_ok();
    match result {
        Ok(names) => {
            for n in names {
                let r = ImageRef::parse(&n).expect("an imported name parses");
                let top = cache
                    .resolve(&r)
                    .expect("index.json reads")
                    .expect("an imported image is named");
                let d = Digest::parse(&top.digest).expect("its digest parses");
                assert!(cache.has_blob(&d), "{n} names a missing blob");
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                !msg.is_empty() && !msg.contains('\n'),
                "not one line: {msg:?}"
            );
        }
    }
    cache.index().expect("index.json still reads");
    assert!(Path::new(&root).join("oci-layout").is_file());
    imported
}
