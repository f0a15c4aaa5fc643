//! The body of the `parse` fuzz target, shared by `fuzz/fuzz_targets/parse.rs`
//! (cargo-fuzz, nightly) and `tests/fuzz_stable.rs` (a plain test on stable).
//!
//! For any text: parsing, validating, resolving templates and reporting
//! errors never panic; every error is one line; and a configuration that
//! parses renders (as YAML and as JSON) to text that parses back to the same
//! configuration.

use linuxkit_config::{Checks, Config, parse_image_label, to_json, to_yaml};

pub fn check(text: &str) {
    // The same text as an image label must not panic either.
    if let Err(e) = parse_image_label("fuzz", text) {
        assert_one_line(&e.to_string());
    }
    let cfg = match Config::parse("fuzz.yml", text) {
        Ok(c) => c,
        Err(e) => {
            assert_one_line(&e.to_string());
            return;
        }
    };
    let checks = Checks {
        sources_exist: false,
        home: None,
        ..Checks::default()
    };
    if let Err(e) = cfg.validate(&checks) {
        assert_one_line(&e.to_string());
    }

    let yaml = to_yaml(&cfg.moby);
    let again = Config::parse("rendered.yml", &yaml)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{yaml}"));
    assert_eq!(
        again.moby, cfg.moby,
        "YAML round trip changed the config:\n{yaml}"
    );
    let json = to_json(&cfg.moby);
    let again = Config::parse("rendered.json", &json)
        .unwrap_or_else(|e| panic!("rendered JSON does not parse: {e}\n{json}"));
    assert_eq!(
        again.moby, cfg.moby,
        "JSON round trip changed the config:\n{json}"
    );

    // Merged with itself, and with templates resolved both ways.
    let mut twice = Config::parse_all([("a/a.yml", text), ("b.yml", text)])
        .expect("a text that parses once parses twice");
    if let Err(e) = twice.validate(&checks) {
        assert_one_line(&e.to_string());
    }
    let mut ok = twice.clone();
    ok.resolve_templates(|d| Ok(format!("resolved/{}", d.display())))
        .map_err(|e| assert_one_line(&e.to_string()))
        .ok();
    if let Err(e) = twice.resolve_templates(|_| Err("no such package".into())) {
        assert_one_line(&e.to_string());
    }
    for section in [
        "init",
        "onboot",
        "onshutdown",
        "services",
        "files",
        "volumes",
    ] {
        for i in 0..3 {
            assert_one_line(&twice.error_at(section, i, "x[0].y", "m").to_string());
        }
    }
}

fn assert_one_line(s: &str) {
    assert!(!s.contains(['\n', '\r']), "error is not one line: {s:?}");
}
