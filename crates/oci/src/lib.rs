//! OCI images for LinuxKit: image references (the Docker reference grammar),
//! a registry client (pull and push over the OCI distribution API), and the
//! local cache, an OCI image layout at `~/.linuxkit/cache` compatible with
//! the reference's.
//!
//! The cache is the only place images live: a build reads every image from
//! it and touches the network only for images it lacks (or with `--pull`).
//! Blobs are verified against their digest before they become visible, and
//! `index.json` names an image only once all its blobs are in place, so a run
//! killed at any point leaves a cache the next run can use.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod archive;
pub mod attestation;
mod cache;
mod digest;
mod error;
mod reference;
mod registry;
mod transport;
mod types;

pub use archive::{CONTAINERD_NAME_ANNOTATION, ExportFormat};
pub use cache::{Cache, CacheLock, CachedImage, ImageTree, REF_NAME_ANNOTATION};
pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::ImageRef;
pub use registry::{Mirror, Registry, RegistryOptions, default_docker_config};
pub use transport::{
    CONNECT_TIMEOUT_ENV, Limits, MAX_BLOB_SIZE_ENV, MAX_MANIFEST_SIZE, MAX_RETRY_AFTER, TIMEOUT_ENV,
};
pub use types::{Descriptor, Index, Manifest, Platform, media_type};
