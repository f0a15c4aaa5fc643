//! The crate's error type.

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layer tries to write outside its root or through a symlink.
    #[error("{image}: unsafe layer entry `{path}`: {reason}")]
    UnsafeEntry {
        image: String,
        path: String,
        reason: String,
    },
    #[error("{image}: cannot read layer {layer}: {reason}")]
    Layer {
        image: String,
        layer: String,
        reason: String,
    },
    #[error("{0}")]
    Config(#[from] linuxkit_config::ConfigError),
    #[error(transparent)]
    Oci(#[from] linuxkit_oci::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
