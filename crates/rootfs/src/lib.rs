//! Root filesystem assembly: resolved config + cached images → one ordered
//! stream of filesystem entries (kernel, init images, volumes, container
//! bundles with `config.json`/`runtime.json`, `files`).
//!
//! Filled in by the "root filesystem assembly" issue.
