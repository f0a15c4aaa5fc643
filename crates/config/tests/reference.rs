//! The reference's own configurations as a conformance suite
//! (`tests/reference/`, see its README): each goes through the same path as
//! `linuxkit build --dry-run` (parse, `@pkg:` templates, validation with
//! source files checked, from the file's own directory) and must be
//! accepted or refused exactly as the reference accepts or refuses it. The
//! refusals, with our diagnostic and the reference's reason, are listed in
//! `tests/reference/refused.txt`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use linuxkit_config::{Checks, Config, ConfigError};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference")
}

/// Every `.yml` under the suite, as paths relative to it.
fn configurations() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p != root.join("home") {
                    walk(&p, root, out);
                }
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                let rel = p.strip_prefix(root).unwrap();
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = suite_dir();
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

/// `refused.txt`: file → the diagnostic we must give.
fn refused() -> BTreeMap<String, String> {
    let text = fs::read_to_string(suite_dir().join("refused.txt")).unwrap();
    let mut out = BTreeMap::new();
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    while let Some(file) = lines.next() {
        let diagnostic = lines
            .next()
            .unwrap_or_else(|| panic!("refused.txt: no diagnostic for {file}"));
        out.insert(file.to_string(), diagnostic.to_string());
    }
    out
}

/// What `linuxkit build --dry-run FILE` run in FILE's directory says: the
/// warnings, or the error.
fn dry_run(rel: &str) -> Result<Vec<ConfigError>, ConfigError> {
    let path = suite_dir().join(rel);
    let text = fs::read_to_string(&path).unwrap();
    let mut config = Config::parse_all([(rel, text.as_str())])?;
    config.resolve_templates(|dir| {
        Err(format!(
            "no package at {}: the suite uses no @pkg: templates",
            dir.display()
        ))
    })?;
    config.validate(&Checks {
        sources_exist: true,
        home: Some(suite_dir().join("home")),
        base_dir: Some(path.parent().unwrap().to_path_buf()),
        strict: false,
    })
}

#[test]
fn the_suite_is_complete() {
    let all = configurations();
    // 33 examples and 147 test cases at the recorded commit.
    assert_eq!(all.len(), 180, "{all:?}");
    for file in refused().keys() {
        assert!(
            all.contains(file),
            "refused.txt names {file}, not in the suite"
        );
    }
    assert_eq!(refused().len(), 4);
}

#[test]
fn accepted_and_refused_exactly_as_the_reference() {
    let refused = refused();
    let mut failures = Vec::new();
    for rel in configurations() {
        match (dry_run(&rel), refused.get(&rel)) {
            (Ok(warnings), None) => {
                // The reference's own files pass its strict reader, so none
                // of our notes about leniency may fire on them.
                for w in warnings {
                    let w = w.to_string();
                    if w.contains("LinuxKit reads") || w.contains("LinuxKit refuses") {
                        failures.push(format!("{rel}: {w}"));
                    }
                }
            }
            (Err(e), Some(expected)) if &e.to_string() == expected => {}
            (Err(e), Some(expected)) => failures.push(format!(
                "{rel}: refused with\n    {e}\n  expected\n    {expected}"
            )),
            (Err(e), None) => failures.push(format!("{rel}: refused, LinuxKit accepts it: {e}")),
            (Ok(_), Some(_)) => failures.push(format!("{rel}: accepted, LinuxKit refuses it")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The forms issue 17 found refused, each present in the suite and now
/// accepted: spot checks that the suite exercises them.
#[test]
fn the_suite_exercises_the_forms_we_used_to_refuse() {
    let text = |rel: &str| fs::read_to_string(suite_dir().join(rel)).unwrap();
    // A cgroup mount with no destination.
    let docker = text("examples/docker.yml");
    assert!(docker.contains("type: cgroup"), "{docker}");
    assert!(dry_run("examples/docker.yml").is_ok());
    // The same name twice in onboot: accepted, and no id names it, so
    // there is nothing to warn about.
    let dm = text("examples/dm-crypt-loop.yml");
    assert_eq!(dm.matches("name: mount").count(), 2, "{dm}");
    assert_eq!(dry_run("examples/dm-crypt-loop.yml").unwrap(), []);
}
