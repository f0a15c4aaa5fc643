//! The in-VM init (PID 1): switch root out of the initramfs, mount the
//! standard filesystems, run `onboot` containers, start `services`, and run
//! `onshutdown` containers on a clean shutdown.
//!
//! Filled in by the "in-VM system" issue; it is built for the musl target and
//! shipped in the `init` package.
