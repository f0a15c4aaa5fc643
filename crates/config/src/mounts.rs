//! How the short forms of `binds:`, `tmpfs:` and `mounts:` read, in one
//! place, so that validation (which must accept exactly what the build can
//! build) and `config.json` generation can never disagree.
//!
//! The rules are the reference's (`moby.ConfigToOCI`): a bind is split at
//! every `:` into two or three parts; a tmpfs into one or two; a mount
//! without a `type` takes it from a well-known `source` (`proc`, `cgroup`,
//! ...) or `/dev`, a mount without a `source` uses its type, and a mount
//! without a `destination` goes where that type normally goes
//! (`cgroup` → `/sys/fs/cgroup`). The commonest use is
//! `mounts: [{type: cgroup, options: [rw, ...]}]`, which replaces the
//! default read-only cgroup mount with a writable one.

use crate::model::Mount;

/// A `binds:` entry, `source:destination[:options]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bind<'a> {
    /// An absolute path in the VM, or the name of a volume.
    pub source: &'a str,
    /// Where it is mounted in the container.
    pub destination: &'a str,
    /// The comma-separated options, if a third part is given.
    pub options: Option<&'a str>,
}

impl<'a> Bind<'a> {
    /// Splits a bind the way the reference does, at every `:`.
    pub fn parse(bind: &'a str) -> Result<Bind<'a>, String> {
        let parts: Vec<&str> = bind.split(':').collect();
        match parts[..] {
            [source, destination] => Ok(Bind {
                source,
                destination,
                options: None,
            }),
            [source, destination, options] => Ok(Bind {
                source,
                destination,
                options: Some(options),
            }),
            [_] => Err(format!(
                "bind `{bind}` has no `:`; write `source:/destination[:options]`"
            )),
            _ => Err(format!(
                "bind `{bind}` has too many `:`; write `source:/destination[:options]`"
            )),
        }
    }

    /// Whether the source names a volume rather than a path.
    pub fn names_volume(&self) -> bool {
        !self.source.starts_with('/')
    }

    /// The options, split (empty items dropped).
    pub fn option_list(&self) -> Vec<&'a str> {
        self.options.map(split_options).unwrap_or_default()
    }
}

/// A `tmpfs:` entry, `destination[:options]`: the destination and options.
pub fn parse_tmpfs(tmpfs: &str) -> Result<(&str, Vec<&str>), String> {
    let parts: Vec<&str> = tmpfs.split(':').collect();
    match parts[..] {
        [destination] => Ok((destination, Vec::new())),
        [destination, options] => Ok((destination, split_options(options))),
        _ => Err(format!(
            "tmpfs `{tmpfs}` has too many `:`; write `/destination[:option,option]`"
        )),
    }
}

/// Splits a comma-separated option string, dropping empty items.
pub fn split_options(s: &str) -> Vec<&str> {
    s.split(',').filter(|o| !o.is_empty()).collect()
}

/// Where a mount of `kind` goes when no `destination` is given.
pub fn default_destination(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "proc" => "/proc",
        "devpts" => "/dev/pts",
        "sysfs" => "/sys",
        "cgroup" => "/sys/fs/cgroup",
        "mqueue" => "/dev/mqueue",
        _ => return None,
    })
}

impl Mount {
    /// The mount with its short forms filled in, as it goes into
    /// `config.json`: `type` from a well-known `source` (or `tmpfs` for
    /// `/dev`), `source` from `type`, `destination` from `type`. An error
    /// says what is missing.
    pub fn completed(&self) -> Result<Mount, String> {
        let mut m = self.clone();
        if m.kind.is_empty()
            && matches!(
                m.source.as_str(),
                "mqueue" | "devpts" | "proc" | "sysfs" | "cgroup"
            )
        {
            m.kind = m.source.clone();
        }
        if m.kind.is_empty() && m.destination == "/dev" {
            m.kind = "tmpfs".into();
        }
        if m.kind.is_empty() {
            return Err(if m.destination.is_empty() {
                "mount has neither a `type` nor a `destination`; give at least a `type` (e.g. `cgroup`)".into()
            } else {
                format!(
                    "mount on `{}` is missing its `type` (e.g. `bind`, `tmpfs`)",
                    m.destination
                )
            });
        }
        if m.source.is_empty() {
            m.source = m.kind.clone();
        }
        if m.destination.is_empty() {
            match default_destination(&m.kind) {
                Some(d) => m.destination = d.into(),
                None => {
                    return Err(format!(
                        "mount of type `{}` is missing its `destination` (only proc, devpts, sysfs, cgroup and mqueue have a default)",
                        m.kind
                    ));
                }
            }
        }
        Ok(m)
    }
}

/// How mount options decide read-only, for a volume declared `readonly`.
///
/// The reference accepts a read-only volume in a `mounts:` entry when the
/// *first* of `ro`/`rw` is `ro`, and in a `binds:` entry only when the
/// options are exactly `ro`; the kernel (through runc or crun) applies them
/// in order, so the *last* decides. We accept a bind whose options end
/// read-only (`ro`, and also `ro,rshared`, which the reference refuses), and
/// a mount when either reads read-only (everything the reference accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOnly {
    /// The first of `ro`/`rw` is `ro` (the reference's test for `mounts:`).
    pub first: bool,
    /// The last of `ro`/`rw` is `ro` (what the mount will really be).
    pub last: bool,
}

impl ReadOnly {
    /// Reads `options` (each one option, in order).
    pub fn of<'a>(options: impl IntoIterator<Item = &'a str>) -> ReadOnly {
        let flags: Vec<&str> = options
            .into_iter()
            .filter(|o| matches!(*o, "ro" | "rw"))
            .collect();
        ReadOnly {
            first: flags.first() == Some(&"ro"),
            last: flags.last() == Some(&"ro"),
        }
    }

    /// Whether a read-only volume may be bound (`binds:`) with these options.
    pub fn allowed_in_bind(self) -> bool {
        self.last
    }

    /// Whether a read-only volume may be mounted (`mounts:`) with these options.
    pub fn allowed_in_mount(self) -> bool {
        self.first || self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(kind: &str, source: &str, destination: &str) -> Mount {
        Mount {
            kind: kind.into(),
            source: source.into(),
            destination: destination.into(),
            ..Mount::default()
        }
    }

    #[test]
    fn binds_split_at_every_colon() {
        let b = Bind::parse("/a:/b:ro,rshared").unwrap();
        assert_eq!((b.source, b.destination), ("/a", "/b"));
        assert_eq!(b.option_list(), ["ro", "rshared"]);
        assert!(Bind::parse("/a").is_err());
        assert!(Bind::parse("/a:/b:ro:x").is_err());
        assert!(Bind::parse("vol:/b").unwrap().names_volume());
    }

    #[test]
    fn tmpfs_has_at_most_one_colon() {
        assert_eq!(parse_tmpfs("/a").unwrap(), ("/a", vec![]));
        assert_eq!(
            parse_tmpfs("/a:size=1m,,ro").unwrap(),
            ("/a", vec!["size=1m", "ro"])
        );
        assert!(parse_tmpfs("/a:b:c").is_err());
    }

    #[test]
    fn mounts_are_completed_like_the_reference() {
        let c = mount("cgroup", "", "").completed().unwrap();
        assert_eq!(
            (c.source.as_str(), c.destination.as_str()),
            ("cgroup", "/sys/fs/cgroup")
        );
        let c = mount("", "cgroup", "").completed().unwrap();
        assert_eq!(
            (c.kind.as_str(), c.destination.as_str()),
            ("cgroup", "/sys/fs/cgroup")
        );
        let c = mount("proc", "", "").completed().unwrap();
        assert_eq!(c.destination, "/proc");
        let c = mount("", "", "/dev").completed().unwrap();
        assert_eq!((c.kind.as_str(), c.source.as_str()), ("tmpfs", "tmpfs"));
        assert!(mount("", "", "/x").completed().is_err());
        assert!(mount("tmpfs", "", "").completed().is_err());
        assert!(mount("", "", "").completed().is_err());
    }

    #[test]
    fn read_only_first_and_last() {
        let r = ReadOnly::of(["rbind", "ro", "rw"]);
        assert!(r.first && !r.last && r.allowed_in_mount() && !r.allowed_in_bind());
        let r = ReadOnly::of(["rw", "ro"]);
        assert!(!r.first && r.last && r.allowed_in_mount() && r.allowed_in_bind());
        assert!(!ReadOnly::of(["rbind"]).allowed_in_mount());
    }
}
