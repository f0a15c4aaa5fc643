//! OCI images for LinuxKit: image references (Docker reference grammar),
//! the registry client (pull and push over the OCI distribution API), and the
//! local cache, an OCI image layout at `~/.linuxkit/cache` that is
//! compatible with the reference's.
//!
//! Filled in by the "OCI images, registry client and cache" issue; until
//! then the CLI's `cache` commands report that they are not implemented.
