//! The relation grammar of Debian's control fields: `Depends`-style
//! fields (`a (>= 1) | b, c:any`), one relation (`name[:arch] [(op
//! version)]`) and `Provides`.
//!
//! It has a module of its own because both sides use it: the index parses
//! every package's fields with it, the resolver and `build.yml`'s
//! `debian.packages` parse requests with it.

use std::fmt;
use std::str::FromStr;

use linuxkit_base::Arch;

use super::error::{DebianError, Result, parse_err};
use super::version::{Relation, Version};

/// One package relation: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The (real or virtual) package name.
    pub name: String,
    /// An architecture qualifier: `any`, `native` or an architecture.
    pub arch: Option<String>,
    /// A version constraint.
    pub constraint: Option<(Relation, Version)>,
}

impl Dependency {
    /// A dependency on any version of `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Dependency {
            name: name.into(),
            arch: None,
            constraint: None,
        }
    }

    /// Parses `name[:arch] [(op version)]`. Build-profile restrictions
    /// (`<!nocheck>`) and architecture restrictions (`[amd64]`) only appear
    /// in source packages and are rejected (a [`Request`] takes the
    /// latter).
    pub fn parse(s: &str) -> Result<Dependency, String> {
        let s = s.trim();
        let (head, constraint) = match s.split_once('(') {
            Some((head, rest)) => {
                let inner = rest
                    .trim_end()
                    .strip_suffix(')')
                    .ok_or_else(|| format!("unclosed `(` in {s:?}"))?
                    .trim();
                let split = inner
                    .find(|c: char| !matches!(c, '<' | '>' | '='))
                    .unwrap_or(inner.len());
                let (op, ver) = inner.split_at(split);
                let rel = Relation::parse(op.trim())
                    .ok_or_else(|| format!("bad relation {op:?} in {s:?}"))?;
                let ver = Version::parse(ver).map_err(|e| e.to_string())?;
                (head.trim(), Some((rel, ver)))
            }
            None => (s, None),
        };
        let (name, arch) = match head.split_once(':') {
            Some((n, a)) => (n, Some(a.to_owned())),
            None => (head, None),
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
        {
            return Err(format!("bad package name {name:?} in {s:?}"));
        }
        Ok(Dependency {
            name: name.to_owned(),
            arch,
            constraint,
        })
    }
}

impl FromStr for Dependency {
    type Err = DebianError;
    fn from_str(s: &str) -> Result<Self> {
        Dependency::parse(s).map_err(|m| parse_err("dependency", m))
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some((rel, v)) = &self.constraint {
            write!(f, " ({rel} {v})")?;
        }
        Ok(())
    }
}

/// One entry of `build.yml`'s `debian.packages`: a relation, optionally
/// restricted to some architectures as Debian's `Build-Depends` are
/// (`linux-image-cloud-amd64 [amd64]`, `foo [!s390x]`), so one list serves
/// every platform of a multi-platform package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The relation.
    pub dependency: Dependency,
    /// The architectures it is for (`None`: all).
    pub restriction: Option<ArchRestriction>,
}

/// A `[arch ...]` or `[!arch ...]` restriction (one or the other: Debian
/// does not mix them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchRestriction {
    /// `[!...]`: every architecture but these.
    pub negated: bool,
    /// The architectures named.
    pub arches: Vec<Arch>,
}

impl ArchRestriction {
    /// Whether a build for `arch` takes the restricted relation.
    pub fn admits(&self, arch: Arch) -> bool {
        self.arches.contains(&arch) != self.negated
    }
}

impl Request {
    /// Parses `RELATION [arch ...]` (see [`Dependency::parse`]); the
    /// architectures are Debian's names (or any other [`Arch`] spelling).
    pub fn parse(s: &str) -> Result<Request, String> {
        let s = s.trim();
        let Some((rel, rest)) = s.split_once('[') else {
            return Ok(Request {
                dependency: Dependency::parse(s)?,
                restriction: None,
            });
        };
        let inner = rest
            .trim_end()
            .strip_suffix(']')
            .ok_or_else(|| format!("unclosed `[` in {s:?}"))?;
        let words: Vec<&str> = inner.split_whitespace().collect();
        if words.is_empty() {
            return Err(format!("an empty architecture restriction in {s:?}"));
        }
        let negated = words[0].starts_with('!');
        let mut arches = Vec::new();
        for w in words {
            let name = match w.strip_prefix('!') {
                Some(n) if negated => n,
                None if !negated => w,
                _ => {
                    return Err(format!("{s:?} mixes `!arch` and `arch` in one restriction"));
                }
            };
            arches.push(
                name.parse::<Arch>()
                    .map_err(|e| format!("{e} (in {s:?})"))?,
            );
        }
        Ok(Request {
            dependency: Dependency::parse(rel)?,
            restriction: Some(ArchRestriction { negated, arches }),
        })
    }

    /// Whether a build for `arch` takes this request.
    pub fn applies_to(&self, arch: Arch) -> bool {
        self.restriction.as_ref().is_none_or(|r| r.admits(arch))
    }
}

/// One `Provides:` entry; only `=` versions are allowed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provide {
    /// The virtual name.
    pub name: String,
    /// The provided version, if versioned.
    pub version: Option<Version>,
}

/// Parses a `Depends`-style field: `a (>= 1) | b, c:any`.
pub fn parse_relations(field: &str) -> Result<Vec<Vec<Dependency>>, String> {
    field
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|group| group.split('|').map(Dependency::parse).collect())
        .collect()
}

/// Parses a `Provides` field.
pub fn parse_provides(field: &str) -> Result<Vec<Provide>, String> {
    field
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let d = Dependency::parse(s)?;
            let version = match d.constraint {
                None => None,
                Some((Relation::Eq, v)) => Some(v),
                Some((r, _)) => return Err(format!("Provides allows only `=`, got {r} in {s:?}")),
            };
            Ok(Provide {
                name: d.name,
                version,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_take_architecture_restrictions() {
        let r = Request::parse("linux-image-cloud-amd64 [amd64]").unwrap();
        assert_eq!(r.dependency.name, "linux-image-cloud-amd64");
        assert!(r.applies_to(Arch::Amd64) && !r.applies_to(Arch::Arm64));
        let r = Request::parse("foo (>= 1) [!s390x !armhf]").unwrap();
        assert!(r.dependency.constraint.is_some());
        assert!(r.applies_to(Arch::Arm64) && !r.applies_to(Arch::Arm));
        assert!(Request::parse("foo").unwrap().applies_to(Arch::S390x));
        for bad in ["foo [amd64", "foo []", "foo [amd64 !arm64]", "foo [vax]"] {
            assert!(Request::parse(bad).is_err(), "{bad}");
        }
        assert!(Dependency::parse("foo [amd64]").is_err());
    }
}
