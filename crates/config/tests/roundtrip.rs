//! Rendering then parsing gives back the same configuration, for arbitrary
//! configurations full of strings YAML likes to misread; and the example
//! configurations of the repository parse and validate.

use std::collections::BTreeMap;
use std::path::Path;

use linuxkit_config::*;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

/// Strings that a naive YAML writer gets wrong.
const AWKWARD: &[&str] = &[
    "",
    " ",
    "yes",
    "no",
    "on",
    "Off",
    "y",
    "N",
    "true",
    "False",
    "null",
    "Null",
    "~",
    "0755",
    "0o17",
    "0x1F",
    "0b101",
    "1_000",
    "1e3",
    "-1",
    "+1",
    "1.5",
    ".5",
    ".inf",
    "-.Inf",
    ".nan",
    "@pkg:x",
    "@pkg:../pkg/init",
    "a: b",
    "a:b",
    "key:",
    ":",
    "# x",
    "a #b",
    "a# b",
    "- x",
    "-",
    "--",
    "---",
    "...",
    "-leading",
    "trailing ",
    " leading",
    "trailing:",
    "?",
    "? x",
    "|",
    ">",
    "!",
    "!!str x",
    "&anchor",
    "*alias",
    "%YAML",
    "@",
    "`",
    "{}",
    "[]",
    "{a: b}",
    "[a, b]",
    "a, b",
    "'single'",
    "\"double\"",
    "back\\slash",
    "line1\nline2",
    "\n",
    "trailing newline\n",
    "\r\n",
    "tab\there",
    "\t",
    "nul\0",
    "del\u{7f}",
    "c1\u{80}\u{9f}",
    "nel\u{85}",
    "ls\u{2028}ps\u{2029}",
    "\u{feff}bom",
    "nbsp\u{a0}",
    "héllo wörld",
    "日本語",
    "😀",
    "<<",
    "=",
    "a=b",
    "console=ttyS0 quiet",
    "/etc/resolv.conf:/etc/resolv.conf:ro",
    "CAP_SYS_ADMIN",
    "linuxkit/init:v1.0.0@sha256:0123456789abcdef",
];

fn string() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(AWKWARD).prop_map(String::from),
        3 => "[a-zA-Z0-9_./:=@%+, -]{0,16}",
        2 => "[ \t\n\r#:\"'\\\\{}\\[\\],&*!|>%@`?~-]{0,6}",
        1 => "\\PC{0,12}",
        1 => any::<String>(),
        // Awkward pieces glued together.
        2 => vec(prop::sample::select(AWKWARD), 2..4).prop_map(|v| v.concat()),
    ]
    .boxed()
}

fn strings() -> BoxedStrategy<Vec<String>> {
    vec(string(), 0..4).boxed()
}

fn opt<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    option::weighted(0.4, s)
}

/// Map keys: mostly short, sometimes around YAML's 1024-character limit for
/// `key: value` keys.
fn string_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop_oneof![
        9 => string().prop_map(|s| s.chars().take(40).collect::<String>()),
        1 => "[a-z #:\"]{990,1030}",
    ];
    btree_map(key, string(), 0..4)
}

/// A name, not a number: a name that reads as a number *is* that number
/// (`uid: "100"` is uid 100), so such names are not values of their own.
fn id_spec() -> impl Strategy<Value = IdSpec> {
    prop_oneof![
        any::<u32>().prop_map(IdSpec::Id),
        string()
            .prop_filter("names are not empty or numeric", |s| {
                !s.is_empty() && s.parse::<u32>().is_err()
            })
            .prop_map(IdSpec::Name),
    ]
}

prop_compose! {
    fn kernel_unboxed()(
        image in string(), cmdline in string(), binary in string(),
        tar in opt(string()), ucode in opt(string()),
    ) -> Kernel {
        Kernel { image, cmdline, binary, tar, ucode }
    }
}

prop_compose! {
    fn id_mapping_unboxed()(container_id in any::<u32>(), host_id in any::<u32>(), size in any::<u32>())
        -> IdMapping {
        IdMapping { container_id, host_id, size }
    }
}

prop_compose! {
    fn mount_unboxed()(
        destination in string(), kind in string(), source in string(), options in strings(),
        uid_mappings in vec(id_mapping(), 0..2), gid_mappings in vec(id_mapping(), 0..2),
    ) -> Mount {
        Mount { destination, kind, source, options, uid_mappings, gid_mappings }
    }
}

prop_compose! {
    fn device_unboxed()(
        path in string(), kind in string(), major in any::<i64>(), minor in any::<i64>(),
        mode in opt(string()),
    ) -> Device {
        Device { path, kind, major, minor, mode }
    }
}

prop_compose! {
    fn memory_unboxed()(
        limit in opt(any::<i64>()), reservation in opt(any::<i64>()), swap in opt(any::<i64>()),
        kernel in opt(any::<i64>()), kernel_tcp in opt(any::<i64>()),
        swappiness in opt(any::<u64>()), disable_oom_killer in opt(any::<bool>()),
    ) -> Memory {
        Memory { limit, reservation, swap, kernel, kernel_tcp, swappiness, disable_oom_killer }
    }
}

prop_compose! {
    fn cpu_unboxed()(
        shares in opt(any::<u64>()), quota in opt(any::<i64>()), period in opt(any::<u64>()),
        realtime_runtime in opt(any::<i64>()), realtime_period in opt(any::<u64>()),
        cpus in opt(string()), mems in opt(string()),
    ) -> Cpu {
        Cpu { shares, quota, period, realtime_runtime, realtime_period, cpus, mems }
    }
}

prop_compose! {
    fn throttle_unboxed()(major in any::<i64>(), minor in any::<i64>(), rate in any::<u64>())
        -> ThrottleDevice {
        ThrottleDevice { major, minor, rate }
    }
}

prop_compose! {
    fn blockio_unboxed()(
        weight in opt(any::<u16>()), leaf_weight in opt(any::<u16>()),
        weight_device in vec(
            (any::<i64>(), any::<i64>(), opt(any::<u16>()), opt(any::<u16>())).prop_map(
                |(major, minor, weight, leaf_weight)| WeightDevice { major, minor, weight, leaf_weight },
            ),
            0..2,
        ),
        throttle_read_bps_device in vec(throttle(), 0..2),
        throttle_write_bps_device in vec(throttle(), 0..2),
        throttle_read_iops_device in vec(throttle(), 0..2),
        throttle_write_iops_device in vec(throttle(), 0..2),
    ) -> BlockIo {
        BlockIo {
            weight, leaf_weight, weight_device, throttle_read_bps_device,
            throttle_write_bps_device, throttle_read_iops_device, throttle_write_iops_device,
        }
    }
}

prop_compose! {
    fn resources_unboxed()(
        devices in opt(vec(
            (any::<bool>(), opt(string()), opt(any::<i64>()), opt(any::<i64>()), opt(string()))
                .prop_map(|(allow, kind, major, minor, access)| DeviceCgroup {
                    allow, kind, major, minor, access,
                }),
            0..3,
        )),
        memory in opt(memory()),
        cpu in opt(cpu()),
        pids in opt(any::<i64>().prop_map(|limit| Pids { limit })),
        blockio in opt(blockio()),
        hugepage_limits in opt(vec(
            (string(), any::<u64>()).prop_map(|(page_size, limit)| HugepageLimit { page_size, limit }),
            0..2,
        )),
        network in opt((
            opt(any::<u32>()),
            vec((string(), any::<u32>()).prop_map(|(name, priority)| InterfacePriority { name, priority }), 0..2),
        ).prop_map(|(class_id, priorities)| Network { class_id, priorities })),
        unified in opt(string_map()),
    ) -> Resources {
        Resources { devices, memory, cpu, pids, blockio, hugepage_limits, network, unified }
    }
}

prop_compose! {
    fn bind_ns_unboxed()(
        cgroup in opt(string()), ipc in opt(string()), mnt in opt(string()), net in opt(string()),
        pid in opt(string()), user in opt(string()), uts in opt(string()),
    ) -> BindNs {
        BindNs { cgroup, ipc, mnt, net, pid, user, uts }
    }
}

prop_compose! {
    fn runtime_unboxed()(
        cgroups in opt(strings()),
        mounts in opt(vec(mount(), 0..2)),
        mkdir in opt(strings()),
        interfaces in opt(vec(
            (string(), string(), string(), any::<bool>()).prop_map(|(name, add, peer, create_in_root)| {
                Interface { name, add, peer, create_in_root }
            }),
            0..2,
        )),
        bind_ns in bind_ns(),
        namespace in opt(string()),
    ) -> Runtime {
        Runtime { cgroups, mounts, mkdir, interfaces, bind_ns, namespace }
    }
}

// Boxed, so that the strategy types (and their stack frames in debug
// builds) stay small.
fn kernel() -> BoxedStrategy<Kernel> {
    kernel_unboxed().boxed()
}

fn id_mapping() -> BoxedStrategy<IdMapping> {
    id_mapping_unboxed().boxed()
}

fn mount() -> BoxedStrategy<Mount> {
    mount_unboxed().boxed()
}

fn device() -> BoxedStrategy<Device> {
    device_unboxed().boxed()
}

fn memory() -> BoxedStrategy<Memory> {
    memory_unboxed().boxed()
}

fn cpu() -> BoxedStrategy<Cpu> {
    cpu_unboxed().boxed()
}

fn throttle() -> BoxedStrategy<ThrottleDevice> {
    throttle_unboxed().boxed()
}

fn blockio() -> BoxedStrategy<BlockIo> {
    blockio_unboxed().boxed()
}

fn resources() -> BoxedStrategy<Resources> {
    resources_unboxed().boxed()
}

fn bind_ns() -> BoxedStrategy<BindNs> {
    bind_ns_unboxed().boxed()
}

fn runtime() -> BoxedStrategy<Runtime> {
    runtime_unboxed().boxed()
}

fn image() -> BoxedStrategy<Image> {
    image_unboxed().boxed()
}

fn file() -> BoxedStrategy<File> {
    file_unboxed().boxed()
}

fn volume() -> BoxedStrategy<Volume> {
    volume_unboxed().boxed()
}

fn moby() -> BoxedStrategy<Moby> {
    moby_unboxed().boxed()
}

/// `ImageConfig` in three parts: proptest tuples stop at 12 elements.
type Part1 = (
    Option<Vec<String>>,
    Option<Vec<String>>,
    Option<Vec<String>>,
    Option<Vec<Mount>>,
    Option<Vec<String>>,
    Option<Vec<String>>,
    Option<Vec<Device>>,
    Option<Vec<String>>,
    Option<Vec<String>>,
    Option<Vec<String>>,
    Option<String>,
    Option<String>,
);
type Part2 = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
    Option<Vec<String>>,
    Option<Vec<String>>,
    Option<IdSpec>,
    Option<IdSpec>,
    Option<Vec<IdSpec>>,
    Option<bool>,
);
type Part3 = (
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<Resources>,
    Option<BTreeMap<String, String>>,
    Option<Vec<String>>,
    Option<Vec<IdMapping>>,
    Option<Vec<IdMapping>>,
    Option<BTreeMap<String, String>>,
    Option<Runtime>,
);

fn image_config() -> BoxedStrategy<ImageConfig> {
    let p1 = (
        opt(strings()),
        opt(strings()),
        opt(strings()),
        opt(vec(mount(), 0..2)),
        opt(strings()),
        opt(strings()),
        opt(vec(device(), 0..2)),
        opt(strings()),
        opt(strings()),
        opt(strings()),
        opt(string()),
        opt(string()),
    )
        .boxed();
    let p2 = (
        opt(string()),
        opt(string()),
        opt(string()),
        opt(string()),
        opt(string()),
        opt(any::<bool>()),
        opt(strings()),
        opt(strings()),
        opt(id_spec()),
        opt(id_spec()),
        opt(vec(id_spec(), 0..3)),
        opt(any::<bool>()),
    )
        .boxed();
    let p3 = (
        opt(any::<i32>()),
        opt(string()),
        opt(string()),
        opt(resources()),
        opt(string_map()),
        opt(strings()),
        opt(vec(id_mapping(), 0..2)),
        opt(vec(id_mapping(), 0..2)),
        opt(string_map()),
        opt(runtime()),
    )
        .boxed();
    (p1, p2, p3)
        .prop_map(|(a, b, c): (Part1, Part2, Part3)| {
            let (
                capabilities,
                capabilities_add,
                ambient,
                mounts,
                binds,
                binds_add,
                devices,
                tmpfs,
                command,
                env,
                cwd,
                net,
            ) = a;
            let (
                pid,
                ipc,
                uts,
                userns,
                hostname,
                readonly,
                masked_paths,
                readonly_paths,
                uid,
                gid,
                additional_gids,
                no_new_privileges,
            ) = b;
            let (
                oom_score_adj,
                rootfs_propagation,
                cgroups_path,
                resources,
                sysctl,
                rlimits,
                uid_mappings,
                gid_mappings,
                annotations,
                runtime,
            ) = c;
            ImageConfig {
                capabilities,
                capabilities_add,
                ambient,
                mounts,
                binds,
                binds_add,
                devices,
                tmpfs,
                command,
                env,
                cwd,
                net,
                pid,
                ipc,
                uts,
                userns,
                hostname,
                readonly,
                masked_paths,
                readonly_paths,
                uid,
                gid,
                additional_gids,
                no_new_privileges,
                oom_score_adj,
                rootfs_propagation,
                cgroups_path,
                resources,
                sysctl,
                rlimits,
                uid_mappings,
                gid_mappings,
                annotations,
                runtime,
            }
        })
        .boxed()
}

prop_compose! {
    fn image_unboxed()(name in string(), image in string(), config in image_config()) -> Image {
        Image { name, image, config }
    }
}

prop_compose! {
    fn file_unboxed()(
        path in string(), directory in any::<bool>(), symlink in opt(string()),
        contents in opt(string()), source in opt(string()),
        metadata in opt(prop_oneof![Just(MetadataFormat::Yaml), Just(MetadataFormat::Json)]),
        optional in any::<bool>(), mode in opt(string()), uid in opt(id_spec()), gid in opt(id_spec()),
    ) -> File {
        File { path, directory, symlink, contents, source, metadata, optional, mode, uid, gid }
    }
}

prop_compose! {
    fn volume_unboxed()(
        name in string(), image in string(), readonly in any::<bool>(),
        format in opt(prop_oneof![Just(VolumeFormat::Filesystem), Just(VolumeFormat::Oci)]),
        platforms in strings(),
    ) -> Volume {
        Volume { name, image, readonly, format, platforms }
    }
}

prop_compose! {
    fn moby_unboxed()(
        kernel in kernel(),
        init in strings(),
        onboot in vec(image(), 0..3),
        onshutdown in vec(image(), 0..2),
        services in vec(image(), 0..3),
        files in vec(file(), 0..3),
        volumes in vec(volume(), 0..3),
        trust in opt((strings(), strings()).prop_map(|(image, org)| Trust { image, org })),
    ) -> Moby {
        Moby { kernel, init, onboot, onshutdown, services, files, volumes, trust }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn yaml_round_trip(m in moby()) {
        let text = to_yaml(&m);
        let back = Config::parse("rendered.yml", &text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n---\n{text}")))?;
        prop_assert_eq!(&back.moby, &m, "rendered:\n{}", text);
        // Rendering is deterministic and a fixed point.
        prop_assert_eq!(to_yaml(&back.moby), text);
    }

    #[test]
    fn json_round_trip(m in moby()) {
        let text = to_json(&m);
        let back = Config::parse("rendered.json", &text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n---\n{text}")))?;
        prop_assert_eq!(&back.moby, &m, "rendered:\n{}", text);
        // It is JSON, too.
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n---\n{text}")))?;
        prop_assert!(v.is_object());
    }

    #[test]
    fn string_round_trip(s in string()) {
        let m = Moby { init: vec![s.clone()], ..Moby::default() };
        let text = to_yaml(&m);
        let back = Config::parse("s.yml", &text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n---\n{text}")))?;
        prop_assert_eq!(&back.moby.init, &vec![s], "rendered:\n{}", text);
    }

    #[test]
    fn image_label_round_trip(c in image_config()) {
        let label = serde_json::to_string(&c).unwrap();
        let back = parse_image_label("x", &label)
            .map_err(|e| TestCaseError::fail(format!("{e}\n---\n{label}")))?;
        prop_assert_eq!(back, c);
    }
}

#[test]
fn every_awkward_string_round_trips_everywhere() {
    for s in AWKWARD {
        let s = s.to_string();
        let mut sysctl = BTreeMap::new();
        sysctl.insert(s.clone(), s.clone());
        let m = Moby {
            kernel: Kernel {
                cmdline: s.clone(),
                tar: Some(s.clone()),
                ..Kernel::default()
            },
            init: vec![s.clone()],
            services: vec![Image {
                name: s.clone(),
                image: s.clone(),
                config: ImageConfig {
                    command: Some(vec![s.clone(), s.clone()]),
                    cwd: Some(s.clone()),
                    sysctl: Some(sysctl),
                    ..ImageConfig::default()
                },
            }],
            files: vec![File {
                path: s.clone(),
                contents: Some(s.clone()),
                mode: Some(s.clone()),
                ..File::default()
            }],
            ..Moby::default()
        };
        for text in [to_yaml(&m), to_json(&m)] {
            let back = Config::parse("awkward.yml", &text)
                .unwrap_or_else(|e| panic!("{s:?}: {e}\n---\n{text}"));
            assert_eq!(back.moby, m, "{s:?}\n---\n{text}");
        }
    }
}

#[test]
fn empty_config_renders_as_empty_mapping() {
    assert_eq!(to_yaml(&Moby::default()), "{}\n");
    assert_eq!(to_json(&Moby::default()), "{}");
}

#[test]
fn examples_parse_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yml") {
            continue;
        }
        n += 1;
        let name = path.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg = Config::parse(name, &text).unwrap_or_else(|e| panic!("{e}"));
        let checks = Checks {
            sources_exist: false,
            home: None,
            ..Checks::default()
        };
        cfg.validate(&checks).unwrap_or_else(|e| panic!("{e}"));
        // And they survive rendering.
        let again = Config::parse(name, &to_yaml(&cfg.moby)).unwrap();
        assert_eq!(again.moby, cfg.moby, "{name}");
    }
    assert!(n >= 2, "no examples found in {}", dir.display());
}

#[test]
fn long_strings_and_keys_round_trip() {
    let long = "k".repeat(5000);
    let mut sysctl = BTreeMap::new();
    sysctl.insert(long.clone(), long.clone());
    sysctl.insert(format!("{long} x: y"), "v".into());
    let m = Moby {
        services: vec![Image {
            name: long.clone(),
            image: "x".into(),
            config: ImageConfig {
                sysctl: Some(sysctl),
                ..ImageConfig::default()
            },
        }],
        ..Moby::default()
    };
    for text in [to_yaml(&m), to_json(&m)] {
        let back = Config::parse("long.yml", &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.moby, m);
    }
}
