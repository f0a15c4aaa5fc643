//! The crate's one error type: each variant says what was being done, to
//! what, and what went wrong.

use std::path::PathBuf;

use linuxkit_base::text::OneLine;

/// Why pulling, pushing, caching or exporting an image failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An image reference that does not parse.
    #[error(
        "invalid image reference `{}`: {}",
        OneLine(reference),
        OneLine(reason)
    )]
    Reference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file of the cache or an archive could not be read or written.
    #[error("{context} {}: {}", OneLine(path.display()), OneLine(source))]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The cache directory is not an OCI layout we can use.
    #[error("the cache at {} is not usable: {}", OneLine(path.display()), OneLine(reason))]
    Cache {
        /// The cache directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Downloaded or imported bytes whose digest is not the one asked for.
    #[error(
        "blob {} failed verification: got {actual} ({}); nothing was cached",
        OneLine(expected),
        OneLine(what)
    )]
    DigestMismatch {
        /// The digest asked for.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
        /// What the blob was (a layer, a manifest, ...).
        what: String,
    },
    /// An image needed offline that was never pulled.
    #[error(
        "image {} is not in the cache; run `linuxkit cache pull {}` or build without --offline",
        OneLine(image),
        OneLine(image)
    )]
    NotCached {
        /// The image's canonical name.
        image: String,
    },
    /// A multi-platform image without the platform asked for.
    #[error(
        "image {} has no {platform} variant (it has: {})",
        OneLine(image),
        OneLine(available)
    )]
    NoPlatform {
        /// The image.
        image: String,
        /// The platform asked for.
        platform: String,
        /// The platforms its index lists.
        available: String,
    },
    /// A manifest or index of a media type we do not read.
    #[error("{}: unsupported media type `{}`", OneLine(image), OneLine(media_type))]
    MediaType {
        /// The image.
        image: String,
        /// The media type it has.
        media_type: String,
    },
    /// A manifest, index or config that is not valid JSON of its kind.
    #[error("invalid {what} for {}: {}", OneLine(image), OneLine(reason))]
    Json {
        /// The image.
        image: String,
        /// Which document (`manifest`, `index`, `config`).
        what: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// A registry refused or failed a request.
    #[error(
        "registry {}: {action} {}: {}",
        OneLine(registry),
        OneLine(image),
        OneLine(reason)
    )]
    Registry {
        /// The registry (`host[:port]`).
        registry: String,
        /// What was being done (`pull`, `push`, ...).
        action: &'static str,
        /// The image.
        image: String,
        /// The registry's answer or the transport's error.
        reason: String,
    },
    /// A failure that is none of the above; the message says what.
    #[error("{}", OneLine(.0))]
    Other(String),
}

/// The crate's result, with [`Error`] by default.
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
