//! Running external tools with fixed argument vectors.
//!
//! Every tool this crate uses (`debootstrap`, `apt-get`, `dpkg-deb`, `mkfs.ext4`, …) runs through
//! these helpers so that failures carry the program name, the exit status and the tail of its
//! stderr. Programs are looked up on `PATH` and then in the sbin directories, because a daemon
//! started with a minimal `PATH` still needs `/usr/sbin/mkfs.ext4`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;

use crate::{Progress, ProgressFn};

/// How many stderr lines an error keeps.
const STDERR_TAIL_LINES: usize = 20;

/// Directories searched after `PATH`.
const FALLBACK_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// An external tool could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program is not installed.
    #[error("`{program}` not found on PATH or in the sbin directories")]
    NotFound {
        /// Program name.
        program: String,
    },
    /// The program could not be started or its output could not be read.
    #[error("cannot run `{program}`")]
    Io {
        /// Program name.
        program: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The program exited unsuccessfully.
    #[error("`{program}` failed ({status}): {stderr}")]
    Failed {
        /// Program name.
        program: String,
        /// Exit status.
        status: ExitStatus,
        /// Last lines of its stderr (trimmed).
        stderr: String,
    },
}

/// Finds `name` on `PATH`, then in [`FALLBACK_DIRS`].
pub(crate) fn find_program(name: &str) -> Result<PathBuf, CommandError> {
    let dirs = banger_util::path::path_dirs()
        .into_iter()
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from));
    banger_util::path::find_in(name, dirs).ok_or_else(|| CommandError::NotFound {
        program: name.to_owned(),
    })
}

/// A command for `program`, resolved with [`find_program`], with a C locale.
pub(crate) fn command(program: &str) -> Result<Command, CommandError> {
    let mut cmd = Command::new(find_program(program)?);
    cmd.env("LC_ALL", "C").stdin(Stdio::null());
    Ok(cmd)
}

fn program_name(cmd: &Command) -> String {
    std::path::Path::new(cmd.get_program())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs `cmd` to completion and returns its whole output whatever the exit status, for tools
/// whose stderr matters even on success (debugfs).
pub(crate) fn output(cmd: &mut Command) -> Result<std::process::Output, CommandError> {
    let program = program_name(cmd);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| CommandError::Io { program, source })
}

/// Runs `cmd` to completion and returns its stdout; `ok_codes` lists the accepted exit codes.
pub(crate) fn run(cmd: &mut Command, ok_codes: &[i32]) -> Result<Vec<u8>, CommandError> {
    let program = program_name(cmd);
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| CommandError::Io {
            program: program.clone(),
            source,
        })?;
    if out.status.code().is_some_and(|c| ok_codes.contains(&c)) {
        return Ok(out.stdout);
    }
    Err(CommandError::Failed {
        program,
        status: out.status,
        stderr: tail(&String::from_utf8_lossy(&out.stderr)),
    })
}

/// Keeps the last [`STDERR_TAIL_LINES`] non-empty lines of `text`, joined by `; `.
pub(crate) fn tail(text: &str) -> String {
    banger_util::tail::last_lines(text, STDERR_TAIL_LINES)
        .join("; ")
        .trim()
        .to_owned()
}

enum Stream {
    Out(String),
    Err(String),
}

fn pump(reader: impl Read, tx: mpsc::Sender<Stream>, wrap: fn(String) -> Stream) {
    for line in BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        if tx.send(wrap(line)).is_err() {
            break;
        }
    }
}

/// Runs `cmd`, forwarding each stdout and stderr line to `progress` as it arrives.
pub(crate) fn run_streaming(
    cmd: &mut Command,
    progress: &mut ProgressFn<'_>,
) -> Result<(), CommandError> {
    let program = program_name(cmd);
    let io_err = |source| CommandError::Io {
        program: program.clone(),
        source,
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err)?;
    let (tx, rx) = mpsc::channel();
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        pumps.push(thread::spawn(move || pump(out, tx, Stream::Out)));
    }
    if let Some(err) = child.stderr.take() {
        let tx = tx.clone();
        pumps.push(thread::spawn(move || pump(err, tx, Stream::Err)));
    }
    drop(tx);
    let mut stderr_tail = VecDeque::with_capacity(STDERR_TAIL_LINES);
    for item in rx {
        match item {
            Stream::Out(line) => progress(Progress::Line(&line)),
            Stream::Err(line) => {
                progress(Progress::Line(&line));
                if stderr_tail.len() == STDERR_TAIL_LINES {
                    stderr_tail.pop_front();
                }
                stderr_tail.push_back(line);
            }
        }
    }
    for handle in pumps {
        // A pump thread only reads a pipe; it cannot panic short of a bug in std.
        let _ = handle.join();
    }
    let status = child.wait().map_err(io_err)?;
    if status.success() {
        return Ok(());
    }
    let stderr = tail(&Vec::from(stderr_tail).join("\n"));
    Err(CommandError::Failed {
        program,
        status,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        let text: String = (0..30).map(|i| format!("l{i}\n\n")).collect();
        let t = tail(&text);
        assert!(t.starts_with("l10; "), "{t}");
        assert!(t.ends_with("l29"), "{t}");
    }

    #[test]
    fn run_reports_failure_with_stderr() {
        let mut cmd = command("sh").expect("sh");
        cmd.args(["-c", "echo boom >&2; exit 3"]);
        let err = run(&mut cmd, &[0]).expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("boom") && msg.contains("`sh`"), "{msg}");
    }

    #[test]
    fn run_streaming_forwards_both_streams() {
        let mut cmd = command("sh").expect("sh");
        cmd.args(["-c", "echo out; echo err >&2"]);
        let mut lines = Vec::new();
        run_streaming(&mut cmd, &mut |p| {
            if let Progress::Line(l) = p {
                lines.push(l.to_owned());
            }
        })
        .expect("runs");
        lines.sort();
        assert_eq!(lines, ["err", "out"]);
    }

    #[test]
    fn missing_program_is_not_found() {
        assert!(matches!(
            find_program("banger-no-such-tool"),
            Err(CommandError::NotFound { .. })
        ));
    }
}
