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
//!
//! This module is the file as a whole, its defaults and the checks across
//! keys; the entries' types, each with the checks made as it is read, are
//! in submodules by concern: `accounts` (`users:`, `groups:`), `binaries`
//! (`cargo:`, `go:`), `debian` (`debian:`), `files` (`files:`), `image`
//! (`kernel:`, `concat:`); `de` holds the one deserialization helper they
//! share.

use std::collections::{BTreeMap, BTreeSet};

use linuxkit_base::Arch;
use linuxkit_base::path::normalize;
use linuxkit_config::{ConfigError, File, IdSpec, ImageConfig};
use linuxkit_rootfs::CONFIG_LABEL;
use serde::{Deserialize, Serialize};

mod accounts;
mod binaries;
mod de;
mod debian;
mod files;
mod image;
#[cfg(test)]
mod tests;

pub use accounts::{DEFAULT_HOME, DEFAULT_SHELL, Group, User};
pub use binaries::{CargoBinary, GoBinary};
pub use debian::{DEFAULT_DEBIAN_EXCLUDE, DebianSource};
pub use image::{Concat, KernelSpec};

use files::de_files;
use image::de_kernel;

/// The default `org`: images are `linuxkit/<image>` unless told otherwise.
pub const DEFAULT_ORG: &str = "linuxkit";
/// The default tag template: the package's content hash.
pub const DEFAULT_TAG_TEMPLATE: &str = "{{.Hash}}";
/// The default Dockerfile, relative to the package directory.
pub const DEFAULT_DOCKERFILE: &str = "Dockerfile";
/// The default `gitrepo`.
pub const DEFAULT_GIT_REPO: &str = "https://github.com/linuxkit/linuxkit";
/// The architectures a package is built for unless `arches` says otherwise.
pub const DEFAULT_ARCHES: [&str; 3] = [Arch::Amd64.go(), Arch::Arm64.go(), Arch::Riscv64.go()];

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

/// `depends:` of a `build.yml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Depends {
    /// The images the build needs before it starts.
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
                    if let Err(e) = crate::debian::Request::parse(p) {
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
        if self.labels.contains_key(CONFIG_LABEL) {
            return Err(format!(
                "`labels`: {} is set from `config:`; give the runtime configuration there",
                CONFIG_LABEL
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
            if !paths.insert(normalize(&c.path).ok()) {
                return Err(format!("`cargo[{i}]`: path {} is used twice", c.path));
            }
        }
        for (i, g) in self.go.iter().enumerate() {
            if !paths.insert(normalize(&g.path).ok()) {
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
