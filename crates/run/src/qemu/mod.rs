//! `run qemu`: from what the user asked ([`QemuOptions`]) to a resolved VM
//! ([`Vm`], after [`prepare`] has made the state directory, the metadata
//! CD and the disks) to QEMU's command line ([`qemu_args`], a pure
//! function of the [`Vm`]).
//!
//! The boot mode is chosen as the reference does: `PATH-kernel` with
//! `PATH-squashfs.img` boots the squashfs as the root disk, `PATH-kernel`
//! with `PATH-initrd.img` boots kernel+initrd (with `PATH-cmdline` as the
//! command line), an existing `*.iso` boots from CD, and any other existing
//! file is the boot disk. `--kernel`, `--squashfs` and `--iso` force a
//! mode; `--uefi` adds UEFI firmware to any of them (arm64 always boots
//! through it). Without `--arch`, the guest's architecture is the image's.
//!
//! | module | holds |
//! |---|---|
//! | `options` | the flags' types, parsed: [`QemuOptions`], [`DiskSpec`], [`PublishedPort`], [`Networking`] |
//! | `boot` | the boot mode from the files at `PATH` ([`Boot`]), and a boot disk's format |
//! | `state` | the state directory: its files, the VM's kept MAC address, its UUID |
//! | `host` | what this host has: the architectures we run, the accelerator, QEMU binaries, running QEMUs |
//! | `firmware` | UEFI firmware, and the VM's own copy of its variables |
//! | `guest_arch` | the guest's architecture read from the image (kernel header, EFI loader) when `--arch` is not given |
//! | `vm` | [`Vm`], the resolved VM: the boundary between the side that looks at the host and the pure argument builder |
//! | `prepare` | [`prepare`]: options to [`Vm`], making what is missing (state directory, metadata CD, disks) |
//! | `args` | [`qemu_args`], a pure function of the [`Vm`], and QEMU's spelling of each part |
//!
//! Imports run one way: `prepare` uses the others; `args` imports only
//! `vm`, the types a `Vm` holds (from `boot`, `firmware`, `options`) and
//! `state`'s file names, nothing that looks at the host. Outside this
//! module, only what follows is seen.

mod args;
mod boot;
mod firmware;
mod guest_arch;
mod host;
mod options;
mod prepare;
mod state;
mod vm;

pub use args::qemu_args;
pub use boot::Boot;
pub use firmware::{DEFAULT_FIRMWARE_AARCH64, DEFAULT_FIRMWARE_X86_64, Firmware};
pub use host::{SUPPORTED_ARCHES, is_running_qemu, qemu_binary, supported_arch};
pub use options::{DiskSpec, Networking, PublishedPort, QemuOptions};
pub use prepare::prepare;
pub use state::{CONSOLE_LOG, DATA_ISO, EFI_VARS, MAC_FILE, PID_FILE, QMP_SOCKET, state_dir_for};
pub use vm::{Disk, Vm};
