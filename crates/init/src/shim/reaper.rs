//! The shim's child processes: the OCI runtime's runs and, since the shim
//! is a child subreaper, each container's first process once `create` has
//! exited (and any process orphaned inside a container that shares the
//! host's pid namespace).
//!
//! One thread waits for every child (`waitpid(-1)`). A caller that runs a
//! command registers its pid while the reaper cannot record it yet (the
//! spawn happens under the reaper's lock), so no exit status is stolen
//! between a spawn and its wait; any other exit goes to the shim's
//! handler (a container's process, or an orphan nobody waits for).

use std::collections::{HashMap, HashSet};
use std::io;
use std::process::{Child, Command};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

#[derive(Default)]
struct State {
    /// Pids a caller is waiting for.
    wanted: HashSet<i32>,
    /// Their exit statuses, once reaped.
    exited: HashMap<i32, u32>,
    /// Bumped at each spawn: wakes the reaper when it had no child.
    spawns: u64,
}

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
                match waitpid(None::<Pid>, None) {
                    Ok(st) => {
                        let Some((pid, code)) = exit_code(st) else {
                            continue;
                        };
                        let mut s = r.lock();
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
