//! Arbitrary bytes given to `cache import` must never make it panic, write
//! outside the cache, leave a temporary file, or name an image whose blobs
//! are not all there and verified.
//!
//! The body is shared with `crates/oci/tests/fuzz_stable.rs`, which runs it
//! on stable over the corpus and generated archives.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/oci/tests/fuzz/import_body.rs"]
mod import_body;

fuzz_target!(|data: &[u8]| {
    import_body::check(data);
});
