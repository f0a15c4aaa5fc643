//! `config.json`, the OCI runtime spec of a container: the reference's
//! `moby.ConfigToOCI`. The shapes are in `types`, the mounts (with the
//! volumes they name) in `mounts`; the rest of the spec is built here.

mod mounts;
mod types;

pub use mounts::VOLUMES_DIR;

use std::collections::BTreeSet;

use linuxkit_config::{
    Device, DeviceCgroup, IdMap, IdSpec, Image, ImageConfig, Volume, parse_device_mode,
};

use self::types::{
    Capabilities, Linux, LinuxDevice, Namespace, OciResources, Personality, Process, Rlimit, Root,
    Spec, User,
};
use crate::error::Result;
use crate::spec::go_json::to_go_json;
use crate::spec::image::ImageRuntimeDefaults;
use crate::spec::layers::{Layers, readonly_rootfs};

/// The `ociVersion` written to `config.json`. The reference writes the
/// runtime-spec release it links against (1.2.1); every field written here
/// is already in 1.0.2, and crun as Debian 12 ships it refuses a config
/// newer than 1.1 ("unknown version specified"), while runc takes any.
pub const OCI_VERSION: &str = "1.0.2";

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
    let mounts = mounts::mounts(&l, readonly, volumes)?;
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
