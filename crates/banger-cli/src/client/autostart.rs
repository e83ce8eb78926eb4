//! Starting a user-mode daemon on demand.
//!
//! Steps, in order:
//! 1. create the state dir (0700) and open the daemon log for appending (0600);
//! 2. spawn `bangerd` (next to this executable if present, else from `PATH`) with no
//!    arguments, stdin null, stdout and stderr appended to the log, cwd `/`, in its own process
//!    group so a Ctrl-C aimed at the CLI never reaches it;
//! 3. ping every 50 ms for at most 10 s.
//!
//! If the child exits before answering, the error carries its exit status and the lines it
//! wrote to the log during this start. A child that exits because another CLI's daemon won
//! the lock race is not a failure: while the lock file names a live process, polling goes on.
//! After success the child handle is dropped; the daemon keeps running on its own.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use banger_model::Layout;
use banger_proto::DaemonInfo;

use super::{ApiError, Client};
use crate::error::CliError;
use crate::output;

/// How long a fresh daemon has to answer its first ping.
const START_LIMIT: Duration = Duration::from_secs(10);
/// Time between pings while waiting.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// After our child exits, how long to wait for a daemon started by someone else.
const RACE_GRACE: Duration = Duration::from_millis(500);
/// How many log lines an error shows.
const TAIL_LINES: usize = 10;

/// Why the on-demand daemon did not come up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state dir or the log could not be prepared.
    #[error("cannot prepare {} for bangerd", path.display())]
    Prepare {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// No `bangerd` next to the CLI or on `PATH`.
    #[error("cannot find bangerd next to {} or on PATH", dir.display())]
    NotFound {
        /// The CLI's own directory.
        dir: PathBuf,
    },
    /// The spawn itself failed.
    #[error("cannot start {}", program.display())]
    Spawn {
        /// The program tried.
        program: PathBuf,
        /// The spawn error.
        #[source]
        source: io::Error,
    },
    /// The daemon exited before it answered.
    #[error("bangerd exited before answering ({status}){tail}\nfull log: {}", log.display())]
    Exited {
        /// How it exited.
        status: ExitStatus,
        /// Its last log lines, preformatted (empty when it wrote nothing).
        tail: String,
        /// The daemon log.
        log: PathBuf,
    },
    /// The daemon neither answered nor exited in time.
    #[error(
        "bangerd did not answer on {} within {}s{last}\nfull log: {}",
        socket.display(),
        START_LIMIT.as_secs(),
        log.display()
    )]
    TimedOut {
        /// The socket polled.
        socket: PathBuf,
        /// The last ping error, preformatted (empty when there was none).
        last: String,
        /// The daemon log.
        log: PathBuf,
    },
}

/// Starts a daemon for `layout` and waits for its first answer.
pub async fn start(layout: &Layout, client: &Client) -> Result<DaemonInfo, CliError> {
    let log_path = layout.daemon_log();
    let log = open_log(&layout.state_dir, &log_path)?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut child = spawn(log, &log_path)?;
    let info = wait_ready(layout, client, &mut child, log_start).await?;
    // When another CLI's daemon won the race, ours exited quietly: nothing to announce.
    if info.pid == child.id() {
        output::note(&format!(
            "started bangerd (pid {}, log {})",
            info.pid,
            log_path.display()
        ));
    }
    Ok(info)
}

fn open_log(state_dir: &Path, log_path: &Path) -> Result<File, StartError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|source| StartError::Prepare {
            path: state_dir.to_path_buf(),
            source,
        })?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log_path)
        .map_err(|source| StartError::Prepare {
            path: log_path.to_path_buf(),
            source,
        })
}

/// `bangerd` next to this executable, if it is there.
fn sibling_daemon() -> (PathBuf, Option<PathBuf>) {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let sibling = dir.join("bangerd");
    let found = sibling.is_file().then_some(sibling);
    (dir, found)
}

/// The `bangerd` this CLI would start: next to this executable, else the first on `PATH`
/// (what the spawn below resolves). `banger doctor` runs this same binary.
pub fn find_daemon() -> Result<PathBuf, StartError> {
    use std::os::unix::fs::PermissionsExt;
    let (dir, sibling) = sibling_daemon();
    if let Some(sibling) = sibling {
        return Ok(sibling);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("bangerd"))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or(StartError::NotFound { dir })
}

fn spawn(log: File, log_path: &Path) -> Result<Child, StartError> {
    let (dir, sibling) = sibling_daemon();
    let program = sibling.unwrap_or_else(|| PathBuf::from("bangerd"));
    let stderr = log.try_clone().map_err(|source| StartError::Prepare {
        path: log_path.to_path_buf(),
        source,
    })?;
    Command::new(&program)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .current_dir("/")
        .process_group(0)
        .spawn()
        .map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                StartError::NotFound { dir }
            } else {
                StartError::Spawn { program, source }
            }
        })
}

async fn wait_ready(
    layout: &Layout,
    client: &Client,
    child: &mut Child,
    log_start: u64,
) -> Result<DaemonInfo, CliError> {
    let deadline = Instant::now() + START_LIMIT;
    let mut exited: Option<(ExitStatus, Instant)> = None;
    let mut last_error: Option<ApiError> = None;
    loop {
        match client.ping().await {
            Ok(info) => return Ok(info),
            Err(e @ ApiError::Denied { .. }) => return Err(e.into()),
            Err(ApiError::NotRunning { .. }) => {}
            Err(e) => last_error = Some(e),
        }
        if exited.is_none() {
            exited = child
                .try_wait()
                .ok()
                .flatten()
                .map(|status| (status, Instant::now()));
        }
        if let Some((status, at)) = exited {
            let other = lock_holder(&layout.lock_file()).is_some_and(|pid| pid != child.id());
            if !other && at.elapsed() >= RACE_GRACE {
                let log = layout.daemon_log();
                let tail = format_tail(&log_tail(&log, log_start));
                return Err(StartError::Exited { status, tail, log }.into());
            }
        }
        if Instant::now() >= deadline {
            let last = last_error
                .map(|e| format!(" (last error: {})", crate::render::error::chain(&e)))
                .unwrap_or_default();
            return Err(StartError::TimedOut {
                socket: client.socket().to_path_buf(),
                last,
                log: layout.daemon_log(),
            }
            .into());
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The pid in the daemon's lock file, if that process is alive.
pub(crate) fn lock_holder(lock_file: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(lock_file).ok()?;
    let pid: i32 = text.split_whitespace().next()?.parse().ok()?;
    if pid <= 0 {
        return None;
    }
    let alive = match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    };
    alive.then(|| pid.unsigned_abs())
}

/// The last lines the daemon wrote to its log since `start`.
fn log_tail(log: &Path, start: u64) -> Vec<String> {
    banger_util::tail::file_tail(log, start, TAIL_LINES)
}

fn format_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return " and wrote nothing to its log".to_owned();
    }
    let mut out = String::from("; its last log lines:");
    for line in lines {
        out.push_str("\n  ");
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_shows_only_this_starts_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("bangerd.log");
        std::fs::write(&log, "old run\n").unwrap();
        let start = std::fs::metadata(&log).unwrap().len();
        let mut text = String::from("old run\n");
        for i in 0..15 {
            text.push_str(&format!("line {i}\n"));
        }
        std::fs::write(&log, text).unwrap();
        let tail = log_tail(&log, start);
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail[0], "line 5");
        assert_eq!(tail[9], "line 14");
        assert!(log_tail(&dir.path().join("none"), 0).is_empty());
    }

    #[test]
    fn tail_formatting_says_when_nothing_was_written() {
        assert_eq!(format_tail(&[]), " and wrote nothing to its log");
        assert_eq!(
            format_tail(&["a".into(), "b".into()]),
            "; its last log lines:\n  a\n  b"
        );
    }

    #[test]
    fn lock_holder_needs_a_live_pid() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("bangerd.lock");
        assert_eq!(lock_holder(&lock), None);
        std::fs::write(&lock, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(lock_holder(&lock), Some(std::process::id()));
        std::fs::write(&lock, "not a pid").unwrap();
        assert_eq!(lock_holder(&lock), None);
    }
}
