//! `build.yml`: the file that makes a directory a LinuxKit package.
//!
//! The keys, their spellings and their defaults are those of the reference's
//! `pkgInfo` struct, so existing package trees (linuxkit's own `pkg/`, and
//! everyone's forks of it) load unchanged. Like the reference, which decodes
//! with yaml.v3's `KnownFields(true)`, an unknown key is an error rather than
//! silently ignored: a misspelt `extra-source:` would otherwise quietly
//! change a package's tag. Parsing goes through
//! [`linuxkit_config::from_yaml_str`], so such an error reads
//! `pkg/foo/build.yml:3:1: unknown field `archs`, did you mean `arches`?`.
//!
//! # Our extension: images from Debian packages
//!
//! Besides the reference's keys, a `build.yml` may have a `debian:` section
//! ([`DebianSource`]) and the image's runtime defaults (`entrypoint`, `cmd`,
//! `env`, `workdir`). Such a package is built by `linuxkit pkg build`
//! without a Docker daemon, from `.deb`s (see [`crate::build`]); without
//! `debian:` it is a Dockerfile package, exactly as in the reference. These
//! keys are unknown to the reference, which therefore rejects such files.
//!
//! More of our keys describe the image declaratively, on top of (or instead
//! of) the Debian packages: `files:` (the schema of a LinuxKit YAML's
//! `files:`), `users:`/`groups:`, `labels:`, `kernel:` (lay the image out as
//! a LinuxKit kernel image) and `cargo:` (static binaries built from the
//! Cargo workspace around the package). Entries are checked as they are
//! read, so a bad one is reported at its `file:line:column`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use linuxkit_config::{ConfigError, File, IdSpec, ImageConfig};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The default `org`: images are `linuxkit/<image>` unless told otherwise.
pub const DEFAULT_ORG: &str = "linuxkit";
/// The default tag template: the package's content hash.
pub const DEFAULT_TAG_TEMPLATE: &str = "{{.Hash}}";
/// The default Dockerfile, relative to the package directory.
pub const DEFAULT_DOCKERFILE: &str = "Dockerfile";
/// The default `gitrepo`.
pub const DEFAULT_GIT_REPO: &str = "https://github.com/linuxkit/linuxkit";
/// The architectures a package is built for unless `arches` says otherwise.
pub const DEFAULT_ARCHES: [&str; 3] = ["amd64", "arm64", "riscv64"];

/// The contents of a package's `build.yml`, with the reference's defaults
/// for absent keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildYml {
    /// The image name without org or tag (`init` for `linuxkit/init:<hash>`).
    /// Required: [`BuildYml::parse`] rejects a missing or empty `image`.
    #[serde(default)]
    pub image: String,
    /// The registry namespace (Docker Hub org, or `registry/namespace`).
    #[serde(default = "default_org")]
    pub org: String,
    /// The tag template; see [`crate::TagTemplate`]. Empty means the default.
    #[serde(default = "default_tag")]
    pub tag: String,
    /// The Dockerfile, relative to the package directory.
    #[serde(default = "default_dockerfile")]
    pub dockerfile: String,
    /// The architectures (GOARCH names) the package is built for.
    #[serde(default = "default_arches")]
    pub arches: Vec<String>,
    /// More directories for the build context, as `src:dst`; `src` is
    /// relative to the package directory unless absolute. Their git tree
    /// hashes are part of the package's hash.
    #[serde(default, rename = "extra-sources")]
    pub extra_sources: Vec<String>,
    /// The repository the package comes from (recorded in image labels).
    #[serde(default = "default_git_repo", rename = "gitrepo")]
    pub git_repo: String,
    /// Whether the build may use the network.
    #[serde(default)]
    pub network: bool,
    /// Whether to build without the builder's cache.
    #[serde(default, rename = "disable-cache")]
    pub disable_cache: bool,
    /// How the image is meant to run; stored in the image's
    /// `org.mobyproject.config` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ImageConfig>,
    /// Build arguments, `KEY=VALUE` (values may be `@lkt:pkg:<path>` or
    /// `@lkt:pkgs:<glob>` references to other packages' tags).
    #[serde(default, rename = "buildArgs", skip_serializing_if = "Option::is_none")]
    pub build_args: Option<Vec<String>>,
    /// Other images the build needs.
    #[serde(default)]
    pub depends: Depends,
    /// Build the image from Debian packages instead of a Dockerfile (our
    /// extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian: Option<DebianSource>,
    /// The image config's `Entrypoint` (our extension; `debian:` packages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// The image config's `Cmd` (our extension; `debian:` packages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// The image config's `Env`, `KEY=VALUE` (our extension; `debian:` packages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// The image config's `WorkingDir` (our extension; `debian:` packages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Files added on top of the Debian packages, with the schema of a
    /// LinuxKit YAML's `files:` (our extension); `source` is relative to the
    /// package directory, `metadata` is not allowed.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_files"
    )]
    pub files: Vec<File>,
    /// Users appended to `/etc/passwd` (our extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
    /// Groups appended to `/etc/group` (our extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    /// Image config labels, besides `org.mobyproject.config` (our extension).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Lay the image out as a LinuxKit kernel image (our extension).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_kernel"
    )]
    pub kernel: Option<KernelSpec>,
    /// Static binaries built with cargo and added to the image (our extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cargo: Vec<CargoBinary>,
    /// Static binaries built with Go from Debian's toolchain and Go sources
    /// (`debian.build_packages`) and added to the image (our extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub go: Vec<GoBinary>,
    /// Files made by concatenating files of the image (our extension): what
    /// a maintainer script would generate, such as the CA bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concat: Vec<Concat>,
}

/// One `users:` entry: a line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The primary group id; default: the uid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The home directory; default [`DEFAULT_HOME`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// The login shell; default [`DEFAULT_SHELL`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

/// The home directory of a `users:` entry that gives none.
pub const DEFAULT_HOME: &str = "/nonexistent";
/// The shell of a `users:` entry that gives none.
pub const DEFAULT_SHELL: &str = "/usr/sbin/nologin";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    #[serde(default)]
    name: String,
    uid: u32,
    gid: Option<u32>,
    home: Option<String>,
    shell: Option<String>,
}

impl User {
    /// The user's primary group id.
    pub fn gid(&self) -> u32 {
        self.gid.unwrap_or(self.uid)
    }

    /// The `/etc/passwd` line, without the newline.
    pub fn passwd_line(&self) -> String {
        format!(
            "{}:x:{}:{}::{}:{}",
            self.name,
            self.uid,
            self.gid(),
            self.home.as_deref().unwrap_or(DEFAULT_HOME),
            self.shell.as_deref().unwrap_or(DEFAULT_SHELL)
        )
    }
}

/// One `groups:` entry: a line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The group name.
    pub name: String,
    /// The group id.
    pub gid: u32,
    /// Supplementary members (user names).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: String,
    gid: u32,
    #[serde(default)]
    members: Vec<String>,
}

impl Group {
    /// The `/etc/group` line, without the newline.
    pub fn group_line(&self) -> String {
        format!("{}:x:{}:{}", self.name, self.gid, self.members.join(","))
    }
}

/// `kernel:`: the image is a LinuxKit kernel image (`/kernel`,
/// `/kernel.tar`, `/System.map`) made from the Debian packages' kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    /// Module name globs (`*` and `?`; `-` and `_` are the same): only
    /// these modules and their dependencies are kept. `None` keeps all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules: Option<Vec<String>>,
}

/// One `concat:` entry: the file `path` made of the image's files matching
/// `sources` (path globs whose `*` and `?` stay within one path component),
/// in path order, each ending with a newline. Applied after `files:`,
/// `users:` and `groups:`. Debian's `ca-certificates` needs this: its
/// bundle is generated by `update-ca-certificates` in the postinst, which
/// the builder does not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concat {
    /// The file to write (relative to the image root).
    pub path: String,
    /// Globs of the files to concatenate.
    pub sources: Vec<String>,
    /// The file's mode; default 0644.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// Whether image path `path` matches `glob`: `*` and `?` do not match `/`.
pub fn path_glob_match(glob: &str, path: &str) -> bool {
    let g: Vec<&str> = glob.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    g.len() == p.len()
        && g.iter()
            .zip(&p)
            .all(|(g, p)| component_match(g.as_bytes(), p.as_bytes()))
}

fn component_match(g: &[u8], s: &[u8]) -> bool {
    match (g.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            component_match(&g[1..], s) || (!s.is_empty() && component_match(g, &s[1..]))
        }
        (Some(b'?'), Some(_)) => component_match(&g[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => component_match(&g[1..], &s[1..]),
        _ => false,
    }
}

/// One `cargo:` entry: `cargo build --release --locked -p PACKAGE --bin
/// BIN --target ARCH-unknown-linux-musl` in the Cargo workspace around the
/// package, installed at `path` with mode 0755.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CargoBinary {
    /// The Cargo package.
    pub package: String,
    /// The binary target; default: the package name.
    pub bin: String,
    /// Where the binary goes in the image.
    pub path: String,
    /// Flags for rustc (as `CARGO_ENCODED_RUSTFLAGS`), e.g. `[-C,
    /// relocation-model=static]` for a static binary at a fixed address.
    pub rustflags: Vec<String>,
}

/// One `go:` entry: the Go `package main` in the directory `main` (relative
/// to the package directory), built by [`crate::go`] with the Go toolchain
/// and sources of `debian.build_packages`, installed at `path` with mode
/// 0755.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoBinary {
    /// The directory of the main package, relative to the package directory.
    pub main: String,
    /// Where the binary goes in the image.
    pub path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGo {
    #[serde(default)]
    main: String,
    #[serde(default)]
    path: String,
}

impl<'de> Deserialize<'de> for GoBinary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |r: RawGo| {
            // Kept clean (`./cmd/` is `cmd`): it becomes part of a Go
            // import path.
            let Some(main) = clean_image_path(&r.main).filter(|_| !r.main.starts_with('/')) else {
                return Err(format!(
                    "`main` {:?} must be a directory of the package holding a Go `package main`, e.g. `main: cmd`",
                    r.main
                ));
            };
            check_binary_path(&r.path, "NAME")?;
            Ok(GoBinary { main, path: r.path })
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCargo {
    #[serde(default)]
    package: String,
    bin: Option<String>,
    #[serde(default)]
    path: String,
    #[serde(default)]
    rustflags: Vec<String>,
}

/// Deserializes a `T` from a mapping and checks it inside the mapping's
/// visitor, so that the check's error is located at the mapping
/// (`build.yml:LINE:COLUMN: files[1]: ...`).
fn checked_map<'de, D, T, U>(d: D, check: fn(T) -> Result<U, String>) -> Result<U, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T, U>(fn(T) -> Result<U, String>, PhantomData<fn() -> T>);
    impl<'de, T: Deserialize<'de>, U> Visitor<'de> for V<T, U> {
        type Value = U;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<U, A::Error> {
            let t = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
            (self.0)(t).map_err(de::Error::custom)
        }
    }
    d.deserialize_map(V(check, PhantomData))
}

/// A name for `/etc/passwd` or `/etc/group`.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad {what} name {name:?}: use letters, digits, `_`, `-` and `.` (at most 32, not starting with `-`)"
        ))
    }
}

fn check_field(what: &str, v: &Option<String>) -> Result<(), String> {
    match v {
        Some(v) if v.contains([':', '\n']) => Err(format!(
            "`{what}` {v:?} must not contain `:` or a line break"
        )),
        _ => Ok(()),
    }
}

impl<'de> Deserialize<'de> for User {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |r: RawUser| {
            check_name("user", &r.name)?;
            check_field("home", &r.home)?;
            check_field("shell", &r.shell)?;
            Ok(User {
                name: r.name,
                uid: r.uid,
                gid: r.gid,
                home: r.home,
                shell: r.shell,
            })
        })
    }
}

impl<'de> Deserialize<'de> for Group {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |r: RawGroup| {
            check_name("group", &r.name)?;
            for m in &r.members {
                check_name("member", m)?;
            }
            Ok(Group {
                name: r.name,
                gid: r.gid,
                members: r.members,
            })
        })
    }
}

impl<'de> Deserialize<'de> for CargoBinary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |r: RawCargo| {
            if r.package.is_empty() {
                return Err("`package` is required: the Cargo package to build".into());
            }
            check_binary_path(&r.path, r.bin.as_deref().unwrap_or(&r.package))?;
            Ok(CargoBinary {
                bin: r.bin.unwrap_or_else(|| r.package.clone()),
                package: r.package,
                path: r.path,
                rustflags: r.rustflags,
            })
        })
    }
}

/// A built binary's `path` in the image (`cargo:`, `go:`); `name` is for
/// the example in the error.
fn check_binary_path(path: &str, name: &str) -> Result<(), String> {
    match clean_image_path(path) {
        Some(_) => Ok(()),
        None => Err(format!(
            "`path` {path:?} must be the binary's path in the image, e.g. /usr/bin/{name}"
        )),
    }
}

/// `/usr/bin/x/` → `usr/bin/x`; `None` for an empty path or one with `..`.
pub(crate) fn clean_image_path(p: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

struct CheckedFile(File);

impl<'de> Deserialize<'de> for CheckedFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |f: File| {
            if clean_image_path(&f.path).is_none() {
                return Err(format!(
                    "file needs a `path` in the image without `..` (got {:?})",
                    f.path
                ));
            }
            if f.metadata.is_some() {
                return Err(format!(
                    "file `{}`: `metadata` is only for a LinuxKit YAML's files; use `contents` or `source`",
                    f.path
                ));
            }
            let kinds: Vec<&str> = [
                ("contents", f.contents.is_some()),
                ("source", f.source.is_some()),
                ("symlink", f.symlink.is_some()),
                ("directory", f.directory),
            ]
            .into_iter()
            .filter_map(|(k, set)| set.then_some(k))
            .collect();
            match kinds.as_slice() {
                [_] => {}
                [] => {
                    return Err(format!(
                        "file `{}` needs one of `contents`, `source`, `symlink` or `directory: true`",
                        f.path
                    ));
                }
                [a, b, ..] => {
                    return Err(format!(
                        "file `{}` sets both `{a}` and `{b}`; give only one of contents, source, symlink or directory",
                        f.path
                    ));
                }
            }
            if let Some(m) = &f.mode
                && linuxkit_config::parse_mode(m).is_none()
            {
                return Err(format!(
                    "file `{}`: invalid mode `{m}`: give octal permission bits as a string, such as \"0644\"",
                    f.path
                ));
            }
            Ok(CheckedFile(f))
        })
    }
}

fn de_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<File>, D::Error> {
    let v = Vec::<CheckedFile>::deserialize(d)?;
    Ok(v.into_iter().map(|f| f.0).collect())
}

/// `kernel:` with nothing after it is `kernel: {}`.
fn de_kernel<'de, D: Deserializer<'de>>(d: D) -> Result<Option<KernelSpec>, D::Error> {
    let k = Option::<KernelSpec>::deserialize(d)?.unwrap_or_default();
    if let Some(m) = &k.modules
        && let Some(bad) = m.iter().find(|g| g.trim().is_empty() || g.contains('/'))
    {
        return Err(de::Error::custom(format!(
            "`kernel.modules`: bad module glob {bad:?}: give a module name or a glob such as `virtio*`"
        )));
    }
    Ok(Some(k))
}

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
    crate::filter::PathPatterns::new(&v, globs)
        .map_err(|m| de::Error::custom(format!("`debian.{key}`: {m}")))?;
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

/// `depends:` of a `build.yml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Depends {
    #[serde(default, rename = "docker-images")]
    pub docker_images: DockerImages,
}

/// `depends.docker-images:`: images to pull (and optionally save into the
/// build context) before building.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerImages {
    /// A directory of the build context to save the images into.
    #[serde(default, rename = "target-dir")]
    pub target_dir: String,
    /// A tar file to save the images into.
    #[serde(default)]
    pub target: String,
    /// A file listing the images, one per line.
    #[serde(default, rename = "from-file")]
    pub from_file: String,
    /// The images.
    #[serde(default)]
    pub list: Vec<String>,
}

fn default_org() -> String {
    DEFAULT_ORG.to_string()
}

fn default_tag() -> String {
    DEFAULT_TAG_TEMPLATE.to_string()
}

fn default_dockerfile() -> String {
    DEFAULT_DOCKERFILE.to_string()
}

fn default_git_repo() -> String {
    DEFAULT_GIT_REPO.to_string()
}

fn default_arches() -> Vec<String> {
    DEFAULT_ARCHES.iter().map(|s| s.to_string()).collect()
}

impl Default for BuildYml {
    /// The defaults of every field; `image` is empty (and so invalid).
    fn default() -> Self {
        BuildYml {
            image: String::new(),
            org: default_org(),
            tag: default_tag(),
            dockerfile: default_dockerfile(),
            arches: default_arches(),
            extra_sources: Vec::new(),
            git_repo: default_git_repo(),
            network: false,
            disable_cache: false,
            config: None,
            build_args: None,
            depends: Depends::default(),
            debian: None,
            entrypoint: None,
            cmd: None,
            env: None,
            workdir: None,
            files: Vec::new(),
            users: Vec::new(),
            concat: Vec::new(),
            groups: Vec::new(),
            labels: BTreeMap::new(),
            kernel: None,
            cargo: Vec::new(),
            go: Vec::new(),
        }
    }
}

impl BuildYml {
    /// Parses `text`; `name` is how errors refer to the file (normally its
    /// path, e.g. `pkg/init/build.yml`).
    ///
    /// ```
    /// let b = linuxkit_pkg::BuildYml::parse("build.yml", "image: init\n").unwrap();
    /// assert_eq!((b.org.as_str(), b.tag.as_str()), ("linuxkit", "{{.Hash}}"));
    /// ```
    pub fn parse(name: &str, text: &str) -> Result<BuildYml, ConfigError> {
        let b: BuildYml = linuxkit_config::from_yaml_str(name, text)?;
        if b.image.is_empty() {
            return Err(ConfigError::new(
                "the `image` field is required (the image name, e.g. `image: init`)",
            )
            .in_file(name));
        }
        if let Some(d) = &b.debian {
            if d.packages.is_empty() && d.build_packages.is_empty() {
                return Err(
                    ConfigError::new("`debian.packages` must list at least one package (or `debian.build_packages` one, for an image of `go:` binaries)")
                        .in_file(name),
                );
            }
            for (key, list) in [
                ("packages", &d.packages),
                ("build_packages", &d.build_packages),
            ] {
                for p in list {
                    if let Err(e) = crate::debian::Dependency::parse(p) {
                        return Err(ConfigError::new(format!(
                            "`debian.{key}`: bad package {p:?}: {e}"
                        ))
                        .in_file(name));
                    }
                }
            }
            if d.components.is_empty() {
                return Err(ConfigError::new(
                    "`debian.components` must list at least one component, e.g. [main]",
                )
                .in_file(name));
            }
        }
        b.check_declarative()
            .map_err(|m| ConfigError::new(m).in_file(name))?;
        Ok(b)
    }

    /// Whether the image is described by this file (`debian:`, `files:` or
    /// `cargo:`) and so built without a Docker daemon.
    pub fn is_declarative(&self) -> bool {
        self.debian.is_some()
            || !self.files.is_empty()
            || !self.cargo.is_empty()
            || !self.go.is_empty()
            || !self.concat.is_empty()
    }

    /// Checks across keys (each entry was checked as it was read).
    fn check_declarative(&self) -> Result<(), String> {
        if self.kernel.is_some() && self.debian.is_none() {
            return Err(
                "`kernel:` needs a `debian:` section with the kernel package (e.g. linux-image-cloud-amd64)"
                    .into(),
            );
        }
        if self.labels.contains_key(crate::build::CONFIG_LABEL) {
            return Err(format!(
                "`labels`: {} is set from `config:`; give the runtime configuration there",
                crate::build::CONFIG_LABEL
            ));
        }
        if let Some(k) = self.labels.keys().find(|k| k.is_empty()) {
            return Err(format!("`labels`: empty label name {k:?}"));
        }
        let mut names = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for (i, u) in self.users.iter().enumerate() {
            if !names.insert(u.name.as_str()) {
                return Err(format!("`users[{i}]`: user `{}` is listed twice", u.name));
            }
            if !ids.insert(u.uid) {
                return Err(format!("`users[{i}]`: uid {} is used twice", u.uid));
            }
        }
        let (mut gnames, mut gids) = (BTreeSet::new(), BTreeSet::new());
        for (i, g) in self.groups.iter().enumerate() {
            if !gnames.insert(g.name.as_str()) {
                return Err(format!("`groups[{i}]`: group `{}` is listed twice", g.name));
            }
            if !gids.insert(g.gid) {
                return Err(format!("`groups[{i}]`: gid {} is used twice", g.gid));
            }
        }
        for (i, f) in self.files.iter().enumerate() {
            for (field, id) in [("uid", &f.uid), ("gid", &f.gid)] {
                if let Some(id) = id {
                    self.resolve_id(id, field == "uid").ok_or_else(|| {
                        format!(
                            "`files[{i}].{field}`: unknown {} `{id}`; give a number, `root`, or a name from `{}:`",
                            if field == "uid" { "user" } else { "group" },
                            if field == "uid" { "users" } else { "groups" },
                        )
                    })?;
                }
            }
        }
        let mut paths = BTreeSet::new();
        for (i, c) in self.cargo.iter().enumerate() {
            if !paths.insert(clean_image_path(&c.path)) {
                return Err(format!("`cargo[{i}]`: path {} is used twice", c.path));
            }
        }
        for (i, g) in self.go.iter().enumerate() {
            if !paths.insert(clean_image_path(&g.path)) {
                return Err(format!("`go[{i}]`: path {} is used twice", g.path));
            }
        }
        let build_packages = self
            .debian
            .as_ref()
            .is_some_and(|d| !d.build_packages.is_empty());
        match (self.go.is_empty(), build_packages) {
            (true, true) => {
                return Err(
                    "`debian.build_packages` are for `go:` entries, and there are none: add one or remove the build packages"
                        .into(),
                );
            }
            (false, false) => {
                return Err(
                    "`go:` needs the Go toolchain and the sources it imports in `debian.build_packages` (e.g. [golang-go, golang-github-containerd-containerd-dev])"
                        .into(),
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// A `files:` owner: a number, `root`, or a name from `users:`
    /// (`user`) or `groups:`.
    pub fn resolve_id(&self, id: &IdSpec, user: bool) -> Option<u32> {
        match id {
            IdSpec::Id(n) => Some(*n),
            IdSpec::Name(n) if n == "root" => Some(0),
            IdSpec::Name(n) if user => self.users.iter().find(|u| &u.name == n).map(|u| u.uid),
            IdSpec::Name(n) => self.groups.iter().find(|g| &g.name == n).map(|g| g.gid),
        }
    }
}

#[cfg(test)]
mod concat_tests {
    use super::path_glob_match;

    #[test]
    fn path_globs_stay_in_their_component() {
        assert!(path_glob_match(
            "usr/share/ca-certificates/mozilla/*.crt",
            "usr/share/ca-certificates/mozilla/A.crt"
        ));
        assert!(!path_glob_match(
            "usr/share/*.crt",
            "usr/share/mozilla/A.crt"
        ));
        assert!(path_glob_match("/etc/?.conf", "etc/a.conf"));
        assert!(!path_glob_match("etc/*.conf", "etc/a.conf.d"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_absent_keys() {
        let b = BuildYml::parse("b.yml", "image: foo\n").unwrap();
        assert_eq!(
            b,
            BuildYml {
                image: "foo".into(),
                ..BuildYml::default()
            }
        );
        assert_eq!(b.arches, ["amd64", "arm64", "riscv64"]);
        assert_eq!(b.dockerfile, "Dockerfile");
    }

    #[test]
    fn every_key_with_its_reference_spelling() {
        let text = "\
image: foo
org: acme
tag: v1-{{.Hash}}
dockerfile: Dockerfile.alt
arches: [amd64]
extra-sources:
  - ../src:/src
gitrepo: https://example.com/r
network: true
disable-cache: true
config:
  binds:
    - /a:/a
  capabilities: [all]
buildArgs:
  - A=1
depends:
  docker-images:
    target-dir: imgs
    target: imgs.tar
    from-file: images.lst
    list: [alpine:3.20]
";
        let b = BuildYml::parse("b.yml", text).unwrap();
        assert_eq!(b.org, "acme");
        assert_eq!(b.tag, "v1-{{.Hash}}");
        assert_eq!(b.dockerfile, "Dockerfile.alt");
        assert_eq!(b.arches, ["amd64"]);
        assert_eq!(b.extra_sources, ["../src:/src"]);
        assert_eq!(b.git_repo, "https://example.com/r");
        assert!(b.network && b.disable_cache);
        let config = b.config.unwrap();
        assert_eq!(config.binds.unwrap(), ["/a:/a"]);
        assert_eq!(config.capabilities.unwrap(), ["all"]);
        assert_eq!(b.build_args.unwrap(), ["A=1"]);
        let d = b.depends.docker_images;
        assert_eq!(
            (
                d.target_dir.as_str(),
                d.target.as_str(),
                d.from_file.as_str()
            ),
            ("imgs", "imgs.tar", "images.lst")
        );
        assert_eq!(d.list, ["alpine:3.20"]);
    }

    #[test]
    fn unknown_keys_are_errors_at_every_level() {
        let e = BuildYml::parse("b.yml", "image: foo\ndepends:\n  docker-image: {}\n").unwrap_err();
        assert!(
            e.to_string().starts_with("b.yml:3:3: ")
                && e.to_string().contains("did you mean `docker-images`?"),
            "{e}"
        );
        let e = BuildYml::parse("b.yml", "image: foo\nconfig:\n  bind: []\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `bind`"), "{e}");
    }

    #[test]
    fn debian_section_and_image_config() {
        let text = "\
image: bb
debian:
  suite: bookworm
  packages: [busybox-static, \"libc6 (>= 2.36)\"]
entrypoint: [/bin/busybox, sh]
cmd: [-c, echo]
env: [A=1]
workdir: /
";
        let b = BuildYml::parse("b.yml", text).unwrap();
        let d = b.debian.unwrap();
        assert_eq!(d.suite.as_deref(), Some("bookworm"));
        assert_eq!(d.packages, ["busybox-static", "libc6 (>= 2.36)"]);
        assert_eq!(d.exclude, DEFAULT_DEBIAN_EXCLUDE);
        assert_eq!(b.entrypoint.unwrap(), ["/bin/busybox", "sh"]);
        assert_eq!(b.cmd.unwrap(), ["-c", "echo"]);
        assert_eq!(b.env.unwrap(), ["A=1"]);
        assert_eq!(b.workdir.as_deref(), Some("/"));

        let b = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  packages: [a]\n  exclude: []\n",
        )
        .unwrap();
        assert!(b.debian.unwrap().exclude.is_empty());

        let b = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  packages: [a]\n  extend_exclude: [usr/bin/ctr, \"lib/*/libm.so.6\"]\n",
        )
        .unwrap();
        let d = b.debian.unwrap();
        assert_eq!(d.exclude, DEFAULT_DEBIAN_EXCLUDE);
        let mut all: Vec<String> = DEFAULT_DEBIAN_EXCLUDE.map(String::from).into();
        all.extend(["usr/bin/ctr".into(), "lib/*/libm.so.6".into()]);
        assert_eq!(d.excluded(), all);
        let e = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  packages: [a]\n  extend_exclude: [\"usr/[lib\"]\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("`debian.extend_exclude`: \"usr/[lib\""),
            "{e}"
        );

        let e = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  packages: [a]\n  include: [\"usr/*/bin\"]\n",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("b.yml:"), "{e}");
        assert!(e.to_string().contains("`exclude` only"), "{e}");
        let e = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  packages: [a]\n  exclude: [\"usr/[lib\"]\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("`debian.exclude`: \"usr/[lib\""),
            "{e}"
        );

        let e = BuildYml::parse("b.yml", "image: x\ndebian:\n  package: [a]\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `package`"), "{e}");
        let e = BuildYml::parse("b.yml", "image: x\ndebian:\n  packages: []\n").unwrap_err();
        assert!(e.to_string().contains("at least one package"), "{e}");
        let e =
            BuildYml::parse("b.yml", "image: x\ndebian:\n  packages: [\"a (>>\"]\n").unwrap_err();
        assert!(e.to_string().contains("bad package"), "{e}");
    }

    #[test]
    fn declarative_keys() {
        let text = "\
image: k
debian:
  components: [main, contrib]
  packages: [linux-image-cloud-amd64]
  dependencies: false
  include: [boot, lib/modules]
kernel:
files:
  - path: /etc/a
    contents: a
    uid: app
users:
  - name: app
    uid: 1000
groups:
  - {name: app, gid: 1001, members: [app]}
labels:
  a: b
cargo:
  - package: hello
    path: /usr/bin/hi
  - package: init
    path: /sbin/init
    rustflags: [-C, relocation-model=static]
";
        let b = BuildYml::parse("b.yml", text).unwrap();
        let d = b.debian.as_ref().unwrap();
        assert_eq!(d.components, ["main", "contrib"]);
        assert!(!d.dependencies);
        assert_eq!(d.include, ["boot", "lib/modules"]);
        assert_eq!(
            b.kernel,
            Some(KernelSpec::default()),
            "`kernel:` alone is the full kernel"
        );
        assert_eq!(
            b.users[0].passwd_line(),
            "app:x:1000:1000::/nonexistent:/usr/sbin/nologin"
        );
        assert_eq!(b.groups[0].group_line(), "app:x:1001:app");
        assert_eq!(b.cargo[0].bin, "hello");
        assert!(b.cargo[0].rustflags.is_empty());
        assert_eq!(b.cargo[1].rustflags, ["-C", "relocation-model=static"]);
        assert_eq!(b.labels["a"], "b");
        assert_eq!(b.resolve_id(&IdSpec::Name("app".into()), false), Some(1001));
        assert!(b.is_declarative());
        let b = BuildYml::parse("b.yml", "image: x\ndebian:\n  packages: [a]\n").unwrap();
        let d = b.debian.unwrap();
        assert_eq!(
            (d.components.as_slice(), d.dependencies),
            (&["main".to_string()][..], true)
        );
        let e = BuildYml::parse("b.yml", "image: x\nkernel:\n  module: [a]\n").unwrap_err();
        assert!(
            e.to_string().starts_with("b.yml:3:3: ")
                && e.to_string().contains("did you mean `modules`?"),
            "{e}"
        );
        let e = BuildYml::parse(
            "b.yml",
            "image: x\nlabels: {org.mobyproject.config: x}\nfiles: [{path: a, contents: b}]\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("use `config:`")
                || e.to_string().contains("is set from `config:`"),
            "{e}"
        );
    }

    #[test]
    fn build_packages_without_go_entries_are_refused() {
        let e = BuildYml::parse(
            "b.yml",
            "image: c\ndebian:\n  packages: [busybox]\n  build_packages: [golang-go]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`debian.build_packages` are for `go:` entries"),
            "{e}"
        );
    }

    #[test]
    fn go_entries_and_build_packages() {
        let text = "\
image: c
debian:
  packages: []
  build_packages: [golang-go, \"golang-github-containerd-containerd-dev (>= 1.6)\"]
go:
  - main: containerd
    path: /usr/bin/containerd
  - {main: ./cmd//ctr/, path: usr/bin/ctr}
";
        let b = BuildYml::parse("b.yml", text).unwrap();
        assert_eq!(
            b.go,
            [
                GoBinary {
                    main: "containerd".into(),
                    path: "/usr/bin/containerd".into()
                },
                // cleaned: it becomes part of an import path
                GoBinary {
                    main: "cmd/ctr".into(),
                    path: "usr/bin/ctr".into()
                }
            ]
        );
        let d = b.debian.as_ref().unwrap();
        assert!(d.packages.is_empty());
        assert_eq!(
            d.build_packages,
            [
                "golang-go",
                "golang-github-containerd-containerd-dev (>= 1.6)"
            ]
        );
        assert!(b.is_declarative());
        // `packages` may be left out when there are build packages.
        let b = BuildYml::parse(
            "b.yml",
            "image: c\ndebian:\n  build_packages: [golang-go]\ngo: [{main: m, path: /m}]\n",
        )
        .unwrap();
        assert!(b.debian.unwrap().packages.is_empty());

        // `go:` needs the toolchain in `debian.build_packages`.
        for text in [
            "image: x\ngo:\n  - {main: m, path: /usr/bin/m}\n",
            "image: x\ndebian:\n  packages: [golang-go]\ngo:\n  - {main: m, path: /usr/bin/m}\n",
        ] {
            let e = BuildYml::parse("b.yml", text).unwrap_err().to_string();
            assert!(
                e.starts_with("b.yml: `go:` needs the Go toolchain")
                    && e.contains("`debian.build_packages`"),
                "{e}"
            );
        }

        // `main` is a directory of the package; `path` one of the image.
        let entry = |main: &str, path: &str| {
            format!(
                "image: x\ndebian:\n  build_packages: [golang-go]\ngo:\n  - main: {main}\n    path: {path}\n"
            )
        };
        for main in ["/src/hello", "../hello", "cmd/../../hello", ".", "\"\""] {
            let e = BuildYml::parse("b.yml", &entry(main, "/usr/bin/hello"))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("b.yml:5:5: go[0]: `main` ")
                    && e.contains("must be a directory of the package"),
                "{main}: {e}"
            );
        }
        for path in ["/usr/../../bin/hello", "/", "\"\""] {
            let e = BuildYml::parse("b.yml", &entry("hello", path))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("b.yml:5:5: go[0]: `path` ")
                    && e.contains("the binary's path in the image"),
                "{path}: {e}"
            );
        }
        let e = BuildYml::parse("b.yml", &entry("hello\n    tags: [x]", "/h"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `tags`"), "{e}");

        // One binary per path, whichever builds it ("/usr/bin/a" and
        // "usr/bin/a" are the same).
        let e = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  build_packages: [golang-go]\ncargo:\n  - {package: a, path: /usr/bin/a}\ngo:\n  - {main: b, path: /usr/bin/b}\n  - {main: a, path: usr/bin/a}\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "b.yml: `go[1]`: path usr/bin/a is used twice"
        );
        let e = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  build_packages: [golang-go]\ngo:\n  - {main: a, path: /a}\n  - {main: b, path: /a}\n",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "b.yml: `go[1]`: path /a is used twice");

        // `packages: []` needs build packages.
        let b = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  packages: []\n  build_packages: [golang-go]\ngo:\n  - {main: a, path: /a}\n",
        )
        .unwrap();
        assert_eq!(b.debian.unwrap().build_packages, ["golang-go"]);
        for text in [
            "image: x\ndebian:\n  packages: []\n  build_packages: []\n",
            "image: x\ndebian:\n  build_packages: []\n",
            "image: x\ndebian: {}\n",
        ] {
            let e = BuildYml::parse("b.yml", text).unwrap_err().to_string();
            assert!(e.contains("must list at least one package"), "{text}: {e}");
        }

        // Build packages are dependency relations too.
        let e = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  packages: [a]\n  build_packages: [golang-go, \"b (>>\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("b.yml: `debian.build_packages`: bad package \"b (>>\""),
            "{e}"
        );
    }

    #[test]
    fn image_is_required_and_not_empty() {
        for text in ["org: x\n", "image: \"\"\n", ""] {
            let e = BuildYml::parse("p/build.yml", text).unwrap_err();
            assert_eq!(
                e.to_string(),
                "p/build.yml: the `image` field is required (the image name, e.g. `image: init`)"
            );
        }
    }
}
