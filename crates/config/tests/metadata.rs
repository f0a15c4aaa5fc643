//! `files: [{metadata: yaml|json}]` renders the configuration byte for byte
//! as the reference does.
//!
//! Each `tests/metadata/NAME.yml` has `NAME.yaml.expected` and
//! `NAME.json.expected`: what the reference's `metadata()` writes for it
//! (its configuration structs marshalled by yaml.v3 and by Go's
//! `json.MarshalIndent`), derived from the reference's source and checked
//! against its encoders. `strings.yml` covers every scalar style yaml.v3
//! picks and Go's JSON escapes; `many-fields.yml` sets every container
//! field; `empty.yml` shows the fields the reference writes by default.

use linuxkit_config::{Config, metadata_json, metadata_yaml};
use std::path::Path;

fn check(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/metadata");
    let input = std::fs::read_to_string(dir.join(format!("{name}.yml"))).unwrap();
    let cfg = Config::parse(&format!("{name}.yml"), &input).unwrap();
    for (ext, got) in [
        ("yaml", metadata_yaml(&cfg.moby)),
        ("json", metadata_json(&cfg.moby)),
    ] {
        let path = dir.join(format!("{name}.{ext}.expected"));
        let want = std::fs::read_to_string(&path).unwrap();
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            panic!(
                "{}: first difference at line {}:\n got: {:?}\nwant: {:?}\n--- got ---\n{got}",
                path.display(),
                line + 1,
                got.lines().nth(line),
                want.lines().nth(line)
            );
        }
    }
}

#[test]
fn empty_configuration_has_the_default_fields() {
    check("empty");
}

#[test]
fn minimal_configuration() {
    check("minimal");
}

#[test]
fn every_container_field() {
    check("many-fields");
}

#[test]
fn resources_and_empty_sections() {
    check("resources");
}

#[test]
fn string_styles_and_escapes() {
    check("strings");
}
