//! The LinuxKit configuration schema, field for field.
//!
//! Names follow the reference's YAML keys exactly (`capabilities.add`,
//! `oomScoreAdj`, `bindNS`, ...). Image-spec fields are `Option`s because
//! LinuxKit's precedence rules depend on *presence*: a YAML `capabilities: []`
//! replaces the image label's list, a missing key does not.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// A whole configuration: one YAML file, or several merged in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moby {
    #[serde(default, skip_serializing_if = "Kernel::is_empty")]
    pub kernel: Kernel,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub onboot: Vec<Image>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub onshutdown: Vec<Image>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Image>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<File>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Accepted for old configs; content trust was removed from LinuxKit and
    /// is ignored here too (a warning says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<Trust>,
}

/// The `kernel:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cmdline: String,
    /// The kernel file inside the image; default `kernel`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub binary: String,
    /// The modules tarball inside the image; default `kernel.tar`, `none` for
    /// no tarball.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tar: Option<String>,
    /// A CPU microcode cpio inside the image, prepended to the initrd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ucode: Option<String>,
}

impl Kernel {
    pub fn is_empty(&self) -> bool {
        self == &Kernel::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub org: Vec<String>,
}

/// A user or group: a number, `root`, or the name of a container in this
/// configuration (which gets an id allocated from 100 upwards).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdSpec {
    Id(u32),
    Name(String),
}

impl fmt::Display for IdSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdSpec::Id(i) => write!(f, "{i}"),
            IdSpec::Name(n) => f.write_str(n),
        }
    }
}

impl Serialize for IdSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IdSpec::Id(i) => s.serialize_u32(*i),
            IdSpec::Name(n) => s.serialize_str(n),
        }
    }
}

impl<'de> Deserialize<'de> for IdSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = IdSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a numeric id or a name")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<IdSpec, E> {
                u32::try_from(v).map(IdSpec::Id).map_err(|_| {
                    E::custom(format!(
                        "id {v} is larger than 4294967295; give an id from 0 to 4294967295, `root`, or a container name"
                    ))
                })
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<IdSpec, E> {
                if v < 0 {
                    return Err(E::custom(format!(
                        "id {v} is negative; give an id from 0 to 4294967295, `root`, or a container name"
                    )));
                }
                self.visit_u64(v as u64)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IdSpec, E> {
                if v.is_empty() {
                    return Err(E::custom("expected a numeric id or a name, found nothing"));
                }
                match v.parse::<u32>() {
                    Ok(i) => Ok(IdSpec::Id(i)),
                    Err(_) => Ok(IdSpec::Name(v.to_string())),
                }
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<IdSpec, E> {
                Err(E::custom(format!(
                    "expected a numeric id or a name, found the boolean `{v}`"
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<IdSpec, E> {
                Err(E::custom(format!(
                    "expected a numeric id or a name, found the number `{v}`"
                )))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<IdSpec, E> {
                Err(E::custom("expected a numeric id or a name, found nothing"))
            }
        }
        d.deserialize_any(V)
    }
}

/// One `files:` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub path: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub directory: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symlink: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<String>,
    /// A host file; `~/` is the user's home. Relative paths are relative to
    /// the working directory, as in the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataFormat>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    /// Octal permission bits as a string, e.g. `"0644"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<IdSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<IdSpec>,
}

/// `metadata:` renders the resolved configuration into a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataFormat {
    Yaml,
    Json,
}

/// One `volumes:` entry: a named, optionally image-backed directory that
/// containers can bind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub readonly: bool,
    /// How an image-backed volume holds the image: its unpacked filesystem
    /// (default) or an OCI layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<VolumeFormat>,
    /// For `format: oci`, which platforms to include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeFormat {
    Filesystem,
    Oci,
}

/// An OCI runtime mount (`mounts:` and `runtime.mounts:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    #[serde(default)]
    pub destination: String,
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(
        default,
        rename = "uidMappings",
        alias = "uidmappings",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub uid_mappings: Vec<IdMapping>,
    #[serde(
        default,
        rename = "gidMappings",
        alias = "gidmappings",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gid_mappings: Vec<IdMapping>,
}

/// A user-namespace id range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMapping {
    #[serde(rename = "containerID", alias = "containerid")]
    pub container_id: u32,
    #[serde(rename = "hostID", alias = "hostid")]
    pub host_id: u32,
    pub size: u32,
}

/// A device node to create in the container (`devices:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    #[serde(default)]
    pub path: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// LinuxKit's own per-container runtime settings (`runtime:`), as a YAML
/// entry or an image label sets them: each key `None` where unset, so the
/// YAML's keys can replace the label's one by one. What a bundle's
/// `runtime.json` holds, resolved, is [`crate::RuntimeJson`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mkdir: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<Interface>>,
    #[serde(default, rename = "bindNS", skip_serializing_if = "BindNs::is_empty")]
    pub bind_ns: BindNs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A network interface to create or move into the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub add: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer: String,
    #[serde(default, rename = "createInRoot", skip_serializing_if = "is_false")]
    pub create_in_root: bool,
}

/// Namespaces of the container to bind-mount to paths, so other containers
/// can join them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindNs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
}

impl BindNs {
    pub fn is_empty(&self) -> bool {
        self == &BindNs::default()
    }

    /// The seven namespace kinds (as `/proc/PID/ns/` names them) with
    /// their paths, in the order runtime.json lists them.
    pub fn entries(&self) -> [(&'static str, &Option<String>); 7] {
        [
            ("cgroup", &self.cgroup),
            ("ipc", &self.ipc),
            ("mnt", &self.mnt),
            ("net", &self.net),
            ("pid", &self.pid),
            ("user", &self.user),
            ("uts", &self.uts),
        ]
    }
}

/// cgroup resource limits, as in the OCI runtime spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<DeviceCgroup>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(default, alias = "blockIO", skip_serializing_if = "Option::is_none")]
    pub blockio: Option<BlockIo>,
    #[serde(
        default,
        rename = "hugepageLimits",
        alias = "hugepagelimits",
        skip_serializing_if = "Option::is_none"
    )]
    pub hugepage_limits: Option<Vec<HugepageLimit>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// cgroup v2 key/value pairs, written verbatim (beyond the reference's
    /// schema; our systems run cgroup v2 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCgroup {
    #[serde(default)]
    pub allow: bool,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Memory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<i64>,
    #[serde(
        default,
        rename = "kernelTCP",
        alias = "kerneltcp",
        skip_serializing_if = "Option::is_none"
    )]
    pub kernel_tcp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    #[serde(
        default,
        rename = "disableOOMKiller",
        alias = "disableoomkiller",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_oom_killer: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(
        default,
        alias = "realtimeruntime",
        skip_serializing_if = "Option::is_none"
    )]
    pub realtime_runtime: Option<i64>,
    #[serde(
        default,
        alias = "realtimeperiod",
        skip_serializing_if = "Option::is_none"
    )]
    pub realtime_period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BlockIo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, alias = "leafweight", skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
    #[serde(default, alias = "weightdevice", skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(
        default,
        alias = "throttlereadbpsdevice",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    #[serde(
        default,
        alias = "throttlewritebpsdevice",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    #[serde(
        default,
        rename = "throttleReadIOPSDevice",
        alias = "throttlereadiopsdevice",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    #[serde(
        default,
        rename = "throttleWriteIOPSDevice",
        alias = "throttlewriteiopsdevice",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, alias = "leafweight", skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HugepageLimit {
    #[serde(alias = "pagesize")]
    pub page_size: String,
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(
        default,
        rename = "classID",
        alias = "classid",
        skip_serializing_if = "Option::is_none"
    )]
    pub class_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<InterfacePriority>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfacePriority {
    pub name: String,
    pub priority: u32,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Defines [`ImageConfig`] (the image-spec fields, also the schema of the
/// `org.mobyproject.config` label) and [`Image`] (a named container: the same
/// fields plus `name` and `image`) from one field list, so the two can never
/// drift apart.
macro_rules! image_config {
    ($( $(#[doc = $doc:literal])* $key:literal $field:ident : $ty:ty ),* $(,)?) => {
        /// The image-spec fields of a container, as written in YAML or in an
        /// image's `org.mobyproject.config` label. `None` means "not given".
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ImageConfig {
            $(
                $(#[doc = $doc])*
                #[serde(default, rename = $key, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }

        /// The serde form of [`Image`]: all fields side by side, as in YAML.
        #[derive(Clone, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ImageEntry {
            #[serde(default)]
            name: String,
            #[serde(default)]
            image: String,
            $(
                #[serde(default, rename = $key, skip_serializing_if = "Option::is_none")]
                $field: Option<$ty>,
            )*
        }

        impl From<ImageEntry> for Image {
            fn from(e: ImageEntry) -> Image {
                Image {
                    name: e.name,
                    image: e.image,
                    config: ImageConfig { $( $field: e.$field, )* },
                }
            }
        }

        impl From<Image> for ImageEntry {
            fn from(i: Image) -> ImageEntry {
                ImageEntry {
                    name: i.name,
                    image: i.image,
                    $( $field: i.config.$field, )*
                }
            }
        }

        impl ImageConfig {
            /// The YAML keys of all image-spec fields.
            pub const KEYS: &'static [&'static str] = &[$($key),*];
        }
    };
}

image_config! {
    /// Replaces the capability list (of the label, or the default: none).
    "capabilities" capabilities: Vec<String>,
    /// Adds to the label's capabilities.
    "capabilities.add" capabilities_add: Vec<String>,
    "ambient" ambient: Vec<String>,
    "mounts" mounts: Vec<Mount>,
    /// `src:dst[:opts]`; replaces the label's binds.
    "binds" binds: Vec<String>,
    /// `src:dst[:opts]`, added to the label's binds.
    "binds.add" binds_add: Vec<String>,
    "devices" devices: Vec<Device>,
    /// `dst[:opts]`
    "tmpfs" tmpfs: Vec<String>,
    "command" command: Vec<String>,
    /// `KEY=VALUE`; replaces the image's environment.
    "env" env: Vec<String>,
    "cwd" cwd: String,
    "net" net: String,
    "pid" pid: String,
    "ipc" ipc: String,
    "uts" uts: String,
    "userns" userns: String,
    "hostname" hostname: String,
    "readonly" readonly: bool,
    "maskedPaths" masked_paths: Vec<String>,
    "readonlyPaths" readonly_paths: Vec<String>,
    "uid" uid: IdSpec,
    "gid" gid: IdSpec,
    "additionalGids" additional_gids: Vec<IdSpec>,
    "noNewPrivileges" no_new_privileges: bool,
    "oomScoreAdj" oom_score_adj: i32,
    "rootfsPropagation" rootfs_propagation: String,
    "cgroupsPath" cgroups_path: String,
    "resources" resources: Resources,
    "sysctl" sysctl: BTreeMap<String, String>,
    /// `name,soft,hard`
    "rlimits" rlimits: Vec<String>,
    "uidMappings" uid_mappings: Vec<IdMapping>,
    "gidMappings" gid_mappings: Vec<IdMapping>,
    "annotations" annotations: BTreeMap<String, String>,
    "runtime" runtime: Runtime,
}

/// A container of the `onboot`, `onshutdown` or `services` sections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "ImageEntry", into = "ImageEntry")]
pub struct Image {
    pub name: String,
    /// The image reference, as written (after `@pkg:` substitution).
    pub image: String,
    pub config: ImageConfig,
}

/// Which section a container belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    Onboot,
    Onshutdown,
    Services,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Onboot, Section::Onshutdown, Section::Services];

    pub fn key(self) -> &'static str {
        match self {
            Section::Onboot => "onboot",
            Section::Onshutdown => "onshutdown",
            Section::Services => "services",
        }
    }
}

impl Moby {
    pub fn section(&self, s: Section) -> &[Image] {
        match s {
            Section::Onboot => &self.onboot,
            Section::Onshutdown => &self.onshutdown,
            Section::Services => &self.services,
        }
    }

    /// Containers in the order LinuxKit allocates ids and lays out bundles:
    /// onboot, then onshutdown, then services.
    pub fn containers(&self) -> impl Iterator<Item = (Section, usize, &Image)> {
        Section::ALL.into_iter().flat_map(move |s| {
            self.section(s)
                .iter()
                .enumerate()
                .map(move |(i, c)| (s, i, c))
        })
    }
}
