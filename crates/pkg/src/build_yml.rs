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

use linuxkit_config::{ConfigError, ImageConfig};
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
}

/// The path prefixes dropped from `debian:` images unless `exclude` says
/// otherwise: documentation, manual pages and translations.
pub const DEFAULT_DEBIAN_EXCLUDE: [&str; 3] =
    ["usr/share/doc", "usr/share/man", "usr/share/locale"];

/// `debian:` of a `build.yml`: the image's single layer is the contents of
/// these packages and their dependencies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianSource {
    /// The suite (codename) to install from; default: the suite of the
    /// host's apt sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// The packages, as dependency relations (`busybox-static`,
    /// `libc6 (>= 2.36)`); their `Depends`/`Pre-Depends` are added.
    pub packages: Vec<String>,
    /// Path prefixes left out of the image (`usr/share/doc` drops the
    /// directory and everything below it).
    #[serde(default = "default_debian_exclude")]
    pub exclude: Vec<String>,
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
            if d.packages.is_empty() {
                return Err(
                    ConfigError::new("`debian.packages` must list at least one package")
                        .in_file(name),
                );
            }
            for p in &d.packages {
                if let Err(e) = crate::debian::Dependency::parse(p) {
                    return Err(ConfigError::new(format!(
                        "`debian.packages`: bad package {p:?}: {e}"
                    ))
                    .in_file(name));
                }
            }
        }
        Ok(b)
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

        let e = BuildYml::parse("b.yml", "image: x\ndebian:\n  package: [a]\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `package`"), "{e}");
        let e = BuildYml::parse("b.yml", "image: x\ndebian:\n  packages: []\n").unwrap_err();
        assert!(e.to_string().contains("at least one package"), "{e}");
        let e =
            BuildYml::parse("b.yml", "image: x\ndebian:\n  packages: [\"a (>>\"]\n").unwrap_err();
        assert!(e.to_string().contains("bad package"), "{e}");
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
