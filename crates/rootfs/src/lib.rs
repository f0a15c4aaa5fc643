//! Root filesystem assembly: resolved config + cached images → one ordered
//! stream of filesystem entries (kernel, init images, volumes, container
//! bundles with `config.json`/`runtime.json`, `files`), which the output
//! writers turn into a tar, an initrd, or a disk image.
//!
//! The stream is the contract between assembly and outputs: [`Entry`]
//! values with their content, pushed into an [`EntrySink`]. Nothing here
//! knows about output formats, and no output writer knows about YAML.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod assemble;
mod entry;
mod error;
pub mod files;
mod flatten;
mod resolve;
pub mod sbom;
mod spec;

pub use assemble::{Images, Part, assemble, parts};
pub use entry::{DEFAULT_MTIME, Entry, EntryKind, EntrySink};
pub use error::{Error, Result};
pub use flatten::{
    Compression, Filter, FlattenStats, Layer, MAX_SPARSE_HOLES, Replacement, flatten_layers,
};
pub use resolve::Resolve;
pub use spec::{
    ALL_CAPABILITIES, CONFIG_LABEL, ImageRuntimeDefaults, OCI_VERSION, VOLUMES_DIR, oci_config,
    readonly_rootfs, runtime_config, runtime_config_with_root, runtime_json, runtime_json_text,
};
