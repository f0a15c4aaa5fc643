//! `linuxkit build` refuses a configuration that names a path outside the
//! image, at the YAML line and before writing anything, and `--strict`
//! turns warnings into errors. A configuration of `files:` only needs no
//! image, so these builds run without a registry.

use std::path::Path;
use std::process::{Command, Output};

fn linuxkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_linuxkit"))
}

/// `build --format tar` of `yml` into `dir` (cache in `dir/cache`).
fn build(dir: &Path, yml: &str, extra: &[&str]) -> Output {
    let file = dir.join("t.yml");
    std::fs::write(&file, yml).unwrap();
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    linuxkit()
        .current_dir(dir)
        .arg("--cache")
        .arg(dir.join("cache"))
        .args(["build", "--format", "tar", "--name", "t", "--dir"])
        .arg(&out_dir)
        .args(extra)
        .arg(&file)
        .output()
        .unwrap()
}

/// The tar's member names, with GNU tar.
fn members(tar: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(tar).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_files_path_inside_the_image_builds() {
    // The control case: the same shape of configuration is built, so the
    // refusals below are the path rule's doing.
    let tmp = tempfile::tempdir().unwrap();
    let out = build(
        tmp.path(),
        "files:\n  - path: /etc/../victim/./canary\n    contents: \"x\"\n",
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = members(&tmp.path().join("out/t.tar"));
    assert!(names.contains(&"victim/canary".to_string()), "{names:?}");
    assert!(names.iter().all(|n| !n.contains("..")), "{names:?}");
}

#[test]
fn files_paths_outside_the_image_are_refused_at_the_line_and_nothing_is_written() {
    for (path, why) in [
        (
            "../../../victim/canary",
            "climbs above the root of the image",
        ),
        ("/etc/../../x", "climbs above the root of the image"),
        ("/", "names the root directory of the image"),
        ("\".\"", "names the root directory of the image"),
        ("\"etc/a\\0b\"", "contains a NUL byte"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let yml = format!("# a comment\nfiles:\n  - contents: \"x\"\n    path: {path}\n");
        let out = build(tmp.path(), &yml, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{path}: accepted");
        let at = format!("{}:4:11: file path", tmp.path().join("t.yml").display());
        assert!(stderr.contains(&at), "{path}: {stderr}");
        assert!(stderr.contains(why), "{path}: {stderr}");
        assert!(
            entries(&tmp.path().join("out")).is_empty(),
            "{path}: something was written: {:?}",
            entries(&tmp.path().join("out"))
        );
    }
}

#[test]
fn container_names_that_are_not_one_directory_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = build(
        tmp.path(),
        "onboot:\n  - name: ../../etc\n    image: alpine:3.20\n",
        &["--dry-run"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("t.yml:2:11: invalid container name"),
        "{stderr}"
    );
}

#[test]
fn strict_makes_warnings_errors() {
    // `symlink` and `contents` together: LinuxKit takes the symlink and
    // ignores the contents, so we build it with a warning...
    let yml = "files:\n  - path: etc/motd\n    symlink: /etc/issue\n    contents: hello\n";
    let tmp = tempfile::tempdir().unwrap();
    let out = build(tmp.path(), yml, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("t.yml:4:15:") && stderr.contains("ignored"),
        "{stderr}"
    );
    let names = members(&tmp.path().join("out/t.tar"));
    assert!(names.contains(&"etc/motd".to_string()), "{names:?}");
    // ...and `--strict` refuses it, with the same located message, before
    // writing anything.
    let tmp = tempfile::tempdir().unwrap();
    let out = build(tmp.path(), yml, &["--strict"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "--strict accepted a warning");
    assert!(
        stderr.contains("t.yml:4:15:") && stderr.contains("ignored"),
        "{stderr}"
    );
    assert!(entries(&tmp.path().join("out")).is_empty());
    // --strict with nothing to warn about builds.
    let tmp = tempfile::tempdir().unwrap();
    let out = build(
        tmp.path(),
        "files:\n  - path: etc/motd\n    contents: hello\n",
        &["--strict"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
