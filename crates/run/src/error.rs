//! The crate's error type.

use std::fmt;

use linuxkit_base::Arch;

/// Everything `run` can fail with. Messages name the file, flag or text
/// involved, so the command line can print them as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read, written or created.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and to which path.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Flags, arguments or image files that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// `--arch` names an architecture `run qemu` does not run.
    #[error(
        "unsupported architecture {}: `run qemu` runs x86_64 (amd64), aarch64 (arm64) and s390x",
        arch.qemu()
    )]
    UnsupportedArch {
        /// The architecture asked for.
        arch: Arch,
    },
    /// QEMU could not be started, or failed.
    #[error("{0}")]
    Qemu(String),
    /// Talking to QEMU's QMP socket failed.
    #[error("{0}")]
    Qmp(String),
    /// A boot test (`--expect`, `--fail-on`, `--timeout`) failed.
    #[error("{0}")]
    BootTest(Box<BootFailure>),
}

/// The crate's result type, with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds "what we were doing" to I/O errors.
pub(crate) trait IoContext<T> {
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

/// Why a boot test failed, with the end of the console to show what the
/// guest was doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFailure {
    /// One line: which text was missing, which failure text was seen,
    /// that the time ran out, or how QEMU ended.
    pub reason: String,
    /// The last console lines (escape sequences removed).
    pub console_tail: Vec<String>,
}

impl fmt::Display for BootFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "boot test failed: {}", self.reason)?;
        if self.console_tail.is_empty() {
            write!(f, "\n(the console printed nothing)")
        } else {
            write!(
                f,
                "\n--- last {} console lines ---",
                self.console_tail.len()
            )?;
            for l in &self.console_tail {
                write!(f, "\n{l}")?;
            }
            write!(f, "\n--- end of console ---")
        }
    }
}
