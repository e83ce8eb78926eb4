//! Starting the Firecracker process so it outlives the daemon.
//!
//! Why: a daemon restart, upgrade or crash must never take guests down (SPEC §4). Firecracker
//! has no `-daemonize` like QEMU, and the workspace forbids `unsafe` (so no `pre_exec` +
//! `setsid`, no hand-made double fork). What we do instead, all in safe std:
//!
//! - **Own process group** (`process_group(0)`): signals aimed at the daemon's group (Ctrl-C in
//!   a terminal, `kill -- -<pgid>`, a supervisor stopping the daemon's group) do not reach the
//!   VM.
//! - **No inherited state**: stdin is `/dev/null`; stdout and stderr go to the VM's console log
//!   file (Firecracker's serial console is its stdout), never to a pipe the daemon would have to
//!   drain; Rust opens every descriptor close-on-exec, so the daemon's sockets and lock file do
//!   not leak into the VM process; the working directory is `/` (a VM's own directory for
//!   snapshots, [`spawn_detached_in`]).
//! - **Reaped by a thread, not awaited by the runtime**: a plain std thread blocks in `wait()`
//!   on the child, so an exited VMM never lingers as a zombie while the daemon runs, and the
//!   child is independent of any tokio runtime (dropping the runtime neither kills nor orphans
//!   it). When the daemon exits, the kernel re-parents the VMM to init (or the nearest
//!   subreaper), which reaps it later. No `PR_SET_PDEATHSIG` is set, so nothing kills the VMM
//!   when its parent goes.
//!
//! Invariant: `std::process::Command::spawn` returns only after `exec` succeeded (it reports
//! exec failures through a close-on-exec pipe), so once [`spawn_detached`] returns, the pid's
//! command line is Firecracker's and carries the VM's tag.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use tokio::sync::oneshot;

/// A started, detached VMM process.
#[derive(Debug)]
pub struct Detached {
    /// Its pid.
    pub pid: u32,
    /// Fires with its exit status when it exits (while this process still runs).
    pub exited: oneshot::Receiver<io::Result<ExitStatus>>,
}

/// Truncates `log` and opens it for appending (stdout and stderr share the description, so
/// their writes interleave without overwriting each other).
fn open_log(log: &Path) -> io::Result<File> {
    File::create(log)?;
    OpenOptions::new().append(true).open(log)
}

/// Runs `argv` (binary first) detached as described in the module docs, with stdout and stderr
/// appended to `log` (truncated first).
pub fn spawn_detached(argv: &[OsString], log: &Path) -> io::Result<Detached> {
    spawn_detached_in(argv, log, Path::new("/"))
}

/// [`spawn_detached`] with working directory `cwd` instead of `/`: a VM that can be saved
/// or is restored runs in its own directory, so the relative paths its snapshot records
/// resolve to that VM's files (see [`super::snapshot`]).
pub fn spawn_detached_in(argv: &[OsString], log: &Path, cwd: &Path) -> io::Result<Detached> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command line"))?;
    let stdout = open_log(log)?;
    let stderr = stdout.try_clone()?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .current_dir(cwd)
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    let (tx, rx) = oneshot::channel();
    let reaper = std::thread::Builder::new()
        .name(format!("vmm-reaper-{pid}"))
        .spawn(move || {
            let status = child.wait();
            let _ = tx.send(status);
        });
    if let Err(e) = reaper {
        // The child went down with the closure; it is unreaped, so its pid cannot have been
        // reused: kill it rather than leave a VMM nobody will ever reap.
        if let Ok(raw) = i32::try_from(pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(raw),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        return Err(e);
    }
    Ok(Detached { pid, exited: rx })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pgrp(pid: u32) -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (_, rest) = stat.rsplit_once(')')?;
        rest.split_whitespace().nth(2)?.parse().ok()
    }

    #[tokio::test]
    async fn runs_in_its_own_group_logs_to_the_file_and_is_reaped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("out.log");
        std::fs::write(&log, "stale\n").expect("write");
        let argv: Vec<OsString> = vec![
            "sh".into(),
            "-c".into(),
            "echo out; echo err >&2; pwd; read x; echo \"stdin:$x\"".into(),
        ];
        let child = spawn_detached(&argv, &log).expect("spawn");
        let status = tokio::time::timeout(Duration::from_secs(10), child.exited)
            .await
            .expect("exits in time")
            .expect("reaper reports")
            .expect("wait");
        assert!(status.success());
        let text = std::fs::read_to_string(&log).expect("log");
        assert_eq!(text, "out\nerr\n/\nstdin:\n");
        // Reaped: no zombie left behind.
        assert!(!Path::new(&format!("/proc/{}", child.pid)).exists());
    }

    #[tokio::test]
    async fn own_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let argv: Vec<OsString> = vec!["sleep".into(), "30".into()];
        let child = spawn_detached(&argv, &dir.path().join("log")).expect("spawn");
        assert_eq!(pgrp(child.pid), Some(child.pid));
        assert_ne!(pgrp(std::process::id()), Some(child.pid));
        crate::process::kill(child.pid, "30").expect("kill");
        assert!(crate::process::wait_gone(child.pid, "30", Duration::from_secs(5)).await);
    }

    #[test]
    fn missing_binaries_and_empty_argv_fail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let err = spawn_detached(&["/nonexistent/firecracker".into()], &log).expect_err("fails");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = spawn_detached(&[], &log).expect_err("fails");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
