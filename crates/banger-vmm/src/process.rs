//! Finding and stopping a VMM process by pid without trusting the pid alone.
//!
//! Pids are reused. A pid from `handles.json` counts as "this VM's VMM" only while its command
//! line still carries the VM's tag (`banger-<id>`), so a stale pid never makes a dead VM look
//! alive and a kill never hits a stranger.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill as send_signal};
use nix::unistd::Pid;

use crate::launch::VmmError;

/// Whether `pid` is alive, not a zombie, and its command line contains `tag`.
pub fn is_our_process(pid: u32, tag: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    if is_zombie(pid) {
        return false;
    }
    cmdline
        .split(|b| *b == 0)
        .any(|arg| String::from_utf8_lossy(arg).contains(tag))
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
        })
        .unwrap_or(true)
}

fn signal(pid: u32, tag: &str, sig: Signal) -> Result<(), VmmError> {
    if !is_our_process(pid, tag) {
        return Ok(());
    }
    let raw = i32::try_from(pid).map_err(|_| VmmError::InvalidSpec(format!("pid {pid}")))?;
    match send_signal(Pid::from_raw(raw), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(VmmError::Io {
            action: format!("send {sig} to pid {pid}"),
            source: e.into(),
        }),
    }
}

/// Every live process (other than this one) whose command line carries `tag`, found by
/// scanning `/proc`: how a VMM is found when nothing recorded its pid (a daemon that crashed
/// between spawning it and writing its handles).
pub fn find_tagged(tag: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me && is_our_process(*pid, tag))
        .collect();
    pids.sort_unstable();
    pids
}

/// SIGKILL, if the process is still ours.
pub fn kill(pid: u32, tag: &str) -> Result<(), VmmError> {
    signal(pid, tag, Signal::SIGKILL)
}

/// SIGTERM, if the process is still ours.
pub fn terminate(pid: u32, tag: &str) -> Result<(), VmmError> {
    signal(pid, tag, Signal::SIGTERM)
}

/// Polls until the process is gone or `timeout` passes; true if it went.
pub async fn wait_gone(pid: u32, tag: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !is_our_process(pid, tag) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn identifies_kills_and_waits_by_tag() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        let pid = child.id();
        // The child may still be between fork and exec for a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_our_process(pid, "30") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(is_our_process(pid, "30"));
        assert!(find_tagged("30").contains(&pid), "found without its pid");
        assert!(!is_our_process(pid, "banger-someone-else"));
        // A wrong tag never signals.
        kill(pid, "banger-someone-else").expect("no-op");
        assert!(is_our_process(pid, "30"));
        let reaper = std::thread::spawn(move || child.wait());
        kill(pid, "30").expect("kill");
        assert!(wait_gone(pid, "30", Duration::from_secs(5)).await);
        reaper.join().expect("join").expect("wait");
        assert!(!is_our_process(pid, "30"));
        assert!(!is_our_process(u32::MAX, "x"));
    }
}
