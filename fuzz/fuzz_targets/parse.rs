//! Arbitrary text must never make the configuration parser or validator
//! panic, hang or exhaust memory, and anything accepted must survive
//! rendering: `parse(to_yaml(c)) == c` and `parse(to_json(c)) == c`.
//!
//! The same body runs on stable as `crates/config/tests/fuzz_body.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linuxkit_config::{Checks, Config, to_json, to_yaml};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = Config::parse("fuzz.yml", text) else {
        return;
    };
    let checks = Checks {
        sources_exist: false,
        home: None,
    };
    let _ = cfg.validate(&checks);
    let yaml = to_yaml(&cfg.moby);
    let again = Config::parse("rendered.yml", &yaml)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{yaml}"));
    assert_eq!(again.moby, cfg.moby, "YAML round trip changed the config:\n{yaml}");
    let json = to_json(&cfg.moby);
    let again = Config::parse("rendered.json", &json)
        .unwrap_or_else(|e| panic!("rendered JSON does not parse: {e}\n{json}"));
    assert_eq!(again.moby, cfg.moby, "JSON round trip changed the config:\n{json}");
});
