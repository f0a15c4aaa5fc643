//! The `parse` fuzz target's body as a plain test, so stable CI runs it too:
//! over every example and malformed configuration, any inputs cargo-fuzz has
//! found (`fuzz/corpus/parse`, `fuzz/artifacts/parse`), and 20 000
//! generated inputs (`PROPTEST_CASES` changes the count).

mod support;

use std::path::Path;

use linuxkit_testing::generate::files_in;
use proptest::prelude::*;
use support::fuzz_body::check;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn fuzz_body_on_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in [
        "../../examples",
        "tests/malformed",
        "../../fuzz/corpus/parse",
        "../../fuzz/artifacts/parse",
    ] {
        for path in files_in(&root.join(dir)) {
            let bytes = std::fs::read(&path).unwrap();
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let r = std::panic::catch_unwind(|| check(text));
                assert!(r.is_ok(), "panic on {}", path.display());
                n += 1;
            }
        }
    }
    assert!(n > 35, "only {n} corpus inputs");
}

/// Pieces of YAML and of this schema, for generated inputs that get past the
/// YAML parser.
const TOKENS: &[&str] = &[
    "kernel",
    "init",
    "onboot",
    "onshutdown",
    "services",
    "files",
    "volumes",
    "trust",
    "image",
    "cmdline",
    "tar",
    "ucode",
    "name",
    "capabilities",
    "capabilities.add",
    "binds",
    "binds.add",
    "mounts",
    "devices",
    "tmpfs",
    "env",
    "net",
    "uid",
    "gid",
    "additionalGids",
    "oomScoreAdj",
    "resources",
    "memory",
    "limit",
    "runtime",
    "bindNS",
    "interfaces",
    "path",
    "contents",
    "source",
    "metadata",
    "mode",
    "readonly",
    "format",
    "oci",
    "yes",
    "0755",
    "-1",
    "~",
    "root",
    "@pkg:",
    "\"@pkg:x\"",
    ":",
    ": ",
    "- ",
    "\n",
    "\n  ",
    "\n    ",
    "\n  - ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: ",
    "? ",
    "---\n",
    "...\n",
    "'",
    "\"",
    "|\n",
    ">-\n",
    "#",
    "\t",
    "!!str ",
    "%YAML 1.2\n",
    "\u{feff}",
    "\u{85}",
    "é",
    "\\",
    "\0",
];

fn token_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|v| v.concat())
}

fn mutated_seed() -> impl Strategy<Value = String> {
    let seeds: Vec<String> =
        files_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples"))
            .into_iter()
            .chain(files_in(
                &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed"),
            ))
            .filter(|p| p.extension().is_some_and(|e| e == "yml"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
    (
        prop::sample::select(seeds),
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                0..4usize,
                prop::sample::select(TOKENS),
            ),
            1..6,
        ),
    )
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (at, delete, insert) in edits {
                let i = if chars.is_empty() {
                    0
                } else {
                    at.index(chars.len())
                };
                let end = (i + delete).min(chars.len());
                chars.splice(i..end, insert.chars());
            }
            chars.into_iter().collect()
        })
}

fn input() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => any::<String>(),
        3 => token_soup(),
        5 => mutated_seed(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn fuzz_body_on_generated_inputs(text in input()) {
        check(&text);
    }
}
