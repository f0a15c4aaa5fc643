//! PID 1 (`/sbin/init`): bring the system up, run the boot stages, then
//! reap and wait for a request to power off or reboot; shut down cleanly.
//!
//! The boot stages are the regular files of `/etc/init.d` merged, in name
//! order, with three built-in ones: `005-volumes`, `010-onboot` and
//! `020-containerd` (the reference's names, where they are symlinks to its
//! `service` binary). A file in `/etc/init.d` with a built-in's name is
//! skipped, so images made for the reference's init do not run its
//! runner on top of ours.
//!
//! Signals, as busybox init understands them: `SIGUSR2` (busybox
//! `poweroff`, and our power-button watcher) and `SIGUSR1` (`halt`) power
//! off; `SIGTERM` (`reboot`) and `SIGINT` (Ctrl-Alt-Del) reboot.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};

use crate::cmdline::Cmdline;
use crate::onboot::{self, Phase};
use crate::{info, reap, services, system, volumes, warn};

/// A boot stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// A built-in stage, by its init.d-style name.
    Builtin(&'static str),
    /// An executable file in `/etc/init.d`.
    Script(PathBuf),
}

/// The built-in stages' names.
pub const BUILTINS: [&str; 3] = ["005-volumes", "010-onboot", "020-containerd"];

/// The stages in run order: `/etc/init.d`'s files (given as names) and
/// the built-ins, sorted by name; files named like a built-in are dropped.
pub fn stages(init_d: &Path, files: &[String]) -> Vec<Stage> {
    let mut all: Vec<(String, Stage)> = BUILTINS
        .iter()
        .map(|b| (b.to_string(), Stage::Builtin(b)))
        .collect();
    for f in files {
        if !BUILTINS.contains(&f.as_str()) {
            all.push((f.clone(), Stage::Script(init_d.join(f))));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all.into_iter().map(|(_, s)| s).collect()
}

fn init_d_files() -> Vec<String> {
    let dir = Path::new("/etc/init.d");
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn handled() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGPWR,
        Signal::SIGHUP,
    ] {
        s.add(sig);
    }
    s
}

/// What shutdown ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    PowerOff,
    Reboot,
}

/// PID 1's whole life. Never returns.
pub fn main() -> ! {
    let sigs = handled();
    // Blocked in every thread (threads inherit the mask) and taken by the
    // main loop with sigtimedwait; children get a clean mask from std.
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&sigs), None);
    // Ctrl-Alt-Del becomes SIGINT instead of an immediate reboot.
    let _ = nix::sys::reboot::set_cad_enabled(false);
    unsafe {
        std::env::set_var(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
    };

    info!("init starting");
    let cmdline = Cmdline::read();
    if let Err(e) = system::bring_up(&cmdline) {
        warn!("bringing the system up: {e}");
    }
    crate::power::watch();

    for stage in stages(Path::new("/etc/init.d"), &init_d_files()) {
        match stage {
            Stage::Builtin("005-volumes") => volumes::mount_all(),
            Stage::Builtin("010-onboot") => {
                let results = onboot::run_phase(Phase::Onboot, &cmdline);
                let failed = results.iter().filter(|(_, o)| !o.ok()).count();
                if !results.is_empty() {
                    info!(
                        "onboot finished: {} containers, {failed} failed",
                        results.len()
                    );
                }
            }
            Stage::Builtin(_) => {
                services::start_all();
                if !services::bundles().is_empty() {
                    info!("all services started");
                }
            }
            Stage::Script(p) => {
                let st = Command::new(&p).stdin(Stdio::null()).status();
                if let Err(e) = st {
                    warn!("{}: {e}", p.display());
                }
            }
        }
        reap::reap_all();
    }
    info!("boot complete");

    let halt = loop {
        let sig = sigs.wait();
        reap::reap_all();
        match sig {
            Ok(Signal::SIGUSR1 | Signal::SIGUSR2 | Signal::SIGPWR) => break Halt::PowerOff,
            Ok(Signal::SIGTERM | Signal::SIGINT) => break Halt::Reboot,
            _ => {}
        }
    };
    shutdown(halt, &cmdline)
}

/// The shutdown path: onshutdown containers, TERM to everything, up to 5 s,
/// KILL, sync, unmount the disks, power off or reboot.
pub fn shutdown(halt: Halt, cmdline: &Cmdline) -> ! {
    services::SHUTTING_DOWN.store(true, Ordering::SeqCst);
    info!(
        "shutting down ({})",
        if halt == Halt::PowerOff {
            "power off"
        } else {
            "reboot"
        }
    );
    onboot::run_phase(Phase::Onshutdown, cmdline);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), Signal::SIGTERM);
    if !wait_children(Duration::from_secs(5)) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), Signal::SIGKILL);
        wait_children(Duration::from_secs(2));
    }
    nix::unistd::sync();
    unmount_disks();
    nix::unistd::sync();
    info!(
        "{}",
        if halt == Halt::PowerOff {
            "power off"
        } else {
            "reboot"
        }
    );
    let how = match halt {
        Halt::PowerOff => nix::sys::reboot::RebootMode::RB_POWER_OFF,
        Halt::Reboot => nix::sys::reboot::RebootMode::RB_AUTOBOOT,
    };
    let _ = nix::sys::reboot::reboot(how);
    // reboot(2) does not return on success; if it failed there is nothing
    // better to do than wait.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// `poweroff|reboot|halt [-f]`: without `-f`, signal PID 1 as busybox
/// does (`SIGUSR2`, `SIGTERM`, `SIGUSR1`) for a clean shutdown; with `-f`,
/// or when run as PID 1 itself (a kernel-only boot with
/// `rdinit=/sbin/poweroff`, as the boot benchmark's floor), call
/// `reboot(2)` at once.
pub fn halt_main(name: &str, args: &[String]) -> i32 {
    let force = args.iter().any(|a| a == "-f");
    if force || nix::unistd::getpid().as_raw() == 1 {
        nix::unistd::sync();
        let how = match name {
            "reboot" => nix::sys::reboot::RebootMode::RB_AUTOBOOT,
            "halt" => nix::sys::reboot::RebootMode::RB_HALT_SYSTEM,
            _ => nix::sys::reboot::RebootMode::RB_POWER_OFF,
        };
        let e = match nix::sys::reboot::reboot(how) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        eprintln!("{name}: {e}");
        return 1;
    }
    let sig = match name {
        "reboot" => Signal::SIGTERM,
        "halt" => Signal::SIGUSR1,
        _ => Signal::SIGUSR2,
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(1), sig) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{name}: signalling init: {e}");
            1
        }
    }
}

/// Reaps until no child is left or `limit` passes; true if none is left.
fn wait_children(limit: Duration) -> bool {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let start = Instant::now();
    loop {
        match waitpid(None::<nix::unistd::Pid>, Some(WaitPidFlag::WNOHANG)) {
            Err(nix::errno::Errno::ECHILD) => return true,
            Ok(WaitStatus::StillAlive) => {
                if start.elapsed() >= limit {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {}
        }
    }
}

/// Unmounts, last mounted first, the filesystems that live on devices
/// (network filesystems lazily), so disks are clean at power off.
fn unmount_disks() {
    let text = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    for line in text.lines().rev() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let target = f[1].replace("\\040", " ");
        let network = matches!(f[2], "nfs" | "nfs4" | "cifs" | "smb3" | "9p" | "virtiofs");
        if f[0].starts_with("/dev/") || network {
            let flags = if network {
                nix::mount::MntFlags::MNT_DETACH
            } else {
                nix::mount::MntFlags::empty()
            };
            if let Err(e) = nix::mount::umount2(target.as_str(), flags) {
                warn!("unmounting {target}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_merge_init_d_with_builtins() {
        let files = ["000-issue", "010-onboot", "015-custom", "100-late"].map(String::from);
        let s = stages(Path::new("/etc/init.d"), &files);
        assert_eq!(
            s,
            [
                Stage::Script("/etc/init.d/000-issue".into()),
                Stage::Builtin("005-volumes"),
                Stage::Builtin("010-onboot"),
                Stage::Script("/etc/init.d/015-custom".into()),
                Stage::Builtin("020-containerd"),
                Stage::Script("/etc/init.d/100-late".into()),
            ]
        );
    }
}
