//! `config.json` and `runtime.json` generation (the reference's
//! `moby.ConfigToOCI` and `ImageBundle`): one test per rule, snapshots of a
//! broad configuration (`BLESS=1 cargo test -p linuxkit-rootfs --test spec`
//! rewrites them), determinism and error messages.

use std::path::PathBuf;

use linuxkit_config::{
    Config, IdMap, Image, ImageConfig, Moby, RuntimeJson, Volume, parse_image_label,
};
use linuxkit_rootfs::{
    ALL_CAPABILITIES, ImageRuntimeDefaults, oci_config, readonly_rootfs, runtime_config,
    runtime_config_with_root, runtime_json, runtime_json_text,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// helpers

/// A whole configuration from YAML.
fn moby(yaml: &str) -> Moby {
    Config::parse("test.yml", yaml)
        .expect("test YAML parses")
        .moby
}

/// One service entry `svc` (image `example/svc:1`) with `body` as its
/// other keys, written at column 0.
fn svc(body: &str) -> Image {
    let mut y = String::from("services:\n  - name: svc\n    image: example/svc:1\n");
    for line in body.lines() {
        y.push_str("    ");
        y.push_str(line);
        y.push('\n');
    }
    moby(&y).services.remove(0)
}

fn label(text: &str) -> ImageConfig {
    parse_image_label("example/svc:1", text).expect("test label parses")
}

/// An image config with just an entrypoint.
fn run() -> ImageRuntimeDefaults {
    ImageRuntimeDefaults {
        entrypoint: vec!["/bin/run".into()],
        ..Default::default()
    }
}

fn spec_full(
    image: &Image,
    label: Option<&ImageConfig>,
    defaults: &ImageRuntimeDefaults,
    volumes: &[Volume],
) -> Value {
    let text = oci_config(image, label, defaults, &IdMap::default(), volumes).expect("spec builds");
    serde_json::from_str(&text).expect("spec is JSON")
}

fn spec(image: &Image) -> Value {
    spec_full(image, None, &run(), &[])
}

fn spec_err(image: &Image, label: Option<&ImageConfig>, volumes: &[Volume]) -> String {
    oci_config(image, label, &run(), &IdMap::default(), volumes)
        .expect_err("spec must fail")
        .to_string()
}

fn mount<'a>(s: &'a Value, dst: &str) -> &'a Value {
    s["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == dst)
        .unwrap_or_else(|| panic!("no mount on {dst}"))
}

fn destinations(s: &Value) -> Vec<String> {
    s["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap().to_string())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn runtime(image: &Image, label: Option<&ImageConfig>, readonly: bool) -> Value {
    serde_json::from_str(&runtime_config(
        image,
        label,
        readonly,
        "/containers/services/svc",
    ))
    .unwrap()
}

fn volume(name: &str, readonly: bool) -> Volume {
    Volume {
        name: name.into(),
        readonly,
        ..Volume::default()
    }
}

// ---------------------------------------------------------------------------
// image config blob

#[test]
fn image_config_blob_fields_and_label() {
    let blob = br#"{
        "architecture": "amd64",
        "config": {
            "User": "nobody",
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo hi"],
            "Env": ["PATH=/bin", "A=b"],
            "WorkingDir": "/work",
            "Labels": {"org.mobyproject.config": "{\"net\": \"new\"}", "other": "x"}
        },
        "rootfs": {"type": "layers", "diff_ids": []}
    }"#;
    let d = ImageRuntimeDefaults::from_image_config_json(blob).unwrap();
    assert_eq!(d.entrypoint, ["/bin/sh", "-c"]);
    assert_eq!(d.cmd, ["echo hi"]);
    assert_eq!(d.env, ["PATH=/bin", "A=b"]);
    assert_eq!(d.working_dir, "/work");
    let l = d.parse_label("example/svc:1").unwrap().unwrap();
    assert_eq!(l.net.as_deref(), Some("new"));
}

#[test]
fn image_config_blob_nulls_and_missing_config() {
    let d = ImageRuntimeDefaults::from_image_config_json(
        br#"{"config": {"Entrypoint": null, "Cmd": null, "Env": null, "Labels": null}}"#,
    )
    .unwrap();
    assert_eq!(d, ImageRuntimeDefaults::default());
    let d = ImageRuntimeDefaults::from_image_config_json(br#"{"architecture": "arm64"}"#).unwrap();
    assert_eq!(d, ImageRuntimeDefaults::default());
    let d = ImageRuntimeDefaults::from_image_config_json(
        br#"{"config": {"Labels": {"org.mobyproject.config": ""}}}"#,
    )
    .unwrap();
    assert_eq!(d.label, None, "an empty label counts as none");
    assert!(ImageRuntimeDefaults::from_image_config_json(b"not json").is_err());
}

#[test]
fn bad_label_is_an_error_naming_the_image() {
    let d = ImageRuntimeDefaults {
        label: Some(r#"{"name": "x"}"#.into()),
        ..Default::default()
    };
    let e = d.parse_label("example/bad:1").unwrap_err().to_string();
    assert!(e.contains("example/bad:1"), "{e}");
}

// ---------------------------------------------------------------------------
// process: args, env, cwd, user

#[test]
fn args_are_entrypoint_then_cmd() {
    let d = ImageRuntimeDefaults {
        entrypoint: vec!["/bin/sh".into(), "-c".into()],
        cmd: vec!["echo hi".into()],
        ..Default::default()
    };
    let s = spec_full(&svc(""), None, &d, &[]);
    assert_eq!(strings(&s["process"]["args"]), ["/bin/sh", "-c", "echo hi"]);
}

#[test]
fn command_replaces_entrypoint_and_cmd_yaml_over_label() {
    let d = ImageRuntimeDefaults {
        entrypoint: vec!["/bin/sh".into()],
        cmd: vec!["x".into()],
        ..Default::default()
    };
    let l = label(r#"{"command": ["/label"]}"#);
    let s = spec_full(&svc(""), Some(&l), &d, &[]);
    assert_eq!(strings(&s["process"]["args"]), ["/label"]);
    let s = spec_full(&svc("command: [/yaml, a]"), Some(&l), &d, &[]);
    assert_eq!(strings(&s["process"]["args"]), ["/yaml", "a"]);
}

#[test]
fn nothing_to_run_is_an_error() {
    let e = oci_config(
        &svc(""),
        None,
        &ImageRuntimeDefaults::default(),
        &IdMap::default(),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("container svc") && e.contains("command"), "{e}");
}

#[test]
fn env_replaces_the_image_env_including_path() {
    let d = ImageRuntimeDefaults {
        env: vec!["PATH=/usr/bin:/bin".into(), "IMG=1".into()],
        ..run()
    };
    let s = spec_full(&svc(""), None, &d, &[]);
    assert_eq!(
        strings(&s["process"]["env"]),
        ["PATH=/usr/bin:/bin", "IMG=1"]
    );
    let s = spec_full(&svc("env: [A=1]"), None, &d, &[]);
    assert_eq!(strings(&s["process"]["env"]), ["A=1"]);
    let l = label(r#"{"env": ["L=1"]}"#);
    let s = spec_full(&svc(""), Some(&l), &d, &[]);
    assert_eq!(strings(&s["process"]["env"]), ["L=1"]);
}

#[test]
fn present_empty_list_replaces() {
    let d = ImageRuntimeDefaults {
        env: vec!["PATH=/bin".into()],
        ..run()
    };
    let l = label(r#"{"capabilities": ["CAP_NET_ADMIN"], "binds": ["/a:/a"]}"#);
    let s = spec_full(
        &svc("env: []\ncapabilities: []\nbinds: []"),
        Some(&l),
        &d,
        &[],
    );
    assert!(s["process"].get("env").is_none(), "empty env is omitted");
    assert_eq!(s["process"]["capabilities"], json!({}));
    assert!(!destinations(&s).contains(&"/a".to_string()));
}

#[test]
fn cwd_yaml_then_label_then_workingdir_then_root() {
    let d = ImageRuntimeDefaults {
        working_dir: "/img".into(),
        ..run()
    };
    let l = label(r#"{"cwd": "/label"}"#);
    assert_eq!(
        spec_full(&svc("cwd: /yaml"), Some(&l), &d, &[])["process"]["cwd"],
        "/yaml"
    );
    assert_eq!(
        spec_full(&svc(""), Some(&l), &d, &[])["process"]["cwd"],
        "/label"
    );
    assert_eq!(spec_full(&svc(""), None, &d, &[])["process"]["cwd"], "/img");
    assert_eq!(spec(&svc(""))["process"]["cwd"], "/");
    // An empty string counts as unset, as in the reference.
    assert_eq!(
        spec_full(&svc("cwd: \"\""), Some(&l), &d, &[])["process"]["cwd"],
        "/label"
    );
}

#[test]
fn image_user_is_ignored_and_ids_default_to_root() {
    let d = ImageRuntimeDefaults::from_image_config_json(
        br#"{"config": {"User": "1000:1000", "Entrypoint": ["/x"]}}"#,
    )
    .unwrap();
    let s = spec_full(&svc(""), None, &d, &[]);
    assert_eq!(s["process"]["user"], json!({"uid": 0, "gid": 0}));
}

#[test]
fn uid_gid_numbers_root_and_container_names() {
    let m = moby(
        "onboot:\n  - name: first\n    image: a\nservices:\n  - name: svc\n    image: b\n    uid: first\n    gid: root\n    additionalGids: [svc, 7, root]\n",
    );
    let ids = IdMap::new(&m);
    let text = oci_config(&m.services[0], None, &run(), &ids, &[]).unwrap();
    let s: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        s["process"]["user"],
        json!({"uid": 100, "gid": 0, "additionalGids": [101, 7, 0]})
    );
    let l = label(r#"{"uid": 5, "gid": 6}"#);
    let text = oci_config(&svc(""), Some(&l), &run(), &ids, &[]).unwrap();
    let s: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s["process"]["user"], json!({"uid": 5, "gid": 6}));
}

#[test]
fn unknown_uid_name_is_an_error_naming_container_and_id() {
    let e = spec_err(&svc("uid: nosuch"), None, &[]);
    assert!(e.contains("container svc"), "{e}");
    assert!(e.contains("uid") && e.contains("`nosuch`"), "{e}");
    let e = spec_err(&svc("additionalGids: [ghost]"), None, &[]);
    assert!(e.contains("additionalGids") && e.contains("`ghost`"), "{e}");
}

// ---------------------------------------------------------------------------
// capabilities

#[test]
fn capabilities_default_to_none() {
    let s = spec(&svc(""));
    assert_eq!(s["process"]["capabilities"], json!({}));
}

#[test]
fn capabilities_all_and_none_expand() {
    let s = spec(&svc("capabilities: [all]"));
    let caps = &s["process"]["capabilities"];
    assert_eq!(
        strings(&caps["effective"]),
        ALL_CAPABILITIES,
        "kernel order"
    );
    let mut sorted: Vec<&str> = ALL_CAPABILITIES.to_vec();
    sorted.sort();
    assert_eq!(strings(&caps["bounding"]), sorted);
    assert_eq!(caps["permitted"], caps["bounding"]);
    assert_eq!(caps["inheritable"], caps["bounding"]);
    assert_eq!(ALL_CAPABILITIES.len(), 41);

    let s = spec(&svc("capabilities: [ALL]"));
    assert_eq!(
        strings(&s["process"]["capabilities"]["effective"]).len(),
        41
    );
    let l = label(r#"{"capabilities": ["CAP_SYS_ADMIN"]}"#);
    let s = spec_full(&svc("capabilities: [None]"), Some(&l), &run(), &[]);
    assert_eq!(s["process"]["capabilities"], json!({}));
}

#[test]
fn capabilities_yaml_replaces_label_and_add_appends() {
    let l = label(r#"{"capabilities": ["CAP_SYS_ADMIN", "CAP_CHOWN"]}"#);
    let s = spec_full(&svc(""), Some(&l), &run(), &[]);
    assert_eq!(
        strings(&s["process"]["capabilities"]["effective"]),
        ["CAP_SYS_ADMIN", "CAP_CHOWN"]
    );
    let s = spec_full(
        &svc("capabilities.add: [CAP_NET_RAW, CAP_CHOWN]"),
        Some(&l),
        &run(),
        &[],
    );
    let caps = &s["process"]["capabilities"];
    // Duplicates stay in the effective list, as in the reference.
    assert_eq!(
        strings(&caps["effective"]),
        ["CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_NET_RAW", "CAP_CHOWN"]
    );
    assert_eq!(
        strings(&caps["bounding"]),
        ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN"]
    );
    let s = spec_full(&svc("capabilities: [CAP_KILL]"), Some(&l), &run(), &[]);
    assert_eq!(
        strings(&s["process"]["capabilities"]["effective"]),
        ["CAP_KILL"]
    );
    // A label's `capabilities.add` is ignored: `.add` works only from YAML.
    let l2 = label(r#"{"capabilities.add": ["CAP_KILL"]}"#);
    let s = spec_full(&svc(""), Some(&l2), &run(), &[]);
    assert_eq!(s["process"]["capabilities"], json!({}));
}

#[test]
/// As the reference: a YAML `capabilities` is the whole list and a
/// `capabilities.add` next to it is ignored (validation warns).
fn capabilities_yaml_list_drops_yaml_add() {
    let l = label(r#"{"capabilities": ["CAP_SYS_ADMIN"]}"#);
    let s = spec_full(
        &svc("capabilities: [CAP_KILL]\ncapabilities.add: [CAP_NET_RAW]"),
        Some(&l),
        &run(),
        &[],
    );
    assert_eq!(
        strings(&s["process"]["capabilities"]["effective"]),
        ["CAP_KILL"]
    );
}

#[test]
fn ambient_capabilities_join_the_bounding_set() {
    let s = spec(&svc(
        "capabilities: [CAP_SYS_ADMIN]\nambient: [CAP_NET_ADMIN]",
    ));
    let caps = &s["process"]["capabilities"];
    assert_eq!(strings(&caps["effective"]), ["CAP_SYS_ADMIN"]);
    assert_eq!(strings(&caps["ambient"]), ["CAP_NET_ADMIN"]);
    for set in ["bounding", "permitted", "inheritable"] {
        assert_eq!(
            strings(&caps[set]),
            ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"],
            "{set}"
        );
    }
}

#[test]
fn unknown_capability_is_an_error() {
    let l = label(r#"{"capabilities": ["CAP_FLY"]}"#);
    let e = spec_err(&svc(""), Some(&l), &[]);
    assert!(
        e.contains("container svc") && e.contains("`CAP_FLY`"),
        "{e}"
    );
    let l = label(r#"{"capabilities": ["CAP_KILL"]}"#);
    let e = spec_err(&svc("capabilities.add: [all]"), Some(&l), &[]);
    assert!(e.contains("must be the only entry"), "{e}");
}

// ---------------------------------------------------------------------------
// mounts

#[test]
fn default_mounts() {
    let s = spec(&svc(""));
    assert_eq!(
        s["mounts"],
        json!([
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "nodev", "noexec", "relatime"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ])
    );
}

#[test]
fn tmpfs_entries() {
    let s = spec(&svc("tmpfs: [/run, \"/tmp:size=10m,mode=1777\"]"));
    assert_eq!(
        mount(&s, "/run"),
        &json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs"})
    );
    assert_eq!(
        strings(&mount(&s, "/tmp")["options"]),
        ["size=10m", "mode=1777"]
    );
    let e = spec_err(&svc("tmpfs: [\"/a:b:c\"]"), None, &[]);
    assert!(e.contains("too many `:`"), "{e}");
}

#[test]
fn bind_options() {
    let s = spec(&svc(
        "binds: [\"/a:/x\", \"/b:/y:ro\", \"/c:/z:ro,nosuid\"]",
    ));
    assert_eq!(
        mount(&s, "/x"),
        &json!({"destination": "/x", "type": "bind", "source": "/a",
                "options": ["rw", "rbind", "rshared"]})
    );
    assert_eq!(strings(&mount(&s, "/y")["options"]), ["ro", "rbind"]);
    assert_eq!(
        strings(&mount(&s, "/z")["options"]),
        ["ro", "nosuid", "rbind"]
    );
    let e = spec_err(&svc("binds: [/a]"), None, &[]);
    assert!(e.contains("has no `:`"), "{e}");
    let e = spec_err(&svc("binds: [\"/a:/b:ro:x\"]"), None, &[]);
    assert!(e.contains("too many `:`"), "{e}");
}

/// The reference's `assignStrings(mergeStrings(label.Binds, yaml.BindsAdd),
/// yaml.Binds)`: YAML `binds` is the whole list, `binds.add` next to it is
/// dropped (validation warns); without `binds`, the label's then `binds.add`.
#[test]
fn binds_yaml_replaces_label_and_add_appends_to_the_label() {
    let l = label(r#"{"binds": ["/l:/l"]}"#);
    let s = spec_full(&svc("binds.add: [\"/a:/a\"]"), Some(&l), &run(), &[]);
    assert!(destinations(&s).contains(&"/l".into()));
    assert!(destinations(&s).contains(&"/a".into()));
    let s = spec_full(
        &svc("binds: [\"/y:/y\"]\nbinds.add: [\"/a:/a\"]"),
        Some(&l),
        &run(),
        &[],
    );
    assert!(!destinations(&s).contains(&"/l".into()));
    assert!(destinations(&s).contains(&"/y".into()));
    assert!(!destinations(&s).contains(&"/a".into()));
}

#[test]
fn later_kinds_override_earlier_by_destination() {
    // tmpfs overrides the default /dev, a bind overrides a tmpfs, a mount
    // overrides a bind.
    let s = spec(&svc(
        "tmpfs: [\"/dev:size=1m\", /data]\nbinds: [\"/host:/data\", \"/h2:/both\"]\nmounts:\n  - {destination: /both, type: tmpfs, source: tmpfs}",
    ));
    assert_eq!(mount(&s, "/dev")["options"], json!(["size=1m"]));
    assert_eq!(mount(&s, "/data")["type"], "bind");
    assert_eq!(mount(&s, "/both")["type"], "tmpfs");
    assert_eq!(destinations(&s).iter().filter(|d| *d == "/both").count(), 1);
}

#[test]
fn mounts_are_sorted_by_destination() {
    let s = spec(&svc("binds: [\"/a:/zzz\", \"/b:/aaa\", \"/c:/dev/x\"]"));
    let d = destinations(&s);
    let mut sorted = d.clone();
    sorted.sort();
    assert_eq!(d, sorted);
    assert_eq!(d[0], "/aaa");
}

#[test]
fn mount_type_and_destination_inference() {
    let s = spec(&svc(
        "mounts:\n  - {source: mqueue}\n  - {destination: /dev}\n  - {type: cgroup, options: [rw]}",
    ));
    assert_eq!(
        mount(&s, "/dev/mqueue"),
        &json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"})
    );
    assert_eq!(
        mount(&s, "/dev"),
        &json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs"})
    );
    assert_eq!(mount(&s, "/sys/fs/cgroup")["options"], json!(["rw"]));
    let e = spec_err(
        &svc("mounts:\n  - {destination: /x, source: /y}"),
        None,
        &[],
    );
    assert!(e.contains("missing its `type`"), "{e}");
    let e = spec_err(&svc("mounts:\n  - {type: tmpfs}"), None, &[]);
    assert!(e.contains("missing its `destination`"), "{e}");
}

#[test]
fn label_mounts_unless_yaml_has_mounts() {
    let l = label(r#"{"mounts": [{"destination": "/l", "type": "tmpfs"}]}"#);
    let s = spec_full(&svc(""), Some(&l), &run(), &[]);
    assert!(destinations(&s).contains(&"/l".into()));
    let s = spec_full(&svc("mounts: []"), Some(&l), &run(), &[]);
    assert!(!destinations(&s).contains(&"/l".into()));
}

#[test]
fn volume_names_in_binds_and_mounts_resolve_to_merged() {
    let vols = [volume("data", false), volume("cfg", true)];
    let s = spec_full(
        &svc(
            "binds: [\"data:/data\", \"cfg:/cfg:ro\", \"data:/more\"]\nmounts:\n  - {destination: /m, type: bind, source: data, options: [rbind, rw]}\n  - {destination: /mr, type: bind, source: cfg, options: [rbind, ro]}",
        ),
        None,
        &run(),
        &vols,
    );
    assert_eq!(
        mount(&s, "/data")["source"],
        "/containers/volumes/data/merged"
    );
    assert_eq!(
        mount(&s, "/more")["source"],
        "/containers/volumes/data/merged"
    );
    assert_eq!(
        mount(&s, "/cfg"),
        &json!({"destination": "/cfg", "type": "bind",
                "source": "/containers/volumes/cfg/merged", "options": ["ro", "rbind"]})
    );
    assert_eq!(mount(&s, "/m")["source"], "/containers/volumes/data/merged");
    assert_eq!(mount(&s, "/mr")["source"], "/containers/volumes/cfg/merged");
}

#[test]
fn readonly_volume_mounted_read_write_is_an_error() {
    let vols = [volume("cfg", true)];
    for body in [
        "binds: [\"cfg:/cfg\"]",
        "binds: [\"cfg:/cfg:rw\"]",
        "binds.add: [\"cfg:/cfg:ro,rw\"]",
        "mounts:\n  - {destination: /c, type: bind, source: cfg, options: [rbind]}",
        "mounts:\n  - {destination: /c, type: bind, source: cfg, options: [rw, rbind]}",
    ] {
        let e = spec_err(&svc(body), None, &vols);
        assert!(e.contains("container svc"), "{body}: {e}");
        assert!(e.contains("volume `cfg` is read-only"), "{body}: {e}");
    }
    // The reference takes the first of `ro`/`rw` in `mounts:` (validation
    // warns that the last one applies).
    let s = spec_full(
        &svc("mounts:\n  - {destination: /c, type: bind, source: cfg, options: [ro, rw]}"),
        None,
        &run(),
        &vols,
    );
    assert_eq!(mount(&s, "/c")["source"], "/containers/volumes/cfg/merged");
}

#[test]
fn unknown_volume_is_an_error() {
    let e = spec_err(
        &svc("binds: [\"nosuch:/x\"]"),
        None,
        &[volume("data", false)],
    );
    assert!(e.contains("`nosuch`") && e.contains("volumes:"), "{e}");
    let e = spec_err(
        &svc("mounts:\n  - {destination: /x, type: bind, source: nosuch}"),
        None,
        &[],
    );
    assert!(e.contains("`nosuch`"), "{e}");
}

// ---------------------------------------------------------------------------
// namespaces, hostname, root

fn ns(s: &Value) -> Value {
    s["linux"]["namespaces"].clone()
}

#[test]
fn namespaces_default_new_pid_and_mount_only() {
    assert_eq!(
        ns(&spec(&svc(""))),
        json!([{"type": "pid"}, {"type": "mount"}])
    );
}

#[test]
fn namespaces_new_none_host_and_paths() {
    let s = spec(&svc(
        "net: none\nipc: new\nuts: /run/ns/uts\npid: host\nuserns: new",
    ));
    assert_eq!(
        ns(&s),
        json!([
            {"type": "network"},
            {"type": "ipc"},
            {"type": "uts", "path": "/run/ns/uts"},
            {"type": "user"},
            {"type": "mount"}
        ])
    );
    let s = spec(&svc("net: /run/netns/x\npid: /proc/1/ns/pid"));
    assert_eq!(
        ns(&s),
        json!([
            {"type": "network", "path": "/run/netns/x"},
            {"type": "pid", "path": "/proc/1/ns/pid"},
            {"type": "mount"}
        ])
    );
    let l = label(r#"{"net": "new", "pid": "host"}"#);
    let s = spec_full(&svc("net: host"), Some(&l), &run(), &[]);
    assert_eq!(ns(&s), json!([{"type": "mount"}]));
}

#[test]
fn hostname_is_written_with_or_without_uts_namespace() {
    let s = spec(&svc("uts: new\nhostname: box"));
    assert_eq!(s["hostname"], "box");
    assert!(spec(&svc("")).get("hostname").is_none());
    // The reference writes it without a UTS namespace too (the container
    // then fails to start; validation warns at the YAML line).
    let s = spec(&svc("hostname: box"));
    assert_eq!(s["hostname"], "box");
    assert!(
        !s["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "uts")
    );
}

#[test]
fn root_and_readonly() {
    let s = spec(&svc(""));
    assert_eq!(s["root"], json!({"path": "rootfs"}));
    assert!(!readonly_rootfs(&svc(""), None));

    let img = svc("readonly: true");
    assert!(readonly_rootfs(&img, None));
    let s = spec(&img);
    assert_eq!(s["root"], json!({"path": "rootfs", "readonly": true}));
    assert_eq!(strings(&mount(&s, "/dev")["options"]).last().unwrap(), "ro");
    assert_eq!(strings(&mount(&s, "/sys")["options"]).last().unwrap(), "ro");
    assert!(!strings(&mount(&s, "/proc")["options"]).contains(&"ro".into()));

    let l = label(r#"{"readonly": true}"#);
    assert!(readonly_rootfs(&svc(""), Some(&l)));
    assert!(!readonly_rootfs(&svc("readonly: false"), Some(&l)));
}

// ---------------------------------------------------------------------------
// the remaining settings

#[test]
fn plain_settings_pass_through() {
    let s = spec(&svc(
        "maskedPaths: [/proc/kcore]\nreadonlyPaths: [/proc/sys]\nnoNewPrivileges: true\noomScoreAdj: -500\nrootfsPropagation: rshared\ncgroupsPath: /lk/svc\nsysctl: {net.ipv4.ip_forward: \"1\", kernel.a: \"2\"}\nannotations: {b: \"2\", a: \"1\"}\nuidMappings: [{containerID: 0, hostID: 1000, size: 1}]\ngidMappings: [{containerID: 0, hostID: 2000, size: 2}]",
    ));
    let p = &s["process"];
    assert_eq!(p["noNewPrivileges"], true);
    assert_eq!(p["oomScoreAdj"], -500);
    let lx = &s["linux"];
    assert_eq!(lx["maskedPaths"], json!(["/proc/kcore"]));
    assert_eq!(lx["readonlyPaths"], json!(["/proc/sys"]));
    assert_eq!(lx["rootfsPropagation"], "rshared");
    assert_eq!(lx["cgroupsPath"], "/lk/svc");
    assert_eq!(
        lx["sysctl"],
        json!({"kernel.a": "2", "net.ipv4.ip_forward": "1"})
    );
    assert_eq!(
        lx["uidMappings"],
        json!([{"containerID": 0, "hostID": 1000, "size": 1}])
    );
    assert_eq!(
        lx["gidMappings"],
        json!([{"containerID": 0, "hostID": 2000, "size": 2}])
    );
    assert_eq!(s["annotations"], json!({"a": "1", "b": "2"}));
}

#[test]
fn unset_settings_are_omitted() {
    let s = spec(&svc(""));
    let p = s["process"].as_object().unwrap();
    assert_eq!(
        p.keys().collect::<Vec<_>>(),
        ["user", "args", "cwd", "capabilities"]
    );
    let lx = s["linux"].as_object().unwrap();
    assert_eq!(
        lx.keys().collect::<Vec<_>>(),
        ["resources", "namespaces", "personality"]
    );
    assert_eq!(lx["resources"], json!({}));
    // Always the standard one: the init runs crun with a fixed layout and
    // relies on crun resetting the container's personality.
    assert_eq!(lx["personality"], json!({"domain": "LINUX"}));
    assert!(s.get("annotations").is_none());
    assert_eq!(s["ociVersion"], "1.0.2");
}

#[test]
fn label_settings_and_yaml_override() {
    let l = label(
        r#"{"noNewPrivileges": true, "oomScoreAdj": 10, "sysctl": {"a": "1"}, "maskedPaths": ["/x"], "rootfsPropagation": "shared"}"#,
    );
    let s = spec_full(
        &svc("noNewPrivileges: false\nsysctl: {b: \"2\"}\nrootfsPropagation: \"\""),
        Some(&l),
        &run(),
        &[],
    );
    assert!(s["process"].get("noNewPrivileges").is_none());
    assert_eq!(s["process"]["oomScoreAdj"], 10);
    assert_eq!(s["linux"]["sysctl"], json!({"b": "2"}));
    assert_eq!(s["linux"]["maskedPaths"], json!(["/x"]));
    assert!(
        s["linux"].get("rootfsPropagation").is_none(),
        "a present empty string replaces the label's"
    );
}

#[test]
fn resources_replace_whole_and_use_oci_names() {
    let l = label(r#"{"resources": {"memory": {"limit": 1}}}"#);
    let s = spec_full(
        &svc(
            "resources:\n  cpu: {shares: 512, realtimeRuntime: 5}\n  pids: {limit: 10}\n  blockio: {weight: 100, throttleReadBpsDevice: [{major: 8, minor: 0, rate: 1000}]}\n  hugepageLimits: [{pageSize: 2MB, limit: 4}]\n  unified: {memory.max: \"1G\"}",
        ),
        Some(&l),
        &run(),
        &[],
    );
    assert_eq!(
        s["linux"]["resources"],
        json!({
            "cpu": {"shares": 512, "realtimeRuntime": 5},
            "pids": {"limit": 10},
            "blockIO": {"weight": 100, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4}],
            "unified": {"memory.max": "1G"}
        })
    );
    let s = spec_full(&svc(""), Some(&l), &run(), &[]);
    assert_eq!(s["linux"]["resources"], json!({"memory": {"limit": 1}}));
}

#[test]
fn rlimits() {
    let s = spec(&svc(
        "rlimits: [\"nofile,1024,4096\", \" RLIMIT_NPROC , unlimited , UNLIMITED\"]",
    ));
    assert_eq!(
        s["process"]["rlimits"],
        json!([
            {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
            {"type": "RLIMIT_NPROC", "hard": u64::MAX, "soft": u64::MAX}
        ])
    );
    let l = label(r#"{"rlimits": ["core,1,2"]}"#);
    let e = spec_err(&svc(""), Some(&label(r#"{"rlimits": ["nope,1,2"]}"#)), &[]);
    assert!(e.contains("unknown limit `nope`"), "{e}");
    let e = spec_err(&svc(""), Some(&label(r#"{"rlimits": ["core,1"]}"#)), &[]);
    assert!(e.contains("name,soft,hard"), "{e}");
    let e = spec_err(&svc(""), Some(&label(r#"{"rlimits": ["core,x,1"]}"#)), &[]);
    assert!(e.contains("`x`"), "{e}");
    let s = spec_full(&svc(""), Some(&l), &run(), &[]);
    assert_eq!(s["process"]["rlimits"][0]["type"], "RLIMIT_CORE");
}

#[test]
fn devices_all_adds_only_a_cgroup_rule() {
    let s = spec(&svc("devices:\n  - {path: all, type: b}"));
    assert!(s["linux"].get("devices").is_none());
    assert_eq!(
        s["linux"]["resources"]["devices"],
        json!([{"allow": true, "type": "b", "access": "rwm"}])
    );
}

#[test]
fn devices_node_and_rule_with_octal_mode() {
    let s = spec(&svc(
        "resources: {devices: [{allow: false, access: rwm}]}\ndevices:\n  - {path: /dev/console, type: c, major: 5, minor: 1, mode: \"0666\"}\n  - {path: /dev/sda, type: b, major: 8, minor: 0, mode: \"660\"}",
    ));
    assert_eq!(
        s["linux"]["devices"],
        json!([
            {"path": "/dev/console", "type": "c", "major": 5, "minor": 1, "fileMode": 438},
            {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 432}
        ])
    );
    assert_eq!(
        s["linux"]["resources"]["devices"],
        json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rwm"}
        ])
    );
}

#[test]
fn bad_device_mode_is_an_error() {
    for mode in ["\"0999\"", "\"rw\"", "\"-1\"", "\"\""] {
        let e = spec_err(
            &svc(&format!(
                "devices:\n  - {{path: /dev/x, type: c, major: 1, minor: 1, mode: {mode}}}"
            )),
            None,
            &[],
        );
        assert!(e.contains("container svc"), "{mode}: {e}");
        assert!(e.contains("cannot parse device mode"), "{mode}: {e}");
    }
    let e = spec_err(
        &svc("devices:\n  - {path: /dev/x, type: c, major: 1, minor: 1}"),
        None,
        &[],
    );
    assert!(e.contains("needs an octal `mode`"), "{e}");
}

// ---------------------------------------------------------------------------
// JSON form

#[test]
fn json_is_go_style() {
    let text = oci_config(
        &svc("env: [\"A=<b>&c\"]"),
        None,
        &run(),
        &IdMap::default(),
        &[],
    )
    .unwrap();
    assert!(
        text.starts_with(
            "{\n    \"ociVersion\": \"1.0.2\",\n    \"process\": {\n        \"user\": {"
        )
    );
    assert!(text.contains(r#""A=\u003cb\u003e\u0026c""#), "{text}");
    assert!(!text.ends_with('\n'));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["process"]["env"][0], "A=<b>&c");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["ociVersion", "process", "root", "mounts", "linux"]);
}

#[test]
fn output_is_deterministic() {
    let m = moby(BROAD_YAML);
    let ids = IdMap::new(&m);
    let l = label(BROAD_LABEL);
    let d = ImageRuntimeDefaults::from_image_config_json(BROAD_IMAGE_CONFIG.as_bytes()).unwrap();
    let img = &m.services[0];
    let a = oci_config(img, Some(&l), &d, &ids, &m.volumes).unwrap();
    for _ in 0..5 {
        // A fresh parse each time, so no map iteration order can leak in.
        let m2 = moby(BROAD_YAML);
        let b = oci_config(&m2.services[0], Some(&l), &d, &IdMap::new(&m2), &m2.volumes).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            runtime_config(img, Some(&l), false, "/containers/services/web"),
            runtime_config(&m2.services[0], Some(&l), false, "/containers/services/web"),
        );
    }
}

// ---------------------------------------------------------------------------
// runtime.json

#[test]
fn runtime_json_has_every_key() {
    let text = runtime_config(&svc(""), None, true, "/containers/services/svc");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v,
        json!({
            "cgroups": [],
            "mounts": [{"destination": "/containers/services/svc/rootfs",
                        "source": "/containers/services/svc/rootfs", "options": ["bind"]}],
            "mkdir": [],
            "interfaces": [],
            "bindNS": {"cgroup": "", "ipc": "", "mnt": "", "net": "", "pid": "", "user": "", "uts": ""},
            "namespace": ""
        })
    );
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "cgroups",
            "mounts",
            "mkdir",
            "interfaces",
            "bindNS",
            "namespace"
        ]
    );
}

#[test]
fn runtime_read_write_overlay_mounts_come_first() {
    let v = runtime(
        &svc("runtime:\n  mounts:\n    - {destination: /x, type: tmpfs, source: tmpfs}"),
        None,
        false,
    );
    assert_eq!(
        v["mounts"],
        json!([
            {"destination": "/containers/services/svc/tmp", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/containers/services/svc/tmp", "options": ["remount", "private"]},
            {"destination": "/containers/services/svc/rootfs", "type": "overlay", "source": "overlay",
             "options": ["lowerdir=/containers/services/svc/lower",
                         "upperdir=/containers/services/svc/tmp/upper",
                         "workdir=/containers/services/svc/tmp/work"]},
            {"destination": "/x", "type": "tmpfs", "source": "tmpfs"}
        ])
    );
}

#[test]
fn runtime_shared_image_root_and_path_forms() {
    let img = svc("");
    let rw: Value = serde_json::from_str(&runtime_config_with_root(
        &img,
        None,
        false,
        "containers/onboot/001-b/",
        "/containers/onboot/000-a/lower",
    ))
    .unwrap();
    assert_eq!(
        rw["mounts"][0]["destination"],
        "/containers/onboot/001-b/tmp"
    );
    assert_eq!(
        rw["mounts"][2]["options"][0],
        "lowerdir=/containers/onboot/000-a/lower"
    );
    let ro: Value = serde_json::from_str(&runtime_config_with_root(
        &img,
        None,
        true,
        "/containers/onboot/001-b",
        "containers/onboot/000-a/rootfs",
    ))
    .unwrap();
    assert_eq!(
        ro["mounts"],
        json!([{"destination": "/containers/onboot/001-b/rootfs",
                "source": "/containers/onboot/000-a/rootfs", "options": ["bind"]}])
    );
}

#[test]
fn runtime_yaml_replaces_label_per_key() {
    let l = label(
        r#"{"runtime": {"cgroups": ["l"], "mkdir": ["/l"], "interfaces": [{"name": "eth0"}], "bindNS": {"net": "/run/netns/l", "ipc": "/run/ipc/l"}, "namespace": "lns"}}"#,
    );
    let img = svc(
        "runtime:\n  mkdir: [/y]\n  interfaces: [{name: veth0, peer: veth1, createInRoot: true}]\n  bindNS: {net: /run/netns/y}",
    );
    let v = runtime(&img, Some(&l), true);
    assert_eq!(v["cgroups"], json!(["l"]));
    assert_eq!(v["mkdir"], json!(["/y"]));
    assert_eq!(
        v["interfaces"],
        json!([{"name": "veth0", "peer": "veth1", "createInRoot": true}])
    );
    assert_eq!(v["bindNS"]["net"], "/run/netns/y");
    assert_eq!(v["bindNS"]["ipc"], "/run/ipc/l");
    assert_eq!(v["bindNS"]["pid"], "");
    assert_eq!(v["namespace"], "lns");
    let v = runtime(&svc(""), Some(&l), true);
    assert_eq!(
        v["interfaces"],
        json!([{"name": "eth0", "createInRoot": false}])
    );
}

#[test]
fn runtime_config_round_trips() {
    let l = label(BROAD_LABEL);
    let m = moby(BROAD_YAML);
    let text = runtime_config(&m.services[0], Some(&l), false, "/containers/services/web");
    let back: RuntimeJson = serde_json::from_str(&text).unwrap();
    let expect = runtime_json(
        &m.services[0],
        Some(&l),
        false,
        "/containers/services/web",
        "/containers/services/web/lower",
    );
    assert_eq!(back, expect);
    assert_eq!(runtime_json_text(&back), text);
    // runtime.json may be absent or partial in the VM: missing keys are empty.
    let empty: RuntimeJson = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, RuntimeJson::default());
}

// ---------------------------------------------------------------------------
// snapshots

const BROAD_YAML: &str = r#"
onboot:
  - name: sysctl
    image: linuxkit/sysctl:v1
volumes:
  - name: data
  - name: certs
    readonly: true
services:
  - name: web
    image: example/web:1.0
    capabilities.add: [CAP_NET_BIND_SERVICE, CAP_SETUID]
    ambient: [CAP_NET_BIND_SERVICE]
    binds.add:
      - /etc/resolv.conf:/etc/resolv.conf
      - data:/var/lib/web
      - certs:/certs:ro
    tmpfs:
      - /tmp:size=64m,mode=1777
    mounts:
      - type: bind
        source: data
        destination: /srv
        options: [rbind, rw]
      - type: mqueue
    devices:
      - path: all
        type: b
      - path: /dev/console
        type: c
        major: 5
        minor: 1
        mode: "0620"
    env:
      - PATH=/usr/sbin:/usr/bin:/sbin:/bin
      - GREETING=<hello> & "bye"
    cwd: /srv
    net: new
    uts: new
    ipc: /run/ipc/shared
    hostname: web
    readonly: false
    uid: web
    gid: sysctl
    additionalGids: [root, 27]
    noNewPrivileges: true
    oomScoreAdj: -100
    rootfsPropagation: rslave
    cgroupsPath: /linuxkit/web
    resources:
      memory:
        limit: 268435456
      pids:
        limit: 100
    sysctl:
      net.core.somaxconn: "1024"
    rlimits:
      - nofile,1024,65536
      - core,unlimited,unlimited
    maskedPaths: [/proc/kcore]
    readonlyPaths: [/proc/sys]
    annotations:
      org.example.role: frontend
    runtime:
      mkdir: [/var/lib/web/cache]
      cgroups: [web]
      interfaces:
        - name: veth-web
          peer: veth-host
          createInRoot: true
      bindNS:
        net: /run/netns/web
      namespace: web-ns
"#;

const BROAD_LABEL: &str = r#"{
    "capabilities": ["CAP_CHOWN", "CAP_DAC_OVERRIDE"],
    "binds": ["/var/run:/var/run"],
    "command": ["/usr/sbin/web", "--port", "80"],
    "pid": "host",
    "runtime": {"mounts": [{"type": "cgroup", "source": "cgroup", "destination": "/sys/fs/cgroup/web", "options": ["rw"]}]}
}"#;

const BROAD_IMAGE_CONFIG: &str = r#"{
    "config": {
        "User": "web",
        "Entrypoint": ["/entry"],
        "Cmd": ["--from-image"],
        "Env": ["PATH=/image/path"],
        "WorkingDir": "/image",
        "Labels": {}
    }
}"#;

fn snapshot(name: &str, actual: &str) {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "snapshots", name]
        .iter()
        .collect();
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run with BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs (BLESS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

#[test]
fn snapshot_broad_config_json() {
    let m = moby(BROAD_YAML);
    let ids = IdMap::new(&m);
    let l = label(BROAD_LABEL);
    let d = ImageRuntimeDefaults::from_image_config_json(BROAD_IMAGE_CONFIG.as_bytes()).unwrap();
    let text = oci_config(&m.services[0], Some(&l), &d, &ids, &m.volumes).unwrap();
    snapshot("broad.config.json", &text);
}

#[test]
fn snapshot_broad_runtime_json() {
    let m = moby(BROAD_YAML);
    let l = label(BROAD_LABEL);
    let rw = runtime_config(&m.services[0], Some(&l), false, "/containers/services/web");
    snapshot("broad.runtime.json", &rw);
    let ro = runtime_config(&m.onboot[0], None, true, "/containers/onboot/000-sysctl");
    snapshot("readonly.runtime.json", &ro);
}

#[test]
fn snapshot_minimal_config_json() {
    let m = moby(BROAD_YAML);
    let d = ImageRuntimeDefaults::from_image_config_json(
        br#"{"config": {"Entrypoint": ["/sbin/sysctl", "-p"], "Env": ["PATH=/sbin:/bin"]}}"#,
    )
    .unwrap();
    let text = oci_config(&m.onboot[0], None, &d, &IdMap::new(&m), &m.volumes).unwrap();
    snapshot("minimal.config.json", &text);
}
