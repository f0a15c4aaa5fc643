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
    /// The kernel image and its command line.
    #[serde(default, skip_serializing_if = "Kernel::is_empty")]
    pub kernel: Kernel,
    /// Images whose contents are unpacked into the root filesystem as the base system (init, runtime, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init: Vec<String>,
    /// Containers run once, in order, at boot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub onboot: Vec<Image>,
    /// Containers run once, in order, at shutdown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub onshutdown: Vec<Image>,
    /// Long-running containers, started after `onboot`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Image>,
    /// Files, directories and links added to the root filesystem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<File>,
    /// Named volumes that containers can bind.
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
    /// The image holding the kernel, its modules and maybe microcode.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// The kernel command line.
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
    /// Whether the section is absent (every field empty).
    pub fn is_empty(&self) -> bool {
        self == &Kernel::default()
    }
}

/// The `trust:` section, accepted and ignored (see [`Moby::trust`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    /// Images whose signatures the reference once checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image: Vec<String>,
    /// Organisations whose images it once checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub org: Vec<String>,
}

/// A user or group: a number, `root`, or the name of a container in this
/// configuration (which gets an id allocated from 100 upwards).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdSpec {
    /// A numeric id.
    Id(u32),
    /// `root`, or the name of a container of this configuration.
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
    /// Where the entry goes, relative to the root filesystem.
    #[serde(default)]
    pub path: String,
    /// Make a directory rather than a file.
    #[serde(default, skip_serializing_if = "is_false")]
    pub directory: bool,
    /// Make a symbolic link pointing here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symlink: Option<String>,
    /// The file's contents, written inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<String>,
    /// A host file; `~/` is the user's home. Relative paths are relative to
    /// the working directory, as in the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Write the resolved configuration in this form as the contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataFormat>,
    /// A missing `source` is skipped rather than an error.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    /// Octal permission bits as a string, e.g. `"0644"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The owner (default root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<IdSpec>,
    /// The group (default root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<IdSpec>,
}

/// `metadata:` renders the resolved configuration into a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataFormat {
    /// As YAML.
    Yaml,
    /// As JSON.
    Json,
}

/// One `volumes:` entry: a named, optionally image-backed directory that
/// containers can bind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// The name binds and mounts refer to it by.
    #[serde(default)]
    pub name: String,
    /// An image whose contents fill the volume; empty for a blank volume.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Containers may only mount it read-only.
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

/// How an image-backed volume holds its image (`format:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeFormat {
    /// The image's unpacked filesystem.
    Filesystem,
    /// The image as an OCI image layout.
    Oci,
}

/// An OCI runtime mount (`mounts:` and `runtime.mounts:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// Where it is mounted in the container.
    #[serde(default)]
    pub destination: String,
    /// The filesystem type (`bind`, `tmpfs`, `proc`, ...).
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The device, directory or volume mounted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Mount options (`ro`, `rbind`, `nosuid`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// For an id-mapped mount: user ids as seen through it.
    #[serde(
        default,
        rename = "uidMappings",
        alias = "uidmappings",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub uid_mappings: Vec<IdMapping>,
    /// For an id-mapped mount: group ids as seen through it.
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
    /// The first id inside the container.
    #[serde(rename = "containerID", alias = "containerid")]
    pub container_id: u32,
    /// The id it maps to outside.
    #[serde(rename = "hostID", alias = "hostid")]
    pub host_id: u32,
    /// How many consecutive ids are mapped.
    pub size: u32,
}

/// A device node to create in the container (`devices:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Where the node is made in the container.
    #[serde(default)]
    pub path: String,
    /// `c` (character), `b` (block), `u` or `p` (FIFO), as in the OCI spec.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// The device's major number.
    #[serde(default)]
    pub major: i64,
    /// The device's minor number.
    #[serde(default)]
    pub minor: i64,
    /// Its permission bits, octal as a string.
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
    /// cgroups to create before the container starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<Vec<String>>,
    /// Mounts made in the root namespace before the container starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    /// Directories to create before the container starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mkdir: Option<Vec<String>>,
    /// Network interfaces to create or move into the container's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<Interface>>,
    /// Namespaces of the container to bind-mount to paths.
    #[serde(default, rename = "bindNS", skip_serializing_if = "BindNs::is_empty")]
    pub bind_ns: BindNs,
    /// The containerd namespace a service runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A network interface to create or move into the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// The interface's name, in the container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Create an interface of this type (`veth`, ...) rather than move an existing one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub add: String,
    /// For a `veth`: the name of the peer left in the root namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer: String,
    /// Create it in the root namespace and then move it in.
    #[serde(default, rename = "createInRoot", skip_serializing_if = "is_false")]
    pub create_in_root: bool,
}

/// Namespaces of the container to bind-mount to paths, so other containers
/// can join them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindNs {
    /// Path to bind the cgroup namespace to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Path to bind the IPC namespace to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    /// Path to bind the mount namespace to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnt: Option<String>,
    /// Path to bind the network namespace to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<String>,
    /// Path to bind the PID namespace to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// Path to bind the user namespace to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Path to bind the UTS namespace to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
}

impl BindNs {
    /// Whether no namespace is bound.
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
    /// Device access rules, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<DeviceCgroup>>,
    /// Memory limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// CPU shares, quota and placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// The process count limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    /// Block I/O weights and throttles.
    #[serde(default, alias = "blockIO", skip_serializing_if = "Option::is_none")]
    pub blockio: Option<BlockIo>,
    /// Huge page limits, per page size.
    #[serde(
        default,
        rename = "hugepageLimits",
        alias = "hugepagelimits",
        skip_serializing_if = "Option::is_none"
    )]
    pub hugepage_limits: Option<Vec<HugepageLimit>>,
    /// Network class and priorities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// cgroup v2 key/value pairs, written verbatim (beyond the reference's
    /// schema; our systems run cgroup v2 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<BTreeMap<String, String>>,
}

/// One device access rule of the devices cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCgroup {
    /// Allow (or deny) the devices matched.
    #[serde(default)]
    pub allow: bool,
    /// `a` (all), `c` or `b`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The major number matched; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    /// The minor number matched; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// Any of `r`, `w`, `m` (mknod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

/// Memory cgroup limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Memory {
    /// The memory limit, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// The soft limit, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    /// Memory plus swap limit, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    /// Kernel memory limit, in bytes (cgroup v1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<i64>,
    /// Kernel TCP buffer limit, in bytes (cgroup v1 only).
    #[serde(
        default,
        rename = "kernelTCP",
        alias = "kerneltcp",
        skip_serializing_if = "Option::is_none"
    )]
    pub kernel_tcp: Option<i64>,
    /// How eagerly to swap, 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    /// Do not OOM-kill the container's processes.
    #[serde(
        default,
        rename = "disableOOMKiller",
        alias = "disableoomkiller",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_oom_killer: Option<bool>,
}

/// CPU cgroup settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cpu {
    /// Relative CPU weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    /// CPU time per `period`, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    /// The accounting period of `quota`, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    /// Real-time CPU time per period, in microseconds.
    #[serde(
        default,
        alias = "realtimeruntime",
        skip_serializing_if = "Option::is_none"
    )]
    pub realtime_runtime: Option<i64>,
    /// The period of `realtimeRuntime`, in microseconds.
    #[serde(
        default,
        alias = "realtimeperiod",
        skip_serializing_if = "Option::is_none"
    )]
    pub realtime_period: Option<u64>,
    /// The CPUs it may run on (`0-3,5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// The memory nodes it may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
}

/// The pids cgroup limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pids {
    /// The most processes at once.
    pub limit: i64,
}

/// Block I/O cgroup settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BlockIo {
    /// Relative block I/O weight, 10 to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// The weight against its child cgroups (cgroup v1).
    #[serde(default, alias = "leafweight", skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
    /// Per-device weights.
    #[serde(default, alias = "weightdevice", skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    /// Per-device read limits, bytes per second.
    #[serde(
        default,
        alias = "throttlereadbpsdevice",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    /// Per-device write limits, bytes per second.
    #[serde(
        default,
        alias = "throttlewritebpsdevice",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    /// Per-device read limits, operations per second.
    #[serde(
        default,
        rename = "throttleReadIOPSDevice",
        alias = "throttlereadiopsdevice",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    /// Per-device write limits, operations per second.
    #[serde(
        default,
        rename = "throttleWriteIOPSDevice",
        alias = "throttlewriteiopsdevice",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

/// A block device's I/O weight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WeightDevice {
    /// The device's major number.
    pub major: i64,
    /// The device's minor number.
    pub minor: i64,
    /// Its weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Its weight against child cgroups (cgroup v1).
    #[serde(default, alias = "leafweight", skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
}

/// A block device's I/O limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleDevice {
    /// The device's major number.
    pub major: i64,
    /// The device's minor number.
    pub minor: i64,
    /// The limit, per second.
    pub rate: u64,
}

/// A limit on huge pages of one size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HugepageLimit {
    /// The page size (`2MB`, `1GB`).
    #[serde(alias = "pagesize")]
    pub page_size: String,
    /// The limit, in bytes.
    pub limit: u64,
}

/// Network cgroup settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The class id tagged on the container's packets.
    #[serde(
        default,
        rename = "classID",
        alias = "classid",
        skip_serializing_if = "Option::is_none"
    )]
    pub class_id: Option<u32>,
    /// Per-interface priorities of its traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<InterfacePriority>,
}

/// The priority of traffic on one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfacePriority {
    /// The interface.
    pub name: String,
    /// Its priority.
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
    /// Ambient capabilities, kept across exec by a non-root user.
    "ambient" ambient: Vec<String>,
    /// OCI mounts of the container.
    "mounts" mounts: Vec<Mount>,
    /// `src:dst[:opts]`; replaces the label's binds.
    "binds" binds: Vec<String>,
    /// `src:dst[:opts]`, added to the label's binds.
    "binds.add" binds_add: Vec<String>,
    /// Device nodes to create in the container.
    "devices" devices: Vec<Device>,
    /// `dst[:opts]`
    "tmpfs" tmpfs: Vec<String>,
    /// The command line the container runs, instead of the image's.
    "command" command: Vec<String>,
    /// `KEY=VALUE`; replaces the image's environment.
    "env" env: Vec<String>,
    /// The working directory.
    "cwd" cwd: String,
    /// The network namespace: the host's, a new one, or the path of one to join.
    "net" net: String,
    /// The PID namespace: the host's, a new one, or the path of one to join.
    "pid" pid: String,
    /// The IPC namespace: the host's, a new one, or the path of one to join.
    "ipc" ipc: String,
    /// The UTS namespace: the host's, a new one, or the path of one to join.
    "uts" uts: String,
    /// The user namespace: the host's, a new one, or the path of one to join.
    "userns" userns: String,
    /// The hostname in the container's UTS namespace.
    "hostname" hostname: String,
    /// Mount the container's root filesystem read-only.
    "readonly" readonly: bool,
    /// Paths hidden from the container.
    "maskedPaths" masked_paths: Vec<String>,
    /// Paths made read-only in the container.
    "readonlyPaths" readonly_paths: Vec<String>,
    /// The user the process runs as.
    "uid" uid: IdSpec,
    /// The group the process runs as.
    "gid" gid: IdSpec,
    /// Supplementary groups of the process.
    "additionalGids" additional_gids: Vec<IdSpec>,
    /// Set `no_new_privs`: exec cannot gain privileges (setuid).
    "noNewPrivileges" no_new_privileges: bool,
    /// The process's OOM score adjustment, -1000 to 1000.
    "oomScoreAdj" oom_score_adj: i32,
    /// Mount propagation of the root filesystem (`shared`, `slave`, `private`, ...).
    "rootfsPropagation" rootfs_propagation: String,
    /// The container's cgroup, relative to the cgroup root.
    "cgroupsPath" cgroups_path: String,
    /// cgroup resource limits.
    "resources" resources: Resources,
    /// Namespaced sysctls set in the container.
    "sysctl" sysctl: BTreeMap<String, String>,
    /// `name,soft,hard`
    "rlimits" rlimits: Vec<String>,
    /// User id mappings of a new user namespace.
    "uidMappings" uid_mappings: Vec<IdMapping>,
    /// Group id mappings of a new user namespace.
    "gidMappings" gid_mappings: Vec<IdMapping>,
    /// OCI annotations of the container's spec.
    "annotations" annotations: BTreeMap<String, String>,
    /// LinuxKit's own runtime settings (`runtime.json`).
    "runtime" runtime: Runtime,
}

/// A container of the `onboot`, `onshutdown` or `services` sections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "ImageEntry", into = "ImageEntry")]
pub struct Image {
    /// The container's name, unique in its section.
    pub name: String,
    /// The image reference, as written (after `@pkg:` substitution).
    pub image: String,
    /// Its image-spec settings, over the image label's.
    pub config: ImageConfig,
}

/// Which section a container belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// `onboot:`
    Onboot,
    /// `onshutdown:`
    Onshutdown,
    /// `services:`
    Services,
}

impl Section {
    /// The sections, in the order containers are laid out and numbered.
    pub const ALL: [Section; 3] = [Section::Onboot, Section::Onshutdown, Section::Services];

    /// The section's YAML key.
    pub fn key(self) -> &'static str {
        match self {
            Section::Onboot => "onboot",
            Section::Onshutdown => "onshutdown",
            Section::Services => "services",
        }
    }
}

impl Moby {
    /// The containers of section `s`, in YAML order.
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
