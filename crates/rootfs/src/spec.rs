//! A container bundle's two JSON files: the OCI runtime spec `config.json`
//! (the reference's `moby.ConfigToOCI`) and LinuxKit's own `runtime.json`
//! (what the in-VM runner does around `runc create`).
//!
//! Settings come from three places, and the first that *has* a setting wins:
//! the container's YAML entry, the image's `org.mobyproject.config` label,
//! then the image config (`Entrypoint`, `Cmd`, `Env`, `WorkingDir` only).
//! "Has" means the key is present: `capabilities: []` in YAML replaces the
//! label's list. The output is byte-for-byte what the reference's Go
//! `json.MarshalIndent(v, "", "    ")` writes for the same value: fields in
//! the runtime-spec structs' order, map keys sorted, `<`, `>`, `&` escaped.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use linuxkit_config::{
    Bind, BlockIo, Cpu, Device, DeviceCgroup, HugepageLimit, IdMap, IdMapping, IdSpec, Image,
    ImageConfig, Memory, Mount, Network, Pids, ReadOnly, Resources, RuntimeJson, Volume,
    parse_device_mode, parse_tmpfs,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `ociVersion` written to `config.json`. The reference writes the
/// runtime-spec release it links against (1.2.1); every field written here
/// is already in 1.0.2, and crun as Debian 12 ships it refuses a config
/// newer than 1.1 ("unknown version specified"), while runc takes any.
pub const OCI_VERSION: &str = "1.0.2";

/// Where volume `NAME` lives in the image: `VOLUMES_DIR/NAME/{lower,tmp,merged}`.
pub const VOLUMES_DIR: &str = "/containers/volumes";

/// The image-config label holding a container's default LinuxKit settings.
pub const CONFIG_LABEL: &str = "org.mobyproject.config";

/// Every capability, in kernel number order: what `capabilities: [all]`
/// expands to (the reference uses `capability.ListKnown()`, same order).
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const RLIMITS: &[&str] = &[
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

// ---------------------------------------------------------------------------
// Image config defaults

/// What a container takes from its image's config: the command, the
/// environment and the working directory (the image's `User` is ignored, as
/// in the reference), plus the raw `org.mobyproject.config` label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRuntimeDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// The `org.mobyproject.config` label, if the image has a non-empty one.
    pub label: Option<String>,
}

#[derive(Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    config: Option<ConfigSection>,
}

#[derive(Deserialize)]
struct ConfigSection {
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
}

impl ImageRuntimeDefaults {
    /// Reads `config.{Entrypoint,Cmd,Env,WorkingDir,Labels}` from an OCI or
    /// Docker image config blob. Missing and `null` values are empty.
    pub fn from_image_config_json(blob: &[u8]) -> Result<ImageRuntimeDefaults> {
        let parsed: ConfigBlob = serde_json::from_slice(blob)
            .map_err(|e| Error::Other(format!("cannot read image config: {e}")))?;
        let Some(c) = parsed.config else {
            return Ok(ImageRuntimeDefaults::default());
        };
        Ok(ImageRuntimeDefaults {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            label: c
                .labels
                .and_then(|mut l| l.remove(CONFIG_LABEL))
                .filter(|l| !l.is_empty()),
        })
    }

    /// Parses the `org.mobyproject.config` label (same schema as a YAML
    /// container entry without `name` and `image`); `image` names the image
    /// in errors.
    pub fn parse_label(&self, image: &str) -> Result<Option<ImageConfig>> {
        match &self.label {
            None => Ok(None),
            Some(l) => Ok(Some(linuxkit_config::parse_image_label(image, l)?)),
        }
    }
}

// ---------------------------------------------------------------------------
// Precedence helpers

/// The YAML entry over the label (either may lack the key).
struct Layers<'a> {
    name: &'a str,
    yaml: &'a ImageConfig,
    label: &'a ImageConfig,
}

impl<'a> Layers<'a> {
    /// The first present value: YAML, then label.
    fn pick<T>(&self, f: impl Fn(&'a ImageConfig) -> &'a Option<T>) -> Option<&'a T> {
        f(self.yaml).as_ref().or(f(self.label).as_ref())
    }

    /// For settings the reference keeps as plain Go strings, where an empty
    /// value is the same as no value.
    fn pick_str(&self, f: impl Fn(&'a ImageConfig) -> &'a Option<String>) -> Option<&'a str> {
        let nonempty = |o: &'a Option<String>| o.as_deref().filter(|s| !s.is_empty());
        nonempty(f(self.yaml)).or(nonempty(f(self.label)))
    }

    /// A list with an `.add` companion, as the reference merges it: a YAML
    /// `base` is the whole list (a YAML `add` next to it is ignored, which
    /// validation warns about); otherwise the label's list followed by the
    /// YAML `add` (no de-duplication, as the reference's `mergeStrings`).
    fn with_add(
        &self,
        base: impl Fn(&'a ImageConfig) -> &'a Option<Vec<String>>,
        add: &'a Option<Vec<String>>,
    ) -> Vec<String> {
        if let Some(v) = base(self.yaml) {
            return v.clone();
        }
        let mut v: Vec<String> = base(self.label).clone().unwrap_or_default();
        v.extend(add.iter().flatten().cloned());
        v
    }

    fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::Other(format!("container {}: {msg}", self.name))
    }
}

/// Whether the container's root filesystem is read-only (`readonly:`, YAML
/// over label, default false). Decides the bundle layout.
pub fn readonly_rootfs(image: &Image, label: Option<&ImageConfig>) -> bool {
    let empty = ImageConfig::default();
    let label = label.unwrap_or(&empty);
    image.config.readonly.or(label.readonly).unwrap_or(false)
}

// ---------------------------------------------------------------------------
// config.json

#[derive(Serialize)]
struct Spec {
    #[serde(rename = "ociVersion")]
    oci_version: &'static str,
    process: Process,
    root: Root,
    #[serde(skip_serializing_if = "String::is_empty")]
    hostname: String,
    mounts: Vec<Mount>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    linux: Linux,
}

#[derive(Serialize)]
struct Process {
    user: User,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<String>,
    cwd: String,
    capabilities: Capabilities,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rlimits: Vec<Rlimit>,
    #[serde(rename = "noNewPrivileges", skip_serializing_if = "is_false")]
    no_new_privileges: bool,
    #[serde(rename = "oomScoreAdj", skip_serializing_if = "Option::is_none")]
    oom_score_adj: Option<i32>,
}

#[derive(Serialize)]
struct User {
    uid: u32,
    gid: u32,
    #[serde(rename = "additionalGids", skip_serializing_if = "Vec::is_empty")]
    additional_gids: Vec<u32>,
}

#[derive(Serialize)]
struct Capabilities {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bounding: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    effective: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    inheritable: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    permitted: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ambient: Vec<String>,
}

#[derive(Serialize)]
struct Rlimit {
    #[serde(rename = "type")]
    kind: String,
    hard: u64,
    soft: u64,
}

#[derive(Serialize)]
struct Root {
    path: &'static str,
    #[serde(skip_serializing_if = "is_false")]
    readonly: bool,
}

#[derive(Serialize)]
struct Linux {
    #[serde(rename = "uidMappings", skip_serializing_if = "Vec::is_empty")]
    uid_mappings: Vec<IdMapping>,
    #[serde(rename = "gidMappings", skip_serializing_if = "Vec::is_empty")]
    gid_mappings: Vec<IdMapping>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    sysctl: BTreeMap<String, String>,
    resources: OciResources,
    #[serde(rename = "cgroupsPath", skip_serializing_if = "String::is_empty")]
    cgroups_path: String,
    namespaces: Vec<Namespace>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    devices: Vec<LinuxDevice>,
    #[serde(rename = "rootfsPropagation", skip_serializing_if = "String::is_empty")]
    rootfs_propagation: String,
    #[serde(rename = "maskedPaths", skip_serializing_if = "Vec::is_empty")]
    masked_paths: Vec<String>,
    #[serde(rename = "readonlyPaths", skip_serializing_if = "Vec::is_empty")]
    readonly_paths: Vec<String>,
    /// Always the standard `LINUX` one (the reference writes none). The
    /// init runs crun with a fixed address-space layout, which is much
    /// faster under emulation, and crun sets this personality in the
    /// container's process, so the container's programs get randomized
    /// layouts all the same (see the init's `oci_runtime::fixed_layout`).
    personality: Personality,
}

/// `specs.LinuxPersonality`.
#[derive(Serialize)]
struct Personality {
    domain: &'static str,
}

/// `specs.LinuxResources`, field for field (the config model spells
/// `blockIO` as YAML does).
#[derive(Serialize, Default)]
struct OciResources {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    devices: Vec<DeviceCgroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<Memory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<Cpu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pids: Option<Pids>,
    #[serde(rename = "blockIO", skip_serializing_if = "Option::is_none")]
    block_io: Option<BlockIo>,
    #[serde(rename = "hugepageLimits", skip_serializing_if = "Vec::is_empty")]
    hugepage_limits: Vec<HugepageLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<Network>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    unified: BTreeMap<String, String>,
}

impl From<Resources> for OciResources {
    fn from(r: Resources) -> OciResources {
        OciResources {
            devices: r.devices.unwrap_or_default(),
            memory: r.memory,
            cpu: r.cpu,
            pids: r.pids,
            block_io: r.blockio,
            hugepage_limits: r.hugepage_limits.unwrap_or_default(),
            network: r.network,
            unified: r.unified.unwrap_or_default(),
        }
    }
}

#[derive(Serialize)]
struct Namespace {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    path: String,
}

#[derive(Serialize)]
struct LinuxDevice {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    major: i64,
    minor: i64,
    #[serde(rename = "fileMode")]
    file_mode: u32,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Builds a container's `config.json`.
///
/// `label` is the image's parsed `org.mobyproject.config` label,
/// `defaults` the image config, `ids` the configuration's uid/gid names and
/// `volumes` its `volumes:` (a bind or bind mount whose source is not an
/// absolute path names one of them, and becomes
/// `/containers/volumes/NAME/merged`).
pub fn oci_config(
    image: &Image,
    label: Option<&ImageConfig>,
    defaults: &ImageRuntimeDefaults,
    ids: &IdMap,
    volumes: &[Volume],
) -> Result<String> {
    let empty = ImageConfig::default();
    let l = Layers {
        name: &image.name,
        yaml: &image.config,
        label: label.unwrap_or(&empty),
    };

    // Command, environment and working directory may come from the image.
    let args = match l.pick(|c| &c.command) {
        Some(cmd) => cmd.clone(),
        None => defaults
            .entrypoint
            .iter()
            .chain(&defaults.cmd)
            .cloned()
            .collect(),
    };
    if args.is_empty() {
        return Err(l.err(format!(
            "nothing to run: image {} has no Entrypoint or Cmd, and no `command` is set",
            image.image
        )));
    }
    let env = l
        .pick(|c| &c.env)
        .cloned()
        .unwrap_or_else(|| defaults.env.clone());
    let cwd = l
        .pick_str(|c| &c.cwd)
        .or(Some(defaults.working_dir.as_str()).filter(|s| !s.is_empty()))
        .unwrap_or("/")
        .to_string();

    let readonly = readonly_rootfs(image, label);
    let mounts = mounts(&l, readonly, volumes)?;
    let namespaces = namespaces(&l);
    // A hostname without a UTS namespace of its own is written as the
    // reference writes it (validation warns: the container will not start).
    let hostname = l.pick_str(|c| &c.hostname).unwrap_or_default().to_string();
    let capabilities = capabilities(&l)?;
    let rlimits = rlimits(&l)?;

    let id = |what: &str, spec: &IdSpec| {
        ids.resolve(spec).ok_or_else(|| {
            l.err(format!(
                "{what}: cannot find id `{spec}`: give a number, `root`, or the name of a container in this configuration"
            ))
        })
    };
    let uid = match l.pick(|c| &c.uid) {
        Some(s) => id("uid", s)?,
        None => 0,
    };
    let gid = match l.pick(|c| &c.gid) {
        Some(s) => id("gid", s)?,
        None => 0,
    };
    let additional_gids = l
        .pick(|c| &c.additional_gids)
        .into_iter()
        .flatten()
        .map(|s| id("additionalGids", s))
        .collect::<Result<Vec<u32>>>()?;

    let mut resources: OciResources = l
        .pick(|c| &c.resources)
        .cloned()
        .map(OciResources::from)
        .unwrap_or_default();
    let devices = devices(&l, &mut resources)?;

    let spec = Spec {
        oci_version: OCI_VERSION,
        process: Process {
            user: User {
                uid,
                gid,
                additional_gids,
            },
            args,
            env,
            cwd,
            capabilities,
            rlimits,
            no_new_privileges: l.pick(|c| &c.no_new_privileges).copied().unwrap_or(false),
            oom_score_adj: l.pick(|c| &c.oom_score_adj).copied(),
        },
        root: Root {
            path: "rootfs",
            readonly,
        },
        hostname,
        mounts,
        annotations: l.pick(|c| &c.annotations).cloned().unwrap_or_default(),
        linux: Linux {
            uid_mappings: l.pick(|c| &c.uid_mappings).cloned().unwrap_or_default(),
            gid_mappings: l.pick(|c| &c.gid_mappings).cloned().unwrap_or_default(),
            sysctl: l.pick(|c| &c.sysctl).cloned().unwrap_or_default(),
            resources,
            cgroups_path: l.pick(|c| &c.cgroups_path).cloned().unwrap_or_default(),
            namespaces,
            devices,
            rootfs_propagation: l
                .pick(|c| &c.rootfs_propagation)
                .cloned()
                .unwrap_or_default(),
            masked_paths: l.pick(|c| &c.masked_paths).cloned().unwrap_or_default(),
            readonly_paths: l.pick(|c| &c.readonly_paths).cloned().unwrap_or_default(),
            personality: Personality { domain: "LINUX" },
        },
    };
    Ok(to_go_json(&spec))
}

fn owned(v: Vec<&str>) -> Vec<String> {
    v.into_iter().map(str::to_string).collect()
}

/// The merged directory of volume `source`, checking that a read-only
/// volume is not mounted read-write.
fn volume_dir(
    l: &Layers,
    volumes: &[Volume],
    what: &str,
    source: &str,
    read_only: bool,
) -> Result<String> {
    let Some(v) = volumes.iter().find(|v| v.name == source) else {
        return Err(l.err(format!(
            "{what}: source `{source}` is neither an absolute path nor a volume defined under `volumes:`"
        )));
    };
    if v.readonly && !read_only {
        return Err(l.err(format!(
            "{what}: volume `{source}` is read-only, but it is mounted read-write; add the `ro` option"
        )));
    }
    Ok(format!("{VOLUMES_DIR}/{source}/merged"))
}

/// Rewrites the source of a YAML bind naming a volume.
fn resolve_bind(l: &Layers, volumes: &[Volume], bind: &str) -> Result<String> {
    let b = Bind::parse(bind).map_err(|m| l.err(m))?;
    if !b.names_volume() {
        return Ok(bind.to_string());
    }
    let ro = ReadOnly::of(b.option_list()).allowed_in_bind();
    let dir = volume_dir(l, volumes, &format!("bind `{bind}`"), b.source, ro)?;
    Ok(match b.options {
        Some(o) => format!("{dir}:{}:{o}", b.destination),
        None => format!("{dir}:{}", b.destination),
    })
}

fn mounts(l: &Layers, readonly: bool, volumes: &[Volume]) -> Result<Vec<Mount>> {
    let mount = |dst: &str, kind: &str, opts: &[&str]| Mount {
        destination: dst.into(),
        kind: kind.into(),
        source: kind.into(),
        options: opts.iter().map(|s| s.to_string()).collect(),
        ..Mount::default()
    };
    let ro: &[&str] = if readonly { &["ro"] } else { &[] };
    let mut map: BTreeMap<String, Mount> = BTreeMap::new();
    for m in [
        mount("/proc", "proc", &["nosuid", "nodev", "noexec", "relatime"]),
        mount(
            "/dev",
            "tmpfs",
            &[&["nosuid", "strictatime", "mode=755", "size=65536k"], ro].concat(),
        ),
        mount(
            "/dev/pts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            &[&["nosuid", "noexec", "nodev"], ro].concat(),
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ] {
        map.insert(m.destination.clone(), m);
    }

    for t in l.pick(|c| &c.tmpfs).into_iter().flatten() {
        let (dst, options) = parse_tmpfs(t).map_err(|m| l.err(m))?;
        let m = mount(dst, "tmpfs", &options);
        map.insert(m.destination.clone(), m);
    }

    // Volume names are resolved in the YAML's own binds and mounts (an
    // image's label cannot know this configuration's volumes).
    let yaml_binds = |list: &Option<Vec<String>>| -> Result<Option<Vec<String>>> {
        list.as_ref()
            .map(|v| v.iter().map(|b| resolve_bind(l, volumes, b)).collect())
            .transpose()
    };
    // `binds` replaces everything; otherwise the label's binds then the
    // YAML's `binds.add` (the reference's precedence).
    let binds = match yaml_binds(&l.yaml.binds)? {
        Some(b) => b,
        None => {
            let mut b = l.label.binds.clone().unwrap_or_default();
            b.extend(yaml_binds(&l.yaml.binds_add)?.into_iter().flatten());
            b
        }
    };
    for b in &binds {
        let bind = Bind::parse(b).map_err(|m| l.err(m))?;
        let options = match bind.options {
            None => vec!["rw".into(), "rbind".into(), "rshared".into()],
            Some(_) => {
                let mut v = owned(bind.option_list());
                v.push("rbind".into());
                v
            }
        };
        let m = Mount {
            destination: bind.destination.into(),
            kind: "bind".into(),
            source: bind.source.into(),
            options,
            ..Mount::default()
        };
        map.insert(m.destination.clone(), m);
    }

    let yaml_mounts = l
        .yaml
        .mounts
        .as_ref()
        .map(|v| {
            v.iter()
                .map(|m| {
                    if m.kind != "bind" || m.source.is_empty() || m.source.starts_with('/') {
                        return Ok(m.clone());
                    }
                    let what = format!("mount on `{}`", m.destination);
                    let ro = ReadOnly::of(m.options.iter().map(String::as_str)).allowed_in_mount();
                    let source = volume_dir(l, volumes, &what, &m.source, ro)?;
                    Ok(Mount {
                        source,
                        ..m.clone()
                    })
                })
                .collect::<Result<Vec<Mount>>>()
        })
        .transpose()?;
    for m in yaml_mounts
        .as_ref()
        .or(l.label.mounts.as_ref())
        .into_iter()
        .flatten()
    {
        let m = m.completed().map_err(|msg| l.err(msg))?;
        map.insert(m.destination.clone(), m);
    }
    Ok(map.into_values().collect())
}

fn namespaces(l: &Layers) -> Vec<Namespace> {
    let mut out = Vec::new();
    // net, ipc, uts and user default to the host's; pid defaults to new.
    for (kind, value, default) in [
        ("network", l.pick_str(|c| &c.net), "host"),
        ("ipc", l.pick_str(|c| &c.ipc), "host"),
        ("uts", l.pick_str(|c| &c.uts), "host"),
        ("pid", l.pick_str(|c| &c.pid), "new"),
        ("user", l.pick_str(|c| &c.userns), "host"),
    ] {
        let v = value.unwrap_or(default);
        if v == "host" || v == "root" {
            continue;
        }
        let fresh = v == "new" || (kind == "network" && v == "none");
        out.push(Namespace {
            kind,
            path: if fresh { String::new() } else { v.to_string() },
        });
    }
    out.push(Namespace {
        kind: "mount",
        path: String::new(),
    });
    out
}

/// `[all]` and `[none]` (any case) stand for every and no capability.
fn expand_caps(l: &Layers, what: &str, caps: Vec<String>) -> Result<Vec<String>> {
    let caps = match caps.as_slice() {
        [one] if one.eq_ignore_ascii_case("none") => Vec::new(),
        [one] if one.eq_ignore_ascii_case("all") => {
            ALL_CAPABILITIES.iter().map(|s| s.to_string()).collect()
        }
        _ => caps,
    };
    for c in &caps {
        if !ALL_CAPABILITIES.contains(&c.as_str()) {
            let hint = if c.eq_ignore_ascii_case("all") || c.eq_ignore_ascii_case("none") {
                format!("; `{c}` must be the only entry")
            } else {
                "; use a name such as `CAP_NET_ADMIN`".into()
            };
            return Err(l.err(format!("{what}: unknown capability `{c}`{hint}")));
        }
    }
    Ok(caps)
}

fn capabilities(l: &Layers) -> Result<Capabilities> {
    let caps = l.with_add(|c| &c.capabilities, &l.yaml.capabilities_add);
    let effective = expand_caps(l, "capabilities", caps)?;
    let ambient_list = l.pick(|c| &c.ambient).cloned().unwrap_or_default();
    let ambient = expand_caps(l, "ambient", ambient_list)?;
    let bounding: Vec<String> = effective
        .iter()
        .chain(&ambient)
        .cloned()
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    Ok(Capabilities {
        inheritable: bounding.clone(),
        permitted: bounding.clone(),
        bounding,
        effective,
        ambient,
    })
}

fn rlimits(l: &Layers) -> Result<Vec<Rlimit>> {
    let value = |s: &str, r: &str| -> Result<u64> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("unlimited") {
            return Ok(u64::MAX);
        }
        s.parse().map_err(|_| {
            l.err(format!(
                "rlimit `{r}`: cannot parse `{s}` as a number or `unlimited`"
            ))
        })
    };
    let mut out = Vec::new();
    for r in l.pick(|c| &c.rlimits).into_iter().flatten() {
        let parts: Vec<&str> = r.splitn(3, ',').collect();
        let [name, soft, hard] = parts[..] else {
            return Err(l.err(format!(
                "rlimit `{r}` must be `name,soft,hard`, e.g. `nofile,1024,4096`"
            )));
        };
        let mut kind = name.trim().to_ascii_uppercase();
        if !kind.starts_with("RLIMIT_") {
            kind = format!("RLIMIT_{kind}");
        }
        let soft = value(soft, r)?;
        let hard = value(hard, r)?;
        if !RLIMITS.contains(&kind.as_str()) {
            return Err(l.err(format!("rlimit `{r}`: unknown limit `{}`", name.trim())));
        }
        out.push(Rlimit { kind, hard, soft });
    }
    Ok(out)
}

fn devices(l: &Layers, resources: &mut OciResources) -> Result<Vec<LinuxDevice>> {
    let nonempty = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    let mut out = Vec::new();
    for d in l.pick(|c| &c.devices).into_iter().flatten() {
        let Device {
            path,
            kind,
            major,
            minor,
            mode,
        } = d;
        if path == "all" {
            // A whole class of devices in the cgroup allow list, no node.
            resources.devices.push(DeviceCgroup {
                allow: true,
                kind: nonempty(kind),
                major: None,
                minor: None,
                access: Some("rwm".into()),
            });
            continue;
        }
        let Some(mode_str) = mode.as_deref() else {
            return Err(l.err(format!(
                "device `{path}` needs an octal `mode`, e.g. \"0666\""
            )));
        };
        let Some(file_mode) = parse_device_mode(mode_str) else {
            return Err(l.err(format!(
                "device `{path}`: cannot parse device mode `{mode_str}` as an octal value, e.g. \"0666\""
            )));
        };
        out.push(LinuxDevice {
            path: path.clone(),
            kind: kind.clone(),
            major: *major,
            minor: *minor,
            file_mode,
        });
        resources.devices.push(DeviceCgroup {
            allow: true,
            kind: nonempty(kind),
            major: Some(*major),
            minor: Some(*minor),
            access: Some("rwm".into()),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// runtime.json (its type is linuxkit_config::RuntimeJson; the bundle's own
// mounts and the bytes are written here)

/// Puts the mounts that make the bundle's `rootfs` in front of the
/// user's: for a read-only root, a bind of the unpacked image
/// (`image_root`, normally `DIR/rootfs` itself, so that it is a mount
/// point); otherwise a tmpfs on `DIR/tmp`, made private, and an overlay
/// of `image_root` (normally `DIR/lower`) and `DIR/tmp/{upper,work}` on
/// `DIR/rootfs`. Paths are absolute paths inside the VM.
pub fn prepend_rootfs_mounts(
    rt: &mut RuntimeJson,
    readonly: bool,
    bundle_dir: &str,
    image_root: &str,
) {
    let dir = abs_dir(bundle_dir);
    let root = abs_dir(image_root);
    let rootfs = format!("{dir}/rootfs");
    let mut first = if readonly {
        vec![Mount {
            destination: rootfs,
            source: root,
            options: vec!["bind".into()],
            ..Mount::default()
        }]
    } else {
        let tmp = format!("{dir}/tmp");
        vec![
            Mount {
                destination: tmp.clone(),
                kind: "tmpfs".into(),
                source: "tmpfs".into(),
                ..Mount::default()
            },
            // Nothing else should see the temporary layers.
            Mount {
                destination: tmp.clone(),
                options: vec!["remount".into(), "private".into()],
                ..Mount::default()
            },
            Mount {
                destination: rootfs,
                kind: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    format!("lowerdir={root}"),
                    format!("upperdir={tmp}/upper"),
                    format!("workdir={tmp}/work"),
                ],
                ..Mount::default()
            },
        ]
    };
    first.append(&mut rt.mounts);
    rt.mounts = first;
}

/// The `runtime.json` text (4-space indent, no trailing newline, as the
/// reference writes it).
pub fn runtime_json_text(rt: &RuntimeJson) -> String {
    to_go_json(rt)
}

/// `/a/b` from `a/b/`, `/a/b/` or `/a/b`.
fn abs_dir(p: &str) -> String {
    let t = p.trim_matches('/');
    format!("/{t}")
}

/// A container's `runtime.json`, for a bundle at `bundle_dir` (an absolute
/// path inside the VM, e.g. `/containers/onboot/000-x`) whose image is
/// unpacked in the bundle itself (`DIR/rootfs` if `readonly`, else
/// `DIR/lower`).
pub fn runtime_config(
    image: &Image,
    label: Option<&ImageConfig>,
    readonly: bool,
    bundle_dir: &str,
) -> String {
    let dir = abs_dir(bundle_dir);
    let root = format!("{dir}/{}", if readonly { "rootfs" } else { "lower" });
    runtime_config_with_root(image, label, readonly, &dir, &root)
}

/// Like [`runtime_config`], for a bundle that shares an image unpacked
/// elsewhere: `image_root` is that directory (e.g. the `lower` of an
/// earlier bundle with the same image).
pub fn runtime_config_with_root(
    image: &Image,
    label: Option<&ImageConfig>,
    readonly: bool,
    bundle_dir: &str,
    image_root: &str,
) -> String {
    let mut rt = RuntimeJson::resolve(image, label);
    prepend_rootfs_mounts(&mut rt, readonly, bundle_dir, image_root);
    runtime_json_text(&rt)
}

// ---------------------------------------------------------------------------
// JSON as Go writes it

/// `json.MarshalIndent(v, "", "    ")`: serde_json's pretty printer with a
/// 4-space indent, plus Go's HTML-safe escaping of `<`, `>`, `&` and the
/// JavaScript line separators U+2028/U+2029.
struct GoFormatter(serde_json::ser::PrettyFormatter<'static>);

impl serde_json::ser::Formatter for GoFormatter {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[start..i])?;
            w.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

fn to_go_json<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let fmt = GoFormatter(serde_json::ser::PrettyFormatter::with_indent(b"    "));
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    value
        .serialize(&mut ser)
        .expect("serializing plain structs to memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}
