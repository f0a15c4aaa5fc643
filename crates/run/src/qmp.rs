//! A small QMP (QEMU Machine Protocol) client over the VM's unix socket,
//! `STATE/qmp.sock`: enough to press the ACPI power button, watch for the
//! end of the VM, and tell a guest power-off from a reset or a panic.
//!
//! QEMU serves one QMP client at a time on a socket; a second client waits
//! until the first goes away.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{Error, Result};

/// The QMP socket of the VM whose state directory is `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(crate::qemu::QMP_SOCKET)
}

/// The longest path a unix socket address holds (`sun_path` less its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Checks that `sock` fits in a unix socket address.
pub fn check_socket_path(sock: &Path) -> Result<()> {
    let n = sock.as_os_str().len();
    if n > MAX_SOCKET_PATH {
        return Err(Error::Usage(format!(
            "the QMP socket path {} is {n} bytes, over the {MAX_SOCKET_PATH} a unix socket allows: choose a shorter --state",
            sock.display()
        )));
    }
    Ok(())
}

/// A negotiated QMP connection.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    path: PathBuf,
}

/// How a VM ended, from QMP's `SHUTDOWN` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shutdown {
    /// The guest powered itself off (`guest-shutdown`).
    PowerOff,
    /// The guest reset (with `-no-reboot`, a reboot ends QEMU).
    Reset,
    /// The guest reported a panic (pvpanic).
    Panic,
    /// Anything else (`host-signal`, `host-qmp-quit`, ...).
    Other(String),
}

impl Shutdown {
    /// How the VM ended, from the `reason` of QMP's `SHUTDOWN` event.
    pub fn from_reason(reason: &str) -> Shutdown {
        match reason {
            "guest-shutdown" => Shutdown::PowerOff,
            "guest-reset" => Shutdown::Reset,
            "guest-panic" => Shutdown::Panic,
            other => Shutdown::Other(other.to_string()),
        }
    }
}

impl Qmp {
    /// Connects to `sock` and leaves the greeting's capabilities
    /// negotiation done, so events flow.
    pub fn connect(sock: &Path) -> Result<Qmp> {
        check_socket_path(sock)?;
        let err = |what: &str, e: &dyn std::fmt::Display| {
            Error::Qmp(format!("QMP socket {}: {what}: {e}", sock.display()))
        };
        let stream = UnixStream::connect(sock).map_err(|e| err("cannot connect", &e))?;
        let writer = stream.try_clone().map_err(|e| err("cannot connect", &e))?;
        let mut q = Qmp {
            reader: BufReader::new(stream),
            writer,
            path: sock.to_path_buf(),
        };
        // A negotiation that never answers must not hang the caller.
        q.set_read_timeout(Some(Duration::from_secs(10)))?;
        let greeting = q
            .read_message()?
            .ok_or_else(|| err("closed before its greeting", &"EOF"))?;
        if greeting.get("QMP").is_none() {
            return Err(err("unexpected greeting", &greeting));
        }
        q.execute("qmp_capabilities")?;
        q.set_read_timeout(None)?;
        Ok(q)
    }

    /// Connects, retrying until `timeout` (the socket appears a moment
    /// after QEMU starts).
    pub fn connect_retry(sock: &Path, timeout: Duration) -> Result<Qmp> {
        let start = Instant::now();
        loop {
            match Qmp::connect(sock) {
                Ok(q) => return Ok(q),
                Err(e) if start.elapsed() >= timeout => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// How long a read of the next message may wait; `None` waits until
    /// QEMU sends something or exits.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> Result<()> {
        self.reader
            .get_ref()
            .set_read_timeout(t)
            .map_err(|e| self.err(&format!("cannot set a timeout: {e}")))
    }

    fn err(&self, what: &str) -> Error {
        Error::Qmp(format!("QMP socket {}: {what}", self.path.display()))
    }

    /// The next message, `None` at the end of the connection (QEMU exited).
    pub fn read_message(&mut self) -> Result<Option<Value>> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(|e| self.err(&format!("read failed: {e}")))?;
            if n == 0 {
                return Ok(None);
            }
            if line.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(line.trim())
                .map(Some)
                .map_err(|e| self.err(&format!("invalid message {:?}: {e}", line.trim())));
        }
    }

    /// Sends a command without waiting for its answer.
    pub fn send(&mut self, command: &str) -> Result<()> {
        let msg = serde_json::json!({ "execute": command }).to_string() + "\n";
        self.writer
            .write_all(msg.as_bytes())
            .map_err(|e| self.err(&format!("cannot send {command}: {e}")))
    }

    /// Runs a command and returns its `return` value; events that arrive
    /// meanwhile are dropped.
    pub fn execute(&mut self, command: &str) -> Result<Value> {
        self.send(command)?;
        loop {
            let Some(m) = self.read_message()? else {
                return Err(self.err(&format!("QEMU closed the connection during {command}")));
            };
            if let Some(r) = m.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = m.get("error") {
                return Err(self.err(&format!("{command} failed: {e}")));
            }
        }
    }

    /// Presses the ACPI power button.
    pub fn powerdown(&mut self) -> Result<()> {
        self.execute("system_powerdown").map(drop)
    }

    /// Reads until QEMU closes the connection (it exited) or `timeout`
    /// passes; returns how the VM ended if QEMU said, or an error on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<Shutdown>> {
        let deadline = Instant::now() + timeout;
        let mut how = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.err(&format!(
                    "the VM did not exit within {} s",
                    timeout.as_secs()
                )));
            }
            self.set_read_timeout(Some(left))?;
            match self.read_message() {
                Ok(None) => return Ok(how),
                Ok(Some(m)) => {
                    if let Some(s) = shutdown_event(&m) {
                        how = Some(s);
                    }
                }
                Err(_) if Instant::now() >= deadline => {
                    return Err(self.err(&format!(
                        "the VM did not exit within {} s",
                        timeout.as_secs()
                    )));
                }
                // A reset connection also means QEMU is gone.
                Err(_) => return Ok(how),
            }
        }
    }

    /// Splits into a reading half (for a thread that watches events) and
    /// a writing half.
    pub fn into_split(self) -> (QmpEvents, QmpWriter) {
        (
            QmpEvents {
                reader: self.reader,
            },
            QmpWriter {
                writer: self.writer,
                path: self.path,
            },
        )
    }
}

/// The `SHUTDOWN` event in `m`, if it is one.
pub fn shutdown_event(m: &Value) -> Option<Shutdown> {
    if m.get("event")?.as_str()? != "SHUTDOWN" {
        return None;
    }
    let reason = m
        .get("data")
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    Some(Shutdown::from_reason(reason))
}

/// The reading half of a split connection.
pub struct QmpEvents {
    reader: BufReader<UnixStream>,
}

/// Messages until QEMU has gone (or sends garbage).
impl Iterator for QmpEvents {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) if line.trim().is_empty() => continue,
                Ok(_) => return serde_json::from_str(line.trim()).ok(),
            }
        }
    }
}

/// The writing half of a split connection.
pub struct QmpWriter {
    writer: UnixStream,
    path: PathBuf,
}

impl QmpWriter {
    /// Sends a command; its answer goes to the reading half.
    pub fn send(&mut self, command: &str) -> Result<()> {
        let msg = serde_json::json!({ "execute": command }).to_string() + "\n";
        self.writer.write_all(msg.as_bytes()).map_err(|e| {
            Error::Qmp(format!(
                "QMP socket {}: cannot send {command}: {e}",
                self.path.display()
            ))
        })
    }
}

/// Presses the ACPI power button of the VM whose state directory is
/// `state_dir` (a guest with an ACPI handler then powers off).
pub fn powerdown(state_dir: &Path) -> Result<()> {
    let mut q = connect_vm(state_dir)?;
    q.powerdown()
}

fn connect_vm(state_dir: &Path) -> Result<Qmp> {
    let sock = socket_path(state_dir);
    if !sock.exists() {
        return Err(Error::Qmp(format!(
            "no VM is running with the state directory {} (no {})",
            state_dir.display(),
            sock.display()
        )));
    }
    Qmp::connect(&sock).map_err(|e| match e {
        Error::Qmp(m) if m.contains("Connection refused") => Error::Qmp(format!(
            "no VM is running with the state directory {} ({} is stale)",
            state_dir.display(),
            sock.display()
        )),
        e => e,
    })
}

/// Presses the power button of the VM in `state_dir` and waits up to
/// `timeout` for QEMU to exit. Returns how it ended, when QEMU said.
pub fn stop(state_dir: &Path, timeout: Duration) -> Result<Option<Shutdown>> {
    let start = Instant::now();
    let pid_file = state_dir.join(crate::qemu::PID_FILE);
    let pid: Option<u32> = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let mut q = connect_vm(state_dir)?;
    q.powerdown()?;
    let how = q.wait_exit(timeout).map_err(|e| {
        Error::Qmp(format!(
            "{e}: the guest did not power off after the ACPI power button (does it handle it?); its pid is in {}",
            pid_file.display()
        ))
    })?;
    // The socket closes while QEMU exits; wait for the process to be gone.
    if let Some(pid) = pid {
        while crate::qemu::is_running_qemu(pid) && start.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(how)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_reasons() {
        let ev = |r: &str| serde_json::json!({"event": "SHUTDOWN", "data": {"guest": true, "reason": r}});
        assert_eq!(
            shutdown_event(&ev("guest-shutdown")),
            Some(Shutdown::PowerOff)
        );
        assert_eq!(shutdown_event(&ev("guest-reset")), Some(Shutdown::Reset));
        assert_eq!(
            shutdown_event(&ev("host-signal")),
            Some(Shutdown::Other("host-signal".into()))
        );
        assert_eq!(
            shutdown_event(&serde_json::json!({"event": "POWERDOWN"})),
            None
        );
    }

    #[test]
    fn long_socket_paths_are_refused() {
        let long = PathBuf::from(format!("/{}/qmp.sock", "x".repeat(120)));
        assert!(check_socket_path(&long).is_err());
        assert!(check_socket_path(Path::new("/tmp/a-state/qmp.sock")).is_ok());
    }

    #[test]
    fn no_vm_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let e = powerdown(d.path()).unwrap_err().to_string();
        assert!(e.contains("no VM is running"), "{e}");
    }
}
