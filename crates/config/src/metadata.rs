//! `files: [{metadata: yaml|json}]`: the configuration as the reference
//! writes it into the image, byte for byte.
//!
//! The reference marshals its Go configuration structs: `json.MarshalIndent`
//! with four spaces, or `yaml.v3`'s `Marshal`. What ends up in the file is
//! therefore decided by those structs and those encoders, not by what the
//! user wrote, and a program in the image that parses the file may depend on
//! any of it. So this module rebuilds the same document:
//!
//! - every field the Go structs always write (`directory: false`,
//!   `optional: false`, a device's `major: 0`, an interface's
//!   `createInRoot`), in the structs' order;
//! - an empty top-level list is `[]` in YAML and `null` in JSON (the
//!   reference appends every file to an empty configuration, which leaves
//!   an empty list `nil`);
//! - image references completed as the reference completes them
//!   ([`reference_expand`]) in `kernel`, `init` and the three container
//!   sections, not in `volumes`;
//! - the OCI runtime types (`mounts`, `resources`, id mappings) carry only
//!   JSON names, so in YAML their keys are the Go field names lower-cased,
//!   none omitted (`uidmappings: []`, `reservation: null`);
//! - YAML as `yaml.v3` lays it out: four-space indentation, where a block
//!   inside a list item is indented two past the dash and anything else to
//!   the next multiple of four; its choice of plain, single-quoted,
//!   double-quoted or literal (`|`) style per string and its escapes;
//!   `sysctl`/`annotations` keys in its "natural" order (`a9` before `a10`);
//! - JSON as Go's `encoding/json` escapes it (`<`, `>`, `&`, U+2028 and
//!   U+2029 as `\uXXXX`) with map keys in byte order.
//!
//! `build --dry-run` prints [`crate::to_yaml`], which is ours and terser;
//! only the file in the image must match the reference.

use std::collections::BTreeMap;

use crate::model::{
    BindNs, Device, File, IdMapping, IdSpec, Image, Interface, Kernel, Moby, Mount, Resources,
    Runtime, Volume, VolumeFormat,
};

/// The configuration as the reference's `metadata: yaml` writes it.
pub fn metadata_yaml(moby: &Moby) -> String {
    let mut e = yaml::Emitter::new();
    e.node(&tree(moby, Flavor::Yaml), Ctx::Root);
    e.out
}

/// The configuration as the reference's `metadata: json` writes it.
pub fn metadata_json(moby: &Moby) -> String {
    let mut out = String::new();
    json::node(&tree(moby, Flavor::Json), 0, &mut out);
    out
}

/// Completes an image reference as the reference does before recording it
/// (`util.ReferenceExpand`): a bare name gets `docker.io/library/`, a
/// `user/name` whose first part is no host gets `docker.io/`; no tag is
/// added.
///
/// ```
/// use linuxkit_config::reference_expand;
/// assert_eq!(reference_expand("alpine"), "docker.io/library/alpine");
/// assert_eq!(reference_expand("linuxkit/init:v1"), "docker.io/linuxkit/init:v1");
/// assert_eq!(reference_expand("localhost/a:b"), "localhost/a:b");
/// assert_eq!(reference_expand("ghcr.io/a/b:c"), "ghcr.io/a/b:c");
/// ```
pub fn reference_expand(reference: &str) -> String {
    let parts: Vec<&str> = reference.split('/').collect();
    match parts.as_slice() {
        [_] => format!("docker.io/library/{reference}"),
        [first, _] if !first.contains(['.', ':']) && *first != "localhost" => {
            format!("docker.io/{reference}")
        }
        _ => reference.to_string(),
    }
}

/// A Go value as the encoders see it, with struct fields already in order
/// and already filtered by `omitempty`.
#[derive(Debug, Clone, PartialEq)]
enum Go {
    Null,
    Bool(bool),
    Int(i128),
    Str(String),
    Seq(Vec<Go>),
    /// A struct (fields in declaration order).
    Struct(Vec<(&'static str, Go)>),
    /// A Go map (keys sorted by each encoder's own rule).
    Map(Vec<(String, Go)>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Yaml,
    Json,
}

/// Builds one struct's fields, applying Go's tags.
struct Fields {
    flavor: Flavor,
    out: Vec<(&'static str, Go)>,
}

impl Fields {
    fn new(flavor: Flavor) -> Self {
        Fields {
            flavor,
            out: Vec::new(),
        }
    }
    /// A field without `omitempty`.
    fn always(&mut self, key: &'static str, v: Go) -> &mut Self {
        self.out.push((key, v));
        self
    }
    /// A field whose `omitempty` drops it when `v` is `None` (a nil
    /// pointer, an empty string, a zero number or a false bool).
    fn some(&mut self, key: &'static str, v: Option<Go>) -> &mut Self {
        if let Some(v) = v {
            self.out.push((key, v));
        }
        self
    }
    /// A field of one of the OCI runtime types, which have JSON tags only:
    /// JSON uses `json` (with `omitempty` applied by `v` being `None`),
    /// YAML the lower-cased Go name and `yaml_v`, never omitted.
    fn oci(
        &mut self,
        json: &'static str,
        yaml: &'static str,
        v: Option<Go>,
        yaml_v: Go,
    ) -> &mut Self {
        match self.flavor {
            Flavor::Json => self.some(json, v),
            Flavor::Yaml => self.always(yaml, yaml_v),
        }
    }
    fn done(&mut self) -> Go {
        Go::Struct(std::mem::take(&mut self.out))
    }
}

fn s(v: &str) -> Go {
    Go::Str(v.to_string())
}

fn strs(v: &[String]) -> Go {
    Go::Seq(v.iter().map(|x| s(x)).collect())
}

/// A non-pointer string with `omitempty`.
fn nonempty(v: &str) -> Option<Go> {
    (!v.is_empty()).then(|| s(v))
}

fn id(v: &IdSpec) -> Go {
    match v {
        IdSpec::Id(i) => Go::Int((*i).into()),
        IdSpec::Name(n) => s(n),
    }
}

fn int<T: Into<i128>>(v: T) -> Go {
    Go::Int(v.into())
}

/// A nil slice: `[]` in YAML, `null` in JSON.
fn nil_slice(flavor: Flavor) -> Go {
    match flavor {
        Flavor::Yaml => Go::Seq(Vec::new()),
        Flavor::Json => Go::Null,
    }
}

/// A top-level list of the configuration: nil when empty (see the module
/// documentation).
fn list<T>(flavor: Flavor, items: &[T], f: impl Fn(&T) -> Go) -> Go {
    if items.is_empty() {
        nil_slice(flavor)
    } else {
        Go::Seq(items.iter().map(f).collect())
    }
}

fn tree(m: &Moby, fl: Flavor) -> Go {
    Fields::new(fl)
        .always("kernel", kernel(&m.kernel, fl))
        .always("init", list(fl, &m.init, |i| s(&reference_expand(i))))
        .always("onboot", list(fl, &m.onboot, |i| image(i, fl)))
        .always("onshutdown", list(fl, &m.onshutdown, |i| image(i, fl)))
        .always("services", list(fl, &m.services, |i| image(i, fl)))
        .always("files", list(fl, &m.files, |f| file(f, fl)))
        .always("volumes", list(fl, &m.volumes, |v| volume(v, fl)))
        .done()
}

fn kernel(k: &Kernel, fl: Flavor) -> Go {
    let image = if k.image.is_empty() {
        String::new()
    } else {
        reference_expand(&k.image)
    };
    Fields::new(fl)
        .always("image", Go::Str(image))
        .some("cmdline", nonempty(&k.cmdline))
        .some("binary", nonempty(&k.binary))
        .some("tar", k.tar.as_deref().map(s))
        .some("ucode", k.ucode.as_deref().map(s))
        .done()
}

fn file(f: &File, fl: Flavor) -> Go {
    Fields::new(fl)
        .always("path", s(&f.path))
        .always("directory", Go::Bool(f.directory))
        .some("symlink", f.symlink.as_deref().and_then(nonempty))
        .some("contents", f.contents.as_deref().map(s))
        .some("source", f.source.as_deref().and_then(nonempty))
        .some(
            "metadata",
            f.metadata.map(|m| {
                s(match m {
                    crate::MetadataFormat::Yaml => "yaml",
                    crate::MetadataFormat::Json => "json",
                })
            }),
        )
        .always("optional", Go::Bool(f.optional))
        .some("mode", f.mode.as_deref().and_then(nonempty))
        .some("uid", f.uid.as_ref().map(id))
        .some("gid", f.gid.as_ref().map(id))
        .done()
}

fn volume(v: &Volume, fl: Flavor) -> Go {
    Fields::new(fl)
        .always("name", s(&v.name))
        .some("image", nonempty(&v.image))
        .some("readonly", v.readonly.then_some(Go::Bool(true)))
        .some(
            "format",
            v.format.map(|f| {
                s(match f {
                    VolumeFormat::Filesystem => "filesystem",
                    VolumeFormat::Oci => "oci",
                })
            }),
        )
        .some(
            "platforms",
            (!v.platforms.is_empty()).then(|| strs(&v.platforms)),
        )
        .done()
}

fn image(i: &Image, fl: Flavor) -> Go {
    let c = &i.config;
    let st = |v: &Option<String>| v.as_deref().and_then(nonempty);
    let list = |v: &Option<Vec<String>>| v.as_deref().map(strs);
    Fields::new(fl)
        .always("name", s(&i.name))
        .always("image", s(&reference_expand(&i.image)))
        .some("capabilities", list(&c.capabilities))
        .some("capabilities.add", list(&c.capabilities_add))
        .some("ambient", list(&c.ambient))
        .some("mounts", c.mounts.as_ref().map(|m| mounts(m, fl)))
        .some("binds", list(&c.binds))
        .some("binds.add", list(&c.binds_add))
        .some(
            "devices",
            c.devices
                .as_ref()
                .map(|d| Go::Seq(d.iter().map(|d| device(d, fl)).collect())),
        )
        .some("tmpfs", list(&c.tmpfs))
        .some("command", list(&c.command))
        .some("env", list(&c.env))
        .some("cwd", st(&c.cwd))
        .some("net", st(&c.net))
        .some("pid", st(&c.pid))
        .some("ipc", st(&c.ipc))
        .some("uts", st(&c.uts))
        .some("userns", st(&c.userns))
        .some("hostname", st(&c.hostname))
        .some("readonly", c.readonly.map(Go::Bool))
        .some("maskedPaths", list(&c.masked_paths))
        .some("readonlyPaths", list(&c.readonly_paths))
        .some("uid", c.uid.as_ref().map(id))
        .some("gid", c.gid.as_ref().map(id))
        .some(
            "additionalGids",
            c.additional_gids
                .as_ref()
                .map(|g| Go::Seq(g.iter().map(id).collect())),
        )
        .some("noNewPrivileges", c.no_new_privileges.map(Go::Bool))
        .some("oomScoreAdj", c.oom_score_adj.map(int))
        .some("rootfsPropagation", c.rootfs_propagation.as_deref().map(s))
        .some("cgroupsPath", c.cgroups_path.as_deref().map(s))
        .some("resources", c.resources.as_ref().map(|r| resources(r, fl)))
        .some("sysctl", c.sysctl.as_ref().map(string_map))
        .some("rlimits", list(&c.rlimits))
        .some(
            "uidMappings",
            c.uid_mappings.as_ref().map(|m| mappings(m, fl)),
        )
        .some(
            "gidMappings",
            c.gid_mappings.as_ref().map(|m| mappings(m, fl)),
        )
        .some("annotations", c.annotations.as_ref().map(string_map))
        .some("runtime", c.runtime.as_ref().map(|r| runtime(r, fl)))
        .done()
}

fn string_map(m: &BTreeMap<String, String>) -> Go {
    Go::Map(m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
}

fn device(d: &Device, fl: Flavor) -> Go {
    Fields::new(fl)
        .always("path", s(&d.path))
        .always("type", s(&d.kind))
        .always("major", int(d.major))
        .always("minor", int(d.minor))
        .some("mode", d.mode.as_deref().and_then(nonempty))
        .done()
}

/// A slice of an OCI type's field: `omitempty` in JSON, always in YAML
/// (`[]` when empty).
fn oci_slice<T>(
    f: &mut Fields,
    json: &'static str,
    yaml: &'static str,
    items: &[T],
    g: impl Fn(&T) -> Go,
) {
    let v = Go::Seq(items.iter().map(g).collect());
    let j = (!items.is_empty()).then(|| v.clone());
    f.oci(json, yaml, j, v);
}

fn mounts(ms: &[Mount], fl: Flavor) -> Go {
    Go::Seq(
        ms.iter()
            .map(|m| {
                let mut f = Fields::new(fl);
                f.always("destination", s(&m.destination));
                f.oci("type", "type", nonempty(&m.kind), s(&m.kind));
                f.oci("source", "source", nonempty(&m.source), s(&m.source));
                oci_slice(&mut f, "options", "options", &m.options, |o| s(o));
                oci_slice(&mut f, "uidMappings", "uidmappings", &m.uid_mappings, |x| {
                    mapping(x, fl)
                });
                oci_slice(&mut f, "gidMappings", "gidmappings", &m.gid_mappings, |x| {
                    mapping(x, fl)
                });
                f.done()
            })
            .collect(),
    )
}

fn mapping(m: &IdMapping, fl: Flavor) -> Go {
    let mut f = Fields::new(fl);
    let c = int(m.container_id);
    let h = int(m.host_id);
    f.oci("containerID", "containerid", Some(c.clone()), c);
    f.oci("hostID", "hostid", Some(h.clone()), h);
    f.always("size", int(m.size));
    f.done()
}

fn mappings(ms: &[IdMapping], fl: Flavor) -> Go {
    Go::Seq(ms.iter().map(|m| mapping(m, fl)).collect())
}

/// An OCI pointer field: omitted in JSON when nil, `null` in YAML.
fn ptr<T: Into<i128> + Copy>(f: &mut Fields, json: &'static str, yaml: &'static str, v: Option<T>) {
    let g = v.map(int);
    f.oci(json, yaml, g.clone(), g.unwrap_or(Go::Null));
}

fn ptr_bool(f: &mut Fields, json: &'static str, yaml: &'static str, v: Option<bool>) {
    let g = v.map(Go::Bool);
    f.oci(json, yaml, g.clone(), g.unwrap_or(Go::Null));
}

/// An OCI struct pointer: omitted in JSON when nil, `null` in YAML.
fn ptr_struct(f: &mut Fields, json: &'static str, yaml: &'static str, v: Option<Go>) {
    f.oci(json, yaml, v.clone(), v.unwrap_or(Go::Null));
}

/// An OCI map: omitted in JSON when empty, `{}` in YAML when nil.
fn oci_map(
    f: &mut Fields,
    json: &'static str,
    yaml: &'static str,
    m: Option<&BTreeMap<String, String>>,
) {
    let v = m.map(string_map).unwrap_or(Go::Map(Vec::new()));
    let j = m.filter(|m| !m.is_empty()).map(string_map);
    f.oci(json, yaml, j, v);
}

fn resources(r: &Resources, fl: Flavor) -> Go {
    let mut f = Fields::new(fl);
    oci_slice(
        &mut f,
        "devices",
        "devices",
        r.devices.as_deref().unwrap_or(&[]),
        |d| {
            let mut g = Fields::new(fl);
            g.always("allow", Go::Bool(d.allow));
            let kind = d.kind.clone().unwrap_or_default();
            g.oci("type", "type", nonempty(&kind), s(&kind));
            ptr(&mut g, "major", "major", d.major);
            ptr(&mut g, "minor", "minor", d.minor);
            let access = d.access.clone().unwrap_or_default();
            g.oci("access", "access", nonempty(&access), s(&access));
            g.done()
        },
    );
    ptr_struct(
        &mut f,
        "memory",
        "memory",
        r.memory.as_ref().map(|m| {
            let mut g = Fields::new(fl);
            ptr(&mut g, "limit", "limit", m.limit);
            ptr(&mut g, "reservation", "reservation", m.reservation);
            ptr(&mut g, "swap", "swap", m.swap);
            ptr(&mut g, "kernel", "kernel", m.kernel);
            ptr(&mut g, "kernelTCP", "kerneltcp", m.kernel_tcp);
            ptr(&mut g, "swappiness", "swappiness", m.swappiness);
            ptr_bool(
                &mut g,
                "disableOOMKiller",
                "disableoomkiller",
                m.disable_oom_killer,
            );
            ptr_bool(&mut g, "useHierarchy", "usehierarchy", None);
            ptr_bool(&mut g, "checkBeforeUpdate", "checkbeforeupdate", None);
            g.done()
        }),
    );
    ptr_struct(
        &mut f,
        "cpu",
        "cpu",
        r.cpu.as_ref().map(|c| {
            let mut g = Fields::new(fl);
            ptr(&mut g, "shares", "shares", c.shares);
            ptr(&mut g, "quota", "quota", c.quota);
            ptr::<u64>(&mut g, "burst", "burst", None);
            ptr(&mut g, "period", "period", c.period);
            ptr(
                &mut g,
                "realtimeRuntime",
                "realtimeruntime",
                c.realtime_runtime,
            );
            ptr(
                &mut g,
                "realtimePeriod",
                "realtimeperiod",
                c.realtime_period,
            );
            let cpus = c.cpus.clone().unwrap_or_default();
            g.oci("cpus", "cpus", nonempty(&cpus), s(&cpus));
            let mems = c.mems.clone().unwrap_or_default();
            g.oci("mems", "mems", nonempty(&mems), s(&mems));
            ptr::<i64>(&mut g, "idle", "idle", None);
            g.done()
        }),
    );
    ptr_struct(
        &mut f,
        "pids",
        "pids",
        r.pids
            .as_ref()
            .map(|p| Fields::new(fl).always("limit", int(p.limit)).done()),
    );
    ptr_struct(
        &mut f,
        "blockIO",
        "blockio",
        r.blockio.as_ref().map(|b| {
            // The device entries embed `LinuxBlockIODevice` without
            // `inline`: JSON promotes its `major`/`minor`, YAML nests them
            // under its lower-cased type name.
            let dev = |g: &mut Fields, major: i64, minor: i64| match fl {
                Flavor::Json => {
                    g.always("major", int(major)).always("minor", int(minor));
                }
                Flavor::Yaml => {
                    let d = Fields::new(fl)
                        .always("major", int(major))
                        .always("minor", int(minor))
                        .done();
                    g.always("linuxblockiodevice", d);
                }
            };
            let throttle = |t: &crate::ThrottleDevice| {
                let mut g = Fields::new(fl);
                dev(&mut g, t.major, t.minor);
                g.always("rate", int(t.rate));
                g.done()
            };
            let mut g = Fields::new(fl);
            ptr(&mut g, "weight", "weight", b.weight);
            ptr(&mut g, "leafWeight", "leafweight", b.leaf_weight);
            oci_slice(
                &mut g,
                "weightDevice",
                "weightdevice",
                &b.weight_device,
                |w| {
                    let mut h = Fields::new(fl);
                    dev(&mut h, w.major, w.minor);
                    ptr(&mut h, "weight", "weight", w.weight);
                    ptr(&mut h, "leafWeight", "leafweight", w.leaf_weight);
                    h.done()
                },
            );
            oci_slice(
                &mut g,
                "throttleReadBpsDevice",
                "throttlereadbpsdevice",
                &b.throttle_read_bps_device,
                throttle,
            );
            oci_slice(
                &mut g,
                "throttleWriteBpsDevice",
                "throttlewritebpsdevice",
                &b.throttle_write_bps_device,
                throttle,
            );
            oci_slice(
                &mut g,
                "throttleReadIOPSDevice",
                "throttlereadiopsdevice",
                &b.throttle_read_iops_device,
                throttle,
            );
            oci_slice(
                &mut g,
                "throttleWriteIOPSDevice",
                "throttlewriteiopsdevice",
                &b.throttle_write_iops_device,
                throttle,
            );
            g.done()
        }),
    );
    oci_slice(
        &mut f,
        "hugepageLimits",
        "hugepagelimits",
        r.hugepage_limits.as_deref().unwrap_or(&[]),
        |h| {
            let mut g = Fields::new(fl);
            g.oci(
                "pageSize",
                "pagesize",
                Some(s(&h.page_size)),
                s(&h.page_size),
            );
            g.always("limit", int(h.limit));
            g.done()
        },
    );
    ptr_struct(
        &mut f,
        "network",
        "network",
        r.network.as_ref().map(|n| {
            let mut g = Fields::new(fl);
            ptr(&mut g, "classID", "classid", n.class_id);
            oci_slice(&mut g, "priorities", "priorities", &n.priorities, |p| {
                Fields::new(fl)
                    .always("name", s(&p.name))
                    .always("priority", int(p.priority))
                    .done()
            });
            g.done()
        }),
    );
    oci_map(&mut f, "rdma", "rdma", None);
    oci_map(&mut f, "unified", "unified", r.unified.as_ref());
    f.done()
}

fn runtime(r: &Runtime, fl: Flavor) -> Go {
    let list = |v: &Option<Vec<String>>| v.as_deref().map(strs);
    Fields::new(fl)
        .some("cgroups", list(&r.cgroups))
        .some("mounts", r.mounts.as_ref().map(|m| mounts(m, fl)))
        .some("mkdir", list(&r.mkdir))
        .some(
            "interfaces",
            r.interfaces
                .as_ref()
                .map(|i| Go::Seq(i.iter().map(|i| interface(i, fl)).collect())),
        )
        .some("bindNS", bind_ns(&r.bind_ns, fl))
        .some("namespace", r.namespace.as_deref().map(s))
        .done()
}

fn interface(i: &Interface, fl: Flavor) -> Go {
    Fields::new(fl)
        .some("name", nonempty(&i.name))
        .some("add", nonempty(&i.add))
        .some("peer", nonempty(&i.peer))
        .always("createInRoot", Go::Bool(i.create_in_root))
        .done()
}

/// `bindNS` is a struct value with `omitempty`: yaml.v3 drops it when every
/// field is nil, `encoding/json` never drops a struct.
fn bind_ns(b: &BindNs, fl: Flavor) -> Option<Go> {
    if fl == Flavor::Yaml && b.is_empty() {
        return None;
    }
    let mut f = Fields::new(fl);
    for (k, v) in b.entries() {
        f.some(k, v.as_deref().map(s));
    }
    Some(f.done())
}

/// Go's `json.MarshalIndent(v, "", "    ")`.
mod json {
    use super::Go;
    use std::fmt::Write;

    pub(super) fn node(v: &Go, depth: usize, out: &mut String) {
        match v {
            Go::Null => out.push_str("null"),
            Go::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Go::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Go::Str(s) => string(s, out),
            Go::Seq(items) if items.is_empty() => out.push_str("[]"),
            Go::Seq(items) => {
                out.push('[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    newline(depth + 1, out);
                    node(item, depth + 1, out);
                }
                newline(depth, out);
                out.push(']');
            }
            Go::Struct(fields) => {
                let pairs: Vec<(&str, &Go)> = fields.iter().map(|(k, v)| (*k, v)).collect();
                object(&pairs, depth, out);
            }
            Go::Map(entries) => {
                // encoding/json sorts map keys by their bytes.
                let mut pairs: Vec<(&str, &Go)> =
                    entries.iter().map(|(k, v)| (k.as_str(), v)).collect();
                pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                object(&pairs, depth, out);
            }
        }
    }

    fn object(pairs: &[(&str, &Go)], depth: usize, out: &mut String) {
        if pairs.is_empty() {
            out.push_str("{}");
            return;
        }
        out.push('{');
        for (n, (k, v)) in pairs.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            newline(depth + 1, out);
            string(k, out);
            out.push_str(": ");
            node(v, depth + 1, out);
        }
        newline(depth, out);
        out.push('}');
    }

    fn newline(depth: usize, out: &mut String) {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    }

    /// A string as `encoding/json` escapes it, HTML-safe.
    fn string(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20
                    || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') =>
                {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// What `yaml.v3`'s encoder writes (block style, indentation 4, no line
/// width), for the values a configuration holds.
mod yaml {
    use super::Go;

    /// Where a node is written: the document root, a list item or a
    /// mapping value (after `key:`), with the parent's indentation.
    #[derive(Clone, Copy)]
    pub(super) enum Ctx {
        Root,
        SeqItem(usize),
        MapValue(usize),
    }

    pub(super) struct Emitter {
        pub(super) out: String,
        column: usize,
        /// The last character written was a space (or nothing was).
        whitespace: bool,
        /// Only indentation has been written on this line.
        indention: bool,
    }

    /// The indentation of a block nested in `ctx`: two past a list's dash,
    /// otherwise the next multiple of four.
    fn child_indent(ctx: Ctx) -> usize {
        match ctx {
            Ctx::Root => 0,
            Ctx::SeqItem(i) => i + 2,
            Ctx::MapValue(i) => 4 * ((i + 4) / 4),
        }
    }

    impl Emitter {
        /// An emitter at the start of a stream.
        pub(super) fn new() -> Self {
            Emitter {
                out: String::new(),
                column: 0,
                whitespace: true,
                indention: true,
            }
        }

        fn put(&mut self, c: char) {
            self.out.push(c);
            self.column += 1;
        }

        fn put_break(&mut self) {
            self.out.push('\n');
            self.column = 0;
            self.indention = true;
        }

        fn write_str(&mut self, s: &str) {
            for c in s.chars() {
                self.put(c);
            }
        }

        /// `yaml_emitter_write_indent`.
        fn write_indent(&mut self, indent: usize) {
            if !self.indention
                || self.column > indent
                || (self.column == indent && !self.whitespace)
            {
                self.put_break();
            }
            while self.column < indent {
                self.put(' ');
            }
            self.whitespace = true;
            self.indention = true;
        }

        /// `yaml_emitter_write_indicator`.
        fn indicator(
            &mut self,
            s: &str,
            need_whitespace: bool,
            is_whitespace: bool,
            is_indention: bool,
        ) {
            if need_whitespace && !self.whitespace {
                self.put(' ');
            }
            self.write_str(s);
            self.whitespace = is_whitespace;
            self.indention = self.indention && is_indention;
        }

        /// `write_break` for one line break character.
        fn write_break(&mut self, c: char) {
            if c == '\n' {
                self.put_break();
            } else {
                self.out.push(c);
                self.column = 0;
                self.indention = true;
            }
        }

        pub(super) fn node(&mut self, v: &Go, ctx: Ctx) {
            match v {
                Go::Seq(items) if !items.is_empty() => self.seq(items, ctx),
                Go::Struct(f) if !f.is_empty() => {
                    let pairs: Vec<(String, &Go)> =
                        f.iter().map(|(k, v)| (k.to_string(), v)).collect();
                    self.map(&pairs, ctx)
                }
                Go::Map(m) if !m.is_empty() => {
                    let mut pairs: Vec<(String, &Go)> =
                        m.iter().map(|(k, v)| (k.clone(), v)).collect();
                    pairs.sort_by(|a, b| natural(&a.0, &b.0));
                    self.map(&pairs, ctx)
                }
                Go::Seq(_) => self.flow_empty("[]", ctx),
                Go::Struct(_) | Go::Map(_) => self.flow_empty("{}", ctx),
                Go::Null => self.scalar("null", Style::Plain, ctx),
                Go::Bool(b) => self.scalar(if *b { "true" } else { "false" }, Style::Plain, ctx),
                Go::Int(i) => self.scalar(&i.to_string(), Style::Plain, ctx),
                Go::Str(s) => self.string(s, ctx),
            }
            if matches!(ctx, Ctx::Root) {
                // The document ends with a line break.
                if self.column != 0 {
                    self.put_break();
                }
            }
        }

        fn flow_empty(&mut self, s: &str, _ctx: Ctx) {
            self.indicator(s, true, false, false);
        }

        fn seq(&mut self, items: &[Go], ctx: Ctx) {
            let indent = child_indent(ctx);
            for item in items {
                self.write_indent(indent);
                self.indicator("-", true, false, true);
                self.node(item, Ctx::SeqItem(indent));
            }
        }

        fn map(&mut self, pairs: &[(String, &Go)], ctx: Ctx) {
            let indent = child_indent(ctx);
            for (k, v) in pairs {
                self.write_indent(indent);
                let simple = k.chars().count() <= 128 && !k.chars().any(is_break);
                if simple {
                    self.key(k);
                    self.indicator(":", false, false, false);
                } else {
                    self.indicator("?", true, false, true);
                    self.string(k, Ctx::SeqItem(indent));
                    self.write_indent(indent);
                    self.indicator(":", true, false, true);
                }
                self.node(v, Ctx::MapValue(indent));
            }
        }

        /// A simple key: as a string, but a multi-line or empty one quoted.
        fn key(&mut self, k: &str) {
            let a = analyze(k);
            let mut style = if needs_quotes(k) {
                Style::Double
            } else {
                Style::Plain
            };
            if style == Style::Plain && (!a.block_plain || k.is_empty()) {
                style = Style::Single;
            }
            if style == Style::Single && !a.single {
                style = Style::Double;
            }
            self.write_scalar(k, style, 0);
        }

        /// `encoder.stringv` then the emitter's style selection.
        fn string(&mut self, s: &str, ctx: Ctx) {
            let style = if s.contains('\n') {
                Style::Literal
            } else if needs_quotes(s) {
                Style::Double
            } else {
                Style::Plain
            };
            self.scalar(s, style, ctx);
        }

        fn scalar(&mut self, s: &str, requested: Style, ctx: Ctx) {
            let a = analyze(s);
            let mut style = requested;
            if style == Style::Plain && !a.block_plain {
                style = Style::Single;
            }
            if style == Style::Single && !a.single {
                style = Style::Double;
            }
            if style == Style::Literal && !a.block {
                style = Style::Double;
            }
            // The indentation continuation lines of a scalar use.
            let indent = match ctx {
                Ctx::Root => 0,
                c => child_indent(c),
            };
            self.write_scalar(s, style, indent);
        }

        fn write_scalar(&mut self, s: &str, style: Style, indent: usize) {
            match style {
                Style::Plain => self.plain(s, indent),
                Style::Single => self.single(s, indent),
                Style::Double => self.double(s),
                Style::Literal => self.literal(s, indent),
            }
        }

        fn plain(&mut self, s: &str, indent: usize) {
            if !s.is_empty() && !self.whitespace {
                self.put(' ');
            }
            let mut breaks = false;
            for c in s.chars() {
                if is_break(c) {
                    if !breaks && c == '\n' {
                        self.put_break();
                    }
                    self.write_break(c);
                    breaks = true;
                } else {
                    if breaks {
                        self.write_indent(indent);
                    }
                    self.put(c);
                    self.indention = false;
                    breaks = false;
                }
            }
            if !s.is_empty() {
                self.whitespace = false;
            }
            self.indention = false;
        }

        fn single(&mut self, s: &str, indent: usize) {
            self.indicator("'", true, false, false);
            let mut breaks = false;
            for c in s.chars() {
                if is_break(c) {
                    if !breaks && c == '\n' {
                        self.put_break();
                    }
                    self.write_break(c);
                    breaks = true;
                } else {
                    if breaks {
                        self.write_indent(indent);
                    }
                    if c == '\'' {
                        self.put('\'');
                    }
                    self.put(c);
                    self.indention = false;
                    breaks = false;
                }
            }
            self.indicator("'", false, false, false);
            self.whitespace = false;
            self.indention = false;
        }

        fn double(&mut self, s: &str) {
            self.indicator("\"", true, false, false);
            for c in s.chars() {
                if !printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                    self.put('\\');
                    match c {
                        '\0' => self.put('0'),
                        '\u{7}' => self.put('a'),
                        '\u{8}' => self.put('b'),
                        '\t' => self.put('t'),
                        '\n' => self.put('n'),
                        '\u{b}' => self.put('v'),
                        '\u{c}' => self.put('f'),
                        '\r' => self.put('r'),
                        '\u{1b}' => self.put('e'),
                        '"' => self.put('"'),
                        '\\' => self.put('\\'),
                        '\u{85}' => self.put('N'),
                        '\u{a0}' => self.put('_'),
                        '\u{2028}' => self.put('L'),
                        '\u{2029}' => self.put('P'),
                        c => {
                            let v = c as u32;
                            let text = if v <= 0xff {
                                format!("x{v:02X}")
                            } else if v <= 0xffff {
                                format!("u{v:04X}")
                            } else {
                                format!("U{v:08X}")
                            };
                            self.write_str(&text);
                        }
                    }
                } else {
                    self.put(c);
                }
            }
            self.indicator("\"", false, false, false);
            self.whitespace = false;
            self.indention = false;
        }

        fn literal(&mut self, s: &str, indent: usize) {
            self.indicator("|", true, false, false);
            // Hints: an indentation indicator when the text starts with a
            // space or break, `-` (strip) without a final break, `+` (keep)
            // with more than one.
            let chars: Vec<char> = s.chars().collect();
            if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
                self.indicator("4", false, false, false);
            }
            match chars.as_slice() {
                [] => self.indicator("-", false, false, false),
                [.., last] if !is_break(*last) => self.indicator("-", false, false, false),
                [_] => self.indicator("+", false, false, false),
                [.., before, _] if is_break(*before) => self.indicator("+", false, false, false),
                _ => {}
            }
            self.whitespace = true;
            let mut breaks = true;
            for c in chars {
                if is_break(c) {
                    self.write_break(c);
                    breaks = true;
                } else {
                    if breaks {
                        self.write_indent(indent);
                    }
                    self.put(c);
                    self.indention = false;
                    breaks = false;
                }
            }
        }
    }

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Style {
        Plain,
        Single,
        Double,
        Literal,
    }

    fn is_break(c: char) -> bool {
        matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
    }

    fn is_blankz(c: Option<char>) -> bool {
        match c {
            None => true,
            Some(c) => c == ' ' || c == '\t' || is_break(c) || c == '\0',
        }
    }

    /// yaml.v3's `is_printable`: characters it writes unescaped.
    fn printable(c: char) -> bool {
        let v = c as u32;
        v == 0x0a
            || (0x20..=0x7e).contains(&v)
            || (0xa0..=0xd7ff).contains(&v)
            || ((0xe000..=0xfffd).contains(&v) && v != 0xfeff)
    }

    /// What `yaml_emitter_analyze_scalar` allows (in block context).
    struct Analysis {
        block_plain: bool,
        single: bool,
        block: bool,
    }

    fn analyze(s: &str) -> Analysis {
        if s.is_empty() {
            return Analysis {
                block_plain: true,
                single: true,
                block: false,
            };
        }
        let chars: Vec<char> = s.chars().collect();
        let mut block_indicators = s.starts_with("---") || s.starts_with("...");
        let (mut line_breaks, mut special, mut tabs) = (false, false, false);
        let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
            (false, false, false, false);
        let (mut break_space, mut space_break) = (false, false);
        let mut preceded_by_whitespace = true;
        let (mut previous_space, mut previous_break) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            let followed_by_whitespace = is_blankz(chars.get(i + 1).copied());
            let last = i + 1 == chars.len();
            if i == 0 {
                match c {
                    '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\''
                    | '"' | '%' | '@' | '`' => block_indicators = true,
                    '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                    _ => {}
                }
            } else {
                match c {
                    ':' if followed_by_whitespace => block_indicators = true,
                    '#' if preceded_by_whitespace => block_indicators = true,
                    _ => {}
                }
            }
            if c == '\t' {
                tabs = true;
            } else if !printable(c) {
                special = true;
            }
            if c == ' ' {
                leading_space |= i == 0;
                trailing_space |= last;
                break_space |= previous_break;
                previous_space = true;
                previous_break = false;
            } else if is_break(c) {
                line_breaks = true;
                leading_break |= i == 0;
                trailing_break |= last;
                space_break |= previous_space;
                previous_space = false;
                previous_break = true;
            } else {
                previous_space = false;
                previous_break = false;
            }
            preceded_by_whitespace = is_blankz(Some(c));
        }
        let mut a = Analysis {
            block_plain: true,
            single: true,
            block: true,
        };
        if leading_space || leading_break || trailing_space || trailing_break {
            a.block_plain = false;
        }
        if trailing_space {
            a.block = false;
        }
        if break_space {
            a.block_plain = false;
            a.single = false;
        }
        if space_break || tabs || special {
            a.block_plain = false;
            a.single = false;
        }
        if space_break || special {
            a.block = false;
        }
        if line_breaks || block_indicators {
            a.block_plain = false;
        }
        a
    }

    /// Whether yaml.v3 would read `s`, written plain, as something other
    /// than this string (`encoder.stringv`'s `canUsePlain`, negated): a
    /// null, bool, number or timestamp in YAML 1.2, a YAML 1.1 bool, or a
    /// sexagesimal number.
    fn needs_quotes(s: &str) -> bool {
        if matches!(
            s,
            "" | "~"
                | "null"
                | "Null"
                | "NULL"
                | "true"
                | "True"
                | "TRUE"
                | "false"
                | "False"
                | "FALSE"
                | ".nan"
                | ".NaN"
                | ".NAN"
                | ".inf"
                | ".Inf"
                | ".INF"
                | "+.inf"
                | "+.Inf"
                | "+.INF"
                | "-.inf"
                | "-.Inf"
                | "-.INF"
        ) {
            return true;
        }
        if matches!(
            s,
            "y" | "Y"
                | "yes"
                | "Yes"
                | "YES"
                | "on"
                | "On"
                | "ON"
                | "n"
                | "N"
                | "no"
                | "No"
                | "NO"
                | "off"
                | "Off"
                | "OFF"
        ) {
            return true;
        }
        let Some(first) = s.bytes().next() else {
            return true;
        };
        match first {
            b'.' => go_parse_float(s),
            b'0'..=b'9' | b'+' | b'-' => {
                if base60_float(s) || timestamp(s) {
                    return true;
                }
                let plain = s.replace('_', "");
                go_parse_int(&plain)
                    || yaml_style_float(&plain) && go_parse_float(&plain)
                    || prefixed(&plain, "0b", 2)
                    || prefixed(&plain, "-0b", 2)
                    || prefixed(&plain, "0o", 8)
                    || prefixed(&plain, "-0o", 8)
            }
            _ => false,
        }
    }

    fn prefixed(s: &str, prefix: &str, radix: u32) -> bool {
        s.strip_prefix(prefix)
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_digit(radix)) && d.len() <= 64)
    }

    /// Go's `strconv.ParseInt(s, 0, 64)` or `ParseUint` succeeding (the
    /// underscores are already gone).
    fn go_parse_int(s: &str) -> bool {
        let body = s.strip_prefix(['+', '-']).unwrap_or(s);
        let (digits, radix) = if let Some(h) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
            (h, 16)
        } else if let Some(b) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
            (b, 2)
        } else if let Some(o) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
            (o, 8)
        } else if body.len() > 1 && body.starts_with('0') {
            (&body[1..], 8)
        } else {
            (body, 10)
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return false;
        }
        // In range of int64, or (unsigned, no sign) of uint64.
        let neg = s.starts_with('-');
        match u128::from_str_radix(digits, radix) {
            Ok(v) if neg => v <= 1u128 << 63,
            Ok(v) if s.starts_with('+') => v < 1u128 << 63,
            Ok(v) => v <= u64::MAX as u128,
            Err(_) => false,
        }
    }

    /// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
    fn yaml_style_float(s: &str) -> bool {
        let b = s.strip_prefix(['+', '-']).unwrap_or(s).as_bytes();
        let digits = |b: &[u8], i: &mut usize| {
            let start = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            *i - start
        };
        let mut i = 0;
        if b.first() == Some(&b'.') {
            i = 1;
            if digits(b, &mut i) == 0 {
                return false;
            }
        } else {
            if digits(b, &mut i) == 0 {
                return false;
            }
            if b.get(i) == Some(&b'.') {
                i += 1;
                digits(b, &mut i);
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(b, &mut i) == 0 {
                return false;
            }
        }
        i == b.len()
    }

    /// Go's `strconv.ParseFloat(s, 64)` succeeding, for the forms a string
    /// starting with `.`, a digit or a sign can take (decimal, hexadecimal
    /// with a `p` exponent, `inf`, `infinity`, `nan`); out-of-range values
    /// are an error in Go too.
    fn go_parse_float(s: &str) -> bool {
        let body = s.strip_prefix(['+', '-']).unwrap_or(s);
        let lower = body.to_ascii_lowercase();
        if lower == "inf" || lower == "infinity" {
            return true;
        }
        if lower == "nan" {
            return s == body;
        }
        if let Some(hex) = lower.strip_prefix("0x") {
            return hex_float(hex);
        }
        // Go accepts underscores only with a base prefix.
        if !yaml_style_float(body) {
            return false;
        }
        body.parse::<f64>().is_ok_and(f64::is_finite)
    }

    fn hex_float(s: &str) -> bool {
        let Some((mant, exp)) = s.split_once('p') else {
            return false;
        };
        let mant = mant.replace('_', "");
        let (int, frac) = mant.split_once('.').unwrap_or((&mant, ""));
        let hex = |t: &str| t.chars().all(|c| c.is_ascii_hexdigit());
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        (!int.is_empty() || !frac.is_empty())
            && hex(int)
            && hex(frac)
            && !exp.is_empty()
            && exp.chars().all(|c| c.is_ascii_digit())
    }

    /// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
    fn base60_float(s: &str) -> bool {
        if !s.contains(':') {
            return false;
        }
        let b = s.strip_prefix(['+', '-']).unwrap_or(s).as_bytes();
        let mut i = 0;
        if !b.first().is_some_and(u8::is_ascii_digit) {
            return false;
        }
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
        let mut groups = 0;
        while b.get(i) == Some(&b':') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
                i += 1;
            }
            let g = &b[start..i];
            let ok = match g {
                [d] => d.is_ascii_digit(),
                [a, _] => (b'0'..=b'5').contains(a),
                _ => false,
            };
            if !ok {
                return false;
            }
            groups += 1;
        }
        if groups == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                i += 1;
            }
        }
        i == b.len()
    }

    /// Whether yaml.v3 reads `s` as a timestamp: four digits and `-`, then
    /// one of its formats (`2006-1-2`, with `T`/`t`/space and a time).
    fn timestamp(s: &str) -> bool {
        let b = s.as_bytes();
        if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
            return false;
        }
        let rest = &s[5..];
        let num = |t: &str, max: usize| {
            !t.is_empty() && t.len() <= max && t.bytes().all(|c| c.is_ascii_digit())
        };
        let date = |t: &str| -> bool {
            let mut p = t.splitn(2, '-');
            let (Some(m), Some(d)) = (p.next(), p.next()) else {
                return false;
            };
            num(m, 2)
                && num(d, 2)
                && (1..=12).contains(&m.parse::<u32>().unwrap_or(0))
                && (1..=31).contains(&d.parse::<u32>().unwrap_or(0))
        };
        if let Some(pos) = rest.find(['T', 't', ' ']) {
            let (d, t) = (&rest[..pos], &rest[pos + 1..]);
            if !date(d) {
                return false;
            }
            let mut parts = t.splitn(3, ':');
            let (Some(h), Some(m), Some(sec)) = (parts.next(), parts.next(), parts.next()) else {
                return false;
            };
            num(h, 2) && num(m, 2) && sec.as_bytes().first().is_some_and(u8::is_ascii_digit)
        } else {
            date(rest)
        }
    }

    /// yaml.v3's order of string map keys: letters before other
    /// characters, runs of digits by their value.
    fn natural(a: &str, b: &str) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let less = |a: &str, b: &str| -> bool {
            let ar: Vec<char> = a.chars().collect();
            let br: Vec<char> = b.chars().collect();
            let mut digits = false;
            let n = ar.len().min(br.len());
            for i in 0..n {
                if ar[i] == br[i] {
                    digits = ar[i].is_numeric();
                    continue;
                }
                let al = ar[i].is_alphabetic();
                let bl = br[i].is_alphabetic();
                if al && bl {
                    return ar[i] < br[i];
                }
                if al || bl {
                    return if digits { al } else { bl };
                }
                let (mut an, mut bn) = (0i64, 0i64);
                if ar[i] == '0' || br[i] == '0' {
                    let mut j = i;
                    while j > 0 && ar[j - 1].is_numeric() {
                        j -= 1;
                        if ar[j] != '0' {
                            an = 1;
                            bn = 1;
                            break;
                        }
                    }
                }
                let mut ai = i;
                while ai < ar.len() && ar[ai].is_ascii_digit() {
                    an = an
                        .wrapping_mul(10)
                        .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
                    ai += 1;
                }
                let mut bi = i;
                while bi < br.len() && br[bi].is_ascii_digit() {
                    bn = bn
                        .wrapping_mul(10)
                        .wrapping_add(i64::from(br[bi] as u8 - b'0'));
                    bi += 1;
                }
                if an != bn {
                    return an < bn;
                }
                if ai != bi {
                    return ai < bi;
                }
                return ar[i] < br[i];
            }
            ar.len() < br.len()
        };
        if less(a, b) {
            Ordering::Less
        } else if less(b, a) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }
}

use yaml::Ctx;
