//! The runtime-spec shapes `config.json` is written from: the reference's
//! `specs.Spec` structs, field for field and in their order (which is the
//! order of the JSON keys), with Go's `omitempty` as `skip_serializing_if`.

use std::collections::BTreeMap;

use linuxkit_config::{
    BlockIo, Cpu, DeviceCgroup, HugepageLimit, IdMapping, Memory, Mount, Network, Pids, Resources,
};
use serde::Serialize;

#[derive(Serialize)]
pub(super) struct Spec {
    #[serde(rename = "ociVersion")]
    pub(super) oci_version: &'static str,
    pub(super) process: Process,
    pub(super) root: Root,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(super) hostname: String,
    pub(super) mounts: Vec<Mount>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) annotations: BTreeMap<String, String>,
    pub(super) linux: Linux,
}

#[derive(Serialize)]
pub(super) struct Process {
    pub(super) user: User,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) args: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) env: Vec<String>,
    pub(super) cwd: String,
    pub(super) capabilities: Capabilities,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) rlimits: Vec<Rlimit>,
    #[serde(rename = "noNewPrivileges", skip_serializing_if = "is_false")]
    pub(super) no_new_privileges: bool,
    #[serde(rename = "oomScoreAdj", skip_serializing_if = "Option::is_none")]
    pub(super) oom_score_adj: Option<i32>,
}

#[derive(Serialize)]
pub(super) struct User {
    pub(super) uid: u32,
    pub(super) gid: u32,
    #[serde(rename = "additionalGids", skip_serializing_if = "Vec::is_empty")]
    pub(super) additional_gids: Vec<u32>,
}

#[derive(Serialize)]
pub(super) struct Capabilities {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) bounding: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) effective: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) inheritable: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) permitted: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) ambient: Vec<String>,
}

#[derive(Serialize)]
pub(super) struct Rlimit {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) hard: u64,
    pub(super) soft: u64,
}

#[derive(Serialize)]
pub(super) struct Root {
    pub(super) path: &'static str,
    #[serde(skip_serializing_if = "is_false")]
    pub(super) readonly: bool,
}

#[derive(Serialize)]
pub(super) struct Linux {
    #[serde(rename = "uidMappings", skip_serializing_if = "Vec::is_empty")]
    pub(super) uid_mappings: Vec<IdMapping>,
    #[serde(rename = "gidMappings", skip_serializing_if = "Vec::is_empty")]
    pub(super) gid_mappings: Vec<IdMapping>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) sysctl: BTreeMap<String, String>,
    pub(super) resources: OciResources,
    #[serde(rename = "cgroupsPath", skip_serializing_if = "String::is_empty")]
    pub(super) cgroups_path: String,
    pub(super) namespaces: Vec<Namespace>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) devices: Vec<LinuxDevice>,
    #[serde(rename = "rootfsPropagation", skip_serializing_if = "String::is_empty")]
    pub(super) rootfs_propagation: String,
    #[serde(rename = "maskedPaths", skip_serializing_if = "Vec::is_empty")]
    pub(super) masked_paths: Vec<String>,
    #[serde(rename = "readonlyPaths", skip_serializing_if = "Vec::is_empty")]
    pub(super) readonly_paths: Vec<String>,
    /// Always the standard `LINUX` one (the reference writes none). The
    /// init runs crun with a fixed address-space layout, which is much
    /// faster under emulation, and crun sets this personality in the
    /// container's process, so the container's programs get randomized
    /// layouts all the same (see the init's `oci_runtime::fixed_layout`).
    pub(super) personality: Personality,
}

/// `specs.LinuxPersonality`.
#[derive(Serialize)]
pub(super) struct Personality {
    pub(super) domain: &'static str,
}

/// `specs.LinuxResources`, field for field (the config model spells
/// `blockIO` as YAML does).
#[derive(Serialize, Default)]
pub(super) struct OciResources {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) devices: Vec<DeviceCgroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) memory: Option<Memory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cpu: Option<Cpu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) pids: Option<Pids>,
    #[serde(rename = "blockIO", skip_serializing_if = "Option::is_none")]
    pub(super) block_io: Option<BlockIo>,
    #[serde(rename = "hugepageLimits", skip_serializing_if = "Vec::is_empty")]
    pub(super) hugepage_limits: Vec<HugepageLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) network: Option<Network>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) unified: BTreeMap<String, String>,
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
pub(super) struct Namespace {
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(super) path: String,
}

#[derive(Serialize)]
pub(super) struct LinuxDevice {
    pub(super) path: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) major: i64,
    pub(super) minor: i64,
    #[serde(rename = "fileMode")]
    pub(super) file_mode: u32,
}

fn is_false(b: &bool) -> bool {
    !*b
}
