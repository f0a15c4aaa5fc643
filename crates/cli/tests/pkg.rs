//! `linuxkit pkg build` end to end: a package with a `debian:` source built
//! from the Debian mirror of the host's apt sources (or
//! `LINUXKIT_DEBIAN_MIRROR`) into a fresh cache, twice, reproducibly.
//!
//! Like the Debian client's own end-to-end test, this fails rather than
//! skips when the mirror is unreachable.

use std::io::Read;
use std::path::Path;
use std::process::Command;

/// Runs the binary with a private Debian cache; returns (ok, stdout, stderr).
fn linuxkit(debian_cache: &Path, args: &[&str], cwd: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_linuxkit"))
        .args(args)
        .current_dir(cwd)
        .env("LINUXKIT_DEBIAN_CACHE", debian_cache)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn git(repo: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t.test"])
        .args(args)
        .current_dir(repo)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

fn blob(cache: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read(cache.join("blobs/sha256").join(hex)).unwrap()
}

/// The paths in the image's one layer.
fn layer_paths(cache: &Path, manifest_digest: &str) -> Vec<String> {
    let m: serde_json::Value = serde_json::from_slice(&blob(cache, manifest_digest)).unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let gz = blob(cache, layers[0]["digest"].as_str().unwrap());
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut ar = tar::Archive::new(&tar[..]);
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn pkg_build_from_debian_packages_is_cached_and_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let cache = tmp.path().join("cache");
    let debs = tmp.path().join("debian");
    std::fs::create_dir_all(repo.join("pkg/busybox")).unwrap();
    std::fs::create_dir_all(repo.join("pkg/docker")).unwrap();
    std::fs::write(
        repo.join("pkg/busybox/build.yml"),
        "image: busybox\ndebian:\n  packages: [busybox-static]\nentrypoint: [/bin/busybox, sh]\n",
    )
    .unwrap();
    std::fs::write(repo.join("pkg/docker/build.yml"), "image: docker\n").unwrap();
    std::fs::write(repo.join("pkg/docker/Dockerfile"), "FROM scratch\n").unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "packages"]);

    let c = cache.to_str().unwrap();
    let build = |extra: &[&str]| {
        let mut args = vec!["--cache", c, "pkg", "build"];
        args.extend_from_slice(extra);
        args.push("pkg/busybox");
        let (ok, out, err) = linuxkit(&debs, &args, &repo);
        assert!(ok, "pkg build {extra:?} failed: {err}");
        let line = out.trim().to_string();
        let (reference, digest) = line.split_once('@').expect("REF@DIGEST");
        (reference.to_string(), digest.to_string(), err)
    };

    let (reference, first, err) = build(&[]);
    assert!(err.contains("built from busybox-static"), "{err}");
    let (ok, tag, _) = linuxkit(
        &debs,
        &["pkg", "show-tag", "--canonical", "pkg/busybox"],
        &repo,
    );
    assert!(ok);
    assert_eq!(reference, tag.trim());
    assert!(reference.starts_with("docker.io/linuxkit/busybox:"));

    let (ok, ls, _) = linuxkit(&debs, &["--cache", c, "cache", "ls"], &repo);
    assert!(ok);
    assert!(ls.contains(&reference), "{ls}");

    let paths = layer_paths(&cache, &first);
    assert!(paths.iter().any(|p| p == "bin/busybox"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.starts_with("usr/share/doc")),
        "{paths:?}"
    );

    // Again: a cache hit.
    let (_, second, err) = build(&[]);
    assert!(err.contains("is cached"), "{err}");
    assert_eq!(first, second);

    // A real rebuild gives the same manifest.
    let (_, third, err) = build(&["--force"]);
    assert!(err.contains("built from busybox-static"), "{err}");
    assert_eq!(first, third, "the rebuild is bit-for-bit identical");

    // --dry-run says what it would do and does nothing.
    let (ok, out, _) = linuxkit(
        &debs,
        &["--cache", c, "pkg", "build", "--dry-run", "pkg/busybox"],
        &repo,
    );
    assert!(ok);
    assert!(
        out.contains("cached, would not rebuild") && out.contains("busybox-static"),
        "{out}"
    );

    // A Dockerfile package needs a daemon.
    let (ok, _, err) = linuxkit(&debs, &["--cache", c, "pkg", "build", "pkg/docker"], &repo);
    assert!(!ok);
    assert!(
        err.contains("Dockerfile packages need a Docker daemon; use a `debian:` source instead"),
        "{err}"
    );
}
