//! Waiting for processes as PID 1.
//!
//! Everything orphaned in the system becomes our child, so PID 1 must reap
//! it. The init's main thread is the only one that waits: during the boot
//! stages it waits for specific pids ([`wait_for`]; a container's process
//! is our child once `runc create` has exited), and when idle it reaps
//! whatever has died ([`reap_all`]). No thread ever calls `waitpid(-1)`
//! while another waits for a specific pid, so no exit status is stolen.

use std::io;
use std::process::ExitStatus;

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Waits for child `pid` to end and returns how it ended.
pub fn wait_for(pid: i32) -> io::Result<ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(ExitStatus::from_raw((code & 0xff) << 8)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(ExitStatus::from_raw(sig as i32)),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reaps every child that has ended, without blocking; returns how many.
pub fn reap_all() -> usize {
    let mut n = 0;
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return n,
            Ok(_) => n += 1,
        }
    }
}
