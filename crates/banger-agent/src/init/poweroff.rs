//! The power-off path of PID 1.
//!
//! Every way a sandbox stops gracefully ends here: Ctrl-Alt-Del (delivered as SIGINT once CAD is
//! disabled), SIGTERM, SIGPWR, `POST /shutdown`, and any fatal error of init itself (PID 1 must
//! never exit: the kernel would panic). [`plan`] is the ordered list of steps, pure and tested;
//! [`execute`] performs it, logging each step, and never returns: if `reboot(RB_POWER_OFF)`
//! itself fails it keeps reaping children forever.
//!
//! Order matters: processes get SIGTERM and up to five seconds to exit, then SIGKILL, so that no
//! one writes to the disks once they are synced, the work disk is unmounted and `/` is read-only.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::reboot::{RebootMode, reboot};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{mounts, reap};
use crate::log;

/// How long processes get between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(5);

/// How long to wait for killed processes to be reaped.
pub const KILL_GRACE: Duration = Duration::from_secs(1);

/// One step of the power-off sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `kill(-1, SIGTERM)`: every process but init.
    TermAll,
    /// Reap children until none is left or the time is up.
    WaitForExit(Duration),
    /// `kill(-1, SIGKILL)`.
    KillAll,
    /// `sync()`.
    Sync,
    /// Unmount a filesystem (lazily if busy).
    Unmount(PathBuf),
    /// Remount `/` read-only.
    RemountRootReadOnly,
    /// `reboot(RB_POWER_OFF)`.
    PowerOff,
}

/// The power-off sequence; `unmount` lists mounted filesystems to unmount (the work disk).
pub fn plan(unmount: &[PathBuf]) -> Vec<Step> {
    let mut steps = vec![
        Step::TermAll,
        Step::WaitForExit(TERM_GRACE),
        Step::KillAll,
        Step::WaitForExit(KILL_GRACE),
        Step::Sync,
    ];
    steps.extend(unmount.iter().cloned().map(Step::Unmount));
    steps.extend([Step::RemountRootReadOnly, Step::Sync, Step::PowerOff]);
    steps
}

/// Reaps children until there are none or `timeout` passes; true when none is left.
fn wait_for_exit(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if reap::reap_all().no_children {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal_all(sig: Signal) {
    match kill(Pid::from_raw(-1), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => log!("kill(-1, {sig}) failed: {e}"),
    }
}

/// Performs `steps` in order. Never returns.
pub fn execute(steps: &[Step]) -> ! {
    for step in steps {
        match step {
            Step::TermAll => {
                log!("power-off: sending SIGTERM to all processes");
                signal_all(Signal::SIGTERM);
            }
            Step::WaitForExit(t) => {
                if !wait_for_exit(*t) {
                    log!("power-off: processes still running after {}s", t.as_secs());
                }
            }
            Step::KillAll => {
                log!("power-off: sending SIGKILL to all processes");
                signal_all(Signal::SIGKILL);
            }
            Step::Sync => nix::unistd::sync(),
            Step::Unmount(p) => {
                let target = p.to_string_lossy();
                match mounts::unmount(&target) {
                    Ok(()) => log!("power-off: unmounted {target}"),
                    Err(e) => log!("power-off: {}", crate::log::chain(&e)),
                }
            }
            Step::RemountRootReadOnly => match mounts::remount_root_ro() {
                Ok(()) => log!("power-off: remounted / read-only"),
                Err(e) => log!("power-off: {}", crate::log::chain(&e)),
            },
            Step::PowerOff => {
                log!("power-off: powering off");
                // Only returns on failure.
                let Err(e) = reboot(RebootMode::RB_POWER_OFF);
                log!("power-off: reboot(RB_POWER_OFF) failed: {e}");
            }
        }
    }
    log!("power-off did not happen; idling");
    loop {
        reap::reap_all();
        std::thread::sleep(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(steps: &[Step], want: &Step) -> usize {
        steps
            .iter()
            .position(|s| s == want)
            .unwrap_or_else(|| panic!("{want:?} missing from {steps:?}"))
    }

    #[test]
    fn order_is_term_wait_kill_sync_unmount_ro_poweroff() {
        let steps = plan(&[PathBuf::from("/root")]);
        assert_eq!(
            steps,
            vec![
                Step::TermAll,
                Step::WaitForExit(Duration::from_secs(5)),
                Step::KillAll,
                Step::WaitForExit(Duration::from_secs(1)),
                Step::Sync,
                Step::Unmount("/root".into()),
                Step::RemountRootReadOnly,
                Step::Sync,
                Step::PowerOff,
            ]
        );
        assert!(index(&steps, &Step::TermAll) < index(&steps, &Step::KillAll));
        assert!(index(&steps, &Step::KillAll) < index(&steps, &Step::Sync));
        assert!(
            index(&steps, &Step::Unmount("/root".into()))
                < index(&steps, &Step::RemountRootReadOnly)
        );
        assert_eq!(steps.last(), Some(&Step::PowerOff));
    }

    #[test]
    fn grace_is_at_most_five_seconds() {
        let steps = plan(&[]);
        let waits: Vec<Duration> = steps
            .iter()
            .filter_map(|s| match s {
                Step::WaitForExit(d) => Some(*d),
                _ => None,
            })
            .collect();
        assert!(waits[0] <= Duration::from_secs(5));
        assert!(!steps.iter().any(|s| matches!(s, Step::Unmount(_))));
        assert_eq!(steps.last(), Some(&Step::PowerOff));
    }
}
