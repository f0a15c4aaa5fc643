//! The crate's two error types, at the bottom of its module graph: every
//! other module may use them, and they use nothing of the crate but the
//! Debian client's error.
//!
//! [`PkgError`] is loading a package and computing its tag; [`BuildError`]
//! is building it (and wraps a `PkgError`). Every variant names the package
//! directory or build file it is about (as the user gave it), because
//! `linuxkit pkg` commands take many packages at once and an error without
//! the package is useless. Failed git commands carry the full command line
//! and git's own stderr, which is nearly always the real explanation
//! ("fatal: Not a valid object name HEAD").

use std::path::PathBuf;

use linuxkit_base::Arch;
use linuxkit_config::ConfigError;

use crate::debian::DebianError;

/// Why a package could not be loaded, or a tag could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkgError {
    /// A file or directory of the package could not be read.
    #[error("package {pkg}: cannot read {path}: {source}")]
    Io {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
        /// The file or directory that could not be read.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// `build.yml` is not valid: syntax, unknown or misspelt keys, wrong
    /// types, missing `image`. The message already names the file, and the
    /// line and column where it can.
    #[error(transparent)]
    BuildYml(#[from] ConfigError),

    /// `--hash-path` must be the package directory or one of its parents.
    #[error("package {pkg}: hash path {hash_path} is not a prefix of the package path {path}")]
    HashPathNotPrefix {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
        /// The `--hash-path` given.
        hash_path: PathBuf,
        /// The package directory, resolved, that it should contain.
        path: PathBuf,
    },

    /// An `extra-sources` entry is not `src:dst`.
    #[error("package {pkg}: bad source format in {entry:?} (expected `src:dst`)")]
    BadSource {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
        /// The `extra-sources` entry as written.
        entry: String,
    },

    /// An `extra-sources` directory is not inside a git work tree, so it
    /// cannot contribute a tree hash.
    #[error("package {pkg}: source {src} not in a git repository")]
    SourceNotInGit {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
        /// The source directory outside any git work tree.
        src: PathBuf,
    },

    /// The directory whose tree hash is needed is not committed at the
    /// requested commit (typically: a new package that was never committed).
    #[error("package {pkg}: {path} is not in git at {commit} (commit it, or pass --hash)")]
    NotInGit {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
        /// The directory missing from the commit.
        path: PathBuf,
        /// The commit it was looked up in.
        commit: String,
    },

    /// The `git` program could not be found.
    #[error(
        "package {pkg}: git was not found in PATH; it is needed to compute the package's tag \
         (install git, or give the hash with --hash)"
    )]
    GitNotFound {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
    },

    /// The `git` program exists but could not be started.
    #[error("package {pkg}: cannot run `{command}`: {source}")]
    GitSpawn {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
        /// The git command line that could not be started.
        command: String,
        /// Why it could not be started.
        #[source]
        source: std::io::Error,
    },

    /// A git command exited unsuccessfully.
    #[error("package {pkg}: `{command}` failed ({status}){}", stderr_suffix(.stderr))]
    Git {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
        /// The full git command line.
        command: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// git's own explanation (its stderr).
        stderr: String,
    },

    /// A git command succeeded but printed something this crate does not
    /// understand.
    #[error("package {pkg}: unable to parse output of `{command}`: {output:?}")]
    GitOutput {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
        /// The full git command line.
        command: String,
        /// What it printed, unparsed.
        output: String,
    },

    /// The tag template (build.yml `tag:` or `--tag`) is not supported.
    #[error("package {pkg}: invalid tag template {template:?}: {reason}")]
    TagTemplate {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
        /// The template as written.
        template: String,
        /// What in it is not supported.
        reason: String,
    },

    /// [`Package::release_tag`](crate::Package::release_tag) was given an
    /// empty release.
    #[error("package {pkg}: a release tag is required")]
    ReleaseTagRequired {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
    },

    /// Releases are only made from committed sources.
    #[error("package {pkg}: cannot release a dirty package")]
    DirtyRelease {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
    },

    /// Packages are only built from the work tree, i.e. `--hash-commit HEAD`.
    #[error("package {pkg}: cannot build from commit hash != HEAD (got {commit})")]
    NotHead {
        /// The package directory, as the user gave it.
        pkg: PathBuf,
        /// The commit asked for instead of `HEAD`.
        commit: String,
    },
}

/// Why a package could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Loading the package.
    #[error(transparent)]
    Pkg(#[from] PkgError),
    /// The Debian archive: mirror, indices, resolution, `.deb`s.
    #[error(transparent)]
    Debian(#[from] DebianError),
    /// The OCI cache.
    #[error(transparent)]
    Oci(#[from] linuxkit_oci::Error),
    /// A Dockerfile package, and no builder for it: neither a Docker
    /// daemon named with `--builders` nor `buildah` and `skopeo`.
    #[error(
        "package {}: Dockerfile packages are built with buildah and skopeo, and `{}` cannot be run here: install Debian's `buildah` and `skopeo` (`apt-get install buildah skopeo`), name a Docker daemon with `--builders linux/ARCH=CONTEXT`, or use a `debian:` source instead",
        pkg.display(),
        missing.join("`, `")
    )]
    NeedsBuilder {
        /// The package directory.
        pkg: PathBuf,
        /// The tools that are missing.
        missing: Vec<String>,
    },
    /// Neither a `debian:` section nor a Dockerfile.
    #[error("package {}: nothing to build: {} has no `debian:` section", pkg.display(), build_yml.display())]
    NoSource {
        /// The package directory.
        pkg: PathBuf,
        /// Its build file.
        build_yml: PathBuf,
    },
    /// The requested architecture is not among the package's `arches`.
    #[error("package {}: not built for {arch} (its `arches` are {})", pkg.display(), arches.join(", "))]
    Arch {
        /// The package directory.
        pkg: PathBuf,
        /// The architecture asked for.
        arch: Arch,
        /// The package's architectures.
        arches: Vec<String>,
    },
    /// Something the package's `build.yml` asks for cannot be done; the
    /// message names the key and what to do.
    #[error("{build_yml}: {message}")]
    Package {
        /// The build file, as the user named it.
        build_yml: String,
        /// What is wrong, and what to do.
        message: String,
    },
    /// `debian.lock` was resolved for another `debian:` section.
    #[error(
        "{lockfile} is stale: {build_yml} now asks for something else ({difference}); run `linuxkit pkg build --update {}` to resolve again and rewrite it",
        dir.display()
    )]
    StaleLock {
        /// The lockfile.
        lockfile: String,
        /// The build file.
        build_yml: String,
        /// What changed.
        difference: String,
        /// The package directory.
        dir: PathBuf,
    },
    /// `debian.packages` cannot be resolved.
    #[error("{build_yml}: `debian.packages`: {source}; fix the package list")]
    Resolve {
        /// The build file.
        build_yml: String,
        /// Why.
        source: DebianError,
    },
    /// A `data.tar` that cannot go into a layer (unsafe path, unreadable entry).
    #[error("{what}: {message}")]
    Layer {
        /// The package or archive.
        what: String,
        /// What is wrong.
        message: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}
