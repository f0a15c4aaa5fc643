//! `linuxkit pkg build` end to end: a package with a `debian:` source built
//! from the Debian mirror of the host's apt sources (or
//! `LINUXKIT_DEBIAN_MIRROR`) into a fresh cache, twice, reproducibly.
//!
//! Like the Debian client's own end-to-end test, this fails rather than
//! skips when the mirror is unreachable.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs the binary with a private Debian cache; returns (ok, stdout, stderr).
fn linuxkit(debian_cache: &Path, args: &[&str], cwd: &Path) -> (bool, String, String) {
    linuxkit_env(debian_cache, args, cwd, &[])
}

/// [`linuxkit`] with more environment variables.
fn linuxkit_env(
    debian_cache: &Path,
    args: &[&str],
    cwd: &Path,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_linuxkit"))
        .args(args)
        .current_dir(cwd)
        .env("LINUXKIT_DEBIAN_CACHE", debian_cache)
        .envs(env.iter().copied())
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

/// The platform manifest `digest` names: itself, or the first platform
/// manifest of an index (a package with attestations is always one).
fn platform_manifest(cache: &Path, digest: &str) -> serde_json::Value {
    let m: serde_json::Value = serde_json::from_slice(&blob(cache, digest)).unwrap();
    match m["manifests"].as_array() {
        Some(entries) => {
            let first = entries
                .iter()
                .find(|e| e["platform"]["os"] == "linux")
                .expect("a platform manifest");
            serde_json::from_slice(&blob(cache, first["digest"].as_str().unwrap())).unwrap()
        }
        None => m,
    }
}

/// Runs the SPDX validator (`pyspdxtools`, scripts/setup installs it) on
/// `doc`; fails with its report unless it says the document is valid.
fn validate_spdx(doc: &serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("doc.spdx.json");
    std::fs::write(&f, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let out = Command::new("pyspdxtools")
        .arg("-i")
        .arg(&f)
        .output()
        .expect("pyspdxtools (PyPI's spdx-tools; scripts/setup installs it)");
    assert!(
        out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("ERROR"),
        "the SPDX validator refuses the document: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The attestations of the index `top`, checked entry by entry against
/// BuildKit's attestation storage layout: after every platform manifest,
/// one attestation manifest per platform manifest (platform
/// `unknown/unknown`, annotated `vnd.docker.reference.type:
/// attestation-manifest` and `vnd.docker.reference.digest`), an OCI
/// manifest whose config is an `unknown/unknown` image config with the
/// layers as its diff IDs and whose layers are in-toto statements
/// (`application/vnd.in-toto+json`, annotated with their predicate type)
/// about the platform manifest. Returns, per platform manifest digest,
/// (the SPDX document, the SLSA provenance).
fn attestations(
    cache: &Path,
    top: &str,
) -> BTreeMap<String, (serde_json::Value, serde_json::Value)> {
    let index: serde_json::Value = serde_json::from_slice(&blob(cache, top)).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries = index["manifests"].as_array().unwrap();
    let n = entries
        .iter()
        .take_while(|e| e["platform"]["os"] == "linux")
        .count();
    let (images, atts) = entries.split_at(n);
    assert_eq!(
        images.len(),
        atts.len(),
        "one attestation per image: {index}"
    );
    let mut out = BTreeMap::new();
    for (image, att) in images.iter().zip(atts) {
        assert_eq!(
            att["platform"],
            serde_json::json!({"architecture": "unknown", "os": "unknown"})
        );
        assert_eq!(
            att["annotations"],
            serde_json::json!({
                "vnd.docker.reference.digest": image["digest"],
                "vnd.docker.reference.type": "attestation-manifest",
            })
        );
        assert_eq!(
            att["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        let am: serde_json::Value =
            serde_json::from_slice(&blob(cache, att["digest"].as_str().unwrap())).unwrap();
        assert_eq!(am["schemaVersion"], 2);
        assert_eq!(
            am["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            am["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        let config: serde_json::Value =
            serde_json::from_slice(&blob(cache, am["config"]["digest"].as_str().unwrap())).unwrap();
        let layers = am["layers"].as_array().unwrap();
        assert_eq!(config["architecture"], "unknown");
        assert_eq!(config["os"], "unknown");
        assert_eq!(config["rootfs"]["type"], "layers");
        let diff_ids: Vec<&serde_json::Value> = layers.iter().map(|l| &l["digest"]).collect();
        assert_eq!(
            config["rootfs"]["diff_ids"]
                .as_array()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            diff_ids
        );
        let mut predicates = BTreeMap::new();
        for l in layers {
            assert_eq!(l["mediaType"], "application/vnd.in-toto+json");
            let kind = l["annotations"]["in-toto.io/predicate-type"]
                .as_str()
                .unwrap();
            let stmt: serde_json::Value =
                serde_json::from_slice(&blob(cache, l["digest"].as_str().unwrap())).unwrap();
            assert_eq!(stmt["_type"], "https://in-toto.io/Statement/v0.1");
            assert_eq!(stmt["predicateType"], kind);
            assert_eq!(
                format!(
                    "sha256:{}",
                    stmt["subject"][0]["digest"]["sha256"].as_str().unwrap()
                ),
                image["digest"].as_str().unwrap()
            );
            predicates.insert(kind.to_string(), stmt["predicate"].clone());
        }
        let sbom = predicates
            .remove("https://spdx.dev/Document")
            .expect("an SBOM");
        let provenance = predicates
            .remove("https://slsa.dev/provenance/v1")
            .expect("a provenance");
        out.insert(
            image["digest"].as_str().unwrap().to_string(),
            (sbom, provenance),
        );
    }
    out
}

/// The package named `name` of an SPDX document.
fn spdx_package<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no package {name} in {doc}"))
}

/// The paths in the image's one layer.
fn layer_paths(cache: &Path, manifest_digest: &str) -> Vec<String> {
    layer(cache, manifest_digest).into_keys().collect()
}

/// The image's one layer: path → (mode, uid, gid, content or link target).
fn layer(cache: &Path, manifest_digest: &str) -> BTreeMap<String, (u32, u64, u64, Vec<u8>)> {
    let m = platform_manifest(cache, manifest_digest);
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let gz = blob(cache, layers[0]["digest"].as_str().unwrap());
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut ar = tar::Archive::new(&tar[..]);
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let h = e.header().clone();
        let mut body = Vec::new();
        match e.link_name().unwrap() {
            Some(l) => body = l.to_string_lossy().into_owned().into_bytes(),
            None => {
                e.read_to_end(&mut body).unwrap();
            }
        }
        out.insert(
            path,
            (h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap(), body),
        );
    }
    out
}

/// The image config of a cached manifest.
fn image_config(cache: &Path, manifest_digest: &str) -> serde_json::Value {
    let m = platform_manifest(cache, manifest_digest);
    serde_json::from_slice(&blob(cache, m["config"]["digest"].as_str().unwrap())).unwrap()
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
    // The first build resolved the packages and pinned them.
    assert!(err.contains("wrote pkg/busybox/debian.lock"), "{err}");
    let lock = std::fs::read_to_string(repo.join("pkg/busybox/debian.lock")).unwrap();
    assert!(lock.contains("    - name: \"busybox-static\"\n"), "{lock}");
    assert!(lock.contains("      sha256: \""), "{lock}");
    assert!(
        lock.contains("      filename: \"pool/main/b/busybox/"),
        "{lock}"
    );
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

    // The SBOM: the pinned package, with its .deb's SHA-256 and a purl,
    // valid SPDX; the provenance names the inputs.
    let atts = attestations(&cache, &first);
    let (sbom, provenance) = atts.values().next().unwrap();
    let lock = std::fs::read_to_string(repo.join("pkg/busybox/debian.lock")).unwrap();
    let lock = linuxkit_pkg::lock::Lockfile::parse("debian.lock", &lock).unwrap();
    let pinned = &lock.packages["amd64"][0];
    let p = spdx_package(sbom, "busybox-static");
    assert_eq!(p["versionInfo"], pinned.version.as_str());
    assert_eq!(p["checksums"][0]["checksumValue"], pinned.sha256.as_str());
    assert!(
        p["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap()
            .starts_with("pkg:deb/debian/busybox-static@"),
        "{p}"
    );
    assert!(p["sourceInfo"].as_str().unwrap().contains("busybox"), "{p}");
    assert_eq!(sbom["creationInfo"]["created"], "2017-04-18T16:30:00Z");
    validate_spdx(sbom);
    let deps = provenance["buildDefinition"]["resolvedDependencies"].to_string();
    assert!(deps.contains(&pinned.sha256), "{provenance}");
    assert!(
        provenance["buildDefinition"]["externalParameters"]["debianLock"]["content"]
            .as_str()
            .unwrap()
            .contains("busybox-static"),
        "{provenance}"
    );
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
    assert!(
        !err.contains("wrote"),
        "an up-to-date lockfile is kept: {err}"
    );
    assert_eq!(first, third, "the rebuild is bit-for-bit identical");

    // --verify rebuilds elsewhere and finds it identical; a tampered
    // cached image (another SBOM date) is reported.
    let (ok, out, err) = linuxkit(
        &debs,
        &["--cache", c, "pkg", "build", "--verify", "pkg/busybox"],
        &repo,
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("rebuilt identically"), "{out}");
    let (ok, out, _) = linuxkit_env(
        &debs,
        &["--cache", c, "pkg", "build", "--force", "pkg/busybox"],
        &repo,
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    assert!(ok);
    let dated = out.trim().rsplit_once('@').unwrap().1.to_string();
    assert_ne!(dated, first, "another date, another SBOM, another index");
    let (sbom, provenance) = attestations(&cache, &dated).into_values().next().unwrap();
    assert_eq!(sbom["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        provenance["buildDefinition"]["externalParameters"]["SOURCE_DATE_EPOCH"],
        "1700000000"
    );
    let (ok, out, err) = linuxkit(
        &debs,
        &["--cache", c, "pkg", "build", "--verify", "pkg/busybox"],
        &repo,
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("the SBOM differs") && out.contains("the provenance differs"),
        "{out}"
    );
    assert!(err.contains("did not rebuild identically"), "{err}");
    let (_, back, _) = build(&["--force"]);
    assert_eq!(back, first, "undated again: the first bytes again");

    // With the lockfile, no index is read: a rebuild with the mirror
    // unreachable works from the Debian cache and is identical.
    let offline = [("LINUXKIT_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")];
    let (ok, out, err) = linuxkit_env(
        &debs,
        &["--cache", c, "pkg", "build", "--force", "pkg/busybox"],
        &repo,
        &offline,
    );
    assert!(ok, "offline rebuild: {err}");
    assert_eq!(out.trim(), format!("{reference}@{first}"));
    // build.yml asks for something else: the lockfile is stale.
    let yml = repo.join("pkg/busybox/build.yml");
    std::fs::write(
        &yml,
        "image: busybox\ndebian:\n  packages: [busybox-static, zlib1g]\nentrypoint: [/bin/busybox, sh]\n",
    )
    .unwrap();
    let (ok, _, err) = linuxkit(&debs, &["--cache", c, "pkg", "build", "pkg/busybox"], &repo);
    assert!(!ok);
    assert!(
        err.contains("pkg/busybox/debian.lock is stale")
            && err.contains("[busybox-static] → [busybox-static, zlib1g]")
            && err.contains("linuxkit pkg build --update pkg/busybox"),
        "{err}"
    );
    let (_, _, err) = build(&["--update"]);
    assert!(err.contains("wrote pkg/busybox/debian.lock"), "{err}");
    assert!(
        err.contains("built from busybox-static") && err.contains("zlib1g"),
        "{err}"
    );
    let lock = std::fs::read_to_string(repo.join("pkg/busybox/debian.lock")).unwrap();
    assert!(lock.contains("    - \"zlib1g\"\n"), "{lock}");
    assert!(lock.contains("    - name: \"zlib1g\"\n"), "{lock}");

    // --dry-run says what it would do and does nothing.
    let (ok, out, _) = linuxkit(
        &debs,
        &["--cache", c, "pkg", "build", "--dry-run", "pkg/busybox"],
        &repo,
    );
    assert!(ok);
    assert!(
        out.contains("cached, would not rebuild")
            && out.contains("busybox-static")
            && out.contains("pinned by debian.lock"),
        "{out}"
    );

    // A Dockerfile package is built without a daemon (buildah), into the
    // same cache.
    let (ok, out, err) = linuxkit(&debs, &["--cache", c, "pkg", "build", "pkg/docker"], &repo);
    assert!(ok, "{err}");
    assert!(out.contains("docker.io/linuxkit/docker:"), "{out}");
}

/// A tiny Cargo workspace with a `hello` binary and a package directory
/// inside it; returns the package directory.
fn cargo_workspace(root: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(root.join("crates/hello/src")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"crates/hello\"]\n",
    )
    .unwrap();
    std::fs::write(
        root.join("crates/hello/Cargo.toml"),
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        root.join("crates/hello/src/main.rs"),
        "fn main() { println!(\"hello from the image\"); }\n",
    )
    .unwrap();
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["generate-lockfile", "--offline"])
        .current_dir(root)
        .status()
        .unwrap();
    assert!(st.success(), "cargo generate-lockfile");
    let pkg = root.join("pkg/tools");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(root.join(".gitignore"), "target/\n").unwrap();
    git(root, &["init", "-q"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "hello"]);
    pkg
}

/// A `cargo:` package for amd64 and arm64 from this machine: the other
/// architecture's binary is cross-compiled for its musl target and linked
/// with the toolchain's rust-lld, static like the native one.
#[test]
fn cargo_binary_is_cross_compiled_for_the_other_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let pkg = cargo_workspace(&ws);
    let cache = tmp.path().join("cache");
    let c = cache.to_str().unwrap();
    let debs = tmp.path().join("debian");
    std::fs::write(
        pkg.join("build.yml"),
        "image: tools\narches: [amd64, arm64]\nextra-sources:\n  - ../../crates/hello:/hello\ncargo:\n  - package: hello\n    path: /usr/bin/hello\n",
    )
    .unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-qm", "tools"]);
    let (ok, out, err) = linuxkit(
        &debs,
        &[
            "--cache",
            c,
            "pkg",
            "build",
            "--platforms",
            "linux/amd64,linux/arm64",
            "pkg/tools",
        ],
        &ws,
    );
    assert!(ok, "{err}");
    let index_digest = out.trim().rsplit_once('@').unwrap().1;
    let index: serde_json::Value = serde_json::from_slice(&blob(&cache, index_digest)).unwrap();
    let m: Vec<&serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["platform"]["os"] == "linux")
        .collect();
    assert_eq!(m.len(), 2, "{index}");
    // Each platform with its own SBOM, after both platforms.
    for sbom in attestations(&cache, index_digest).values().map(|a| &a.0) {
        validate_spdx(sbom);
    }
    for (m, (arch, machine)) in m.iter().zip([("amd64", 62), ("arm64", 183)]) {
        assert_eq!(m["platform"]["architecture"], arch, "{index}");
        let digest = m["digest"].as_str().unwrap();
        assert_eq!(image_config(&cache, digest)["architecture"], arch);
        let bin = layer(&cache, digest).remove("usr/bin/hello").unwrap().3;
        assert_eq!(elf_machine(&bin), machine, "{arch}");
        let types = elf_program_header_types(&bin);
        // PT_LOAD and no PT_INTERP: static (a static-pie keeps a
        // PT_DYNAMIC for relocating itself, but names no loader).
        assert!(
            types.contains(&1) && !types.contains(&3),
            "{arch}: a static binary: {types:?}"
        );
    }
}

/// A package without Debian packages: a cargo binary, files, users, groups
/// and labels, built without the network, reproducibly, then pushed to a
/// real registry and pulled back.
#[test]
fn declarative_package_with_cargo_files_and_accounts_is_built_and_pushed() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let pkg = cargo_workspace(&ws);
    let cache = tmp.path().join("cache");
    let c = cache.to_str().unwrap();
    let debs = tmp.path().join("debian");
    let registry = linuxkit_testing::TestRegistry::start(linuxkit_testing::Auth::None);
    std::fs::write(pkg.join("motd"), "from a source file\n").unwrap();
    std::fs::write(
        pkg.join("build.yml"),
        format!(
            "image: tools
org: {}/test
arches: [amd64]
extra-sources:
  - ../../crates/hello:/hello
cargo:
  - package: hello
    path: /usr/bin/hello
files:
  - path: etc/motd
    source: motd
    mode: \"0644\"
  - path: etc/app/config
    contents: \"key=value\\n\"
    uid: app
    gid: app
  - path: var/lib/app
    directory: true
    mode: \"0750\"
    uid: 1000
  - path: bin/hi
    symlink: /usr/bin/hello
  - path: etc/missing
    source: nope
    optional: true
users:
  - name: app
    uid: 1000
    home: /var/lib/app
groups:
  - name: app
    gid: 1000
    members: [app]
labels:
  org.opencontainers.image.title: tools
entrypoint: [/usr/bin/hello]
config:
  binds: [/etc/resolv.conf:/etc/resolv.conf]
",
            registry.addr()
        ),
    )
    .unwrap();
    let build = |extra: &[&str]| {
        let mut args = vec!["--cache", c, "pkg", "build"];
        args.extend_from_slice(extra);
        args.push("pkg/tools");
        let (ok, out, err) = linuxkit(&debs, &args, &ws);
        assert!(ok, "pkg build {extra:?} failed: {err}");
        let line = out.trim().to_string();
        let (reference, digest) = line.split_once('@').expect("REF@DIGEST");
        (reference.to_string(), digest.to_string(), err)
    };
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-qm", "tools"]);
    let (reference, first, err) = build(&[]);
    assert!(
        reference.starts_with(&format!("{}/test/tools:", registry.addr())),
        "{reference}"
    );
    assert!(!reference.contains("dirty"), "{reference}");

    assert!(
        !err.contains("debian.lock"),
        "no debian: no lockfile: {err}"
    );
    assert!(!pkg.join("debian.lock").exists());

    let l = layer(&cache, &first);
    let hello = &l["usr/bin/hello"];
    assert_eq!((hello.0, hello.1, hello.2), (0o755, 0, 0));
    assert_eq!(&hello.3[..4], b"\x7fELF");
    // A static binary: it runs here as it would in the image.
    let bin = tmp.path().join("hello");
    std::fs::write(&bin, &hello.3).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&bin).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new(&bin).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the image\n"
    );

    assert_eq!(
        l["etc/motd"],
        (0o644, 0, 0, b"from a source file\n".to_vec())
    );
    assert_eq!(
        l["etc/app/config"],
        (0o600, 1000, 1000, b"key=value\n".to_vec())
    );
    // Missing parents: the owner, the file's mode plus search bits.
    assert_eq!(l["etc/app/"].0, 0o700);
    assert_eq!(l["var/lib/app/"].0, 0o750);
    assert_eq!(l["var/lib/app/"].1, 1000);
    assert_eq!(l["bin/hi"].3, b"/usr/bin/hello");
    assert!(!l.contains_key("etc/missing"));
    assert_eq!(
        l["etc/passwd"],
        (
            0o644,
            0,
            0,
            b"app:x:1000:1000::/var/lib/app:/usr/sbin/nologin\n".to_vec()
        )
    );
    assert_eq!(l["etc/group"].3, b"app:x:1000:app\n");

    let config = image_config(&cache, &first);
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "tools");
    assert!(
        labels["org.mobyproject.config"]
            .as_str()
            .unwrap()
            .contains("/etc/resolv.conf"),
        "{labels}"
    );
    assert_eq!(config["config"]["Entrypoint"][0], "/usr/bin/hello");

    // The SBOM: the crates of the binary, the files with their digests.
    let atts = attestations(&cache, &first);
    let (sbom, provenance) = atts.values().next().unwrap();
    validate_spdx(sbom);
    let hello_crate = spdx_package(sbom, "hello");
    assert_eq!(hello_crate["versionInfo"], "0.1.0");
    let files = sbom["files"].as_array().unwrap();
    let motd = files
        .iter()
        .find(|f| f["fileName"] == "./etc/motd")
        .unwrap_or_else(|| panic!("etc/motd in {sbom}"));
    let sha256 = |b: &[u8]| {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(b))
    };
    assert_eq!(
        motd["checksums"][1]["checksumValue"],
        sha256(b"from a source file\n")
    );
    let bin = files
        .iter()
        .find(|f| f["fileName"] == "./usr/bin/hello")
        .unwrap();
    assert_eq!(bin["checksums"][1]["checksumValue"], sha256(&hello.3));
    let rel = sbom["relationships"].to_string();
    assert!(
        rel.contains(&format!(
            "\"spdxElementId\":\"{}\",\"relationshipType\":\"GENERATED_FROM\",\"relatedSpdxElement\":\"{}\"",
            bin["SPDXID"].as_str().unwrap(),
            hello_crate["SPDXID"].as_str().unwrap()
        )),
        "{rel}"
    );
    assert!(
        provenance["buildDefinition"]["externalParameters"]["buildYml"]["content"]
            .as_str()
            .unwrap()
            .contains("image: tools"),
        "{provenance}"
    );

    // `build` consolidates it into the root filesystem, at the end, the
    // image's file names under where it is unpacked; reproducibly;
    // `--no-sbom`, `--sbom-output`, `--sbom-current-time` as the reference's.
    let yml = tmp.path().join("sys.yml");
    std::fs::write(
        &yml,
        format!("onboot:\n  - name: tools\n    image: {reference}\n"),
    )
    .unwrap();
    let assemble = |extra: &[&str]| -> Vec<(String, Vec<u8>)> {
        let out = tmp.path().join("sys.tar");
        let mut args = vec!["--cache", c, "build", "--format", "tar", "--o"];
        args.push(out.to_str().unwrap());
        args.extend_from_slice(extra);
        args.push(yml.to_str().unwrap());
        let (ok, _, err) = linuxkit(&debs, &args, &ws);
        assert!(ok, "build {extra:?}: {err}");
        let bytes = std::fs::read(&out).unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), body)
            })
            .collect()
    };
    let entries = assemble(&[]);
    let (last, body) = entries.last().unwrap();
    assert_eq!(last, "sbom.spdx.json", "the SBOM comes last");
    let doc: serde_json::Value = serde_json::from_slice(body).unwrap();
    validate_spdx(&doc);
    assert_eq!(doc["creationInfo"]["created"], "2017-04-18T16:30:00Z");
    spdx_package(&doc, "hello");
    let names: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"./containers/onboot/000-tools/lower/etc/motd")
            || names.contains(&"./containers/onboot/000-tools/rootfs/etc/motd"),
        "{names:?}"
    );
    assert_eq!(assemble(&[]).last().unwrap().1, *body, "reproducible");
    assert!(
        !assemble(&["--no-sbom"])
            .iter()
            .any(|(p, _)| p.contains("spdx")),
        "--no-sbom writes none"
    );
    let moved = assemble(&["--sbom-output", "/etc/sbom/all.json"]);
    assert_eq!(moved.last().unwrap().0, "etc/sbom/all.json");
    let now = assemble(&["--sbom-current-time"]);
    let doc: serde_json::Value = serde_json::from_slice(&now.last().unwrap().1).unwrap();
    assert_ne!(doc["creationInfo"]["created"], "2017-04-18T16:30:00Z");
    let (ok, _, err) = linuxkit(
        &debs,
        &[
            "--cache",
            c,
            "build",
            "--sbom-output",
            "../x.json",
            "--format",
            "tar",
            "--o",
            "/dev/null",
            yml.to_str().unwrap(),
        ],
        &ws,
    );
    assert!(!ok && err.contains("--sbom-output"), "{err}");

    // Rebuilt from scratch: the same image.
    let (_, again, _) = build(&["--force"]);
    assert_eq!(again, first);

    // --push: the registry has it; a fresh cache pulls the same manifest.
    let (_, pushed, err) = build(&["--push"]);
    assert_eq!(pushed, first);
    assert!(err.contains(&format!("pushed {reference}")), "{err}");
    let fresh = tmp.path().join("fresh");
    let f = fresh.to_str().unwrap();
    let (ok, _, err) = linuxkit(&debs, &["--cache", f, "cache", "pull", &reference], &ws);
    assert!(ok, "{err}");
    let (ok, ls, _) = linuxkit(&debs, &["--cache", f, "cache", "ls"], &ws);
    assert!(ok);
    assert!(ls.contains(&reference), "{ls}");
    assert_eq!(
        layer(&fresh, &first)["etc/motd"].3,
        b"from a source file\n",
        "the pulled image is the built one"
    );
    // The attestation came with it, identical.
    assert_eq!(attestations(&fresh, &first), atts);

    // A dirty package is built, but not pushed, as the reference refuses.
    let yml = pkg.join("build.yml");
    let clean = std::fs::read_to_string(&yml).unwrap();
    std::fs::write(&yml, format!("{clean}# not committed\n")).unwrap();
    let (ok, _, err) = linuxkit(
        &debs,
        &["--cache", c, "pkg", "build", "--push", "pkg/tools"],
        &ws,
    );
    assert!(!ok, "a dirty package was pushed: {err}");
    assert!(err.contains("refusing to push dirty package"), "{err}");
    let (ok, dirty, _) = linuxkit(&debs, &["pkg", "show-tag", "--canonical", "pkg/tools"], &ws);
    assert!(ok && dirty.contains("-dirty-"), "{dirty}");
    let (ok, ls, _) = linuxkit(&debs, &["--cache", c, "cache", "ls"], &ws);
    assert!(ok && ls.contains(dirty.trim()), "built, in the cache: {ls}");
    let (ok, _, _) = linuxkit(&debs, &["--cache", f, "cache", "pull", dirty.trim()], &ws);
    assert!(!ok, "the registry has the dirty tag {dirty}");
    std::fs::write(&yml, clean).unwrap();

    // The crate is an extra source: a committed change to it changes the tag.
    std::fs::write(ws.join("crates/hello/src/lib.rs"), "\n").unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-qm", "lib"]);
    let (ok, tag, _) = linuxkit(&debs, &["pkg", "show-tag", "--canonical", "pkg/tools"], &ws);
    assert!(ok);
    assert_ne!(tag.trim(), reference);
}

/// The program headers' types of a 64-bit little-endian ELF file.
fn elf_program_header_types(bin: &[u8]) -> Vec<u32> {
    assert_eq!(&bin[..4], b"\x7fELF");
    assert_eq!((bin[4], bin[5]), (2, 1), "64-bit, little-endian");
    let u16_at = |o: usize| u16::from_le_bytes(bin[o..o + 2].try_into().unwrap()) as usize;
    let phoff = u64::from_le_bytes(bin[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count)
        .map(|i| {
            let at = phoff + i * size;
            u32::from_le_bytes(bin[at..at + 4].try_into().unwrap())
        })
        .collect()
}

/// `go:` entries: a static Go binary built with Debian's Go toolchain
/// (`debian.build_packages`, pinned in debian.lock) into an image without
/// any Debian package, reproducibly and then offline; a missing import
/// names the entry. The Debian cache is the default one (shared with the
/// user's builds and other tests; it is content-addressed and verified), so
/// that the toolchain is downloaded once.
#[test]
fn go_binary_from_debians_toolchain_is_static_and_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let cache = tmp.path().join("cache");
    let c = cache.to_str().unwrap();
    let debs = linuxkit_pkg::debian::Client::default_cache_dir();
    let yml = "image: hello
debian:
  packages: []
  build_packages: [golang-go]
go:
  - main: hello
    path: /usr/bin/hello
";
    for (pkg, go) in [
        (
            "hello",
            "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from Go\") }\n",
        ),
        (
            "broken",
            "package main\n\nimport \"example.com/nope\"\n\nfunc main() { nope.Hello() }\n",
        ),
    ] {
        let dir = repo.join("pkg").join(pkg);
        std::fs::create_dir_all(dir.join("hello")).unwrap();
        std::fs::write(dir.join("build.yml"), yml).unwrap();
        std::fs::write(dir.join("hello/hello.go"), go).unwrap();
    }
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "packages"]);

    let build = |env: &[(&str, &str)]| {
        let args = ["--cache", c, "pkg", "build", "--force", "pkg/hello"];
        let (ok, out, err) = linuxkit_env(&debs, &args, &repo, env);
        assert!(ok, "pkg build (env {env:?}) failed: {err}");
        let line = out.trim().to_string();
        let (reference, digest) = line.split_once('@').expect("REF@DIGEST");
        (reference.to_string(), digest.to_string(), err)
    };
    let (reference, first, err) = build(&[]);
    assert!(err.contains("wrote pkg/hello/debian.lock"), "{err}");
    // The package asked for and the versioned toolchain it depends on.
    assert!(
        err.contains("built from golang-1.")
            && err.contains("golang-go 2:")
            && err.contains(" (build)"),
        "the toolchain is recorded: {err}"
    );
    let text = std::fs::read_to_string(repo.join("pkg/hello/debian.lock")).unwrap();
    let lock = linuxkit_pkg::lock::Lockfile::parse("debian.lock", &text).unwrap();
    assert_eq!(lock.request.build_packages, ["golang-go"]);
    assert!(lock.request.packages.is_empty());
    assert_eq!(lock.packages.len(), 1, "{text}");
    let (arch, image_debs) = lock.packages.iter().next().unwrap();
    assert!(image_debs.is_empty(), "{text}");
    let names: Vec<&str> = lock.build_packages[arch]
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert!(
        names.contains(&"golang-go") && names.iter().any(|n| n.ends_with("-src")),
        "golang-go and its dependencies are pinned: {names:?}"
    );

    // Only the binary is in the image: nothing of the build root.
    let l = layer(&cache, &first);
    assert_eq!(
        l.keys().map(String::as_str).collect::<Vec<_>>(),
        ["usr/", "usr/bin/", "usr/bin/hello"]
    );
    let hello = &l["usr/bin/hello"];
    assert_eq!((hello.0, hello.1, hello.2), (0o755, 0, 0));
    let types = elf_program_header_types(&hello.3);
    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    assert!(types.contains(&PT_LOAD), "{types:?}");
    assert!(
        !types.contains(&PT_INTERP) && !types.contains(&PT_DYNAMIC),
        "a static binary: {types:?}"
    );
    let bin = tmp.path().join("hello");
    std::fs::write(&bin, &hello.3).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new(&bin).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from Go\n");

    // The SBOM: the binary with its Go version and main package (its
    // build information), the standard library, and the Debian toolchain
    // it was built with.
    let (sbom, _) = attestations(&cache, &first).into_values().next().unwrap();
    validate_spdx(&sbom);
    let stdlib = spdx_package(&sbom, "stdlib");
    assert!(
        stdlib["versionInfo"].as_str().unwrap().starts_with("1."),
        "{stdlib}"
    );
    let file = sbom["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fileName"] == "./usr/bin/hello")
        .unwrap();
    let comment = file["comment"].as_str().unwrap();
    assert!(
        comment.contains("linuxkit.pkg/") && comment.contains("GOARCH="),
        "{comment}"
    );
    let go = spdx_package(&sbom, "golang-go");
    assert!(
        sbom["relationships"].to_string().contains(&format!(
            "\"spdxElementId\":\"{}\",\"relationshipType\":\"BUILD_DEPENDENCY_OF\"",
            go["SPDXID"].as_str().unwrap()
        )),
        "{sbom}"
    );

    // A build killed while its build root exists leaves it behind (no
    // destructor runs on SIGKILL); it lives in the cache's `.tmp`, named
    // with the dead pid, so the next build reclaims it.
    let scratch = cache.join(".tmp");
    let roots = || -> Vec<PathBuf> {
        std::fs::read_dir(&scratch)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("-go-build-"))
            .collect()
    };
    assert!(roots().is_empty(), "a finished build left its root behind");
    let mut killed = Command::new(env!("CARGO_BIN_EXE_linuxkit"))
        .args(["--cache", c, "pkg", "build", "--force", "pkg/hello"])
        .current_dir(&repo)
        .env("LINUXKIT_DEBIAN_CACHE", &debs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !roots().iter().any(|r| r.join("root/usr").exists()) {
        assert!(
            killed.try_wait().unwrap().is_none(),
            "the build ended before its build root was seen"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no build root appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    let left = roots();
    assert_eq!(left.len(), 1, "{left:?}");

    // Rebuilt in other temporary directories, from the Debian cache only
    // (the pins need no index): the same bytes.
    let offline = [("LINUXKIT_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")];
    let (again_ref, again, err) = build(&offline);
    assert!(!err.contains("wrote"), "the lockfile is kept: {err}");
    assert_eq!(again_ref, reference);
    assert_eq!(again, first, "the rebuild is bit-for-bit identical");
    assert!(
        !left[0].exists(),
        "the killed build's root was not reclaimed"
    );
    assert!(
        err.contains("removed 1 temporary entry left in") && err.contains("by killed runs"),
        "the reclaiming is said: {err}"
    );
    assert!(roots().is_empty(), "{:?}", roots());

    // An import that no build package provides: the build fails, naming
    // the entry and where imports come from; Go's message is shown.
    let (ok, _, err) = linuxkit(&debs, &["--cache", c, "pkg", "build", "pkg/broken"], &repo);
    assert!(!ok);
    assert!(
        err.contains("pkg/broken/build.yml: `go[0]` (hello): `go build")
            && err.contains("`debian.build_packages`"),
        "{err}"
    );
    assert!(err.contains("example.com/nope"), "{err}");

    // For the other architecture (arm64 here on amd64): this machine's
    // toolchain cross-compiles (`GOARCH`, cgo off), so the lockfile gains
    // the target's (empty) image packages and no build packages of it.
    let host = linuxkit_base::Arch::host();
    let (other, machine) = if host == linuxkit_base::Arch::Amd64 {
        (linuxkit_base::Arch::Arm64, 183)
    } else {
        (linuxkit_base::Arch::Amd64, 62)
    };
    let (ok, out, err) = linuxkit(
        &debs,
        &[
            "--cache",
            c,
            "pkg",
            "build",
            "--platforms",
            other.oci_platform(),
            "pkg/hello",
        ],
        &repo,
    );
    assert!(ok, "{err}");
    assert!(err.contains("wrote pkg/hello/debian.lock"), "{err}");
    let text = std::fs::read_to_string(repo.join("pkg/hello/debian.lock")).unwrap();
    let lock = linuxkit_pkg::lock::Lockfile::parse("debian.lock", &text).unwrap();
    assert_eq!(
        lock.packages.keys().collect::<Vec<_>>(),
        {
            let mut k = vec![host.debian(), other.debian()];
            k.sort();
            k
        },
        "{text}"
    );
    assert_eq!(
        lock.build_packages.keys().collect::<Vec<_>>(),
        [host.debian()],
        "{text}"
    );
    // The lockfile changed, so the tag did: it names this one platform.
    let digest = out.trim().rsplit_once('@').unwrap().1;
    assert_eq!(image_config(&cache, digest)["architecture"], other.go());
    let bin = layer(&cache, digest).remove("usr/bin/hello").unwrap().3;
    assert_eq!(elf_machine(&bin), machine);
    let types = elf_program_header_types(&bin);
    assert!(
        types.contains(&PT_LOAD) && !types.contains(&PT_INTERP) && !types.contains(&PT_DYNAMIC),
        "a static binary: {types:?}"
    );
}

/// Mistakes in build.yml and in the environment are reported with the
/// file (and line, for a key) and what to do; none needs the network.
#[test]
fn bad_packages_are_refused_with_located_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let c = cache.to_str().unwrap();
    let debs = tmp.path().join("debian");
    let p = tmp.path().join("p");
    std::fs::create_dir_all(&p).unwrap();
    let fails = |yml: &str| {
        std::fs::write(p.join("build.yml"), yml).unwrap();
        let (ok, _, err) = linuxkit(&debs, &["--cache", c, "pkg", "build", "p"], tmp.path());
        assert!(!ok, "{yml} was accepted");
        err
    };
    let err = fails("image: x\nfiles:\n  - path: etc/a\n    contents: a\n    mode: \"999\"\n");
    assert!(
        err.contains("p/build.yml:3:5: files[0]: file `etc/a`: invalid mode `999`"),
        "{err}"
    );
    let err = fails("image: x\nfiles:\n  - path: etc/a\n    contents: a\n    source: b\n");
    assert!(
        err.contains("p/build.yml:3:5: ") && err.contains("sets both `contents` and `source`"),
        "{err}"
    );
    let err = fails("image: x\nfiles:\n  - path: etc/a\n    content: a\n");
    assert!(
        err.contains("p/build.yml:4:5: ") && err.contains("did you mean `contents`?"),
        "{err}"
    );
    let err = fails("image: x\nusers:\n  - name: \"a:b\"\n    uid: 1\n");
    assert!(
        err.contains("p/build.yml:3:5: users[0]: bad user name"),
        "{err}"
    );
    let err = fails("image: x\ncargo:\n  - package: hello\n");
    assert!(err.contains("p/build.yml:3:5: cargo[0]: `path`"), "{err}");
    let err =
        fails("image: x\nkernel:\n  modules: [virtio*]\nfiles:\n  - path: a\n    contents: a\n");
    assert!(
        err.contains("p/build.yml: `kernel:` needs a `debian:` section"),
        "{err}"
    );
    let err = fails("image: x\nfiles:\n  - path: a\n    contents: a\n    uid: nobody\n");
    assert!(
        err.contains("`files[0].uid`: unknown user `nobody`"),
        "{err}"
    );
    let err = fails("image: x\ndebian:\n  packages: [a]\n  dependencies: maybe\n");
    assert!(err.contains("p/build.yml:4:17: "), "{err}");
    let err = fails("image: x\nfiles:\n  - path: a\n    source: missing\n");
    assert!(
        err.contains("p/build.yml: `files[0].source`: cannot read")
            && err.contains("relative to the package directory"),
        "{err}"
    );
    let err = fails("image: x\ncargo:\n  - package: hello\n    path: /bin/hello\n");
    assert!(
        err.contains("p/build.yml: `cargo[0]` (hello): no Cargo workspace"),
        "{err}"
    );

    // A lockfile for another package list is stale, before any download.
    std::fs::write(
        p.join("debian.lock"),
        "version: 1\nrequest:\n  suite: \"bookworm\"\n  components: [\"main\"]\n  packages:\n    - \"a\"\n  dependencies: true\nsuite: \"bookworm\"\npackages: {}\n",
    )
    .unwrap();
    let err = fails("image: x\ndebian:\n  suite: bookworm\n  packages: [b]\n");
    assert!(
        err.contains(
            "p/debian.lock is stale: p/build.yml now asks for something else (packages [a] → [b])"
        ) && err.contains("run `linuxkit pkg build --update p`"),
        "{err}"
    );
    std::fs::write(p.join("debian.lock"), "version: 1\nrequest: [\n").unwrap();
    let err = fails("image: x\ndebian:\n  suite: bookworm\n  packages: [b]\n");
    assert!(
        err.contains("p/debian.lock:") && err.contains("--update"),
        "{err}"
    );
}

/// The ELF machine (`e_machine`) of an executable: 62 for x86-64, 183 for
/// AArch64.
fn elf_machine(bin: &[u8]) -> u16 {
    assert_eq!(&bin[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(bin[5], 1, "little-endian");
    u16::from_le_bytes([bin[18], bin[19]])
}

/// The file at `path` in a tar, links followed within it.
fn tar_file(tar: &[u8], path: &str) -> Vec<u8> {
    let mut ar = tar::Archive::new(tar);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy().trim_start_matches("./") == path {
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            return body;
        }
    }
    panic!("{path} not in the tar");
}

/// `pkg build --platforms linux/amd64,linux/arm64` of the repository's
/// busybox package, from its lockfile without the arm64 pins: Debian's
/// arm64 busybox resolved and pinned next to the amd64 one (which is kept
/// as it was), one index under the tag with both manifests, the amd64 one
/// the same as a build for amd64 alone gives, and `cache export
/// --platform linux/arm64` giving an AArch64 busybox.
#[test]
fn multi_platform_build_gives_one_index_with_debians_arm64_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let cache = tmp.path().join("cache");
    let debs = tmp.path().join("debian");
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pkg/busybox");
    std::fs::create_dir_all(repo.join("pkg/busybox")).unwrap();
    std::fs::create_dir_all(repo.join("pkg/only-amd64")).unwrap();
    let yml = std::fs::read_to_string(ours.join("build.yml")).unwrap();
    assert!(yml.contains("\narches: [amd64, arm64]\n"), "{yml}");
    std::fs::write(repo.join("pkg/busybox/build.yml"), yml).unwrap();
    let text = std::fs::read_to_string(ours.join("debian.lock")).unwrap();
    let mut lock = linuxkit_pkg::lock::Lockfile::parse("debian.lock", &text).unwrap();
    assert!(lock.packages.remove("arm64").is_some(), "{text}");
    let amd64_lock = lock.to_text();
    std::fs::write(repo.join("pkg/busybox/debian.lock"), &amd64_lock).unwrap();
    std::fs::write(
        repo.join("pkg/only-amd64/build.yml"),
        "image: only-amd64\narches: [amd64]\nfiles:\n  - path: etc/hello\n    contents: hi\n",
    )
    .unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "packages"]);
    let c = cache.to_str().unwrap();
    let both = "linux/amd64,linux/arm64";
    // `linuxkit --cache CACHE ARGS...` in the repository, which must succeed.
    let run = |args: &[&str]| -> (String, String) {
        let mut all = vec!["--cache", c];
        all.extend_from_slice(args);
        let (ok, out, err) = linuxkit(&debs, &all, &repo);
        assert!(ok, "{args:?}: {err}");
        (out, err)
    };

    // amd64 alone, from the lockfile as it is: the digest of today.
    let (out, err) = run(&["pkg", "build", "--platforms", "linux/amd64", "pkg/busybox"]);
    // The tag names an index of the manifest and its attestation.
    let top_alone = out.trim().rsplit_once('@').unwrap().1.to_string();
    let index_alone: serde_json::Value = serde_json::from_slice(&blob(&cache, &top_alone)).unwrap();
    let amd64_alone = index_alone["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["platform"]["os"] == "linux")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!err.contains("wrote"), "amd64 is pinned already: {err}");

    let (out, err) = run(&[
        "pkg",
        "build",
        "--platforms",
        both,
        "pkg/busybox",
        "pkg/only-amd64",
    ]);
    assert!(err.contains("wrote pkg/busybox/debian.lock"), "{err}");
    assert!(
        err.contains("built for linux/arm64 from busybox-static"),
        "{err}"
    );
    // The lockfile pins arm64 beside amd64, which is kept as it was.
    let lock = std::fs::read_to_string(repo.join("pkg/busybox/debian.lock")).unwrap();
    assert!(lock.starts_with(&amd64_lock), "{lock}");
    assert!(
        lock.contains("  \"arm64\":\n    - name: \"busybox-static\"\n")
            && lock.contains("      architecture: \"arm64\"\n")
            && lock.contains("_arm64.deb\"\n"),
        "{lock}"
    );
    // A package whose `arches` lacks arm64 is built for amd64 only.
    assert!(
        out.contains("Skipping linuxkit/only-amd64:")
            && out.contains("for linux/arm64: its build.yml `arches` are [amd64]"),
        "{out}"
    );
    let lines: Vec<&str> = out.lines().filter(|l| l.contains('@')).collect();
    assert_eq!(lines.len(), 2, "{out}");
    let (reference, index_digest) = lines[0].split_once('@').unwrap();
    assert!(
        reference.starts_with("docker.io/linuxkit/busybox:"),
        "{reference}"
    );

    // The tag names one index, amd64 then arm64.
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
    let entry = root["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
        .unwrap();
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(entry["digest"], index_digest);
    let index: serde_json::Value = serde_json::from_slice(&blob(&cache, index_digest)).unwrap();
    let m: Vec<&serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["platform"]["os"] == "linux")
        .collect();
    assert_eq!(m.len(), 2, "{index}");
    // Each platform with its own SBOM, after both platforms.
    for sbom in attestations(&cache, index_digest).values().map(|a| &a.0) {
        validate_spdx(sbom);
    }
    assert_eq!(m[0]["platform"]["architecture"], "amd64");
    assert_eq!(m[1]["platform"]["architecture"], "arm64");
    let (amd64, arm64) = (
        m[0]["digest"].as_str().unwrap(),
        m[1]["digest"].as_str().unwrap(),
    );
    assert_eq!(amd64, amd64_alone, "amd64 is unchanged by arm64");
    assert_eq!(image_config(&cache, arm64)["architecture"], "arm64");
    let busybox = |d: &str| layer(&cache, d).remove("bin/busybox").unwrap().3;
    assert_eq!(elf_machine(&busybox(amd64)), 62);
    assert_eq!(elf_machine(&busybox(arm64)), 183);

    // `cache export` picks the platform asked for.
    for (platform, machine) in [("linux/arm64", 183), ("linux/amd64", 62)] {
        let tar = tmp.path().join("fs.tar");
        run(&[
            "cache",
            "export",
            "--platform",
            platform,
            "--format",
            "filesystem",
            "--outfile",
            tar.to_str().unwrap(),
            reference,
        ]);
        let tar = std::fs::read(&tar).unwrap();
        assert_eq!(
            elf_machine(&tar_file(&tar, "bin/busybox")),
            machine,
            "{platform}"
        );
    }

    // `build --arch` picks the platform's image too.
    let yml = tmp.path().join("sh.yml");
    std::fs::write(
        &yml,
        format!("onboot:\n  - name: sh\n    image: {reference}\n"),
    )
    .unwrap();
    for (arch, machine) in [("arm64", 183), ("amd64", 62)] {
        let out = tmp.path().join(arch);
        std::fs::create_dir(&out).unwrap();
        run(&[
            "build",
            "--arch",
            arch,
            "--format",
            "tar",
            "--dir",
            out.to_str().unwrap(),
            yml.to_str().unwrap(),
        ]);
        let tar = std::fs::read(out.join("sh.tar")).unwrap();
        let bin = tar_file(&tar, "containers/onboot/000-sh/lower/bin/busybox");
        assert_eq!(elf_machine(&bin), machine, "build --arch {arch}");
    }

    // arm64 again, alone: it replaces its own entry, keeps amd64, and the
    // index is the same.
    let (out, _) = run(&[
        "pkg",
        "build",
        "--force",
        "--platforms",
        "linux/arm64",
        "pkg/busybox",
    ]);
    assert_eq!(out.trim(), lines[0]);
    // Both cached: nothing rebuilt, the same index.
    let (out, err) = run(&["pkg", "build", "--platforms", both, "pkg/busybox"]);
    assert_eq!(out.trim(), lines[0]);
    assert!(!err.contains("built"), "{err}");
}
