//! The one error type of the command line: every failure ends as a single
//! `Error: ...` line on stderr and exit status 1.

use linuxkit_config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration problem, already located (`file:line:col: ...`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// Images, registries and the cache.
    #[error(transparent)]
    Oci(#[from] linuxkit_oci::Error),
    /// Assembling the root filesystem.
    #[error(transparent)]
    Rootfs(#[from] linuxkit_rootfs::Error),
    /// Writing outputs.
    #[error(transparent)]
    Output(#[from] linuxkit_output::Error),
    /// Running images (`run qemu`, the boot test).
    #[error(transparent)]
    Run(#[from] linuxkit_run::Error),
    /// Flags or arguments that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// A flag's architecture is none of the known ones.
    #[error("{flag} {given:?}: {source}")]
    Arch {
        flag: &'static str,
        given: String,
        source: linuxkit_base::ParseArchError,
    },
    /// A bootable format asked for an architecture it cannot boot (see
    /// `linuxkit_output::format_unavailable`).
    #[error("{why} (--arch {arch})")]
    FormatArch {
        why: String,
        arch: linuxkit_base::Arch,
    },
    /// A flag of the reference we refuse (see `flags::REFUSED`).
    #[error("`linuxkit {what}` is not supported: {why}")]
    Refused { what: String, why: String },
    /// A command of the reference we refuse as a whole (see
    /// `flags::REFUSED_COMMANDS`).
    #[error("`linuxkit {what}` is not implemented: {why}")]
    RefusedCommand { what: String, why: String },
}

/// A staged file's failure is an I/O error with its context.
impl From<linuxkit_output::StagedError> for Error {
    fn from(e: linuxkit_output::StagedError) -> Error {
        Error::Io {
            context: e.context,
            source: e.source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds "what we were doing" to I/O errors.
pub trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}
