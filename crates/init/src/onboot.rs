//! The onboot and onshutdown runner: each bundle of
//! `/containers/onboot` (or `onshutdown`) run to completion with the OCI
//! runtime ([`crate::oci_runtime`]: crun, or runc as in the reference), one
//! after another, in name order (the names are `NNN-name`, NNN the YAML
//! index, so this is YAML order). "runc" below is either: they take the
//! same commands.
//!
//! Per bundle: runtime.json's filesystem steps, then `runc run` (one
//! process that creates, starts, waits for and deletes the container) with
//! stdout and stderr to `/run/log/onboot/onboot.NAME.out.log` and `.log`;
//! a bundle with `interfaces` or `bindNS` needs work between create and
//! start, so it gets `runc create`, those steps, `runc start`, wait and
//! `runc delete` instead. Then the rootfs is unmounted and the logs copied
//! to the console and handed to the log daemon ([`crate::memlogd`]) as
//! `onboot.NAME.out` and `onboot.NAME`, so `logread` shows them (with the
//! time they were handed over: the files, written straight by the runtime,
//! keep the console's copy exact and in order). As in the reference, a failure does
//! not stop the boot; unlike it, the failure is *said* on the console with
//! the exit code, and runc's state is deleted so an onshutdown container may
//! reuse an onboot container's name.

use std::fs;
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::cmdline::Cmdline;
use crate::oci_runtime::{Invocation, OciRuntime};
use crate::{info, runtime, warn};

/// Which of the two phases runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The `onboot` containers, run in order before the services start.
    Onboot,
    /// The `onshutdown` containers, run in order once the services have
    /// stopped, before the machine halts.
    Onshutdown,
}

impl Phase {
    /// Where the bundles are.
    pub fn dir(self) -> &'static Path {
        Path::new(match self {
            Phase::Onboot => "/containers/onboot",
            Phase::Onshutdown => "/containers/onshutdown",
        })
    }

    /// Where their logs go.
    pub fn log_dir(self) -> &'static Path {
        Path::new(match self {
            Phase::Onboot => "/run/log/onboot",
            Phase::Onshutdown => "/run/log/shutdown",
        })
    }

    fn word(self) -> &'static str {
        match self {
            Phase::Onboot => "onboot",
            Phase::Onshutdown => "onshutdown",
        }
    }
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this status (0 is success).
    Exited(i32),
    /// A signal killed it.
    Killed(i32),
    /// It could not be started; why.
    NotStarted(String),
}

impl Outcome {
    fn from_status(s: ExitStatus) -> Outcome {
        match (s.code(), s.signal()) {
            (Some(c), _) => Outcome::Exited(c),
            (None, Some(sig)) => Outcome::Killed(sig),
            _ => Outcome::Exited(-1),
        }
    }

    /// Whether it ran and exited 0.
    pub fn ok(&self) -> bool {
        *self == Outcome::Exited(0)
    }
}

/// The bundles of a phase, in run order (sorted by name).
pub fn bundles(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A bundle's name: its directory's.
pub fn bundle_name(bundle: &Path) -> String {
    bundle
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// Runs every bundle of `phase`; returns each name with its outcome.
pub fn run_phase(phase: Phase, cmdline: &Cmdline) -> Vec<(String, Outcome)> {
    let list = bundles(phase.dir());
    let mut out = Vec::new();
    if list.is_empty() {
        return out;
    }
    let _ = fs::create_dir_all(phase.log_dir());
    for b in list {
        let name = bundle_name(&b);
        info!("{} {name}: starting", phase.word());
        let outcome = run_bundle(phase, &b, &name, cmdline);
        match &outcome {
            Outcome::Exited(0) => info!("{} {name}: exited 0", phase.word()),
            Outcome::Exited(c) => warn!("{} {name}: FAILED with exit code {c}", phase.word()),
            Outcome::Killed(s) => warn!("{} {name}: FAILED, killed by signal {s}", phase.word()),
            Outcome::NotStarted(why) => warn!("{} {name}: FAILED to start: {why}", phase.word()),
        }
        out.push((name, outcome));
    }
    if phase == Phase::Onboot {
        let _ = std::os::unix::fs::symlink("/run/log/onboot", "/var/log/onboot");
    }
    out
}

fn run_bundle(phase: Phase, bundle: &Path, name: &str, cmdline: &Cmdline) -> Outcome {
    let rt = match runtime::load(bundle) {
        Ok(rt) => rt,
        Err(e) => return Outcome::NotStarted(e.to_string()),
    };
    if let Err(e) = runtime::prepare_filesystem(bundle, &rt) {
        return Outcome::NotStarted(format!("preparing the filesystem: {e}"));
    }
    let to_console = cmdline.flag("linuxkit.runc_console");
    let prefix = match phase {
        Phase::Onboot => "onboot",
        Phase::Onshutdown => "shutdown",
    };
    let out_log = phase.log_dir().join(format!("{prefix}.{name}.out.log"));
    let err_log = phase.log_dir().join(format!("{prefix}.{name}.log"));
    let split = runtime::needs_process_step(&rt);
    let outcome = (|| {
        let (stdout, stderr) = if to_console {
            (Stdio::inherit(), Stdio::inherit())
        } else {
            let o =
                fs::File::create(&out_log).map_err(|e| format!("{}: {e}", out_log.display()))?;
            let e =
                fs::File::create(&err_log).map_err(|e| format!("{}: {e}", err_log.display()))?;
            (Stdio::from(o), Stdio::from(e))
        };
        if split {
            create_prepare_start(bundle, name, &rt, prefix, cmdline, stdout, stderr)
        } else {
            run_foreground(bundle, name, cmdline, stdout, stderr)
        }
    })();
    let _ = nix::mount::umount2(&bundle.join("rootfs"), nix::mount::MntFlags::MNT_DETACH);
    // `runc run` deletes its container when it ends; after create/start,
    // or a `runc run` that failed half-way, runc's state is deleted here
    // so an onshutdown container may reuse an onboot container's name.
    if split
        || Path::new(OciRuntime::chosen().state_dir)
            .join(name)
            .exists()
    {
        let _ = runc(cmdline)
            .args(["delete", "--force", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    if !to_console {
        dump(&out_log);
        dump(&err_log);
        // The same lines in the machine's log, under the reference's
        // source names (`onboot.NAME.out`, `onboot.NAME`).
        if crate::memlogd::running() {
            for (log, source) in [
                (&out_log, format!("{prefix}.{name}.out")),
                (&err_log, format!("{prefix}.{name}")),
            ] {
                if let Err(e) = crate::memlogd::send_file(log, &source) {
                    warn!("{} {name}: sending its log to memlogd: {e}", phase.word());
                }
            }
        }
    }
    outcome.unwrap_or_else(Outcome::NotStarted)
}

/// The common case, one process: `runc run` creates, starts, waits for and
/// deletes the container, where create + start + delete are three starts
/// of the runtime (for runc, a 10 MB Go program, about 0.1 s saved per
/// container under QEMU TCG). runc relays the container's output to its
/// own (our log files) and exits with the container's status (128 + N for
/// signal N).
/// With the container's own PID namespace (the default) everything in it
/// dies with its first process; with `pid: host`, runc kills what is left
/// in the container's cgroup when it deletes it, as `runc delete --force`
/// did before, so a stray background process cannot keep runc's output
/// pipes, and the boot, waiting.
fn run_foreground(
    bundle: &Path,
    name: &str,
    cmdline: &Cmdline,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<Outcome, String> {
    let st = with_stdio(
        runc_creating(bundle, cmdline)
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(name),
        stdout,
        stderr,
    )?;
    Ok(Outcome::from_status(st))
}

/// Runs `cmd` (a runc invocation) to completion with no stdin and the
/// container's output going to `stdout`/`stderr`.
fn with_stdio(
    cmd: &mut std::process::Command,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<std::process::ExitStatus, String> {
    cmd.stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .map_err(|e| format!("running {}: {e}", OciRuntime::chosen().path))
}

/// A bundle with work between create and start (interfaces, namespace
/// binds): `runc create`, [`runtime::prepare_process`] on its pid, `runc
/// start`, wait for the pid (the caller deletes the container).
fn create_prepare_start(
    bundle: &Path,
    name: &str,
    rt: &linuxkit_config::RuntimeJson,
    prefix: &str,
    cmdline: &Cmdline,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<Outcome, String> {
    let pid_file = Path::new("/run").join(format!("{prefix}-{name}.pid"));
    let st = with_stdio(
        runc_creating(bundle, cmdline)
            .args(["create", "--bundle"])
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(name),
        stdout,
        stderr,
    )?;
    if !st.success() {
        return Err(format!("runc create exited with {st}"));
    }
    let pid: Option<i32> = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let _ = fs::remove_file(&pid_file);
    let pid = pid.ok_or_else(|| format!("runc create wrote no pid to {}", pid_file.display()))?;
    let kill = |pid: i32| {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        let _ = crate::reap::wait_for(pid);
    };
    // As in the reference, a container whose interfaces or binds cannot be
    // set up is not started: it would run without what it asked for.
    if let Err(e) = runtime::prepare_process(name, rt, pid) {
        kill(pid);
        return Err(format!("preparing the container: {e}"));
    }
    let st = runc(cmdline)
        .args(["start", name])
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("running {}: {e}", OciRuntime::chosen().path))?;
    if !st.success() {
        kill(pid);
        return Err(format!("runc start exited with {st}"));
    }
    // The container's process is now our child (runc create exited and
    // left it to the nearest subreaper: us).
    crate::reap::wait_for(pid)
        .map(Outcome::from_status)
        .map_err(|e| format!("waiting for pid {pid}: {e}"))
}

/// A command of the chosen OCI runtime that starts no container process.
fn runc(cmdline: &Cmdline) -> Command {
    debug(OciRuntime::chosen().command(Invocation::Control), cmdline)
}

/// A command of the chosen OCI runtime that creates `bundle`'s container.
fn runc_creating(bundle: &Path, cmdline: &Cmdline) -> Command {
    debug(
        OciRuntime::chosen().command(Invocation::Create(bundle)),
        cmdline,
    )
}

fn debug(mut c: Command, cmdline: &Cmdline) -> Command {
    if cmdline.flag("linuxkit.runc_debug") {
        c.arg("--debug");
    }
    c
}

/// Copies a log file to the console.
fn dump(path: &Path) {
    if let Ok(b) = fs::read(path)
        && !b.is_empty()
    {
        let mut e = io::stderr().lock();
        let _ = e.write_all(&b);
        if !b.ends_with(b"\n") {
            let _ = e.write_all(b"\n");
        }
    }
}
