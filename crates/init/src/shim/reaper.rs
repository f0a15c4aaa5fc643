//! The shim's child processes: the OCI runtime's runs and, since the shim
//! is a child subreaper, each container's first process once `create` has
//! exited (and any process orphaned inside a container that shares the
//! host's pid namespace).
//!
//! One thread waits for every child. It first only looks (`waitid` with
//! `WNOWAIT`: the child stays a zombie), then reaps under the reaper's
//! lock, which a spawn holds from before the fork until its pid is
//! registered. So no exit status is stolen between a spawn and its wait,
//! and a child that std reaps itself (when its exec fails) is never
//! reaped twice. A caller that runs a command gets its status; any other
//! exit goes to the shim's handler (a container's process, or an orphan
//! nobody waits for).

use std::collections::{HashMap, HashSet};
use std::io;
use std::process::{Child, Command};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};

#[derive(Default)]
struct State {
    /// Pids a caller is waiting for.
    wanted: HashSet<i32>,
    /// Their exit statuses, once reaped.
    exited: HashMap<i32, u32>,
    /// Bumped at each spawn: wakes the reaper when it had no child.
    spawns: u64,
}

/// The shim's one waiter for its children: [`Reaper::run`] and
/// [`Reaper::spawn`] start commands whose status the caller gets, and every
/// other child's exit goes to the handler given to [`Reaper::start`].
#[derive(Default)]
pub struct Reaper {
    state: Mutex<State>,
    cond: Condvar,
}

/// containerd's encoding of how a process ended: its exit code, or 128 +
/// the signal that killed it.
pub fn exit_code(status: WaitStatus) -> Option<(i32, u32)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code as u32 & 0xff)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as u32)),
        _ => None,
    }
}

impl Reaper {
    /// Starts the reaping thread; `on_exit(pid, status)` hears of every
    /// child that ends and is not waited for by [`Reaper::run`].
    pub fn start(on_exit: impl Fn(i32, u32) + Send + 'static) -> Arc<Reaper> {
        let reaper = Arc::new(Reaper::default());
        let r = reaper.clone();
        std::thread::spawn(move || {
            loop {
                match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                    Ok(peeked) => {
                        let Some(pid) = peeked.pid() else { continue };
                        let mut s = r.lock();
                        // Reaped here, under the lock; gone already if std
                        // reaped a child whose exec failed.
                        let Ok(st) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) else {
                            continue;
                        };
                        let Some((pid, code)) = exit_code(st) else {
                            continue;
                        };
                        if s.wanted.remove(&pid) {
                            s.exited.insert(pid, code);
                            r.cond.notify_all();
                        } else {
                            drop(s);
                            on_exit(pid, code);
                        }
                    }
                    Err(Errno::EINTR) => {}
                    Err(_) => {
                        // No child: sleep until the next spawn.
                        let s = r.lock();
                        let seen = s.spawns;
                        let _ = r
                            .cond
                            .wait_timeout_while(s, Duration::from_secs(1), |s| s.spawns == seen);
                    }
                }
            }
        });
        reaper
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns `cmd` and waits for it; returns its exit status.
    pub fn run(&self, cmd: &mut Command) -> io::Result<u32> {
        let child = self.spawn(cmd)?;
        Ok(self.wait(child))
    }

    /// Spawns `cmd` as a child the caller will [`Reaper::wait`] for.
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<Child> {
        let mut s = self.lock();
        let child = cmd.spawn()?;
        s.wanted.insert(child.id() as i32);
        s.spawns += 1;
        self.cond.notify_all();
        Ok(child)
    }

    /// Waits for a child from [`Reaper::spawn`]; returns its exit status.
    pub fn wait(&self, child: Child) -> u32 {
        let pid = child.id() as i32;
        // The reaper reaps it: `Child` must not wait (it would find no
        // child) and is only dropped.
        drop(child);
        let mut s = self.lock();
        loop {
            if let Some(code) = s.exited.remove(&pid) {
                return code;
            }
            s = self.cond.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// The reaper waits for every child of its process, so the test runs
    /// in a process of its own (this test binary, re-run for this test).
    #[test]
    fn reaper_reports_exits_and_survives_failed_execs() {
        const NAME: &str = "shim::reaper::tests::reaper_reports_exits_and_survives_failed_execs";
        if std::env::var_os("LINUXKIT_REAPER_TEST").is_none() {
            let out = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", NAME, "--test-threads", "1", "--nocapture"])
                .env("LINUXKIT_REAPER_TEST", "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "the test in its own process failed: {text}"
            );
            assert!(text.contains("reaper test done"), "it did not run: {text}");
            return;
        }
        let (tx, rx) = mpsc::channel();
        let r = Reaper::start(move |pid, code| {
            let _ = tx.send((pid, code));
        });
        let sh = |script: &str| {
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            c
        };
        assert_eq!(r.run(&mut sh("exit 3")).unwrap(), 3);
        assert_eq!(r.run(&mut sh("kill -9 $$")).unwrap(), 128 + 9);
        // A failed exec is an error, not a panic in std's own wait.
        for _ in 0..20 {
            assert!(r.run(&mut Command::new("/nonexistent/program")).is_err());
        }
        assert_eq!(r.run(&mut sh("exit 0")).unwrap(), 0);
        // A child nobody waits for (as a container's process) goes to the
        // handler.
        let orphan = sh("exit 5").spawn().unwrap();
        let pid = orphan.id() as i32;
        drop(orphan);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), (pid, 5));
        println!("reaper test done");
    }
}
