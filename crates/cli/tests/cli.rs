//! The `linuxkit` binary end to end: exit codes, the one-line `Error:`
//! contract, `build --dry-run`, merging, stdin, `moby`, completions.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn linuxkit() -> Command {
    Command::cargo_bin("linuxkit").unwrap()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Runs and returns (status code, stdout, stderr).
fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Failures print exactly one line, `Error: ...`, and exit 1.
fn assert_one_error_line(stderr: &str, contains: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("Error: "), "{stderr}");
    assert!(
        lines[0].contains(contains),
        "{:?} lacks {contains:?}",
        lines[0]
    );
}

#[test]
fn version_prints_name_and_version() {
    let (code, out, _) = run(linuxkit().arg("version"));
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!("linuxkit version {}\n", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    let (_, short, _) = run(linuxkit().args(["version", "--short"]));
    assert_eq!(short.trim(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn answers_to_moby() {
    let dir = tempfile::tempdir().unwrap();
    let moby = dir.path().join("moby");
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("linuxkit"), &moby).unwrap();
    let out = std::process::Command::new(&moby)
        .arg("version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("moby version "));
    let out = std::process::Command::new(&moby)
        .args(["build", "--dry-run"])
        .arg(examples().join("minimal.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Calls `f` on every image reference of `m`.
fn for_each_image(m: &mut linuxkit_config::Moby, mut f: impl FnMut(&mut String)) {
    f(&mut m.kernel.image);
    m.init.iter_mut().for_each(&mut f);
    for i in m
        .onboot
        .iter_mut()
        .chain(&mut m.onshutdown)
        .chain(&mut m.services)
    {
        f(&mut i.image);
    }
}

#[test]
fn dry_run_prints_the_resolved_config_which_parses_back() {
    let file = examples().join("linuxkit.yml");
    let (code, out, err) = run(linuxkit().args(["build", "--dry-run"]).arg(&file));
    assert_eq!(code, 0, "{err}");
    let original = std::fs::read_to_string(&file).unwrap();
    let mut want = linuxkit_config::Config::parse("linuxkit.yml", &original)
        .unwrap()
        .moby;
    let mut got = linuxkit_config::Config::parse("stdout", &out).unwrap().moby;
    // `@pkg:../pkg/NAME` became `docker.io/linuxkit/NAME:TAG` (the tag is
    // the package's content hash); everything else is as written.
    for_each_image(&mut want, |i| {
        *i = i.strip_prefix("@pkg:../pkg/").expect(i).to_string();
    });
    for_each_image(&mut got, |i| {
        let rest = i.strip_prefix("docker.io/linuxkit/").expect(i);
        *i = rest.split(':').next().unwrap().to_string();
    });
    assert_eq!(got, want);
    assert!(out.contains("  - name: nginx\n"), "{out}");
}

#[test]
fn dry_run_is_byte_identical_across_runs() {
    let file = examples().join("linuxkit.yml");
    let (_, a, _) = run(linuxkit().args(["build", "--dry-run"]).arg(&file));
    let (_, b, _) = run(linuxkit().args(["build", "--dry-run"]).arg(&file));
    assert_eq!(a, b);
}

#[test]
fn several_files_merge_in_order_and_stdin_is_dash() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yml");
    std::fs::write(&a, "kernel:\n  image: k:1\n  cmdline: one\ninit: [i:1]\n").unwrap();
    let (code, out, err) = run(linuxkit()
        .args(["build", "--dry-run"])
        .arg(&a)
        .arg("-")
        .write_stdin("kernel:\n  cmdline: two\ninit: [i:2]\n"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "kernel:\n  image: k:1\n  cmdline: two\ninit:\n  - i:1\n  - i:2\n"
    );
}

#[test]
fn a_missing_yml_extension_is_added() {
    let (code, _, err) = run(linuxkit()
        .args(["build", "--dry-run"])
        .arg(examples().join("minimal")));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn config_errors_are_one_located_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yml");
    std::fs::write(&f, "services:\n  - name: x\n    imgae: nginx\n").unwrap();
    let (code, _, err) = run(linuxkit().args(["build", "--dry-run"]).arg(&f));
    assert_eq!(code, 1);
    assert_one_error_line(
        &err,
        &format!(
            "{}:3:5: services[0]: unknown field `imgae`, did you mean `image`?",
            f.display()
        ),
    );
}

#[test]
fn errors_in_a_second_file_name_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yml");
    let b = dir.path().join("b.yml");
    std::fs::write(&a, "services:\n  - name: x\n    image: x:1\n").unwrap();
    std::fs::write(
        &b,
        "services:\n  - name: y\n    image: y:1\n    capabilities: [CAP_NET_ADMN]\n",
    )
    .unwrap();
    let (code, _, err) = run(linuxkit().args(["build", "--dry-run"]).arg(&a).arg(&b));
    assert_eq!(code, 1);
    assert_one_error_line(
        &err,
        &format!(
            "{}:4:20: unknown capability `CAP_NET_ADMN`, did you mean `CAP_NET_ADMIN`?",
            b.display()
        ),
    );
}

#[test]
fn unreadable_input_is_a_clear_error() {
    let (code, _, err) = run(linuxkit().args(["build", "--dry-run", "/nonexistent/x.yml"]));
    assert_eq!(code, 1);
    assert_one_error_line(&err, "cannot read /nonexistent/x.yml");
}

#[test]
fn format_rules_of_the_reference() {
    let f = examples().join("minimal.yml");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--format", "tar,kernel+initrd", "--o", "x.tar"],
            "--o can only be used when building a single output format",
        ),
        (
            &["--format", "iso-bios", "--format", "kernel+iso"],
            "formats iso-bios and kernel+iso both write NAME.iso",
        ),
        (
            &["--format", "iso-bio"],
            "unknown format `iso-bio`, did you mean `iso-bios`?",
        ),
        (
            &["--format", "iso-bios", "--o", "x.iso"],
            "--o cannot be used for format iso-bios",
        ),
        (
            &["--o", "-", "--name", "x"],
            "--o cannot be used together with --name",
        ),
        (&["--size", "12Q"], "invalid --size `12Q`"),
        (
            &["--dir", "/nonexistent-dir"],
            "output directory /nonexistent-dir does not exist",
        ),
    ];
    for (flags, msg) in cases {
        let (code, _, err) = run(linuxkit().arg("build").args(*flags).arg(&f));
        assert_eq!(code, 1, "{flags:?}");
        assert_one_error_line(&err, msg);
    }
}

#[test]
fn usage_mistakes_are_one_line_too() {
    let (code, _, err) = run(linuxkit().args(["build", "--no-such-flag", "x.yml"]));
    assert_eq!(code, 1);
    assert_one_error_line(&err, "--no-such-flag");
    let (code, _, err) = run(linuxkit().args(["-v", "7", "version"]));
    assert_eq!(code, 1);
    assert_one_error_line(&err, "7");
}

#[test]
fn later_issues_report_not_implemented() {
    for args in [vec!["run", "aws", "x"], vec!["push", "gcp", "x"]] {
        let (code, _, err) = run(linuxkit().args(&args));
        assert_eq!(code, 1, "{args:?}");
        assert_one_error_line(&err, "is not implemented: ");
    }
}

#[test]
fn build_pulls_images_and_reports_an_unreachable_registry() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("dead.yml");
    // Port 1 on loopback: nothing listens there.
    std::fs::write(&f, "init:\n  - 127.0.0.1:1/x/init:v1\n").unwrap();
    let (code, _, err) = run(linuxkit()
        .arg("-q")
        .arg("--cache")
        .arg(dir.path().join("cache"))
        .arg("build")
        .arg(&f));
    assert_eq!(code, 1);
    assert_one_error_line(
        &err,
        "registry 127.0.0.1:1: cannot pull 127.0.0.1:1/x/init:v1:",
    );
    assert!(err.contains("Connection refused"), "{err}");
    // at the line that names the image
    assert!(
        err.starts_with(&format!("Error: {}:2:5: ", f.display())),
        "{err}"
    );
}

#[test]
fn a_malformed_image_reference_is_reported_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yml");
    std::fs::write(&f, "services:\n  - name: x\n    image: Nginx:latest\n").unwrap();
    let (code, _, err) = run(linuxkit()
        .arg("--cache")
        .arg(dir.path().join("cache"))
        .arg("build")
        .arg(&f));
    assert_eq!(code, 1);
    assert_one_error_line(
        &err,
        &format!(
            "{}:3:12: invalid image reference `Nginx:latest`: repository names must be lower-case (`nginx`)",
            f.display()
        ),
    );
}

#[test]
fn an_empty_cache_lists_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(linuxkit()
        .arg("--cache")
        .arg(dir.path())
        .args(["cache", "ls"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "");
    assert!(dir.path().join("oci-layout").is_file());
    assert!(dir.path().join("index.json").is_file());
}

#[test]
fn completions_for_three_shells() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef linuxkit"),
        ("fish", "complete -c linuxkit"),
    ] {
        let (code, out, _) = run(linuxkit().args(["completion", shell]));
        assert_eq!(code, 0);
        assert!(out.contains(marker), "{shell}");
        assert!(
            out.contains("show-tag"),
            "{shell} completion lacks sub-commands"
        );
    }
}

#[test]
fn help_lists_the_reference_tree() {
    let (code, out, _) = run(linuxkit().arg("--help"));
    assert_eq!(code, 0);
    for c in [
        "build", "cache", "metadata", "pkg", "push", "run", "serve", "version",
    ] {
        assert!(out.contains(&format!("  {c} ")), "{c} missing from help");
    }
    let (_, out, _) = run(linuxkit().args(["build", "--help"]));
    for flag in [
        "--name",
        "--dir",
        "--o <FILE>",
        "--size",
        "--pull",
        "--decompress-kernel",
        "--arch",
        "--format",
        "--input-tar",
        "--no-sbom",
        "--dry-run",
        "--cache",
        "--mirror",
        "--quiet",
        "--verbose",
    ] {
        assert!(out.contains(flag), "build --help lacks {flag}");
    }
    let (_, out, _) = run(linuxkit().args(["run", "qemu", "--help"]));
    for flag in [
        "--cpus",
        "--mem",
        "--disk",
        "--publish",
        "--networking",
        "--state",
        "--data-file",
        "--accel",
        "--uefi",
        "--fw",
        "--detached",
    ] {
        assert!(out.contains(flag), "run qemu --help lacks {flag}");
    }
}

/// An `@pkg:` image that is neither cached nor pullable (a changed package
/// not rebuilt, as its tag is its content hash) is reported with the
/// command that builds it.
#[test]
fn unbuilt_pkg_image_error_says_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pkg/busybox");
    let yml = dir.path().join("x.yml");
    std::fs::write(
        &yml,
        format!(
            "onboot:\n  - name: x\n    image: \"@pkg:{}\"\n",
            pkg.display()
        ),
    )
    .unwrap();
    let (code, _, err) = run(linuxkit()
        .env("LINUXKIT_CACHE", dir.path().join("cache"))
        // nothing listens on port 1 of loopback: the pull fails at once
        .args([
            "-q",
            "build",
            "--mirror",
            "http://127.0.0.1:1",
            "--format",
            "tar",
            "--dir",
        ])
        .arg(dir.path())
        .arg(&yml));
    assert_eq!(code, 1, "{err}");
    assert_one_error_line(&err, "linuxkit/busybox:");
    // located at the reference in the YAML
    assert!(
        err.starts_with(&format!("Error: {}:3:12: ", yml.display())),
        "{err}"
    );
    assert!(err.contains("could not be pulled"), "{err}");
    assert!(
        err.contains(&format!("`linuxkit pkg build {}`", pkg.display())),
        "{err}"
    );
    assert!(!dir.path().join("x.tar").exists(), "nothing half-written");
}

/// Issue 18: a dry run parses image references as a build does, so one
/// that passes does not fail on the same line later.
#[test]
fn dry_run_refuses_a_malformed_image_reference_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yml");
    std::fs::write(
        &f,
        "services:\n  - name: x\n    image: example.com/Library/Nginx:1\n",
    )
    .unwrap();
    let (code, _, err) = run(linuxkit().args(["build", "--dry-run"]).arg(&f));
    assert_eq!(code, 1, "{err}");
    assert_one_error_line(&err, &format!("{}:3:", f.display()));
    assert!(err.contains("lower-case"), "{err}");
}

/// A bootable format for an architecture without boot loaders yet is
/// refused, naming both, before anything is pulled (an empty cache, no
/// registry: the refusal must come first).
#[test]
fn a_bios_format_for_arm64_is_refused_naming_what_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(linuxkit()
        .args(["--cache"])
        .arg(dir.path().join("cache"))
        .args([
            "build", "--arch", "aarch64", "--format", "iso-bios", "--dir",
        ])
        .arg(dir.path())
        .arg(examples().join("minimal.yml")));
    assert_eq!(code, 1);
    assert_one_error_line(
        &err,
        "format iso-bios boots through a PC BIOS (isolinux), which arm64 machines do not have: use a UEFI format instead (iso-efi, iso-efi-initrd, qcow2-efi, raw-efi) (--arch arm64)",
    );
    // An architecture without boot loaders.
    let (code, _, err) = run(linuxkit()
        .args(["--cache"])
        .arg(dir.path().join("cache"))
        .args(["build", "--arch", "riscv64", "--format", "raw-efi", "--dir"])
        .arg(dir.path())
        .arg(examples().join("minimal.yml")));
    assert_eq!(code, 1);
    assert_one_error_line(
        &err,
        "format raw-efi needs boot loaders, which exist for amd64 and arm64 only, not riscv64 (--arch riscv64)",
    );
}
