//! Runners that boot LinuxKit images (`linuxkit run qemu`), and the boot-test
//! harness that checks a console for expected text.
//!
//! | module | does |
//! |---|---|
//! | [`qemu`] | boot mode detection, the state directory, disks, and QEMU's command line ([`qemu::qemu_args`], a pure function) |
//! | [`runner`] | running QEMU in the foreground, detached, or as a boot test ([`runner::run`]) |
//! | [`console`] | matching console output against expected and failure texts |
//! | [`qmp`] | the QMP socket: the ACPI power button ([`qmp::powerdown`]), stopping a detached VM ([`qmp::stop`]) |
//! | [`kvm`] | whether KVM really runs a guest here ([`kvm::probe`]) |
//! | [`metadata`] | the metadata CD (`config` on an ISO 9660 image) |
//! | [`netboot`] | network boot: the iPXE script of a kernel+initrd build, the guest's URL of it |
//!
//! ```no_run
//! use linuxkit_run::{qemu::QemuOptions, runner::{self, BootTest, Mode}};
//! let mut opts = QemuOptions::new("linuxkit");
//! opts.accel = Some("tcg".into());
//! let test = BootTest {
//!     expect: vec!["Welcome to LinuxKit".into()],
//!     timeout: Some(std::time::Duration::from_secs(120)),
//!     ..Default::default()
//! };
//! runner::run(&opts, &Mode::Test { test, echo: true })?;
//! # Ok::<(), linuxkit_run::Error>(())
//! ```

// `unsafe_code` is denied workspace-wide. `kvm` (the KVM ioctls and the
// guest memory it maps) and `runner` (the parent-death signal between fork
// and exec, SIGTERM to QEMU) are allowed it; every block says why it is
// sound in a `// SAFETY:` comment.

#![warn(missing_docs)]

pub mod console;
mod error;
#[allow(unsafe_code)]
pub mod kvm;
pub mod metadata;
pub mod netboot;
pub mod qemu;
pub mod qmp;
#[allow(unsafe_code)]
pub mod runner;

pub use error::{BootFailure, Error, Result};
pub use qemu::QemuOptions;
pub use runner::{BootTest, Mode, Outcome};
