//! Reaping children.
//!
//! As PID 1 the agent inherits every orphan in the guest, so on each SIGCHLD (and on every tick
//! of the main loop, in case a signal was coalesced) it collects all exited children with
//! `waitpid(-1, WNOHANG)` until none is left to collect.

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::log;

/// Upper bound on children collected per call, so a fork storm cannot pin the main loop.
const MAX_PER_CALL: usize = 4096;

/// What [`reap_all`] collected.
#[derive(Debug, Default)]
pub struct Reaped {
    /// Children that exited or were killed, with their status.
    pub exited: Vec<(Pid, WaitStatus)>,
    /// True when the process has no children at all any more (`ECHILD`).
    pub no_children: bool,
}

/// Collects every child that has exited, without blocking.
pub fn reap_all() -> Reaped {
    let mut out = Reaped::default();
    while out.exited.len() < MAX_PER_CALL {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => break,
            Ok(status) => match status.pid() {
                Some(pid) => out.exited.push((pid, status)),
                None => break,
            },
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => {
                out.no_children = true;
                break;
            }
            Err(e) => {
                log!("waitpid failed: {e}");
                break;
            }
        }
    }
    out
}

/// A short description of how a child ended, for the log.
pub fn describe(status: &WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, sig, _) => format!("killed by {sig}"),
        other => format!("{other:?}"),
    }
}
