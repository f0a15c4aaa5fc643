//! The crate's error type.

/// Why assembling the root filesystem failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layer tries to write outside its root or through a symlink.
    #[error("{image}: unsafe layer entry `{path}`: {reason}")]
    UnsafeEntry {
        /// The image whose layer holds the entry.
        image: String,
        /// The entry's path as the layer spells it.
        path: String,
        /// What makes it unsafe (a `..` component, a write through a
        /// symlink, ...).
        reason: String,
    },
    /// A layer blob could not be read: an unknown media type, bad
    /// compression, or not a tar.
    #[error("{image}: cannot read layer {layer}: {reason}")]
    Layer {
        /// The image the layer belongs to.
        image: String,
        /// The layer's blob digest (`sha256:...`).
        layer: String,
        /// What went wrong, from the decompressor or the tar reader.
        reason: String,
    },
    /// A configuration entry asks for what cannot be built (a `files`
    /// entry's source, a kernel image without a kernel); the message names
    /// the YAML file and line.
    #[error("{0}")]
    Config(#[from] linuxkit_config::ConfigError),
    /// Reading an image, its config or a blob from the cache failed.
    #[error(transparent)]
    Oci(#[from] linuxkit_oci::Error),
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and to which path.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Any other failure; the message is complete (it names the container,
    /// image or layer it is about).
    #[error("{0}")]
    Other(String),
}

/// The crate's result type, with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;
