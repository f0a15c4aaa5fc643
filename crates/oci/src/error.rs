//! The crate's one error type: each variant says what was being done, to
//! what, and what went wrong.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid image reference `{reference}`: {reason}")]
    Reference { reference: String, reason: String },
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the cache at {} is not usable: {reason}", path.display())]
    Cache { path: PathBuf, reason: String },
    #[error("blob {expected} failed verification: got {actual} ({what}); nothing was cached")]
    DigestMismatch {
        expected: String,
        actual: String,
        what: String,
    },
    #[error(
        "image {image} is not in the cache; run `linuxkit cache pull {image}` or build without --offline"
    )]
    NotCached { image: String },
    #[error("image {image} has no {platform} variant (it has: {available})")]
    NoPlatform {
        image: String,
        platform: String,
        available: String,
    },
    #[error("{image}: unsupported media type `{media_type}`")]
    MediaType { image: String, media_type: String },
    #[error("invalid {what} for {image}: {reason}")]
    Json {
        image: String,
        what: &'static str,
        reason: String,
    },
    #[error("registry {registry}: {action} {image}: {reason}")]
    Registry {
        registry: String,
        action: &'static str,
        image: String,
        reason: String,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(
    context: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        context,
        path,
        source,
    }
}
