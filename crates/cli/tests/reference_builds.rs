//! Full builds of the reference's own examples and test cases (the
//! checked-in copies in `crates/config/tests/reference`), with every image they name
//! replaced by a small fake pushed under the same name to a local
//! docker-registry that stands in for Docker Hub (`--mirror`). The images
//! are fakes, the configurations are the reference's: what is tested is
//! that every example the reference accepts builds here, and that the forms
//! we used to refuse come out as the reference lays them out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use linuxkit_config::Config;
use linuxkit_testing::{
    Auth, Compression, Fixture, Format, ImageSpec, LayerSpec, Platform, TestRegistry, push_fixture,
};
use serde_json::{Value, json};

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/tests/reference")
}

/// Every configuration of the suite the reference accepts (all but those
/// `refused.txt` lists).
fn accepted() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "yml") {
                out.push(p);
            }
        }
    }
    let refused = std::fs::read_to_string(suite().join("refused.txt")).unwrap();
    let refused: BTreeSet<PathBuf> = refused
        .lines()
        .filter(|l| l.ends_with(".yml"))
        .map(|l| suite().join(l))
        .collect();
    let mut v = Vec::new();
    walk(&suite(), &mut v);
    v.retain(|p| !refused.contains(p));
    v.sort();
    v
}

/// `alpine:3` → `library/alpine:3`, `linuxkit/init:x` as is: the path
/// under a Docker Hub mirror.
fn hub_path(reference: &str) -> String {
    let name = reference.split(['@']).next().unwrap();
    let with_tag = if name.rsplit('/').next().unwrap().contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    if with_tag.contains('/') {
        with_tag
    } else {
        format!("library/{with_tag}")
    }
}

fn image(layer: LayerSpec) -> Fixture {
    Fixture::build(
        Format::Oci,
        "t",
        &[ImageSpec::new(Platform::linux_amd64())
            .config_field("Entrypoint", json!(["/bin/run"]))
            .layer(layer)],
        false,
    )
}

/// Pushes one fake per image the examples name: kernels hold every file a
/// `kernel:` section asks for, every other image a `bin/run`.
fn push_fakes(registry: &TestRegistry, configs: &[Config]) {
    let mut kernels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut others: BTreeSet<String> = BTreeSet::new();
    for c in configs {
        let m = &c.moby;
        if !m.kernel.image.is_empty() {
            let files = kernels.entry(m.kernel.image.clone()).or_default();
            let k = &m.kernel;
            files.insert(if k.binary.is_empty() {
                "kernel".into()
            } else {
                k.binary.clone()
            });
            match k.tar.as_deref() {
                Some("none" | "") => {}
                Some(t) => {
                    files.insert(t.to_string());
                }
                None => {
                    files.insert("kernel.tar".into());
                }
            }
            if let Some(u) = k.ucode.as_ref().filter(|u| !u.is_empty()) {
                files.insert(u.clone());
            }
        }
        others.extend(m.init.iter().cloned());
        others.extend(m.containers().map(|(_, _, i)| i.image.clone()));
        others.extend(
            m.volumes
                .iter()
                .filter(|v| !v.image.is_empty())
                .map(|v| v.image.clone()),
        );
    }
    let modules = LayerSpec::new(Compression::None)
        .file("lib/modules/6.12.59/kernel/x.ko", "module")
        .tar();
    for (name, files) in &kernels {
        let mut layer = LayerSpec::new(Compression::Gzip);
        for f in files {
            layer = if f.ends_with(".tar") {
                layer.file(f, &modules)
            } else {
                layer.file(f, "BZIMAGE")
            };
        }
        push_fixture(&image(layer), registry, &hub_path(name));
    }
    let generic = image(
        LayerSpec::new(Compression::Gzip)
            .file_mode("bin/run", "#!/bin/sh\n", 0o755)
            .file("etc/os-release", "ID=fake\n"),
    );
    for name in others.difference(&kernels.keys().cloned().collect()) {
        push_fixture(&generic, registry, &hub_path(name));
    }
}

fn tar_member(tar: &Path, member: &str) -> String {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(tar)
        .arg(member)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{member}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn tar_names(tar: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(tar).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_accepted_reference_configuration_builds() {
    let registry = TestRegistry::start(Auth::None);
    let files = accepted();
    assert_eq!(files.len(), 176);
    let configs: Vec<Config> = files
        .iter()
        .map(|f| Config::parse("x.yml", &std::fs::read_to_string(f).unwrap()).unwrap())
        .collect();
    push_fakes(&registry, &configs);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let mut failures = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(suite()).unwrap();
        let dir_name = rel.to_string_lossy().replace('/', "_");
        let name = f.file_stem().unwrap().to_str().unwrap();
        let out_dir = tmp.path().join(&dir_name);
        std::fs::create_dir(&out_dir).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_linuxkit"))
            .current_dir(f.parent().unwrap())
            .env("HOME", suite().join("home"))
            .arg("-q")
            .args(["--mirror", &format!("http://{}", registry.addr())])
            .arg("--cache")
            .arg(&cache)
            .args(["build", "--format", "tar", "--name", name, "--dir"])
            .arg(&out_dir)
            .arg(f.file_name().unwrap())
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{}: {}",
                rel.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // examples/docker.yml: `mounts: [{type: cgroup, options: [rw, ...]}]`
    // without a destination replaces the read-only default cgroup mount,
    // as the reference's ConfigToOCI does.
    let tar = tmp.path().join("examples_docker.yml/docker.tar");
    let spec: Value =
        serde_json::from_str(&tar_member(&tar, "containers/services/docker/config.json")).unwrap();
    let cgroup: Vec<&Value> = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] == "/sys/fs/cgroup")
        .collect();
    assert_eq!(
        cgroup,
        [
            &json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["rw", "nosuid", "noexec", "nodev", "relatime"]})
        ]
    );

    // examples/dm-crypt-loop.yml names two onboot containers `mount`: two
    // numbered bundles, as the reference lays them out.
    let names = tar_names(
        &tmp.path()
            .join("examples_dm-crypt-loop.yml/dm-crypt-loop.tar"),
    );
    let mount_bundles: BTreeSet<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix("containers/onboot/"))
        .filter_map(|n| n.split('/').next())
        .filter(|n| n.ends_with("-mount"))
        .collect();
    assert_eq!(mount_bundles.len(), 2, "{mount_bundles:?}");
}
