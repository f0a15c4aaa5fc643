//! `debian:`: the Debian packages the image is made of, and which of
//! their files it keeps.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::filter::PathPatterns;

/// What `debian:` images leave out unless `exclude` says otherwise: what a
/// LinuxKit machine never reads — documentation, manual and info pages,
/// translations, packaging metadata, C headers, static libraries — and
/// glibc's iconv charset modules (8 MB in every image that has libc6; UTF-8
/// and ASCII need none of them).
pub const DEFAULT_DEBIAN_EXCLUDE: [&str; 8] = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/include",
    "usr/lib/**/*.a",
    "usr/lib/*/gconv",
];

/// `debian:` of a `build.yml`: the image's single layer is the contents of
/// these packages and their dependencies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianSource {
    /// The suite (codename) to install from; default: the suite of the
    /// host's apt sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// The archive components to index; default `[main]`.
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    /// The packages, as dependency relations (`busybox-static`,
    /// `libc6 (>= 2.36)`); their `Depends`/`Pre-Depends` are added. May be
    /// empty when the image is only `go:` binaries and files.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Packages the build needs but the image does not: the Go toolchain
    /// and Go sources of `go:` entries. Resolved (with their dependencies)
    /// and pinned in `debian.lock` next to the image's, unpacked into a
    /// build root that is deleted after the build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_packages: Vec<String>,
    /// Whether `Depends`/`Pre-Depends` are followed (default); `false`
    /// installs the listed packages only.
    #[serde(default = "yes")]
    pub dependencies: bool,
    /// Path prefixes or globs left out of the image (`usr/share/doc` drops
    /// the directory and everything below it; see [`crate::filter`]).
    #[serde(default = "default_debian_exclude", deserialize_with = "de_exclude")]
    pub exclude: Vec<String>,
    /// More prefixes or globs left out, on top of `exclude` (the default
    /// list unless given): an image that drops a few files of its own
    /// keeps the defaults without repeating them.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_extend_exclude"
    )]
    pub extend_exclude: Vec<String>,
    /// If not empty, only paths under these prefixes (and their parent
    /// directories) are kept; `exclude` still applies.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_include"
    )]
    pub include: Vec<String>,
}

fn de_exclude<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de_patterns(d, "exclude", true)
}

fn de_extend_exclude<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de_patterns(d, "extend_exclude", true)
}

fn de_include<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de_patterns(d, "include", false)
}

/// A list of `include`/`exclude` entries, refused at its line if an entry
/// is not a valid prefix or glob.
fn de_patterns<'de, D: Deserializer<'de>>(
    d: D,
    key: &str,
    globs: bool,
) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    PathPatterns::new(&v, globs).map_err(|m| de::Error::custom(format!("`debian.{key}`: {m}")))?;
    Ok(v)
}

impl DebianSource {
    /// Everything left out: `exclude`, then `extend_exclude`.
    pub fn excluded(&self) -> Vec<String> {
        self.exclude
            .iter()
            .chain(&self.extend_exclude)
            .cloned()
            .collect()
    }
}

fn default_components() -> Vec<String> {
    vec!["main".to_string()]
}

fn yes() -> bool {
    true
}

fn default_debian_exclude() -> Vec<String> {
    DEFAULT_DEBIAN_EXCLUDE
        .iter()
        .map(|s| s.to_string())
        .collect()
}
