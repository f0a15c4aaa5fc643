//! Starting QEMU: in the foreground (the console on this terminal), in the
//! background (`--detached`), or as a boot test that watches the console.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::console::{ConsoleEvent, ConsoleWatch};
use crate::error::{BootFailure, Error, IoContext, Result};
use crate::qemu::{self, QemuOptions, Vm};
use crate::qmp::{self, Qmp, QmpWriter, Shutdown};

/// The boot test: `--expect`, `--fail-on`, `--timeout`, `--powerdown-after`.
#[derive(Debug, Clone, Default)]
pub struct BootTest {
    /// Texts the console must print (all of them) before the guest powers off.
    pub expect: Vec<String>,
    /// Texts that fail the test at once.
    pub fail_on: Vec<String>,
    /// How long the whole run may take; no limit when `None`.
    pub timeout: Option<Duration>,
    /// Press the ACPI power button when the console prints this.
    pub powerdown_after: Option<String>,
}

impl BootTest {
    /// Whether any of the boot test's settings was given.
    pub fn is_active(&self) -> bool {
        !self.expect.is_empty()
            || !self.fail_on.is_empty()
            || self.timeout.is_some()
            || self.powerdown_after.is_some()
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub enum Mode {
    /// QEMU on this terminal (standard input, output and error), as the
    /// reference does.
    Foreground,
    /// In the background: the console goes to `STATE/console.log`, the pid
    /// to `STATE/qemu.pid`.
    Detached,
    /// The console is watched (and echoed unless `echo` is false).
    Test {
        /// What the console must and must not show, and the time limit.
        test: BootTest,
        /// Whether QEMU's console and error output are also shown on this
        /// terminal as they come.
        echo: bool,
    },
}

/// What a run ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// QEMU exited with status 0.
    Exited,
    /// QEMU runs in the background.
    Detached {
        /// QEMU's process id (also in `STATE/qemu.pid`).
        pid: u32,
        /// The VM's state directory, which `--state` or `PATH-state` named.
        state_dir: PathBuf,
        /// Where the guest's console goes (`STATE/console.log`).
        console_log: PathBuf,
    },
    /// The boot test passed.
    Passed {
        /// From QEMU's start until the guest powered off with every
        /// expected text seen.
        elapsed: Duration,
        /// The init's boot stages, as the console showed them.
        stages: Vec<crate::console::Stage>,
    },
}

/// Prepares the VM (see [`qemu::prepare`]) and runs QEMU in `mode`.
pub fn run(opts: &QemuOptions, mode: &Mode) -> Result<Outcome> {
    let mut opts = opts.clone();
    if let Mode::Test { test, .. } = mode {
        if opts.gui {
            return Err(Error::Usage(
                "the boot test (--expect, --fail-on, --timeout, --powerdown-after) watches the serial console: drop --gui".into(),
            ));
        }
        if test.timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::Usage("--timeout must be positive".into()));
        }
        // A reboot (a panic with panic=N, or a reboot command) ends the run.
        opts.no_reboot = true;
    }
    let vm = qemu::prepare(&opts)?;
    let binary = qemu::qemu_binary(opts.qemu.as_deref(), vm.arch)?;
    qmp::check_socket_path(&qmp::socket_path(&vm.state_dir))?;
    refuse_if_running(&vm.state_dir)?;
    let args = qemu::qemu_args(&vm);
    tracing::debug!("{} {}", binary.display(), shell_words(&args));
    match mode {
        Mode::Foreground => foreground(&binary, &args),
        Mode::Detached => detached(&binary, &args, &vm),
        Mode::Test { test, echo } => boot_test(&binary, &args, &vm, test, *echo),
    }
}

/// Quotes `args` for the debug log, so the line can be pasted into a shell.
fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=,.:/+@".contains(&b))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The pid of a QEMU still running for `state_dir`, from its pid file.
pub fn running_pid(state_dir: &Path) -> Option<u32> {
    let s = std::fs::read_to_string(state_dir.join(qemu::PID_FILE)).ok()?;
    let pid: u32 = s.trim().parse().ok()?;
    qemu::is_running_qemu(pid).then_some(pid)
}

fn refuse_if_running(state_dir: &Path) -> Result<()> {
    if let Some(pid) = running_pid(state_dir) {
        return Err(Error::Usage(format!(
            "a VM is already running with the state directory {} (QEMU pid {pid}); stop it (--stop) or give another --state",
            state_dir.display()
        )));
    }
    Ok(())
}

fn status_error(binary: &Path, status: ExitStatus) -> Error {
    let name = binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "QEMU".into());
    match status.code() {
        Some(c) => Error::Qemu(format!("{name} exited with status {c}")),
        None => Error::Qemu(format!("{name} was killed ({status})")),
    }
}

fn spawn(cmd: &mut Command, binary: &Path) -> Result<Child> {
    cmd.spawn()
        .context(|| format!("cannot start {}", binary.display()))
}

/// Makes the child get SIGTERM if this process dies first, so a killed
/// `linuxkit run` does not leave its VM behind.
fn die_with_parent(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only
    // calls prctl(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

fn foreground(binary: &Path, args: &[String]) -> Result<Outcome> {
    let mut child = spawn(die_with_parent(Command::new(binary).args(args)), binary)?;
    let status = child
        .wait()
        .context(|| format!("waiting for {}", binary.display()))?;
    if status.success() {
        Ok(Outcome::Exited)
    } else {
        Err(status_error(binary, status))
    }
}

fn detached(binary: &Path, args: &[String], vm: &Vm) -> Result<Outcome> {
    use std::os::unix::process::CommandExt;
    let log_path = vm.state_dir.join(qemu::CONSOLE_LOG);
    let pid_path = vm.state_dir.join(qemu::PID_FILE);
    let sock = qmp::socket_path(&vm.state_dir);
    let _ = std::fs::remove_file(&pid_path);
    let _ = std::fs::remove_file(&sock);
    let log = std::fs::File::create(&log_path)
        .context(|| format!("cannot create {}", log_path.display()))?;
    let err = log
        .try_clone()
        .context(|| format!("cannot open {}", log_path.display()))?;
    let mut child = spawn(
        Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            // Its own process group: ^C on this terminal is not for it.
            .process_group(0),
        binary,
    )?;
    let pid = child.id();
    // Started once the pid file and the QMP socket are there.
    let start = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .context(|| format!("waiting for {}", binary.display()))?
        {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(Error::Qemu(format!(
                "{}; its output:\n{}",
                status_error(binary, status),
                log.trim_end()
            )));
        }
        if pid_path.exists() && sock.exists() {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Reap it if it ends while this process still runs.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(Outcome::Detached {
        pid,
        state_dir: vm.state_dir.clone(),
        console_log: log_path,
    })
}

/// Messages to the boot test's loop from its helper threads.
enum Msg {
    Console(Vec<u8>),
    ConsoleEnd,
    Stderr(String),
    QmpReady(QmpWriter),
    QmpEvent(serde_json::Value),
    QmpEnd,
}

/// Asks QEMU to stop (SIGTERM: it restores the terminal and exits), then
/// kills it if it has not after a moment.
fn terminate(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        // SAFETY: kill(2) on our own child's pid, which has not been
        // reaped yet (try_wait said it is running), so it is not reused.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}

fn boot_test(
    binary: &Path,
    args: &[String],
    vm: &Vm,
    test: &BootTest,
    echo: bool,
) -> Result<Outcome> {
    let sock = qmp::socket_path(&vm.state_dir);
    let _ = std::fs::remove_file(&sock);
    let mut child = spawn(
        die_with_parent(
            Command::new(binary)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        ),
        binary,
    )?;
    let start = Instant::now();
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut stdout = child.stdout.take().expect("piped");
    let t = tx.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if t.send(Msg::Console(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = t.send(Msg::ConsoleEnd);
    });
    let stderr = child.stderr.take().expect("piped");
    let t = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if t.send(Msg::Stderr(line)).is_err() {
                return;
            }
        }
    });
    let t = tx;
    let qmp_sock = sock.clone();
    std::thread::spawn(move || {
        let Ok(q) = Qmp::connect_retry(&qmp_sock, Duration::from_secs(20)) else {
            let _ = t.send(Msg::QmpEnd);
            return;
        };
        let (events, writer) = q.into_split();
        if t.send(Msg::QmpReady(writer)).is_err() {
            return;
        }
        for m in events {
            if t.send(Msg::QmpEvent(m)).is_err() {
                return;
            }
        }
        let _ = t.send(Msg::QmpEnd);
    });

    let mut watch = ConsoleWatch::new(&test.expect, &test.fail_on, test.powerdown_after.as_deref());
    let mut stderr_tail: Vec<String> = Vec::new();
    let mut writer: Option<QmpWriter> = None;
    let mut powerdown_pending = false;
    let mut shutdown: Option<Shutdown> = None;
    let mut console_done = false;
    let mut qmp_done = false;
    let mut exited: Option<(ExitStatus, Instant)> = None;
    let mut out = std::io::stdout();
    let fail = |watch: &ConsoleWatch, reason: String| {
        Error::BootTest(Box::new(BootFailure {
            reason,
            console_tail: watch.tail(),
        }))
    };
    let deadline = test.timeout.map(|t| start + t);
    loop {
        if exited.is_none()
            && let Some(status) = child
                .try_wait()
                .context(|| format!("waiting for {}", binary.display()))?
        {
            exited = Some((status, Instant::now()));
        }
        if let Some((_, when)) = exited {
            // Wait for the rest of the console and QMP's last events, briefly.
            if (console_done && qmp_done) || when.elapsed() > Duration::from_secs(2) {
                break;
            }
        }
        let now = Instant::now();
        if exited.is_none()
            && let Some(d) = deadline
            && now >= d
        {
            terminate(&mut child);
            let secs = test.timeout.unwrap_or_default().as_secs_f64();
            let missing = watch.missing();
            let reason = if missing.is_empty() {
                format!("timed out after {secs} s: the guest did not power off")
            } else {
                format!(
                    "timed out after {secs} s; the console never printed {}",
                    quote_list(&missing)
                )
            };
            return Err(fail(&watch, reason));
        }
        let wait = deadline
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or(Duration::MAX)
            .min(Duration::from_millis(100));
        let msg = match rx.recv_timeout(wait) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                console_done = true;
                qmp_done = true;
                if exited.is_none() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                continue;
            }
        };
        match msg {
            Msg::Console(bytes) => {
                if echo {
                    let _ = out.write_all(&bytes);
                    let _ = out.flush();
                }
                for ev in watch.feed(&bytes) {
                    match ev {
                        ConsoleEvent::Failed(text) => {
                            terminate(&mut child);
                            return Err(fail(
                                &watch,
                                format!("the console printed the failure text {text:?}"),
                            ));
                        }
                        ConsoleEvent::Seen(text) => tracing::debug!("seen {text:?}"),
                        ConsoleEvent::Powerdown => {
                            tracing::info!("pressing the ACPI power button");
                            match writer.as_mut() {
                                Some(w) => w.send("system_powerdown")?,
                                None => powerdown_pending = true,
                            }
                        }
                    }
                }
            }
            Msg::ConsoleEnd => console_done = true,
            Msg::Stderr(line) => {
                if echo {
                    eprintln!("{line}");
                }
                stderr_tail.push(line);
                if stderr_tail.len() > 10 {
                    stderr_tail.remove(0);
                }
            }
            Msg::QmpReady(mut w) => {
                if powerdown_pending {
                    w.send("system_powerdown")?;
                    powerdown_pending = false;
                }
                writer = Some(w);
            }
            Msg::QmpEvent(ev) => {
                if let Some(s) = qmp::shutdown_event(&ev) {
                    shutdown = Some(s);
                }
            }
            Msg::QmpEnd => qmp_done = true,
        }
    }
    let (status, _) = exited.expect("the loop ends when QEMU exits");
    if !status.success() {
        let mut reason = status_error(binary, status).to_string();
        if !stderr_tail.is_empty() {
            reason.push_str(": ");
            reason.push_str(&stderr_tail.join(" / "));
        }
        return Err(fail(&watch, reason));
    }
    match shutdown {
        Some(Shutdown::Reset) => {
            return Err(fail(
                &watch,
                "the guest rebooted instead of powering off (a kernel panic with panic=N reboots)"
                    .into(),
            ));
        }
        Some(Shutdown::Panic) => {
            return Err(fail(&watch, "the guest panicked".into()));
        }
        Some(Shutdown::Other(why)) => {
            return Err(fail(
                &watch,
                format!("QEMU stopped ({why}) before the guest powered off"),
            ));
        }
        // No QMP news (it could not connect): QEMU's exit status decides.
        Some(Shutdown::PowerOff) | None => {}
    }
    let missing = watch.missing();
    if !missing.is_empty() {
        return Err(fail(
            &watch,
            format!(
                "the guest powered off but the console never printed {}",
                quote_list(&missing)
            ),
        ));
    }
    Ok(Outcome::Passed {
        elapsed: start.elapsed(),
        stages: watch.stages().to_vec(),
    })
}

fn quote_list(texts: &[String]) -> String {
    texts
        .iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Presses the power button of the VM in `state_dir` and waits for it to
/// exit (see [`qmp::stop`]).
pub fn stop(state_dir: &Path, timeout: Duration) -> Result<Option<Shutdown>> {
    qmp::stop(state_dir, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_quote_what_needs_it() {
        let a = vec!["-append".to_string(), "console=ttyS0 quiet".to_string()];
        assert_eq!(shell_words(&a), "-append 'console=ttyS0 quiet'");
    }

    #[test]
    fn boot_test_activity() {
        assert!(!BootTest::default().is_active());
        assert!(
            BootTest {
                timeout: Some(Duration::from_secs(1)),
                ..Default::default()
            }
            .is_active()
        );
    }
}
