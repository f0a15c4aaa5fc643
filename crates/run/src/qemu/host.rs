//! What this host has and runs: the guest architectures `run qemu`
//! supports, the accelerator (KVM only where it really runs a guest, see
//! [`crate::kvm`]), the QEMU binary for an architecture, and whether a
//! recorded QEMU is still running.

use std::path::{Path, PathBuf};

use linuxkit_base::Arch;

use crate::error::{Error, Result};
use crate::kvm;

/// The architectures `run qemu` runs (the reference's, less riscv64, for
/// which it would pick an x86 machine type).
pub const SUPPORTED_ARCHES: [Arch; 3] = [Arch::Amd64, Arch::Arm64, Arch::S390x];

/// `arch` if `run qemu` runs it, else [`Error::UnsupportedArch`].
pub fn supported_arch(arch: Arch) -> Result<Arch> {
    if SUPPORTED_ARCHES.contains(&arch) {
        Ok(arch)
    } else {
        Err(Error::UnsupportedArch { arch })
    }
}

/// The accelerator: `given` (`--accel`, `LINUXKIT_QEMU_ACCEL`) as it is;
/// otherwise `kvm:tcg` when `/dev/kvm` runs a test guest (see [`kvm`]),
/// else `tcg`, with a notice when KVM is there but does not work. Other
/// architectures than the host's get no accelerator.
pub(super) fn choose_accel(given: Option<&str>, arch: Arch) -> Option<String> {
    if arch != Arch::host() {
        if given.is_some() {
            tracing::info!(
                "not using an accelerator: {} is not the host's architecture",
                arch.qemu()
            );
        }
        return None;
    }
    if let Some(g) = given.filter(|g| !g.is_empty()) {
        return Some(g.to_string());
    }
    if arch == Arch::S390x {
        return Some("kvm".into());
    }
    match kvm::probe(kvm::PROBE_TIMEOUT) {
        kvm::KvmStatus::Usable => Some("kvm:tcg".into()),
        kvm::KvmStatus::Absent => Some("tcg".into()),
        kvm::KvmStatus::Unusable(why) => {
            tracing::warn!(
                "KVM does not work here ({why}): using TCG, which is slower; --accel chooses"
            );
            Some("tcg".into())
        }
    }
}

/// Whether `pid` is a QEMU that has not exited (a zombie has).
pub fn is_running_qemu(pid: u32) -> bool {
    // /proc/PID/stat: `pid (comm) state ...`; comm may hold spaces or parentheses.
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    match (stat.find('('), stat.rfind(") ")) {
        (Some(a), Some(b)) if a < b => {
            stat[a + 1..b].starts_with("qemu") && !stat[b + 2..].starts_with('Z')
        }
        _ => false,
    }
}

/// Finds `name` in `PATH`.
pub(super) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The QEMU binary: `qemu` if given, else `qemu-system-ARCH` from `PATH`.
pub fn qemu_binary(qemu: Option<&Path>, arch: Arch) -> Result<PathBuf> {
    match qemu {
        Some(q) => {
            if q.components().count() > 1 || q.is_file() {
                Ok(q.to_path_buf())
            } else {
                which(&q.to_string_lossy())
                    .ok_or_else(|| Error::Usage(format!("cannot find {} in PATH", q.display())))
            }
        }
        None => {
            let name = arch.qemu_system();
            which(name).ok_or_else(|| {
                Error::Usage(format!(
                    "cannot find {name} in PATH: install QEMU (Debian: qemu-system-x86 / qemu-system-arm), or give --qemu"
                ))
            })
        }
    }
}
