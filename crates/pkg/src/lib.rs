//! LinuxKit packages: `build.yml`, package hashes and tags.
//!
//! A LinuxKit *package* is a directory with a `build.yml` (and usually a
//! Dockerfile) that builds one image, e.g. `pkg/init` → `linuxkit/init`.
//! Images are content-addressed by their sources: the tag is the git tree
//! hash of the package directory, so `linuxkit.yml` files can pin
//! `linuxkit/init:<hash>`, CI can tell whether an image already exists
//! without building it, and an unchanged directory never gets rebuilt.
//!
//! That only works if every tool computes the same tag for the same tree, so
//! this crate follows the reference LinuxKit's rules exactly — including the
//! odd ones (the tag of a package outside git is `latest`; a dirty package's
//! tag hashes file contents but not names). [`Package::load`] documents the
//! algorithm step by step; [`BuildYml`] is the file format.
//!
//! ```no_run
//! use linuxkit_pkg::{Package, PkgOptions};
//! let p = Package::load("pkg/init".as_ref(), &PkgOptions::default())?;
//! println!("{}", p.tag()); // linuxkit/init:<git tree hash of pkg/init>
//! # Ok::<(), linuxkit_pkg::PkgError>(())
//! ```
//!
//! [`build`] builds packages without a Docker daemon: images assembled from
//! Debian packages (a `debian:` section in [`BuildYml`], pinned by a
//! [`lock`]file), files, accounts, [`kernel`] layouts, [`cargo`] binaries
//! and [`go`] binaries (built with Debian's Go toolchain), into the OCI
//! cache. Dockerfile packages are built with Debian's `buildah`, without a
//! daemon, and normalised the same way ([`dockerfile`]); or by a Docker
//! daemon the user names ([`docker`]).
//!
//! # Modules, bottom up
//!
//! Imports run one way, from the top of this list to its bottom, and never
//! back (`scripts/import-graph crates/pkg/src` checks): [`build`] (the
//! orchestrator) → [`sbom`] (what went into an image, as SPDX and SLSA
//! provenance) → [`kernel`], [`cargo`], [`go`], [`dockerfile`] →
//! [`docker`], [`lock`] →
//! [`layer`] (the layer tree), [`image`] (the image writer) → `package`
//! (with `git` and `tag`) → `build_yml` → [`filter`], `glob`; each of them
//! may use `error` ([`PkgError`], [`BuildError`]), which wraps the error of
//! [`debian`], the archive client, which knows nothing of packages; all may
//! use [`progress`], a leaf.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod build;
mod build_yml;
pub mod cargo;
pub mod debian;
pub mod docker;
pub mod dockerfile;
mod error;
pub mod filter;
mod git;
mod glob;
pub mod go;
pub mod image;
pub mod kernel;
pub mod layer;
pub mod lock;
mod package;
pub mod progress;
pub mod sbom;
mod tag;

pub use build_yml::{
    BuildYml, CargoBinary, Concat, DEFAULT_ARCHES, DEFAULT_DEBIAN_EXCLUDE, DEFAULT_DOCKERFILE,
    DEFAULT_GIT_REPO, DEFAULT_HOME, DEFAULT_ORG, DEFAULT_SHELL, DEFAULT_TAG_TEMPLATE, DebianSource,
    Depends, DockerImages, GoBinary, Group, KernelSpec, User,
};
pub use error::{BuildError, PkgError};
pub use linuxkit_config::reference_expand;
pub use package::{DEFAULT_BUILD_YML, DEFAULT_HASH_COMMIT, Package, PkgOptions, Source};
pub use tag::{TagTemplate, TemplateError};
