//! Arbitrary text must never make the configuration parser, validator or
//! template resolver panic, hang or exhaust memory; errors are one line; and
//! anything accepted must survive rendering: `parse(to_yaml(c)) == c` and
//! `parse(to_json(c)) == c`.
//!
//! The body is shared with `crates/config/tests/fuzz_stable.rs`, which runs
//! it on stable over the corpus and generated inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/config/tests/support/fuzz_body.rs"]
mod fuzz_body;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        fuzz_body::check(text);
    }
});
