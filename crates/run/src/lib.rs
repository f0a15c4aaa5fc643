//! Runners that boot LinuxKit images (`linuxkit run qemu`), and the boot-test
//! harness that checks a console for expected text.
//!
//! Filled in by the "in-VM system and `run qemu`" issue.
