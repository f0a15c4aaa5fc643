//! `config.json` for the forms LinuxKit accepts and we used to refuse,
//! against the `config.json` the reference writes for them
//! (`tests/reference/*.config.json`, derived by reading its
//! `moby.ConfigToOCI`: the cgroup mount completed to `/sys/fs/cgroup` and
//! replacing the read-only default, `ALL`/`NONE` in any case, `binds.add`
//! dropped next to `binds`). Our two documented differences, `ociVersion`
//! and `linux.personality` (docs/configuration.md), are the only ones
//! allowed.
//!
//! And: every configuration of the reference's conformance suite that
//! validation accepts builds its bundles' JSON without an error, so nothing
//! the dry run accepts fails later for a reason the configuration shows.

use std::fs;
use std::path::{Path, PathBuf};

use linuxkit_config::{Checks, Config, IdMap, Image, Moby};
use linuxkit_rootfs::{ImageRuntimeDefaults, oci_config, runtime_config};
use serde_json::Value;

/// The reference's `ociVersion` (runtime-spec v1.2.1, which it links).
const REFERENCE_OCI_VERSION: &str = "1.2.1";

fn expected(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/reference/{name}"));
    serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap()
}

fn run() -> ImageRuntimeDefaults {
    ImageRuntimeDefaults {
        entrypoint: vec!["/bin/run".into()],
        ..Default::default()
    }
}

fn service(yaml: &str) -> (Moby, Image) {
    let c = Config::parse("t.yml", yaml).unwrap();
    c.validate(&Checks {
        sources_exist: false,
        ..Checks::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let img = c.moby.services[0].clone();
    (c.moby, img)
}

/// Our config.json with the documented differences set to the reference's.
fn as_reference(moby: &Moby, img: &Image) -> Value {
    let text = oci_config(img, None, &run(), &IdMap::new(moby), &moby.volumes).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["ociVersion"] = Value::String(REFERENCE_OCI_VERSION.into());
    let linux = v["linux"].as_object_mut().unwrap();
    assert_eq!(
        linux.remove("personality"),
        Some(serde_json::json!({"domain": "LINUX"}))
    );
    v
}

#[test]
fn all_capabilities_in_capitals_and_a_writable_cgroup_mount_without_destination() {
    let (m, img) = service(
        "services:\n  - name: docker\n    image: example/docker:1\n    capabilities: [ALL]\n    mounts:\n      - type: cgroup\n        options: [rw, nosuid, noexec, nodev, relatime]\n      - source: mqueue\n      - type: proc\n",
    );
    assert_eq!(
        as_reference(&m, &img),
        expected("all-caps-cgroup-rw.config.json")
    );
}

#[test]
fn no_capabilities_in_mixed_case_short_mounts_and_binds_add_next_to_binds() {
    let (m, img) = service(
        "services:\n  - name: s\n    image: example/s:1\n    capabilities: [None]\n    mounts: [{source: cgroup}]\n    tmpfs: [\"/tmp:size=1m\"]\n    binds: [\"/var/log:/var/log\"]\n    binds.add: [\"/etc:/etc\"]\n",
    );
    assert_eq!(
        as_reference(&m, &img),
        expected("none-caps-short-mounts.config.json")
    );
}

/// The same container name twice in onboot: two bundles, `000-NAME` and
/// `001-NAME`, each with its own spec, as the reference lays them out.
#[test]
fn repeated_onboot_names_are_numbered_bundles() {
    let c = Config::parse(
        "t.yml",
        "onboot:\n  - name: format\n    image: linuxkit/format:v1\n    command: [/format, /dev/sda]\n  - name: format\n    image: linuxkit/format:v1\n    command: [/format, /dev/sdb]\n",
    )
    .unwrap();
    let w = c.validate(&Checks::default()).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let ids = IdMap::new(&c.moby);
    for (i, dev) in ["/dev/sda", "/dev/sdb"].into_iter().enumerate() {
        let img = &c.moby.onboot[i];
        let spec: Value =
            serde_json::from_str(&oci_config(img, None, &run(), &ids, &[]).unwrap()).unwrap();
        assert_eq!(spec["process"]["args"][1], dev);
        let rt: Value = serde_json::from_str(&runtime_config(
            img,
            None,
            false,
            &format!("/containers/onboot/{i:03}-format"),
        ))
        .unwrap();
        assert_eq!(
            rt["mounts"][2]["destination"],
            format!("/containers/onboot/{i:03}-format/rootfs")
        );
    }
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/tests/reference")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn every_accepted_reference_configuration_builds_its_bundle_specs() {
    let mut files = Vec::new();
    walk(&suite_dir(), &mut files);
    files.sort();
    assert!(files.len() >= 180, "{} files", files.len());
    let mut built = 0;
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        let Ok(c) = Config::parse(&f.display().to_string(), &text) else {
            continue;
        };
        let checks = Checks {
            sources_exist: false,
            ..Checks::default()
        };
        if c.validate(&checks).is_err() {
            continue;
        }
        let ids = IdMap::new(&c.moby);
        for (section, i, img) in c.moby.containers() {
            oci_config(img, None, &run(), &ids, &c.moby.volumes).unwrap_or_else(|e| {
                panic!(
                    "{}: {}[{i}] passes validation but not the build: {e}",
                    f.display(),
                    section.key()
                )
            });
            let _ = runtime_config(img, None, false, "/containers/x");
            built += 1;
        }
    }
    assert!(built > 400, "only {built} containers");
}
