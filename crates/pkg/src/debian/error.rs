//! The Debian client's error type and the small helpers every part of it
//! uses to make one.

use std::path::PathBuf;

/// Everything that can go wrong talking to a Debian archive.
///
/// Messages are meant for people: they name the file, URL or package chain
/// involved, because "hash mismatch" alone is useless when a build fails.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A download failed (network error or HTTP status).
    #[error("fetching {url}: {message}")]
    Http {
        /// What was fetched.
        url: String,
        /// Why it failed.
        message: String,
    },
    /// Malformed input: a version, a relation, a sources file, an index.
    #[error("parsing {what}: {message}")]
    Parse {
        /// What was being parsed.
        what: String,
        /// What was wrong.
        message: String,
    },
    /// Downloaded (or cached) content did not match its expected SHA256 or size.
    #[error("{what}: expected {expected}, got {actual}; refusing to use it")]
    HashMismatch {
        /// The file.
        what: String,
        /// The expected value (from the Release or Packages file).
        expected: String,
        /// What was computed.
        actual: String,
    },
    /// No apt source serves what was asked for.
    #[error("no Debian mirror: {0}")]
    NoMirror(String),
    /// A requested package name is neither a package nor a virtual package.
    #[error(
        "unknown package {name:?} in {suite}{}",
        if suggestions.is_empty() { String::new() } else { format!(" (did you mean {}?)", suggestions.join(", ")) }
    )]
    UnknownPackage {
        /// The name asked for.
        name: String,
        /// The suite (and architecture) that was searched.
        suite: String,
        /// Close matches, best first.
        suggestions: Vec<String>,
    },
    /// A dependency cannot be satisfied; `chain` leads from a requested
    /// package to the failing dependency.
    #[error("{}: {reason}", chain.join(" -> "))]
    Unsatisfiable {
        /// `requested -> dep (>= 1) -> failing-dep`.
        chain: Vec<String>,
        /// Why the last link fails.
        reason: String,
    },
    /// A release file's OpenPGP signature does not verify: refused, not cached.
    #[error(
        "{what}: bad OpenPGP signature ({reason}) checked against the keyring {}; refusing to use it (if the mirror is signed by another key, set {keyring_env} to its keyring)",
        keyring.display()
    )]
    BadSignature {
        /// The file (URL).
        what: String,
        /// The keyring used.
        keyring: PathBuf,
        /// The variable that chooses another keyring.
        keyring_env: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// The keyring cannot be used.
    #[error("keyring {}: {reason}", path.display())]
    Keyring {
        /// The keyring file.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// A `.deb` is not a valid Debian binary package.
    #[error("{}: {message}", path.display())]
    BadDeb {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// Shorthand for results in this module.
pub type Result<T, E = DebianError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DebianError {
    let path = path.into();
    move |source| DebianError::Io { path, source }
}

pub(crate) fn parse_err(what: impl Into<String>, message: impl Into<String>) -> DebianError {
    DebianError::Parse {
        what: what.into(),
        message: message.into(),
    }
}

/// Lower-case hex, for SHA256 digests.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
