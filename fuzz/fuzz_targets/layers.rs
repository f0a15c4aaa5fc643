//! Arbitrary bytes read as a layer tar (alone, and stacked on itself) must
//! never make the root filesystem's layer flattening panic, and every entry
//! it emits keeps the stream's promises (relative, no `..`, parents first,
//! `size` bytes of data).
//!
//! The body is shared with `crates/rootfs/tests/fuzz_stable.rs`, which runs
//! it on stable over the corpus and generated layers.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/rootfs/tests/fuzz/layer_body.rs"]
mod layer_body;

fuzz_target!(|data: &[u8]| {
    layer_body::check(data);
});
