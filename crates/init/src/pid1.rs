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

/// The built-in shutdown stage (the reference's name, a symlink to its
/// `service` binary in `/etc/shutdown.d`).
pub const SHUTDOWN_BUILTINS: [&str; 1] = ["010-onshutdown"];

/// The stages in run order: `/etc/init.d`'s files (given as names) and
/// the built-ins, sorted by name; files named like a built-in are dropped.
pub fn stages(init_d: &Path, files: &[String]) -> Vec<Stage> {
    merge_stages(init_d, files, &BUILTINS)
}

/// The shutdown stages in run order: `/etc/shutdown.d`'s files and the
/// onshutdown containers, as [`stages`] does for boot.
pub fn shutdown_stages(shutdown_d: &Path, files: &[String]) -> Vec<Stage> {
    merge_stages(shutdown_d, files, &SHUTDOWN_BUILTINS)
}

fn merge_stages(dir: &Path, files: &[String], builtins: &[&'static str]) -> Vec<Stage> {
    let mut all: Vec<(String, Stage)> = builtins
        .iter()
        .map(|b| (b.to_string(), Stage::Builtin(b)))
        .collect();
    for f in files {
        if !builtins.contains(&f.as_str()) {
            all.push((f.clone(), Stage::Script(dir.join(f))));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all.into_iter().map(|(_, s)| s).collect()
}

/// The regular files (symlinks followed, as the reference's `rc.init`
/// does) of a stage directory.
fn stage_files(dir: &Path) -> Vec<String> {
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
    /// Power the machine off (`poweroff`, `halt`: `SIGUSR1`, `SIGUSR2` or
    /// `SIGPWR` to PID 1).
    PowerOff,
    /// Restart the machine (`reboot`: `SIGTERM`, or `SIGINT` as the kernel
    /// sends for Ctrl-Alt-Del).
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
    // SAFETY: setting the environment races only with threads reading it,
    // and PID 1 has started none yet (they come later, with the services).
    unsafe {
        std::env::set_var(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
    };

    info!("init starting");
    // The command line is in /proc, which nothing has mounted yet.
    if let Err(e) = system::mount_proc() {
        warn!("mounting /proc: {e}");
    }
    let cmdline = Cmdline::read();
    if let Err(e) = system::bring_up(&cmdline) {
        warn!("bringing the system up: {e}");
    }
    crate::power::watch();
    // The log daemon, before anything that logs to it (onboot, services).
    match crate::memlogd::start() {
        Ok(pid) => info!("memlogd started (pid {pid}): logread shows the log"),
        Err(e) => warn!("the log daemon did not start: {e}; services log to /var/log directly"),
    }
    let oci = crate::oci_runtime::OciRuntime::select(&cmdline);
    if let Err(e) = oci.record() {
        warn!(
            "recording the OCI runtime in {}: {e}",
            crate::oci_runtime::CHOSEN
        );
    }
    if oci.sealed() {
        info!(
            "containers run with {} (from a sealed copy in memory)",
            oci.path
        );
    } else {
        warn!(
            "containers run with {} (no sealed copy in memory could be made: it copies itself at each run)",
            oci.path
        );
    }
    // containerd starts now, in the background, so its start overlaps
    // volumes and onboot; the services stage (020) waits for its socket.
    services::start_containerd_early();

    for stage in stages(
        Path::new("/etc/init.d"),
        &stage_files(Path::new("/etc/init.d")),
    ) {
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
            Stage::Builtin(_) => match services::start_all() {
                (0, _) => {}
                (total, started) if started == total => info!("all services started"),
                (total, started) => {
                    info!(
                        "services started: {started} of {total}, {} FAILED",
                        total - started
                    )
                }
            },
            Stage::Script(p) => run_script(&p, None),
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

/// The shutdown path: `/etc/shutdown.d`'s scripts merged by name with
/// the onshutdown containers (`010-onshutdown`, as in the reference),
/// TERM to everything, up to 5 s
/// (only while something may still act on the TERM), KILL, sync, unmount
/// the disks, power off or reboot.
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
    let dir = Path::new("/etc/shutdown.d");
    for stage in shutdown_stages(dir, &stage_files(dir)) {
        match stage {
            Stage::Builtin(_) => {
                onboot::run_phase(Phase::Onshutdown, cmdline);
            }
            Stage::Script(p) => run_script(&p, Some(SCRIPT_LIMIT)),
        }
        reap::reap_all();
    }
    terminate_all();
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

/// How long a `/etc/shutdown.d` script may run: the reference waits
/// for ever, which a hung script turns into a machine that never powers
/// off.
const SCRIPT_LIMIT: Duration = Duration::from_secs(60);

/// Runs a stage script with the console as its output; with a `limit`,
/// kills it (saying so) when it runs longer.
fn run_script(p: &Path, limit: Option<Duration>) {
    let mut child = match Command::new(p).stdin(Stdio::null()).spawn() {
        Ok(c) => c,
        Err(e) => {
            warn!("{}: {e}", p.display());
            return;
        }
    };
    let Some(limit) = limit else {
        let _ = crate::reap::wait_for(child.id() as i32);
        return;
    };
    let start = Instant::now();
    loop {
        match nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(child.id() as i32),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        ) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => {}
            _ => return,
        }
        if start.elapsed() >= limit {
            warn!(
                "{}: still running after {} s, killed",
                p.display(),
                limit.as_secs()
            );
            let _ = child.kill();
            let _ = crate::reap::wait_for(child.id() as i32);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
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

/// How long processes get to act on the TERM of shutdown, as in the
/// reference's `rc.shutdown`.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// How long the KILLed get to disappear (a process in uninterruptible
/// sleep can take a moment).
const KILL_GRACE: Duration = Duration::from_secs(2);

/// TERM to every process, a wait of up to [`TERM_GRACE`] that ends as soon
/// as nothing is left that may still act on it, then KILL to whatever
/// remains. The reference sleeps the whole 5 s whatever happens; waiting
/// only while it is useful saves those seconds on every power off.
///
/// A container's first process only gets a TERM from outside its PID
/// namespace if it has a handler for it by then: one still starting up
/// (nginx just after `all services started`) loses it and would run out
/// the whole grace. So each that had no handler at the TERM is sent TERM
/// once more as soon as it has one. (Only once: a second TERM re-runs
/// some handlers, a shell's `trap` for one.)
fn terminate_all() {
    use nix::unistd::Pid;
    let mut deaf: std::collections::HashSet<i32> = processes()
        .iter()
        .filter(|p| p.deaf_ns_init)
        .map(|p| p.pid)
        .collect();
    let _ = nix::sys::signal::kill(Pid::from_raw(-1), Signal::SIGTERM);
    let start = Instant::now();
    let left = loop {
        reap::reap_all();
        let procs = processes();
        let busy = procs.iter().any(|p| p.kind == Proc::Waited);
        if !busy || start.elapsed() >= TERM_GRACE {
            break procs;
        }
        for p in procs.iter().filter(|p| !p.deaf_ns_init) {
            if deaf.remove(&p.pid) {
                let _ = nix::sys::signal::kill(Pid::from_raw(p.pid), Signal::SIGTERM);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if left.is_empty() {
        return;
    }
    let names: Vec<&str> = left.iter().map(|p| p.comm.as_str()).collect();
    info!(
        "shutdown: {} processes left after TERM ({}), sending KILL",
        left.len(),
        names.join(", ")
    );
    let _ = nix::sys::signal::kill(Pid::from_raw(-1), Signal::SIGKILL);
    let start = Instant::now();
    loop {
        reap::reap_all();
        if processes().is_empty() || start.elapsed() >= KILL_GRACE {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a process means to the shutdown wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proc {
    /// A kernel thread, a zombie or the init itself: nothing to wait for.
    Ignored,
    /// May still act on the TERM: worth waiting for.
    Waited,
    /// Will not exit on TERM, so waiting for it only wastes time: it
    /// ignores SIGTERM (an interactive shell on the console does), it is
    /// a container's first process without a TERM handler (the kernel
    /// drops the signal), or it is a containerd shim, which catches TERM and stays until containerd
    /// deletes its task (its task's processes, which are the ones worth
    /// waiting for, are counted on their own).
    Survivor,
}

/// A process still there at shutdown.
#[derive(Debug)]
struct Process {
    pid: i32,
    comm: String,
    kind: Proc,
    /// The first process of a PID namespace (a container's) without a
    /// TERM handler: the kernel drops a TERM from outside.
    deaf_ns_init: bool,
}

/// The live processes but us, from `/proc`.
fn processes() -> Vec<Process> {
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let dir = e.path();
        let (Ok(stat), Ok(status)) = (
            std::fs::read_to_string(dir.join("stat")),
            std::fs::read_to_string(dir.join("status")),
        ) else {
            continue; // gone meanwhile
        };
        let (comm, kind, deaf_ns_init) = classify(&stat, &status);
        if kind != Proc::Ignored {
            v.push(Process {
                pid: pid as i32,
                comm,
                kind,
                deaf_ns_init,
            });
        }
    }
    v
}

/// Sorts a process by its `/proc/PID/stat` and `/proc/PID/status`; also
/// returns its command name.
fn classify(stat: &str, status: &str) -> (String, Proc, bool) {
    /// `PF_KTHREAD` (include/linux/sched.h).
    const PF_KTHREAD: u64 = 0x0020_0000;
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return (String::new(), Proc::Ignored, false);
    };
    let comm = stat[open + 1..close].to_string();
    // After the name: state ppid pgrp session tty_nr tpgid flags ...
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let state = f.first().copied().unwrap_or("X");
    let flags: u64 = f.get(6).and_then(|s| s.parse().ok()).unwrap_or(0);
    if matches!(state, "Z" | "X" | "x") || flags & PF_KTHREAD != 0 {
        return (comm, Proc::Ignored, false);
    }
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name));
    let mask = |name: &str| {
        field(name)
            .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
            .unwrap_or(0)
    };
    let term = 1u64 << (libc::SIGTERM - 1);
    let ignores_term = mask("SigIgn:") & term != 0;
    // The first process of a PID namespace (a container's, `NSpid: 412 1`)
    // only gets the signals it has a handler for from outside: without one,
    // the kernel drops the TERM.
    let ns_init = field("NSpid:").is_some_and(|f| {
        let ids: Vec<&str> = f.split_whitespace().collect();
        ids.len() > 1 && ids.last() == Some(&"1")
    });
    let deaf_ns_init = ns_init && mask("SigCgt:") & term == 0;
    // The kernel keeps 15 bytes of the name: `containerd-shim` for
    // containerd-shim-runc-v2.
    if ignores_term || deaf_ns_init || comm.starts_with("containerd-shim") {
        (comm, Proc::Survivor, deaf_ns_init)
    } else {
        (comm, Proc::Waited, deaf_ns_init)
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
        let target = crate::mount::unescape_path(f[1]);
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
    fn shutdown_waits_only_for_processes_that_may_exit() {
        let status = |ign: &str| format!("Name:\tx\nSigBlk:\t0000000000000000\nSigIgn:\t{ign}\n");
        let none = status("0000000000000000");
        // nginx (a name with a space and a parenthesis, to be sure).
        let stat = "412 (ng x) y) S 1 412 412 0 -1 4194560 300 0 0 0";
        assert_eq!(
            classify(stat, &none),
            ("ng x) y".into(), Proc::Waited, false)
        );
        // A kernel thread.
        let kthread = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0";
        assert_eq!(classify(kthread, &none).1, Proc::Ignored);
        // A zombie.
        assert_eq!(
            classify("77 (sh) Z 1 77 77 0 -1 4194564 0", &none).1,
            Proc::Ignored
        );
        // An interactive shell ignores TERM (bit 15 of SigIgn: 0x4000).
        let sh = "90 (sh) S 1 90 90 34816 90 4194560 0";
        assert_eq!(classify(sh, &status("0000000000384004")).1, Proc::Survivor);
        // A container's first process: deaf to TERM unless it handles it.
        let ns = |cgt: &str| format!("NSpid:\t412\t1\nSigIgn:\t0\nSigCgt:\t{cgt}\n");
        let sleep = "412 (sleep) S 300 412 412 0 -1 4194560 0";
        assert_eq!(classify(sleep, &ns("0000000000000000")).1, Proc::Survivor);
        assert_eq!(classify(sleep, &ns("0000000000004000")).1, Proc::Waited);
        // Which the shutdown notes, to send TERM again once it has one.
        assert!(classify(sleep, &ns("0000000000000000")).2);
        assert!(!classify(sleep, &ns("0000000000004000")).2);
        let not_init = "NSpid:\t413\t2\nSigCgt:\t0\n";
        assert_eq!(classify(sleep, not_init).1, Proc::Waited);
        assert!(!classify(sleep, not_init).2);
        assert_eq!(classify(sleep, "NSpid:\t1\n").1, Proc::Waited);
        // containerd's shim catches TERM and stays.
        let shim = "300 (containerd-shim) S 1 300 300 0 -1 1077936384 0";
        assert_eq!(classify(shim, &none).1, Proc::Survivor);
        // containerd itself does exit on TERM.
        let ctd = "200 (containerd) S 1 200 200 0 -1 1077936384 0";
        assert_eq!(classify(ctd, &none).1, Proc::Waited);
        assert_eq!(classify("garbage", &none).1, Proc::Ignored);
    }

    #[test]
    fn shutdown_d_merges_with_the_onshutdown_containers() {
        let files = ["000-first", "010-onshutdown", "020-after"].map(String::from);
        let d = Path::new("/etc/shutdown.d");
        assert_eq!(
            shutdown_stages(d, &files),
            [
                Stage::Script(d.join("000-first")),
                Stage::Builtin("010-onshutdown"),
                Stage::Script(d.join("020-after")),
            ]
        );
    }

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
