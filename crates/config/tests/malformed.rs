//! A corpus of malformed configurations (`tests/malformed/NAME.yml`), each
//! with the exact one-line diagnostic it must produce: `NAME.err` for an
//! error (the build stops), `NAME.warn` for a warning (LinuxKit accepts
//! the configuration, so we build it too and warn; `build --strict` makes
//! the same text an error).
//!
//! Every configuration is parsed and validated the way `linuxkit build`
//! does it, with source files checked for existence. The diagnostic must be
//! `NAME.yml:LINE:COLUMN: message`, pointing at the offending token.
//!
//! To review changed messages, run with `BLESS=1` to rewrite the `.err`
//! and `.warn` files, then read the diff.

use std::fs;
use std::path::{Path, PathBuf};

use linuxkit_config::{Checks, Config};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed")
}

/// The first error `linuxkit build --strict` would report for `text`, or
/// `None` if the configuration is accepted without a warning.
fn first_error(name: &str, text: &str) -> Option<String> {
    let checks = Checks {
        sources_exist: true,
        home: None,
        strict: true,
        ..Checks::default()
    };
    match Config::parse(name, text).and_then(|c| c.validate(&checks)) {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// What `linuxkit build` (not strict) says first: `("err", error)` or
/// `("warn", first warning)`.
fn first_diagnostic(name: &str, text: &str) -> Option<(&'static str, String)> {
    let checks = Checks {
        sources_exist: true,
        home: None,
        ..Checks::default()
    };
    match Config::parse(name, text).and_then(|c| c.validate(&checks)) {
        Ok(w) => w.first().map(|w| ("warn", w.to_string())),
        Err(e) => Some(("err", e.to_string())),
    }
}

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("tests/malformed exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_is_big_enough() {
    let n = corpus().len();
    assert!(n >= 35, "only {n} malformed configurations");
}

#[test]
fn every_malformed_config_reports_the_expected_error() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for yml in corpus() {
        let name = yml.file_name().unwrap().to_str().unwrap().to_string();
        let text = fs::read_to_string(&yml).unwrap();
        let Some((kind, actual)) = first_diagnostic(&name, &text) else {
            failures.push(format!(
                "{name}: accepted without a warning, but it is malformed"
            ));
            continue;
        };
        let expected_path = yml.with_extension(kind);
        let other = yml.with_extension(if kind == "err" { "warn" } else { "err" });
        if bless {
            let _ = fs::remove_file(&other);
        } else if other.exists() {
            failures.push(format!(
                "{name}: expected as {} but it is now {kind}: {actual}",
                other.display()
            ));
            continue;
        }
        if first_error(&name, &text).as_deref() != Some(actual.as_str()) {
            failures.push(format!(
                "{name}: --strict does not stop at the same diagnostic: {:?} vs {actual}",
                first_error(&name, &text)
            ));
        }
        assert!(
            !actual.contains('\n'),
            "{name}: error is not one line: {actual:?}"
        );
        let prefix = format!("{name}:");
        if !actual.starts_with(&prefix) {
            failures.push(format!(
                "{name}: error does not start with `{prefix}`: {actual}"
            ));
        }
        if bless {
            fs::write(&expected_path, format!("{actual}\n")).unwrap();
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected.trim_end_matches('\n') == actual => {}
            Ok(expected) => failures.push(format!(
                "{name}:\n  expected: {}\n  actual:   {actual}",
                expected.trim_end_matches('\n')
            )),
            Err(_) => failures.push(format!(
                "{name}: no {} (run with BLESS=1 to create it); actual: {actual}",
                expected_path.display()
            )),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Every location is `LINE:COLUMN` inside the file, and an `.err` without
/// its `.yml` is a leftover.
#[test]
fn expectations_are_well_formed() {
    for entry in fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "err" || e == "warn") {
            assert!(
                path.with_extension("yml").exists(),
                "{} has no .yml",
                path.display()
            );
            let err = fs::read_to_string(&path).unwrap();
            let text = fs::read_to_string(path.with_extension("yml")).unwrap();
            let mut parts = err.splitn(4, ':');
            let (_, line, col) = (parts.next(), parts.next(), parts.next());
            let line: usize = line
                .and_then(|l| l.parse().ok())
                .unwrap_or_else(|| panic!("{}: no line number in {err:?}", path.display()));
            let col: usize = col
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("{}: no column number in {err:?}", path.display()));
            let lines: Vec<&str> = text.split('\n').collect();
            assert!(
                line >= 1 && line <= lines.len(),
                "{}: line {line} is outside the file",
                path.display()
            );
            assert!(
                col >= 1 && col <= lines[line - 1].chars().count() + 1,
                "{}: column {col} is outside line {line}",
                path.display()
            );
        }
    }
}

/// The same inputs, fed as the second of two merged files, are reported in
/// the second file.
#[test]
fn errors_in_a_merged_second_file_name_that_file() {
    let checks = Checks {
        sources_exist: true,
        home: None,
        strict: true,
        ..Checks::default()
    };
    let base = "init:\n  - linuxkit/init:v1\n";
    for yml in corpus() {
        let name = yml.file_name().unwrap().to_str().unwrap().to_string();
        let text = fs::read_to_string(&yml).unwrap();
        let Some(alone) = first_error(&name, &text) else {
            continue;
        };
        let merged = Config::parse_all([("base.yml", base), (name.as_str(), text.as_str())])
            .and_then(|c| c.validate(&checks))
            .expect_err(&name)
            .to_string();
        assert_eq!(merged, alone, "{name}");
    }
}
