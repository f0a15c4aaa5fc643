//! One test per schema field: the YAML key is read into the right field with
//! the right value. Plus go-yaml v2 leniency, anchors and merge keys, and the
//! `org.mobyproject.config` image label.

use std::collections::BTreeMap;

use linuxkit_config::*;

fn checks() -> Checks {
    Checks {
        sources_exist: false,
        home: None,
        ..Checks::default()
    }
}

/// Parses `text` (and checks it validates, so every example below is a
/// configuration LinuxKit accepts).
fn parse(text: &str) -> Moby {
    let cfg = Config::parse("fields.yml", text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    if let Err(e) = cfg.validate(&checks()) {
        panic!("does not validate: {e}\n---\n{text}");
    }
    cfg.moby
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}\n")
            }
        })
        .collect()
}

/// The image-spec fields of a service written with the extra keys `fields`
/// (a YAML mapping body, unindented).
fn svc(fields: &str) -> ImageConfig {
    let text = format!(
        "services:\n  - name: svc\n    image: alpine:3.20\n{}",
        indent(fields, 4)
    );
    let mut m = parse(&text);
    assert_eq!(m.services.len(), 1);
    m.services.remove(0).config
}

fn kernel(fields: &str) -> Kernel {
    parse(&format!(
        "kernel:\n  image: linuxkit/kernel:6.6\n{}",
        indent(fields, 2)
    ))
    .kernel
}

fn file(fields: &str) -> File {
    let mut m = parse(&format!("files:\n  - path: etc/x\n{}", indent(fields, 4)));
    m.files.remove(0)
}

fn volume(fields: &str) -> Volume {
    let mut m = parse(&format!("volumes:\n  - name: vol\n{}", indent(fields, 4)));
    m.volumes.remove(0)
}

fn resources(fields: &str) -> Resources {
    svc(&format!("resources:\n{}", indent(fields, 2)))
        .resources
        .unwrap()
}

fn runtime(fields: &str) -> Runtime {
    svc(&format!("runtime:\n{}", indent(fields, 2)))
        .runtime
        .unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn map(v: &[(&str, &str)]) -> BTreeMap<String, String> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn idmap(c: u32, h: u32, size: u32) -> IdMapping {
    IdMapping {
        container_id: c,
        host_id: h,
        size,
    }
}

// ---------------------------------------------------------------- Moby

#[test]
fn moby_empty_document_is_empty_config() {
    assert_eq!(parse(""), Moby::default());
    assert_eq!(parse("# only a comment\n"), Moby::default());
    assert_eq!(parse("{}\n"), Moby::default());
}

#[test]
fn moby_kernel() {
    let m = parse("kernel:\n  image: linuxkit/kernel:6.6\n");
    assert_eq!(m.kernel.image, "linuxkit/kernel:6.6");
}

#[test]
fn moby_init() {
    let m = parse("init:\n  - linuxkit/init:v1\n  - linuxkit/runc:v1\n");
    assert_eq!(m.init, ["linuxkit/init:v1", "linuxkit/runc:v1"]);
}

#[test]
fn moby_init_null_is_empty() {
    assert!(parse("init:\n").init.is_empty());
    assert!(parse("init: ~\n").init.is_empty());
}

#[test]
fn moby_onboot() {
    let m =
        parse("onboot:\n  - name: a\n    image: alpine:3.20\n  - name: b\n    image: busybox\n");
    let names: Vec<_> = m.onboot.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(m.onboot[1].image, "busybox");
}

#[test]
fn moby_onshutdown() {
    let m = parse("onshutdown:\n  - name: bye\n    image: busybox\n");
    assert_eq!(m.onshutdown[0].name, "bye");
    assert_eq!(m.onshutdown[0].image, "busybox");
}

#[test]
fn moby_services() {
    let m = parse("services:\n  - name: getty\n    image: linuxkit/getty:v1\n");
    assert_eq!(
        m.services,
        [Image {
            name: "getty".into(),
            image: "linuxkit/getty:v1".into(),
            config: ImageConfig::default(),
        }]
    );
}

#[test]
fn moby_files() {
    let m =
        parse("files:\n  - path: etc/a\n    contents: x\n  - path: etc/b\n    directory: true\n");
    assert_eq!(m.files.len(), 2);
    assert_eq!(m.files[1].path, "etc/b");
}

#[test]
fn moby_volumes() {
    let m = parse("volumes:\n  - name: a\n  - name: b\n");
    let names: Vec<_> = m.volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn moby_trust() {
    let m = parse("trust:\n  image: [linuxkit/kernel]\n  org: [linuxkit]\n");
    assert_eq!(
        m.trust,
        Some(Trust {
            image: strings(&["linuxkit/kernel"]),
            org: strings(&["linuxkit"]),
        })
    );
    let cfg = Config::parse("t.yml", "trust:\n  org: [linuxkit]\n").unwrap();
    let warnings = cfg.validate(&checks()).unwrap();
    assert!(warnings[0].message.contains("trust"), "{warnings:?}");
}

// ---------------------------------------------------------------- Kernel

#[test]
fn kernel_image() {
    assert_eq!(kernel("").image, "linuxkit/kernel:6.6");
}

#[test]
fn kernel_cmdline() {
    assert_eq!(
        kernel("cmdline: console=tty0 console=ttyS0 quiet").cmdline,
        "console=tty0 console=ttyS0 quiet"
    );
}

#[test]
fn kernel_binary() {
    assert_eq!(kernel("binary: bzImage").binary, "bzImage");
}

#[test]
fn kernel_tar() {
    assert_eq!(kernel("tar: none").tar.as_deref(), Some("none"));
    assert_eq!(kernel("").tar, None);
}

#[test]
fn kernel_ucode() {
    assert_eq!(
        kernel("ucode: intel-ucode.cpio").ucode.as_deref(),
        Some("intel-ucode.cpio")
    );
    assert_eq!(kernel("").ucode, None);
}

// ---------------------------------------------------------------- File

#[test]
fn file_path() {
    assert_eq!(file("contents: x").path, "etc/x");
}

#[test]
fn file_directory() {
    let f = file("directory: true");
    assert!(f.directory);
    assert!(!file("contents: x").directory);
}

#[test]
fn file_symlink() {
    assert_eq!(file("symlink: /etc/y").symlink.as_deref(), Some("/etc/y"));
}

#[test]
fn file_contents() {
    assert_eq!(
        file("contents: |\n  line 1\n  line 2\n")
            .contents
            .as_deref(),
        Some("line 1\nline 2\n")
    );
    // An empty file is `contents: ""`, which is not "no contents".
    assert_eq!(file("contents: \"\"").contents.as_deref(), Some(""));
}

#[test]
fn file_source() {
    assert_eq!(
        file("source: /etc/hostname").source.as_deref(),
        Some("/etc/hostname")
    );
}

#[test]
fn file_metadata() {
    assert_eq!(file("metadata: yaml").metadata, Some(MetadataFormat::Yaml));
    assert_eq!(file("metadata: json").metadata, Some(MetadataFormat::Json));
}

#[test]
fn file_optional() {
    let f = file("source: /nonexistent/x\noptional: true");
    assert!(f.optional);
}

#[test]
fn file_mode() {
    assert_eq!(
        file("contents: x\nmode: \"0644\"").mode.as_deref(),
        Some("0644")
    );
}

#[test]
fn file_uid() {
    assert_eq!(file("contents: x\nuid: 1000").uid, Some(IdSpec::Id(1000)));
    assert_eq!(
        file("contents: x\nuid: root").uid,
        Some(IdSpec::Name("root".into()))
    );
}

#[test]
fn file_gid() {
    assert_eq!(file("contents: x\ngid: 50").gid, Some(IdSpec::Id(50)));
    assert_eq!(
        parse("services:\n  - name: web\n    image: nginx\nfiles:\n  - path: a\n    contents: x\n    gid: web\n")
            .files[0]
            .gid,
        Some(IdSpec::Name("web".into()))
    );
}

// ---------------------------------------------------------------- Volume

#[test]
fn volume_name() {
    assert_eq!(volume("").name, "vol");
}

#[test]
fn volume_image() {
    assert_eq!(volume("image: alpine:3.20").image, "alpine:3.20");
}

#[test]
fn volume_readonly() {
    assert!(volume("readonly: true").readonly);
    assert!(!volume("").readonly);
}

#[test]
fn volume_format() {
    assert_eq!(
        volume("image: alpine:3.20\nformat: oci").format,
        Some(VolumeFormat::Oci)
    );
    assert_eq!(
        volume("image: alpine:3.20\nformat: filesystem").format,
        Some(VolumeFormat::Filesystem)
    );
}

#[test]
fn volume_platforms() {
    assert_eq!(
        volume("image: alpine:3.20\nformat: oci\nplatforms: [linux/amd64, linux/arm64]").platforms,
        ["linux/amd64", "linux/arm64"]
    );
}

// ---------------------------------------------------------------- Image

#[test]
fn image_name_and_image() {
    let m = parse("onboot:\n  - name: sysctl\n    image: linuxkit/sysctl:v1@sha256:abc\n");
    assert_eq!(m.onboot[0].name, "sysctl");
    assert_eq!(m.onboot[0].image, "linuxkit/sysctl:v1@sha256:abc");
}

#[test]
fn image_no_fields_is_all_none() {
    assert_eq!(svc(""), ImageConfig::default());
}

#[test]
fn image_capabilities() {
    assert_eq!(
        svc("capabilities: [CAP_NET_ADMIN, CAP_SYS_ADMIN]").capabilities,
        Some(strings(&["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]))
    );
    // Present but empty differs from absent: it clears the label's list.
    assert_eq!(svc("capabilities: []").capabilities, Some(vec![]));
    assert_eq!(
        svc("capabilities: [all]").capabilities,
        Some(strings(&["all"]))
    );
}

#[test]
fn image_capabilities_add() {
    let c = svc("capabilities.add:\n  - CAP_SYS_TIME");
    assert_eq!(c.capabilities_add, Some(strings(&["CAP_SYS_TIME"])));
    assert_eq!(c.capabilities, None);
}

#[test]
fn image_ambient() {
    assert_eq!(
        svc("ambient: [CAP_NET_BIND_SERVICE]").ambient,
        Some(strings(&["CAP_NET_BIND_SERVICE"]))
    );
}

#[test]
fn image_mounts() {
    let c = svc(
        "mounts:\n  - type: cgroup\n    source: cgroup\n    destination: /sys/fs/cgroup\n    options: [ro, nosuid]",
    );
    assert_eq!(
        c.mounts,
        Some(vec![Mount {
            destination: "/sys/fs/cgroup".into(),
            kind: "cgroup".into(),
            source: "cgroup".into(),
            options: strings(&["ro", "nosuid"]),
            uid_mappings: vec![],
            gid_mappings: vec![],
        }])
    );
}

#[test]
fn image_mounts_uid_and_gid_mappings() {
    let c = svc(concat!(
        "mounts:\n",
        "  - type: bind\n",
        "    source: /data\n",
        "    destination: /data\n",
        "    options: [rbind, idmap]\n",
        "    uidMappings:\n",
        "      - {containerID: 0, hostID: 100000, size: 65536}\n",
        "    gidMappings:\n",
        "      - containerID: 0\n",
        "        hostID: 200000\n",
        "        size: 1000\n",
    ));
    let m = &c.mounts.unwrap()[0];
    assert_eq!(m.uid_mappings, [idmap(0, 100000, 65536)]);
    assert_eq!(m.gid_mappings, [idmap(0, 200000, 1000)]);
}

#[test]
fn image_binds() {
    assert_eq!(
        svc("binds:\n  - /etc/resolv.conf:/etc/resolv.conf\n  - /var:/var:rshared,rbind").binds,
        Some(strings(&[
            "/etc/resolv.conf:/etc/resolv.conf",
            "/var:/var:rshared,rbind"
        ]))
    );
}

#[test]
fn image_binds_add() {
    let c = svc("binds.add: [/lib/modules:/lib/modules]");
    assert_eq!(c.binds_add, Some(strings(&["/lib/modules:/lib/modules"])));
    assert_eq!(c.binds, None);
}

#[test]
fn image_devices() {
    let c = svc(concat!(
        "devices:\n",
        "  - path: /dev/console\n",
        "    type: c\n",
        "    major: 5\n",
        "    minor: 1\n",
        "    mode: \"0666\"\n",
        "  - path: all\n",
        "    type: b\n",
    ));
    assert_eq!(
        c.devices,
        Some(vec![
            Device {
                path: "/dev/console".into(),
                kind: "c".into(),
                major: 5,
                minor: 1,
                mode: Some("0666".into()),
            },
            Device {
                path: "all".into(),
                kind: "b".into(),
                major: 0,
                minor: 0,
                mode: None,
            },
        ])
    );
}

#[test]
fn image_tmpfs() {
    assert_eq!(
        svc("tmpfs: [/run:size=64m, /tmp]").tmpfs,
        Some(strings(&["/run:size=64m", "/tmp"]))
    );
}

#[test]
fn image_command() {
    assert_eq!(
        svc("command: [/bin/sh, -c, 'echo \"hi\"; exit 0']").command,
        Some(strings(&["/bin/sh", "-c", "echo \"hi\"; exit 0"]))
    );
}

#[test]
fn image_env() {
    assert_eq!(
        svc("env:\n  - INSECURE=true\n  - EMPTY=").env,
        Some(strings(&["INSECURE=true", "EMPTY="]))
    );
}

#[test]
fn image_cwd() {
    assert_eq!(svc("cwd: /srv").cwd.as_deref(), Some("/srv"));
}

#[test]
fn image_net() {
    assert_eq!(svc("net: host").net.as_deref(), Some("host"));
    assert_eq!(svc("net: none").net.as_deref(), Some("none"));
    assert_eq!(
        svc("net: /run/netns/x").net.as_deref(),
        Some("/run/netns/x")
    );
}

#[test]
fn image_pid() {
    assert_eq!(svc("pid: host").pid.as_deref(), Some("host"));
}

#[test]
fn image_ipc() {
    assert_eq!(svc("ipc: new").ipc.as_deref(), Some("new"));
}

#[test]
fn image_uts() {
    assert_eq!(svc("uts: host").uts.as_deref(), Some("host"));
}

#[test]
fn image_userns() {
    assert_eq!(
        svc("userns: /run/userns/x").userns.as_deref(),
        Some("/run/userns/x")
    );
}

#[test]
fn image_hostname() {
    assert_eq!(svc("hostname: box").hostname.as_deref(), Some("box"));
}

#[test]
fn image_readonly() {
    assert_eq!(svc("readonly: true").readonly, Some(true));
    assert_eq!(svc("readonly: false").readonly, Some(false));
}

#[test]
fn image_masked_paths() {
    assert_eq!(
        svc("maskedPaths: [/proc/kcore]").masked_paths,
        Some(strings(&["/proc/kcore"]))
    );
}

#[test]
fn image_readonly_paths() {
    assert_eq!(
        svc("readonlyPaths: [/proc/sys]").readonly_paths,
        Some(strings(&["/proc/sys"]))
    );
}

#[test]
fn image_uid() {
    assert_eq!(svc("uid: 1000").uid, Some(IdSpec::Id(1000)));
    assert_eq!(svc("uid: root").uid, Some(IdSpec::Name("root".into())));
    // A container's own name allocates it a uid.
    assert_eq!(svc("uid: svc").uid, Some(IdSpec::Name("svc".into())));
}

#[test]
fn image_gid() {
    assert_eq!(svc("gid: 0").gid, Some(IdSpec::Id(0)));
    assert_eq!(svc("gid: svc").gid, Some(IdSpec::Name("svc".into())));
}

#[test]
fn image_additional_gids() {
    assert_eq!(
        svc("additionalGids: [10, root, svc]").additional_gids,
        Some(vec![
            IdSpec::Id(10),
            IdSpec::Name("root".into()),
            IdSpec::Name("svc".into())
        ])
    );
}

#[test]
fn image_no_new_privileges() {
    assert_eq!(svc("noNewPrivileges: true").no_new_privileges, Some(true));
}

#[test]
fn image_oom_score_adj() {
    assert_eq!(svc("oomScoreAdj: -800").oom_score_adj, Some(-800));
    assert_eq!(svc("oomScoreAdj: 1000").oom_score_adj, Some(1000));
}

#[test]
fn image_rootfs_propagation() {
    assert_eq!(
        svc("rootfsPropagation: shared")
            .rootfs_propagation
            .as_deref(),
        Some("shared")
    );
}

#[test]
fn image_cgroups_path() {
    assert_eq!(
        svc("cgroupsPath: /linuxkit/svc").cgroups_path.as_deref(),
        Some("/linuxkit/svc")
    );
}

#[test]
fn image_resources_is_present_when_empty() {
    assert_eq!(svc("resources: {}").resources, Some(Resources::default()));
}

#[test]
fn image_resources_memory() {
    let r = resources(concat!(
        "memory:\n",
        "  limit: 536870912\n",
        "  reservation: 1024\n",
        "  swap: -1\n",
        "  kernel: 2048\n",
        "  kernelTCP: 4096\n",
        "  swappiness: 60\n",
        "  disableOOMKiller: true\n",
    ));
    assert_eq!(
        r.memory,
        Some(Memory {
            limit: Some(536870912),
            reservation: Some(1024),
            swap: Some(-1),
            kernel: Some(2048),
            kernel_tcp: Some(4096),
            swappiness: Some(60),
            disable_oom_killer: Some(true),
        })
    );
}

#[test]
fn image_resources_cpu() {
    let r = resources(concat!(
        "cpu:\n",
        "  shares: 512\n",
        "  quota: 50000\n",
        "  period: 100000\n",
        "  realtimeRuntime: 950000\n",
        "  realtimePeriod: 1000000\n",
        "  cpus: 0-3\n",
        "  mems: \"0\"\n",
    ));
    assert_eq!(
        r.cpu,
        Some(Cpu {
            shares: Some(512),
            quota: Some(50000),
            period: Some(100000),
            realtime_runtime: Some(950000),
            realtime_period: Some(1000000),
            cpus: Some("0-3".into()),
            mems: Some("0".into()),
        })
    );
}

#[test]
fn image_resources_pids() {
    assert_eq!(
        resources("pids:\n  limit: 100").pids,
        Some(Pids { limit: 100 })
    );
}

#[test]
fn image_resources_blockio() {
    let r = resources(concat!(
        "blockio:\n",
        "  weight: 500\n",
        "  leafWeight: 300\n",
        "  weightDevice:\n",
        "    - {major: 8, minor: 0, weight: 700, leafWeight: 100}\n",
        "  throttleReadBpsDevice:\n",
        "    - {major: 8, minor: 0, rate: 1048576}\n",
        "  throttleWriteBpsDevice:\n",
        "    - {major: 8, minor: 1, rate: 2}\n",
        "  throttleReadIOPSDevice:\n",
        "    - {major: 8, minor: 2, rate: 3}\n",
        "  throttleWriteIOPSDevice:\n",
        "    - {major: 8, minor: 3, rate: 4}\n",
    ));
    let t = |minor, rate| ThrottleDevice {
        major: 8,
        minor,
        rate,
    };
    assert_eq!(
        r.blockio,
        Some(BlockIo {
            weight: Some(500),
            leaf_weight: Some(300),
            weight_device: vec![WeightDevice {
                major: 8,
                minor: 0,
                weight: Some(700),
                leaf_weight: Some(100),
            }],
            throttle_read_bps_device: vec![t(0, 1048576)],
            throttle_write_bps_device: vec![t(1, 2)],
            throttle_read_iops_device: vec![t(2, 3)],
            throttle_write_iops_device: vec![t(3, 4)],
        })
    );
}

#[test]
fn image_resources_hugepage_limits() {
    assert_eq!(
        resources("hugepageLimits:\n  - pageSize: 2MB\n    limit: 209715200").hugepage_limits,
        Some(vec![HugepageLimit {
            page_size: "2MB".into(),
            limit: 209715200,
        }])
    );
}

#[test]
fn image_resources_network() {
    assert_eq!(
        resources("network:\n  classID: 1048577\n  priorities:\n    - {name: eth0, priority: 5}")
            .network,
        Some(Network {
            class_id: Some(1048577),
            priorities: vec![InterfacePriority {
                name: "eth0".into(),
                priority: 5,
            }],
        })
    );
}

#[test]
fn image_resources_devices() {
    assert_eq!(
        resources(concat!(
            "devices:\n",
            "  - allow: false\n",
            "    access: rwm\n",
            "  - allow: true\n",
            "    type: c\n",
            "    major: 10\n",
            "    minor: 200\n",
            "    access: rw\n",
        ))
        .devices,
        Some(vec![
            DeviceCgroup {
                allow: false,
                kind: None,
                major: None,
                minor: None,
                access: Some("rwm".into()),
            },
            DeviceCgroup {
                allow: true,
                kind: Some("c".into()),
                major: Some(10),
                minor: Some(200),
                access: Some("rw".into()),
            },
        ])
    );
}

#[test]
fn image_resources_unified() {
    assert_eq!(
        resources("unified:\n  memory.high: \"1073741824\"\n  pids.max: max").unified,
        Some(map(&[("memory.high", "1073741824"), ("pids.max", "max")]))
    );
}

#[test]
fn image_sysctl() {
    assert_eq!(
        svc("sysctl:\n  net.ipv4.ip_forward: 1\n  kernel.panic: \"10\"").sysctl,
        Some(map(&[("kernel.panic", "10"), ("net.ipv4.ip_forward", "1")]))
    );
}

#[test]
fn image_rlimits() {
    assert_eq!(
        svc("rlimits: [\"nofile,1024,4096\", \"RLIMIT_CORE,unlimited,unlimited\"]").rlimits,
        Some(strings(&[
            "nofile,1024,4096",
            "RLIMIT_CORE,unlimited,unlimited"
        ]))
    );
}

#[test]
fn image_uid_mappings() {
    assert_eq!(
        svc("uidMappings:\n  - containerID: 0\n    hostID: 1000\n    size: 1").uid_mappings,
        Some(vec![idmap(0, 1000, 1)])
    );
}

#[test]
fn image_gid_mappings() {
    assert_eq!(
        svc("gidMappings:\n  - {containerID: 1, hostID: 2000, size: 10}").gid_mappings,
        Some(vec![idmap(1, 2000, 10)])
    );
}

#[test]
fn image_annotations() {
    assert_eq!(
        svc("annotations:\n  org.opencontainers.image.title: svc\n  x: \"yes\"").annotations,
        Some(map(&[
            ("org.opencontainers.image.title", "svc"),
            ("x", "yes")
        ]))
    );
}

#[test]
fn image_runtime_is_present_when_empty() {
    assert_eq!(svc("runtime: {}").runtime, Some(Runtime::default()));
}

#[test]
fn image_runtime_cgroups() {
    assert_eq!(
        runtime("cgroups: [systemreserved, podruntime]").cgroups,
        Some(strings(&["systemreserved", "podruntime"]))
    );
}

#[test]
fn image_runtime_mounts() {
    assert_eq!(
        runtime(
            "mounts:\n  - type: bind\n    source: /a\n    destination: /b\n    options: [rbind]"
        )
        .mounts,
        Some(vec![Mount {
            destination: "/b".into(),
            kind: "bind".into(),
            source: "/a".into(),
            options: strings(&["rbind"]),
            ..Mount::default()
        }])
    );
}

#[test]
fn image_runtime_mkdir() {
    assert_eq!(
        runtime("mkdir: [/var/lib/docker]").mkdir,
        Some(strings(&["/var/lib/docker"]))
    );
}

#[test]
fn image_runtime_interfaces() {
    assert_eq!(
        runtime(concat!(
            "interfaces:\n",
            "  - name: eth1\n",
            "  - name: veth0\n",
            "    add: veth\n",
            "    peer: veth1\n",
            "    createInRoot: true\n",
        ))
        .interfaces,
        Some(vec![
            Interface {
                name: "eth1".into(),
                ..Interface::default()
            },
            Interface {
                name: "veth0".into(),
                add: "veth".into(),
                peer: "veth1".into(),
                create_in_root: true,
            },
        ])
    );
}

#[test]
fn image_runtime_bind_ns() {
    assert_eq!(
        runtime(concat!(
            "bindNS:\n",
            "  cgroup: /run/ns/cgroup\n",
            "  ipc: /run/ns/ipc\n",
            "  mnt: /run/ns/mnt\n",
            "  net: /run/ns/net\n",
            "  pid: /run/ns/pid\n",
            "  user: /run/ns/user\n",
            "  uts: /run/ns/uts\n",
        ))
        .bind_ns,
        BindNs {
            cgroup: Some("/run/ns/cgroup".into()),
            ipc: Some("/run/ns/ipc".into()),
            mnt: Some("/run/ns/mnt".into()),
            net: Some("/run/ns/net".into()),
            pid: Some("/run/ns/pid".into()),
            user: Some("/run/ns/user".into()),
            uts: Some("/run/ns/uts".into()),
        }
    );
}

#[test]
fn image_runtime_namespace() {
    assert_eq!(
        runtime("namespace: services.linuxkit").namespace.as_deref(),
        Some("services.linuxkit")
    );
}

#[test]
fn image_config_keys_cover_every_field() {
    // Every key listed in the reference's ImageConfig, in its order, plus
    // `runtime`.
    assert_eq!(
        ImageConfig::KEYS,
        [
            "capabilities",
            "capabilities.add",
            "ambient",
            "mounts",
            "binds",
            "binds.add",
            "devices",
            "tmpfs",
            "command",
            "env",
            "cwd",
            "net",
            "pid",
            "ipc",
            "uts",
            "userns",
            "hostname",
            "readonly",
            "maskedPaths",
            "readonlyPaths",
            "uid",
            "gid",
            "additionalGids",
            "noNewPrivileges",
            "oomScoreAdj",
            "rootfsPropagation",
            "cgroupsPath",
            "resources",
            "sysctl",
            "rlimits",
            "uidMappings",
            "gidMappings",
            "annotations",
            "runtime",
        ]
    );
}

// ---------------------------------------------------------------- image label

#[test]
fn parse_image_label_json() {
    let label = r#"{"capabilities":["CAP_SYS_ADMIN"],"binds":["/dev:/dev"],"net":"host","readonly":true,"oomScoreAdj":-999,"uid":0,"runtime":{"mkdir":["/var/lib/x"]},"sysctl":{"vm.swappiness":"0"}}"#;
    let c = parse_image_label("linuxkit/foo:v1", label).unwrap();
    assert_eq!(c.capabilities, Some(strings(&["CAP_SYS_ADMIN"])));
    assert_eq!(c.binds, Some(strings(&["/dev:/dev"])));
    assert_eq!(c.net.as_deref(), Some("host"));
    assert_eq!(c.readonly, Some(true));
    assert_eq!(c.oom_score_adj, Some(-999));
    assert_eq!(c.uid, Some(IdSpec::Id(0)));
    assert_eq!(c.runtime.unwrap().mkdir, Some(strings(&["/var/lib/x"])));
    assert_eq!(c.sysctl, Some(map(&[("vm.swappiness", "0")])));
    assert_eq!(c.command, None);
}

#[test]
fn parse_image_label_empty_object() {
    assert_eq!(
        parse_image_label("x", "{}").unwrap(),
        ImageConfig::default()
    );
}

#[test]
fn parse_image_label_refuses_name_and_image() {
    let e = parse_image_label("linuxkit/foo:v1", r#"{"name":"x"}"#).unwrap_err();
    let s = e.to_string();
    assert!(
        s.starts_with("label org.mobyproject.config of linuxkit/foo:v1:1:2: unknown field `name`"),
        "{s}"
    );
    let e = parse_image_label("foo", "{\n  \"image\": \"x\"\n}").unwrap_err();
    assert_eq!(e.mark, Some(Mark { line: 2, column: 3 }));
}

#[test]
fn parse_image_label_bad_json_is_located() {
    let e = parse_image_label("foo", r#"{"capabilities": ["#).unwrap_err();
    assert_eq!(
        e.file.as_deref(),
        Some("label org.mobyproject.config of foo")
    );
    assert!(e.message.contains("invalid YAML"), "{e}");
}

// ---------------------------------------------------------------- go-yaml v2 leniency

#[test]
fn lenient_mode_0755_stays_a_string() {
    assert_eq!(
        file("contents: x\nmode: 0755").mode.as_deref(),
        Some("0755")
    );
    let c = svc("devices:\n  - {path: /dev/null, type: c, major: 1, minor: 3, mode: 0666}");
    assert_eq!(c.devices.unwrap()[0].mode.as_deref(), Some("0666"));
}

#[test]
fn lenient_numbers_and_bools_as_strings_keep_their_text() {
    assert_eq!(svc("hostname: 1.10").hostname.as_deref(), Some("1.10"));
    assert_eq!(svc("cwd: /1").cwd.as_deref(), Some("/1"));
    assert_eq!(
        svc_env_unchecked("env: [A=1, 0x10, 1.5, true]"),
        Some(strings(&["A=1", "0x10", "1.5", "true"]))
    );
    assert_eq!(file("contents: yes").contents.as_deref(), Some("yes"));
    assert_eq!(file("contents: 0o17").contents.as_deref(), Some("0o17"));
    assert_eq!(kernel("cmdline: 1e3").cmdline, "1e3");
}

/// `env` entries that are not `NAME=value` do not validate, so read them
/// without validating.
fn svc_env_unchecked(fields: &str) -> Option<Vec<String>> {
    let text = format!(
        "services:\n  - name: svc\n    image: alpine:3.20\n{}",
        indent(fields, 4)
    );
    Config::parse("t.yml", &text).unwrap().moby.services[0]
        .config
        .env
        .clone()
}

#[test]
fn lenient_yaml_1_1_booleans() {
    assert_eq!(svc("readonly: yes").readonly, Some(true));
    assert_eq!(svc("readonly: no").readonly, Some(false));
    assert_eq!(svc("readonly: On").readonly, Some(true));
    assert_eq!(svc("noNewPrivileges: off").no_new_privileges, Some(false));
    assert!(volume("readonly: Y").readonly);
    assert!(file("directory: TRUE").directory);
}

#[test]
fn lenient_quoted_numbers_for_integer_fields() {
    assert_eq!(svc("oomScoreAdj: \"-500\"").oom_score_adj, Some(-500));
    let c =
        svc("devices:\n  - {path: /dev/sda, type: b, major: \"8\", minor: '0', mode: \"0660\"}");
    let d = &c.devices.unwrap()[0];
    assert_eq!((d.major, d.minor), (8, 0));
    assert_eq!(
        resources("pids:\n  limit: \"64\"").pids,
        Some(Pids { limit: 64 })
    );
}

#[test]
fn lenient_integer_forms() {
    // YAML 1.1 octal and hex, as go-yaml v2 reads them.
    assert_eq!(svc("oomScoreAdj: 0x10").oom_score_adj, Some(16));
    assert_eq!(svc("oomScoreAdj: 010").oom_score_adj, Some(8));
    assert_eq!(svc("oomScoreAdj: +5").oom_score_adj, Some(5));
    assert_eq!(
        resources("pids:\n  limit: 1_000").pids,
        Some(Pids { limit: 1000 })
    );
}

#[test]
fn lenient_uid_numbers_and_quoted_numbers() {
    assert_eq!(file("contents: x\nuid: \"42\"").uid, Some(IdSpec::Id(42)));
    // A plain 0755 is an (octal) integer for an untyped field, as in go-yaml v2.
    assert_eq!(file("contents: x\nuid: 0755").uid, Some(IdSpec::Id(0o755)));
}

#[test]
fn lenient_null_string_fields_are_empty() {
    assert_eq!(kernel("cmdline:").cmdline, "");
    assert_eq!(kernel("cmdline: ~").cmdline, "");
    assert_eq!(svc("cwd:").cwd, None);
}

#[test]
fn lenient_quoted_null_and_bool_words_stay_strings() {
    assert_eq!(svc("hostname: \"null\"").hostname.as_deref(), Some("null"));
    assert_eq!(svc("hostname: 'yes'").hostname.as_deref(), Some("yes"));
}

// ---------------------------------------------------------------- anchors and merge keys

#[test]
fn anchors_and_aliases() {
    let m = parse(concat!(
        "onboot:\n",
        "  - name: a\n",
        "    image: &img alpine:3.20\n",
        "    capabilities: &caps [CAP_NET_ADMIN, CAP_SYS_ADMIN]\n",
        "services:\n",
        "  - name: b\n",
        "    image: *img\n",
        "    capabilities: *caps\n",
    ));
    assert_eq!(m.services[0].image, "alpine:3.20");
    assert_eq!(
        m.services[0].config.capabilities,
        m.onboot[0].config.capabilities
    );
}

#[test]
fn merge_key_with_override() {
    let m = parse(concat!(
        "onboot:\n",
        "  - &base\n",
        "    name: a\n",
        "    image: alpine:3.20\n",
        "    net: host\n",
        "    binds: [/etc/resolv.conf:/etc/resolv.conf]\n",
        "services:\n",
        "  - <<: *base\n",
        "    name: b\n",
        "    net: new\n",
    ));
    let b = &m.services[0];
    assert_eq!(b.name, "b");
    assert_eq!(b.image, "alpine:3.20");
    assert_eq!(b.config.net.as_deref(), Some("new"));
    assert_eq!(
        b.config.binds,
        Some(strings(&["/etc/resolv.conf:/etc/resolv.conf"]))
    );
}

#[test]
fn merge_key_with_list_of_mappings() {
    let m = parse(concat!(
        "onboot:\n",
        "  - &one {name: one, image: alpine:3.20, pid: host}\n",
        "  - &two {name: two, image: busybox, ipc: host, pid: new}\n",
        "services:\n",
        "  - <<: [*one, *two]\n",
        "    name: three\n",
    ));
    let c = &m.services[0];
    assert_eq!(c.name, "three");
    // The first mapping listed wins, as in YAML's merge key spec.
    assert_eq!(c.image, "alpine:3.20");
    assert_eq!(c.config.pid.as_deref(), Some("host"));
    assert_eq!(c.config.ipc.as_deref(), Some("host"));
}

#[test]
fn merge_key_of_a_scalar_is_an_error() {
    let e = Config::parse("t.yml", "kernel:\n  <<: x\n").unwrap_err();
    assert_eq!(e.to_string(), "t.yml:2:7: `<<` merges mappings only");
}

#[test]
fn quoted_merge_key_is_an_ordinary_key() {
    let e = Config::parse("t.yml", "kernel:\n  \"<<\": {image: x}\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `<<`"), "{e}");
}

#[test]
fn json_is_yaml() {
    let m = parse(
        r#"{"kernel": {"image": "linuxkit/kernel:6.6", "cmdline": "quiet"}, "init": ["linuxkit/init:v1"], "services": [{"name": "a", "image": "alpine:3.20", "readonly": true}]}"#,
    );
    assert_eq!(m.kernel.cmdline, "quiet");
    assert_eq!(m.services[0].config.readonly, Some(true));
}
