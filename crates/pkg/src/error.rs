//! The one error type of this crate.
//!
//! Every variant names the package directory it is about (as the user gave
//! it), because `linuxkit pkg` commands take many packages at once and an
//! error without the package is useless. Failed git commands carry the full
//! command line and git's own stderr, which is nearly always the real
//! explanation ("fatal: Not a valid object name HEAD").

use std::path::PathBuf;

use linuxkit_config::ConfigError;

/// Why a package could not be loaded, or a tag could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkgError {
    /// A file or directory of the package could not be read.
    #[error("package {pkg}: cannot read {path}: {source}")]
    Io {
        pkg: PathBuf,
        path: PathBuf,
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
        pkg: PathBuf,
        hash_path: PathBuf,
        path: PathBuf,
    },

    /// An `extra-sources` entry is not `src:dst`.
    #[error("package {pkg}: bad source format in {entry:?} (expected `src:dst`)")]
    BadSource { pkg: PathBuf, entry: String },

    /// An `extra-sources` directory is not inside a git work tree, so it
    /// cannot contribute a tree hash.
    #[error("package {pkg}: source {src} not in a git repository")]
    SourceNotInGit { pkg: PathBuf, src: PathBuf },

    /// The directory whose tree hash is needed is not committed at the
    /// requested commit (typically: a new package that was never committed).
    #[error("package {pkg}: {path} is not in git at {commit} (commit it, or pass --hash)")]
    NotInGit {
        pkg: PathBuf,
        path: PathBuf,
        commit: String,
    },

    /// The `git` program could not be found.
    #[error(
        "package {pkg}: git was not found in PATH; it is needed to compute the package's tag \
         (install git, or give the hash with --hash)"
    )]
    GitNotFound { pkg: PathBuf },

    /// The `git` program exists but could not be started.
    #[error("package {pkg}: cannot run `{command}`: {source}")]
    GitSpawn {
        pkg: PathBuf,
        command: String,
        #[source]
        source: std::io::Error,
    },

    /// A git command exited unsuccessfully.
    #[error("package {pkg}: `{command}` failed ({status}){}", stderr_suffix(.stderr))]
    Git {
        pkg: PathBuf,
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },

    /// A git command succeeded but printed something this crate does not
    /// understand.
    #[error("package {pkg}: unable to parse output of `{command}`: {output:?}")]
    GitOutput {
        pkg: PathBuf,
        command: String,
        output: String,
    },

    /// The tag template (build.yml `tag:` or `--tag`) is not supported.
    #[error("package {pkg}: invalid tag template {template:?}: {reason}")]
    TagTemplate {
        pkg: PathBuf,
        template: String,
        reason: String,
    },

    /// [`Package::release_tag`](crate::Package::release_tag) was given an
    /// empty release.
    #[error("package {pkg}: a release tag is required")]
    ReleaseTagRequired { pkg: PathBuf },

    /// Releases are only made from committed sources.
    #[error("package {pkg}: cannot release a dirty package")]
    DirtyRelease { pkg: PathBuf },

    /// Packages are only built from the work tree, i.e. `--hash-commit HEAD`.
    #[error("package {pkg}: cannot build from commit hash != HEAD (got {commit})")]
    NotHead { pkg: PathBuf, commit: String },
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}
