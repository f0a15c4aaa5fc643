//! Semantic checks that the schema alone cannot express, each reported at
//! the line the user has to change.
//!
//! The reference validates the schema and then fails much later (or never)
//! on the rest; we check everything a configuration alone can tell before
//! any image is pulled.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::error::did_you_mean;
use crate::ids::IdMap;
use crate::model::{File, IdSpec, Image, ImageConfig, Mount, Section, VolumeFormat};
use crate::{Config, ConfigError};

/// What [`Config::validate`] may look at outside the configuration.
#[derive(Debug, Clone)]
pub struct Checks {
    /// Check that each `files[].source` exists (unless `optional`).
    pub sources_exist: bool,
    /// Where `~/` in a `source` points.
    pub home: Option<PathBuf>,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            sources_exist: true,
            home: std::env::var_os("HOME").map(PathBuf::from),
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

/// Parses an octal permission string (`"0644"`, `"755"`).
pub fn parse_mode(s: &str) -> Option<u32> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || digits.len() > 5 {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o7777)
}

/// A container or volume name: it becomes a directory and a container id.
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
    /// Checks the merged configuration. Returns warnings (things that work
    /// but probably are not what the user meant), or the first error in
    /// file order.
    pub fn validate(&self, checks: &Checks) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        let m = &self.moby;
        if m.trust.is_some() {
            warnings.push(
                "the `trust` section is ignored: content trust was removed from LinuxKit; pin images by digest instead"
                    .to_string(),
            );
        }
        let k = &m.kernel;
        if k.image.is_empty() && !k.is_empty() {
            let field = ["cmdline", "binary", "tar", "ucode"]
                .into_iter()
                .find(|f| self.origins.kernel.contains_key(f))
                .unwrap_or("image");
            return Err(self.kernel_section_error(field, "the kernel section needs an `image`"));
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
        self.check_volumes()?;
        let ids = IdMap::new(m);
        let mut seen: HashMap<(Section, &str), usize> = HashMap::new();
        for (section, i, c) in m.containers() {
            let key = section.key();
            if c.name.is_empty() {
                return Err(self.error_at(key, i, "name", "container needs a `name`"));
            }
            if !valid_name(&c.name) {
                return Err(self.error_at(
                    key,
                    i,
                    "name",
                    format!(
                        "invalid container name `{}`: use letters, digits, `_`, `.` and `-`, starting with a letter or digit",
                        c.name
                    ),
                ));
            }
            // The reference checks only `services`; a repeated name in onboot
            // or onshutdown silently shares one uid there, so we refuse it.
            if let Some(i0) = seen.insert((section, &c.name), i) {
                let first = self.error_at(key, i0, "name", "");
                return Err(self.error_at(
                    key,
                    i,
                    "name",
                    format!(
                        "duplicate container name `{}` in {key} (first used at {}); rename one of them",
                        c.name,
                        location(&first)
                    ),
                ));
            }
            if c.image.is_empty() {
                return Err(self.error_at(key, i, "image", "container needs an `image`"));
            }
            if let Some(p) = image_ref_problem(&c.image) {
                return Err(self.error_at(key, i, "image", p));
            }
            self.check_image(key, i, c, &ids)?;
        }
        for (i, f) in m.files.iter().enumerate() {
            self.check_file(i, f, &ids, checks, &mut warnings)?;
        }
        Ok(warnings)
    }

    fn check_volumes(&self) -> Check {
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
                return Err(self.error_at(
                    "volumes",
                    i,
                    "format",
                    "`format: oci` needs an `image` to store",
                ));
            }
            if !v.platforms.is_empty() && v.format != Some(VolumeFormat::Oci) {
                return Err(self.error_at(
                    "volumes",
                    i,
                    "platforms",
                    "`platforms` applies only to `format: oci` volumes",
                ));
            }
        }
        Ok(())
    }

    fn check_image(&self, key: &str, i: usize, c: &Image, ids: &IdMap) -> Check {
        let cfg: &ImageConfig = &c.config;
        let err = |sub: String, msg: String| self.error_at(key, i, &sub, msg);
        for (field, list) in [
            ("capabilities", &cfg.capabilities),
            ("capabilities.add", &cfg.capabilities_add),
            ("ambient", &cfg.ambient),
        ] {
            for (j, cap) in list.iter().flatten().enumerate() {
                if matches!(cap.as_str(), "all" | "none") || CAPABILITIES.contains(&cap.as_str()) {
                    continue;
                }
                let upper = cap.to_ascii_uppercase();
                let with_prefix = if upper.starts_with("CAP_") {
                    upper
                } else {
                    format!("CAP_{upper}")
                };
                let hint = if CAPABILITIES.contains(&with_prefix.as_str()) {
                    format!(", did you mean `{with_prefix}`?")
                } else if let Some(s) = did_you_mean(cap, CAPABILITIES.iter().copied()) {
                    format!(", did you mean `{s}`?")
                } else {
                    "; use a name such as `CAP_NET_ADMIN`, or `all`/`none`".into()
                };
                return Err(err(
                    format!("{field}[{j}]"),
                    format!("unknown capability `{cap}`{hint}"),
                ));
            }
        }
        for (field, list) in [("binds", &cfg.binds), ("binds.add", &cfg.binds_add)] {
            for (j, b) in list.iter().flatten().enumerate() {
                self.check_bind(b)
                    .map_err(|m| err(format!("{field}[{j}]"), m))?;
            }
        }
        for (j, mnt) in cfg.mounts.iter().flatten().enumerate() {
            self.check_mount(mnt)
                .map_err(|(f, m)| err(format!("mounts[{j}].{f}"), m))?;
        }
        for (j, t) in cfg.tmpfs.iter().flatten().enumerate() {
            let dst = t.split(':').next().unwrap_or_default();
            if !dst.starts_with('/') {
                return Err(err(
                    format!("tmpfs[{j}]"),
                    format!("tmpfs `{t}` must be `/absolute/destination[:options]`"),
                ));
            }
        }
        for (j, d) in cfg.devices.iter().flatten().enumerate() {
            let at = |f: &str| format!("devices[{j}].{f}");
            if d.path.is_empty() {
                return Err(err(at("path"), "device needs a `path` (or `all`)".into()));
            }
            if !matches!(d.kind.as_str(), "b" | "c" | "u" | "p" | "a") {
                return Err(err(
                    at("type"),
                    format!(
                        "device type `{}` must be `b` (block), `c` or `u` (char), `p` (fifo) or `a` (all)",
                        d.kind
                    ),
                ));
            }
            if d.path != "all" {
                match &d.mode {
                    None => {
                        return Err(err(
                            at("path"),
                            format!("device `{}` needs an octal `mode`, e.g. \"0666\"", d.path),
                        ));
                    }
                    Some(m) if parse_mode(m).is_none() => {
                        return Err(err(at("mode"), invalid_mode(m)));
                    }
                    _ => {}
                }
            }
        }
        for (j, e) in cfg.env.iter().flatten().enumerate() {
            if e.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                return Err(err(
                    format!("env[{j}]"),
                    format!("environment entry `{e}` must be `NAME=value`"),
                ));
            }
        }
        if let Some(cwd) = &cfg.cwd
            && !cwd.starts_with('/')
        {
            return Err(err(
                "cwd".into(),
                format!("`cwd` must be an absolute path, not `{cwd}`"),
            ));
        }
        for (field, value, allow_none) in [
            ("net", &cfg.net, true),
            ("pid", &cfg.pid, false),
            ("ipc", &cfg.ipc, false),
            ("uts", &cfg.uts, false),
            ("userns", &cfg.userns, false),
        ] {
            let Some(v) = value else { continue };
            let ok = matches!(v.as_str(), "" | "host" | "new")
                || (allow_none && v == "none")
                || v.starts_with('/');
            if !ok {
                let none = if allow_none { ", `none`" } else { "" };
                return Err(err(
                    field.into(),
                    format!(
                        "`{field}: {v}` must be `host`, `new`{none} or the path of a namespace to join"
                    ),
                ));
            }
        }
        for (j, r) in cfg.rlimits.iter().flatten().enumerate() {
            check_rlimit(r).map_err(|m| err(format!("rlimits[{j}]"), m))?;
        }
        if let Some(p) = &cfg.rootfs_propagation
            && !PROPAGATIONS.contains(&p.as_str())
        {
            return Err(err(
                "rootfsPropagation".into(),
                format!(
                    "`rootfsPropagation: {p}` must be one of: {}",
                    PROPAGATIONS.join(", ")
                ),
            ));
        }
        if let Some(o) = cfg.oom_score_adj
            && !(-1000..=1000).contains(&o)
        {
            return Err(err(
                "oomScoreAdj".into(),
                format!("`oomScoreAdj: {o}` must be between -1000 and 1000"),
            ));
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
                    return Err(err(
                        format!("runtime.bindNS.{ns}"),
                        format!("`bindNS.{ns}` must be an absolute path, not `{p}`"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `src:dst[:opts]`, where src is an absolute path or a volume name.
    fn check_bind(&self, b: &str) -> Result<(), String> {
        let mut parts = b.splitn(3, ':');
        let (src, dst, opts) = (parts.next().unwrap_or(""), parts.next(), parts.next());
        let Some(dst) = dst.filter(|d| d.starts_with('/')) else {
            return Err(format!(
                "bind `{b}` must be `source:/destination[:options]` with an absolute destination"
            ));
        };
        let _ = dst;
        if src.is_empty() {
            return Err(format!("bind `{b}` has an empty source"));
        }
        let opts: Vec<&str> = opts.map(|o| o.split(',').collect()).unwrap_or_default();
        self.check_volume_use(src, &opts, "bind")
    }

    /// Volumes may be mounted through `mounts:` too (the reference does not
    /// recognise volume names there; we do). The error names the field to
    /// change.
    fn check_mount(&self, m: &Mount) -> Result<(), (&'static str, String)> {
        if !m.destination.starts_with('/') {
            return Err((
                "destination",
                format!(
                    "mount destination `{}` must be an absolute path",
                    m.destination
                ),
            ));
        }
        let opts: Vec<&str> = m.options.iter().map(String::as_str).collect();
        if m.source.is_empty() || m.source.starts_with('/') || m.kind != "bind" {
            return Ok(());
        }
        let is_volume = self.moby.volumes.iter().any(|v| v.name == m.source);
        let field = if is_volume { "options" } else { "source" };
        self.check_volume_use(&m.source, &opts, "mount")
            .map_err(|e| (field, e))
    }

    fn check_volume_use(&self, src: &str, opts: &[&str], what: &str) -> Result<(), String> {
        if src.starts_with('/') {
            return Ok(());
        }
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
        if vol.readonly && !opts.contains(&"ro") {
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
        warnings: &mut Vec<String>,
    ) -> Check {
        let err = |sub: &str, msg: String| self.error_at("files", i, sub, msg);
        if f.path.is_empty() {
            return Err(err("", "file needs a `path`".into()));
        }
        let kinds: Vec<&str> = [
            ("contents", f.contents.is_some()),
            ("source", f.source.is_some()),
            ("symlink", f.symlink.is_some()),
            ("metadata", f.metadata.is_some()),
            ("directory", f.directory),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        if kinds.len() > 1 {
            return Err(err(
                kinds[1],
                format!(
                    "file `{}` sets both `{}` and `{}`; give only one of contents, source, symlink, metadata or directory",
                    f.path, kinds[0], kinds[1]
                ),
            ));
        }
        if kinds.is_empty() {
            return Err(err(
                "path",
                format!(
                    "file `{}` needs one of `contents`, `source`, `symlink`, `metadata` or `directory: true`",
                    f.path
                ),
            ));
        }
        if f.optional && f.source.is_none() {
            warnings.push(
                location(&err("optional", String::new()))
                    + ": `optional` has no effect without `source`",
            );
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
            if !f.optional && !path.exists() {
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
    let value = |v: &str| v == "unlimited" || v.parse::<u64>().is_ok();
    if !value(soft) || !value(hard) {
        return Err(format!(
            "rlimit `{r}`: soft and hard limits must be numbers or `unlimited`"
        ));
    }
    Ok(())
}
