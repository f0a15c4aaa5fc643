//! The bottom of the workspace: vocabulary and helpers that more than one
//! crate needs and that belong to none of the pipeline's stages.
//!
//! Nothing here knows about YAML, images, outputs or the command line; every
//! other crate may depend on this one, and this one depends on no other
//! crate of the workspace. It stays small and light (the in-VM init links it
//! too), so a helper moves here only once a second crate needs it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arch;
pub mod calendar;
pub mod path;
pub mod staged;
pub mod text;

pub use arch::{Arch, ParseArchError};
pub use staged::{Staged, StagedError};
