//! Semantic checks that the schema alone cannot express, each reported at
//! the line the user has to change.
//!
//! The reference validates the schema and then fails much later (or never)
//! on the rest. We check up front everything a configuration alone can tell
//! before any image is pulled, in two grades:
//!
//! - **errors** for what the reference refuses too (at its dry run or later
//!   in its build: a malformed bind, an unknown capability, a missing
//!   `source` file), and for paths that would escape the image;
//! - **warnings** for what the reference accepts but we think is wrong or
//!   pointless (a relative `cwd`, a read-only volume mounted `ro` then `rw`,
//!   `binds.add` next to `binds`). The build goes on and produces what the
//!   reference produces; `build --strict` ([`Checks::strict`]) makes every
//!   warning an error.
//!
//! A configuration that passes validation must not fail later for a reason
//! the configuration shows: every check of the build that depends only on
//! the YAML lives here (the build re-checks defensively, with the same
//! rules from [`crate::mounts`]).

use std::collections::HashMap;
use std::path::PathBuf;

use crate::error::did_you_mean;
use crate::ids::IdMap;
use crate::model::{File, IdSpec, Image, ImageConfig, Mount, Section, VolumeFormat};
use crate::mounts::{Bind, ReadOnly, parse_tmpfs};
use crate::paths::{image_path, relative_escapes, single_component};
use crate::{Config, ConfigError};

/// What [`Config::validate`] may look at outside the configuration, and how
/// strict it is.
#[derive(Debug, Clone)]
pub struct Checks {
    /// Check that each `files[].source` exists (unless `optional`).
    pub sources_exist: bool,
    /// Where `~/` in a `source` points.
    pub home: Option<PathBuf>,
    /// Where a relative `source` is looked for; `None` is the working
    /// directory, where the build reads it (a tool validating the
    /// configuration of another directory sets it).
    pub base_dir: Option<PathBuf>,
    /// Every warning is an error (`build --strict`).
    pub strict: bool,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            sources_exist: true,
            home: std::env::var_os("HOME").map(PathBuf::from),
            base_dir: None,
            strict: false,
        }
    }
}

/// Linux capabilities, as LinuxKit (and runc) spell them.
pub const CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYSLOG",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_WAKE_ALARM",
];

/// Resource limits accepted in `rlimits:` (with or without `RLIMIT_`).
pub const RLIMITS: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

const PROPAGATIONS: &[&str] = &[
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
];

type Check = Result<(), ConfigError>;

/// Located warnings, in file order.
type Warnings = Vec<ConfigError>;

/// Parses an octal permission string (`"0644"`, `"755"`).
pub fn parse_mode(s: &str) -> Option<u32> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || digits.len() > 5 {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o7777)
}

/// A container name the in-VM runtimes take as a container id without
/// complaint (runc's `^[\w+-\.]+$`, and a letter or digit first).
fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Volume names as the reference accepts them (`^[a-z0-9_-]+$`): they become
/// directories under `/containers/volumes` and are told apart from host paths
/// in `binds` by having no `/`.
fn valid_volume_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'))
}

/// Basic checks on an image reference; the full reference grammar is the
/// image crate's job.
fn image_ref_problem(r: &str) -> Option<String> {
    if r.trim().is_empty() {
        return Some("image reference is empty; give an image such as `alpine:3.20`".into());
    }
    if r.contains("://") {
        return Some(format!(
            "image reference `{r}` must not have a URL scheme; write it as `registry/repository:tag`"
        ));
    }
    if r.chars().any(char::is_whitespace) {
        return Some(format!("image reference `{r}` contains white space"));
    }
    None
}

impl Config {
    /// Checks the merged configuration. Returns located warnings (things
    /// that build as the reference builds them but probably are not what the
    /// user meant), or the first error in file order. With
    /// [`Checks::strict`], the first warning is returned as the error.
    pub fn validate(&self, checks: &Checks) -> Result<Vec<ConfigError>, ConfigError> {
        let mut warnings = self.parse_warnings.clone();
        self.check_all(checks, &mut warnings)?;
        if checks.strict && !warnings.is_empty() {
            return Err(warnings.swap_remove(0));
        }
        Ok(warnings)
    }

    /// A warning about `sub` of element `index` of `section`, located like
    /// an error.
    fn warn_at(
        &self,
        section: &str,
        index: usize,
        sub: &str,
        msg: impl Into<String>,
    ) -> ConfigError {
        self.error_at(section, index, sub, msg)
    }

    fn check_all(&self, checks: &Checks, warnings: &mut Warnings) -> Check {
        let m = &self.moby;
        if m.trust.is_some() {
            let at = self.sources.first().map(|s| s.name.clone());
            let mut w = ConfigError::new(
                "the `trust` section is ignored: content trust was removed from LinuxKit; pin images by digest instead",
            );
            if let Some(f) = at {
                w = w.in_file(&f);
            }
            warnings.push(w);
        }
        let k = &m.kernel;
        if k.image.is_empty() && !k.is_empty() {
            // The reference ignores such a section (no kernel is added).
            let field = ["cmdline", "binary", "tar", "ucode"]
                .into_iter()
                .find(|f| self.origins.kernel.contains_key(f))
                .unwrap_or("image");
            warnings.push(self.kernel_section_error(
                field,
                "the kernel section has no `image`, so it is ignored (no kernel is added); give an `image`",
            ));
        }
        if !k.image.is_empty()
            && let Some(p) = image_ref_problem(&k.image)
        {
            return Err(self.kernel_error("image", p));
        }
        for (i, r) in m.init.iter().enumerate() {
            if let Some(p) = image_ref_problem(r) {
                return Err(self.error_at("init", i, "", p));
            }
        }
        self.check_volumes(warnings)?;
        let ids = IdMap::new(m);
        let id_names = id_names(m);
        let mut seen: HashMap<(Section, &str), usize> = HashMap::new();
        for (section, i, c) in m.containers() {
            let key = section.key();
            if c.name.is_empty() {
                return Err(self.error_at(key, i, "name", "container needs a `name`"));
            }
            if let Err(p) = single_component(&c.name) {
                return Err(self.error_at(
                    key,
                    i,
                    "name",
                    format!("invalid container name `{}`: it {p}", c.name),
                ));
            }
            if !valid_name(&c.name) {
                warnings.push(self.warn_at(
                    key,
                    i,
                    "name",
                    format!(
                        "container name `{}` is not a valid container id for runc or containerd; use letters, digits, `_`, `.` and `-`, starting with a letter or digit",
                        c.name
                    ),
                ));
            }
            if let Some(i0) = seen.insert((section, &c.name), i) {
                let first = self.error_at(key, i0, "name", "");
                if section == Section::Services {
                    // Services run side by side under their name: the
                    // reference refuses a repeat too.
                    return Err(self.error_at(
                        key,
                        i,
                        "name",
                        format!(
                            "duplicate service name `{}` (first used at {}); rename one of them",
                            c.name,
                            location(&first)
                        ),
                    ));
                }
                // onboot and onshutdown bundles are numbered (`000-NAME`,
                // `001-NAME`), so a repeat builds; only the id is shared,
                // which matters only if a `uid`/`gid` names it.
                if id_names.contains(c.name.as_str()) {
                    warnings.push(self.warn_at(
                    key,
                    i,
                    "name",
                    format!(
                        "container name `{}` is used twice in {key} (first at {}) and a `uid` or `gid` names it: it gets the id of the last container of that name; rename one of them",
                        c.name,
                        location(&first)
                    ),
                ));
                }
            }
            if c.image.is_empty() {
                return Err(self.error_at(key, i, "image", "container needs an `image`"));
            }
            if let Some(p) = image_ref_problem(&c.image) {
                return Err(self.error_at(key, i, "image", p));
            }
            self.check_image(key, i, c, &ids, warnings)?;
        }
        self.check_service_policies(warnings)?;
        for (i, f) in m.files.iter().enumerate() {
            self.check_file(i, f, &ids, checks, warnings)?;
        }
        Ok(())
    }

    /// The restart and ordering annotations ([`crate::service_policy`]):
    /// valid values, `after` naming services of this configuration, and no
    /// services waiting for each other.
    fn check_service_policies(&self, warnings: &mut Warnings) -> Check {
        use crate::service_policy::{AFTER, RESTART, ServicePolicy, WAIT_FOR, find_cycle};
        let m = &self.moby;
        let at = |section: &str, i: usize, key: &str, msg: String| {
            self.error_at(section, i, &format!("annotations.{key}"), msg)
        };
        for (section, i, c) in m.containers() {
            if section == Section::Services {
                continue;
            }
            let Some(a) = &c.config.annotations else {
                continue;
            };
            for key in [RESTART, AFTER, WAIT_FOR] {
                if a.contains_key(key) {
                    warnings.push(at(
                        section.key(),
                        i,
                        key,
                        format!(
                            "`{key}` only applies to services; in {} it is ignored",
                            section.key()
                        ),
                    ));
                }
            }
        }
        let names: Vec<&str> = m.services.iter().map(|s| s.name.as_str()).collect();
        let mut graph = Vec::new();
        for (i, s) in m.services.iter().enumerate() {
            let Some(a) = &s.config.annotations else {
                graph.push((s.name.clone(), Vec::new()));
                continue;
            };
            let p = ServicePolicy::from_annotations(a)
                .map_err(|(key, msg)| at("services", i, &key, msg))?;
            for dep in &p.after {
                if !names.contains(&dep.as_str()) {
                    let hint = crate::error::did_you_mean(dep, names.iter().copied())
                        .map(|n| format!(", did you mean `{n}`?"))
                        .unwrap_or_default();
                    return Err(at(
                        "services",
                        i,
                        AFTER,
                        format!("`{AFTER}`: there is no service `{dep}`{hint}"),
                    ));
                }
            }
            graph.push((s.name.clone(), p.after));
        }
        if let Some(cycle) = find_cycle(&graph) {
            let i = names.iter().position(|n| *n == cycle[0]).unwrap_or(0);
            return Err(at(
                "services",
                i,
                AFTER,
                format!(
                    "services wait for each other through `{AFTER}` ({}), so none of them would start; remove one of the waits",
                    cycle.join(" -> ")
                ),
            ));
        }
        Ok(())
    }

    fn check_volumes(&self, warnings: &mut Warnings) -> Check {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, v) in self.moby.volumes.iter().enumerate() {
            if v.name.is_empty() {
                return Err(self.error_at("volumes", i, "name", "volume needs a `name`"));
            }
            if !valid_volume_name(&v.name) {
                return Err(self.error_at(
                    "volumes",
                    i,
                    "name",
                    format!(
                        "invalid volume name `{}`: use lower-case letters, digits, `_` and `-`",
                        v.name
                    ),
                ));
            }
            if let Some(first) = seen.insert(&v.name, i) {
                let first = self.error_at("volumes", first, "name", "");
                return Err(self.error_at(
                    "volumes",
                    i,
                    "name",
                    format!(
                        "duplicate volume name `{}` (first used at {}); rename one of them",
                        v.name,
                        location(&first)
                    ),
                ));
            }
            if !v.image.is_empty()
                && let Some(p) = image_ref_problem(&v.image)
            {
                return Err(self.error_at("volumes", i, "image", p));
            }
            if v.format == Some(VolumeFormat::Oci) && v.image.is_empty() {
                warnings.push(self.warn_at(
                    "volumes",
                    i,
                    "format",
                    "`format: oci` has no effect without an `image` to store; the volume starts empty",
                ));
            }
            for (j, p) in v.platforms.iter().enumerate() {
                let parts: Vec<&str> = p.split('/').collect();
                let ok = (2..=3).contains(&parts.len())
                    && parts
                        .iter()
                        .all(|s| !s.is_empty() && !s.contains(char::is_whitespace));
                if !ok {
                    return Err(self.error_at(
                        "volumes",
                        i,
                        &format!("platforms[{j}]"),
                        format!(
                            "invalid platform `{p}`: write `os/architecture` or `os/architecture/variant`, e.g. `linux/arm64`"
                        ),
                    ));
                }
            }
            if !v.platforms.is_empty() && v.format != Some(VolumeFormat::Oci) {
                warnings.push(self.warn_at(
                    "volumes",
                    i,
                    "platforms",
                    "`platforms` is ignored: it applies only to `format: oci` volumes",
                ));
            }
        }
        Ok(())
    }

    fn check_image(
        &self,
        key: &str,
        i: usize,
        c: &Image,
        ids: &IdMap,
        warnings: &mut Warnings,
    ) -> Check {
        let cfg: &ImageConfig = &c.config;
        let err = |sub: String, msg: String| self.error_at(key, i, &sub, msg);
        let mut warn = |sub: &str, msg: String| warnings.push(self.warn_at(key, i, sub, msg));
        // Next to `capabilities`, `capabilities.add` is ignored (a warning
        // below says so), as the reference ignores it: its names are not
        // checked either.
        let caps_add = if cfg.capabilities.is_some() {
            &None
        } else {
            &cfg.capabilities_add
        };
        for (field, list) in [
            ("capabilities", &cfg.capabilities),
            ("capabilities.add", caps_add),
            ("ambient", &cfg.ambient),
        ] {
            let Some(list) = list else { continue };
            // `all` and `none`, in any case, stand alone (the reference
            // lower-cases a one-entry list before matching).
            if let [one] = list.as_slice()
                && (one.eq_ignore_ascii_case("all") || one.eq_ignore_ascii_case("none"))
            {
                continue;
            }
            for (j, cap) in list.iter().enumerate() {
                if CAPABILITIES.contains(&cap.as_str()) {
                    continue;
                }
                let hint = if cap.eq_ignore_ascii_case("all") || cap.eq_ignore_ascii_case("none") {
                    format!(": `{cap}` must be the only entry of `{field}`")
                } else {
                    let upper = cap.to_ascii_uppercase();
                    let with_prefix = if upper.starts_with("CAP_") {
                        upper
                    } else {
                        format!("CAP_{upper}")
                    };
                    if CAPABILITIES.contains(&with_prefix.as_str()) {
                        format!(", did you mean `{with_prefix}`?")
                    } else if let Some(s) = did_you_mean(cap, CAPABILITIES.iter().copied()) {
                        format!(", did you mean `{s}`?")
                    } else {
                        "; use a name such as `CAP_NET_ADMIN`, or `all`/`none` alone".into()
                    }
                };
                return Err(err(
                    format!("{field}[{j}]"),
                    format!("unknown capability `{cap}`{hint}"),
                ));
            }
        }
        for (base, add) in [("capabilities", "capabilities.add"), ("binds", "binds.add")] {
            let (has_base, has_add) = match base {
                "capabilities" => (cfg.capabilities.is_some(), cfg.capabilities_add.is_some()),
                _ => (cfg.binds.is_some(), cfg.binds_add.is_some()),
            };
            if has_base && has_add {
                warn(
                    add,
                    format!(
                        "`{add}` is ignored because `{base}` is also given (`{base}` replaces the whole list, as in LinuxKit); move these entries into `{base}`"
                    ),
                );
            }
        }
        for (field, list) in [("binds", &cfg.binds), ("binds.add", &cfg.binds_add)] {
            // A `binds.add` next to `binds` is ignored, but the reference
            // still resolves the volumes it names (and refuses a bad one).
            let ignored = field == "binds.add" && cfg.binds.is_some();
            for (j, b) in list.iter().flatten().enumerate() {
                let at = format!("{field}[{j}]");
                if ignored {
                    let source = b.split(':').next().unwrap_or_default();
                    if !source.starts_with('/') {
                        let ro = b.split(':').nth(2).is_some_and(|o| o == "ro");
                        self.check_volume_use(source, ro, "bind")
                            .map_err(|m| err(at.clone(), m))?;
                    }
                    continue;
                }
                let bind = Bind::parse(b).map_err(|m| err(at.clone(), m))?;
                if bind.source.is_empty() {
                    return Err(err(at, format!("bind `{b}` has an empty source")));
                }
                if !bind.destination.starts_with('/') {
                    warn(
                        &at,
                        format!(
                            "bind `{b}`: the destination `{}` is not an absolute path; runc and crun take it from the container's `/`, write it so",
                            bind.destination
                        ),
                    );
                }
                if bind.names_volume() {
                    let ro = ReadOnly::of(bind.option_list());
                    self.check_volume_use(bind.source, ro.allowed_in_bind(), "bind")
                        .map_err(|m| err(at.clone(), m))?;
                }
            }
        }
        for (j, mnt) in cfg.mounts.iter().flatten().enumerate() {
            let at = format!("mounts[{j}]");
            self.check_mount(mnt, &at, &err, &mut warn)?;
        }
        for (j, t) in cfg.tmpfs.iter().flatten().enumerate() {
            let at = format!("tmpfs[{j}]");
            let (dst, _) = parse_tmpfs(t).map_err(|m| err(at.clone(), m))?;
            if !dst.starts_with('/') {
                warn(
                    &at,
                    format!("tmpfs `{t}`: the destination `{dst}` is not an absolute path"),
                );
            }
        }
        for (j, d) in cfg.devices.iter().flatten().enumerate() {
            let at = |f: &str| format!("devices[{j}].{f}");
            if d.path.is_empty() {
                return Err(err(at("path"), "device needs a `path` (or `all`)".into()));
            }
            if !matches!(d.kind.as_str(), "b" | "c" | "u" | "p" | "a") {
                warn(
                    &at("type"),
                    format!(
                        "device type `{}` is none of `b` (block), `c` or `u` (char), `p` (fifo), `a` (all); the container will not start",
                        d.kind
                    ),
                );
            }
            if d.path != "all" {
                match &d.mode {
                    None => {
                        return Err(err(
                            at("path"),
                            format!("device `{}` needs an octal `mode`, e.g. \"0666\"", d.path),
                        ));
                    }
                    Some(m) if parse_device_mode(m).is_none() => {
                        return Err(err(at("mode"), invalid_mode(m)));
                    }
                    _ => {}
                }
            }
        }
        for (j, e) in cfg.env.iter().flatten().enumerate() {
            if e.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                warn(
                    &format!("env[{j}]"),
                    format!("environment entry `{e}` is not `NAME=value`; runc and crun refuse it"),
                );
            }
        }
        if let Some(cwd) = &cfg.cwd
            && !cwd.is_empty()
            && !cwd.starts_with('/')
        {
            warn(
                "cwd",
                format!("`cwd: {cwd}` is not an absolute path; the container will not start"),
            );
        }
        for (field, value, allow_none) in [
            ("net", &cfg.net, true),
            ("pid", &cfg.pid, false),
            ("ipc", &cfg.ipc, false),
            ("uts", &cfg.uts, false),
            ("userns", &cfg.userns, false),
        ] {
            let Some(v) = value else { continue };
            let ok = matches!(v.as_str(), "" | "host" | "root" | "new")
                || (allow_none && v == "none")
                || v.starts_with('/');
            if !ok {
                let none = if allow_none { ", `none`" } else { "" };
                warn(
                    field,
                    format!(
                        "`{field}: {v}` is taken as the path of a namespace to join; write `host`, `new`{none} or an absolute path"
                    ),
                );
            }
        }
        if let Some(h) = &cfg.hostname
            && !h.is_empty()
            && cfg
                .uts
                .as_deref()
                .is_none_or(|u| matches!(u, "" | "host" | "root"))
        {
            warn(
                "hostname",
                format!(
                    "`hostname: {h}` needs the container's own UTS namespace; add `uts: new` (unless the image's label sets `uts`)"
                ),
            );
        }
        for (j, r) in cfg.rlimits.iter().flatten().enumerate() {
            check_rlimit(r).map_err(|m| err(format!("rlimits[{j}]"), m))?;
        }
        if let Some(p) = &cfg.rootfs_propagation
            && !p.is_empty()
            && !PROPAGATIONS.contains(&p.as_str())
        {
            warn(
                "rootfsPropagation",
                format!(
                    "`rootfsPropagation: {p}` is none of {}; the container will not start",
                    PROPAGATIONS.join(", ")
                ),
            );
        }
        if let Some(o) = cfg.oom_score_adj
            && !(-1000..=1000).contains(&o)
        {
            warn(
                "oomScoreAdj",
                format!("`oomScoreAdj: {o}` is outside -1000..1000; the container will not start"),
            );
        }
        for (field, id) in [("uid", &cfg.uid), ("gid", &cfg.gid)] {
            if let Some(id) = id {
                check_id(id, ids).map_err(|m| err(field.into(), m))?;
            }
        }
        for (j, id) in cfg.additional_gids.iter().flatten().enumerate() {
            check_id(id, ids).map_err(|m| err(format!("additionalGids[{j}]"), m))?;
        }
        if let Some(rt) = &cfg.runtime {
            for (j, mnt) in rt.mounts.iter().flatten().enumerate() {
                if mnt.destination.is_empty() {
                    return Err(err(
                        format!("runtime.mounts[{j}]"),
                        "runtime mount needs a `destination`".into(),
                    ));
                }
                if relative_escapes(&mnt.destination) {
                    warn(
                        &format!("runtime.mounts[{j}].destination"),
                        format!(
                            "`{}` is relative to the container's rootfs but climbs out of it with `..`; write the absolute path you mean",
                            mnt.destination
                        ),
                    );
                }
            }
            for (j, d) in rt.mkdir.iter().flatten().enumerate() {
                if relative_escapes(d) {
                    warn(
                        &format!("runtime.mkdir[{j}]"),
                        format!(
                            "`{d}` is relative to the container's rootfs but climbs out of it with `..`; write the absolute path you mean"
                        ),
                    );
                }
            }
            for (j, ifc) in rt.interfaces.iter().flatten().enumerate() {
                if ifc.name.is_empty() {
                    return Err(err(
                        format!("runtime.interfaces[{j}]"),
                        "interface needs a `name`".into(),
                    ));
                }
            }
            for (ns, p) in rt.bind_ns.entries() {
                if let Some(p) = p
                    && !p.is_empty()
                    && !p.starts_with('/')
                {
                    warn(
                        &format!("runtime.bindNS.{ns}"),
                        format!("`bindNS.{ns}: {p}` is not an absolute path"),
                    );
                }
            }
        }
        Ok(())
    }

    /// A `mounts:` entry: its short form must complete (the reference's
    /// build fails otherwise), and a volume named as a bind source must
    /// exist and respect `readonly`. (The reference checks the volume but
    /// never rewrites its source; we do, see docs/configuration.md.)
    fn check_mount(
        &self,
        m: &Mount,
        at: &str,
        err: &dyn Fn(String, String) -> ConfigError,
        warn: &mut dyn FnMut(&str, String),
    ) -> Check {
        // What is missing cannot be pointed at: the entry is.
        let done = m.completed().map_err(|msg| err(at.to_string(), msg))?;
        if !done.destination.starts_with('/') {
            warn(
                &format!("{at}.destination"),
                format!(
                    "mount destination `{}` is not an absolute path; runc and crun take it from the container's `/`, write it so",
                    done.destination
                ),
            );
        }
        // As the reference, only an explicit `type: bind` names a volume.
        if m.kind != "bind" || m.source.starts_with('/') {
            return Ok(());
        }
        if m.source.is_empty() {
            return Err(err(
                at.to_string(),
                "bind mount needs a `source`: an absolute path or a volume name".into(),
            ));
        }
        let ro = ReadOnly::of(done.options.iter().map(String::as_str));
        let is_volume = self.moby.volumes.iter().any(|v| v.name == m.source);
        let field = if is_volume { "options" } else { "source" };
        self.check_volume_use(&m.source, ro.allowed_in_mount(), "mount")
            .map_err(|e| err(format!("{at}.{field}"), e))?;
        if is_volume && self.volume_is_readonly(&m.source) && ro.first && !ro.last {
            warn(
                &format!("{at}.options"),
                format!(
                    "read-only volume `{}` is mounted `ro` and then `rw`: the last one applies, so the container can write to it; drop the `rw`",
                    m.source
                ),
            );
        }
        Ok(())
    }

    fn volume_is_readonly(&self, name: &str) -> bool {
        self.moby
            .volumes
            .iter()
            .any(|v| v.name == name && v.readonly)
    }

    /// A bind or bind mount whose source is not an absolute path names a
    /// volume: it must exist, and a `readonly` one must be mounted `ro`
    /// (the reference's build refuses it otherwise).
    fn check_volume_use(&self, src: &str, read_only: bool, what: &str) -> Result<(), String> {
        let Some(vol) = self.moby.volumes.iter().find(|v| v.name == src) else {
            let names = self.moby.volumes.iter().map(|v| v.name.as_str());
            let hint = match did_you_mean(src, names) {
                Some(s) => format!("; did you mean volume `{s}`?"),
                None => "; define it under `volumes:` or use an absolute path".into(),
            };
            return Err(format!(
                "{what} source `{src}` is neither an absolute path nor a volume{hint}"
            ));
        };
        if vol.readonly && !read_only {
            return Err(format!(
                "volume `{src}` is read-only but is mounted read-write; add the `ro` option"
            ));
        }
        Ok(())
    }

    fn check_file(
        &self,
        i: usize,
        f: &File,
        ids: &IdMap,
        checks: &Checks,
        warnings: &mut Warnings,
    ) -> Check {
        let err = |sub: &str, msg: String| self.error_at("files", i, sub, msg);
        if f.path.is_empty() {
            return Err(err("", "file needs a `path`".into()));
        }
        if let Err(p) = image_path(&f.path) {
            return Err(err(
                "path",
                format!(
                    "file path `{}` {p}; give a path inside the image, such as `/etc/motd`",
                    f.path
                ),
            ));
        }
        let kinds: Vec<&str> = [
            ("directory", f.directory),
            ("symlink", f.symlink.is_some()),
            ("contents", f.contents.is_some()),
            ("source", f.source.is_some()),
            ("metadata", f.metadata.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        if kinds.is_empty() {
            return Err(err(
                "path",
                format!(
                    "file `{}` needs one of `contents`, `source`, `symlink`, `metadata` or `directory: true`",
                    f.path
                ),
            ));
        }
        // The reference refuses `source` or `metadata` next to anything
        // else; of `directory`, `symlink` and `contents` it takes the first
        // (in that order) and ignores the others.
        let refused = |k: &str| matches!(k, "source" | "metadata");
        if kinds.len() > 1 {
            let msg = format!(
                "file `{}` sets both `{}` and `{}`",
                f.path, kinds[0], kinds[1]
            );
            if kinds.iter().any(|k| refused(k)) {
                return Err(err(
                    kinds[1],
                    format!(
                        "{msg}; give only one of contents, source, symlink, metadata or directory"
                    ),
                ));
            }
            warnings.push(self.warn_at(
                "files",
                i,
                kinds[1],
                format!(
                    "{msg}; `{}` is used and `{}` ignored (as in LinuxKit); remove one",
                    kinds[0], kinds[1]
                ),
            ));
        }
        if f.optional && f.source.is_none() {
            warnings.push(self.warn_at(
                "files",
                i,
                "optional",
                "`optional` has no effect without `source`",
            ));
        }
        if let Some(m) = &f.mode
            && parse_mode(m).is_none()
        {
            return Err(err("mode", invalid_mode(m)));
        }
        for (field, id) in [("uid", &f.uid), ("gid", &f.gid)] {
            if let Some(id) = id {
                check_id(id, ids).map_err(|m| err(field, m))?;
            }
        }
        if let (Some(src), true) = (&f.source, checks.sources_exist) {
            let path = expand_home(src, checks.home.as_deref()).map_err(|m| err("source", m))?;
            let full = match &checks.base_dir {
                Some(base) if path.is_relative() => base.join(&path),
                _ => path.clone(),
            };
            let found = full.exists();
            if found && full.is_dir() {
                // The build reads the file whole; a directory fails there.
                return Err(err(
                    "source",
                    format!(
                        "source `{}` is a directory; name a file (use `directory: true` for an empty directory)",
                        path.display()
                    ),
                ));
            }
            if !f.optional && !found {
                let relative = if path.is_relative() {
                    " (relative paths are relative to the working directory)"
                } else {
                    ""
                };
                return Err(err(
                    "source",
                    format!(
                        "source file `{}` does not exist{relative}; fix the path, or add `optional: true` to skip a missing file",
                        path.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The names a `uid`, `gid` or `additionalGids` anywhere in the
/// configuration refers to.
fn id_names(m: &crate::model::Moby) -> std::collections::HashSet<&str> {
    let mut ids: Vec<&IdSpec> = Vec::new();
    for (_, _, c) in m.containers() {
        ids.extend(c.config.uid.iter().chain(&c.config.gid));
        ids.extend(c.config.additional_gids.iter().flatten());
    }
    for f in &m.files {
        ids.extend(f.uid.iter().chain(&f.gid));
    }
    ids.into_iter()
        .filter_map(|id| match id {
            IdSpec::Name(n) => Some(n.as_str()),
            IdSpec::Id(_) => None,
        })
        .collect()
}

/// A device's `mode` as the reference reads it (`strconv.ParseInt(mode, 8, 32)`).
pub fn parse_device_mode(mode: &str) -> Option<u32> {
    let digits = mode.strip_prefix('+').unwrap_or(mode);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    i64::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= i64::from(i32::MAX))
        .map(|m| m as u32)
}

/// `~/x` → `$HOME/x`.
pub fn expand_home(src: &str, home: Option<&std::path::Path>) -> Result<PathBuf, String> {
    match src.strip_prefix("~/") {
        Some(rest) => home.map(|h| h.join(rest)).ok_or_else(|| {
            format!("cannot expand `{src}`: HOME is not set; set HOME or give an absolute path")
        }),
        None => Ok(PathBuf::from(src)),
    }
}

fn invalid_mode(m: &str) -> String {
    format!("invalid mode `{m}`: give octal permission bits as a string, such as \"0644\"")
}

fn location(e: &ConfigError) -> String {
    match (&e.file, e.mark) {
        (Some(f), Some(m)) => format!("{f}:{}:{}", m.line, m.column),
        (Some(f), None) => f.clone(),
        _ => "unknown location".into(),
    }
}

fn check_id(id: &IdSpec, ids: &IdMap) -> Result<(), String> {
    if ids.resolve(id).is_some() {
        return Ok(());
    }
    let IdSpec::Name(n) = id else { return Ok(()) };
    let hint = did_you_mean(n, ids.names())
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    Err(format!(
        "unknown user or group `{n}`: give a number, `root`, or the name of a container in this configuration{hint}"
    ))
}

fn check_rlimit(r: &str) -> Result<(), String> {
    let parts: Vec<&str> = r.split(',').map(str::trim).collect();
    let shape = || format!("rlimit `{r}` must be `name,soft,hard`, e.g. `nofile,1024,4096`");
    let [name, soft, hard] = parts[..] else {
        return Err(shape());
    };
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("rlimit_").unwrap_or(&lower);
    if !RLIMITS.contains(&bare) {
        let hint = did_you_mean(bare, RLIMITS.iter().copied())
            .map(|s| format!(", did you mean `{s}`?"))
            .unwrap_or_else(|| format!("; known limits: {}", RLIMITS.join(", ")));
        return Err(format!("unknown rlimit `{name}`{hint}"));
    }
    let value = |v: &str| v.eq_ignore_ascii_case("unlimited") || v.parse::<u64>().is_ok();
    if !value(soft) || !value(hard) {
        return Err(format!(
            "rlimit `{r}`: soft and hard limits must be numbers or `unlimited`"
        ));
    }
    Ok(())
}
