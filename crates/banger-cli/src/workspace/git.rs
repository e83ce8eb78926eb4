//! Running the system `git` with a fixed argv: always `-C <dir>`, never through a shell, with
//! the C locale so its messages can be recognised, and no prompts.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::Error;

/// Runs `git -C dir ARGS…` and returns its output whatever the exit status.
pub fn run(dir: &Path, args: &[&str]) -> Result<Output, Error> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(Error::GitMissing)
}

/// Runs `git -C dir ARGS…` and returns stdout, or an error with git's first stderr line.
pub fn stdout(dir: &Path, args: &[&str]) -> Result<Vec<u8>, Error> {
    let out = run(dir, args)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(failed(dir, args, &out))
    }
}

/// The error for a git command that exited non-zero.
pub fn failed(dir: &Path, args: &[&str], out: &Output) -> Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map_or_else(|| format!("exited with {}", out.status), str::to_string);
    Error::Git {
        command: args.first().copied().unwrap_or_default().to_string(),
        dir: dir.to_path_buf(),
        message,
    }
}

/// One line of text output (`rev-parse`, `config`): the bytes without the final newline.
pub fn line(bytes: &[u8]) -> String {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    String::from_utf8_lossy(text).into_owned()
}

/// Paths from a `-z` listing, relative to the directory git ran in. Anything that is not a
/// plain relative path (git never prints one) is refused rather than trusted.
pub fn paths(dir: &Path, command: &str, bytes: &[u8]) -> Result<Vec<PathBuf>, Error> {
    bytes
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| relative(dir, command, p))
        .collect()
}

/// A relative path made of normal components only.
pub fn relative(dir: &Path, command: &str, raw: &[u8]) -> Result<PathBuf, Error> {
    let path = PathBuf::from(OsStr::from_bytes(raw));
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    if plain && path.components().next().is_some() {
        Ok(path)
    } else {
        Err(Error::Git {
            command: command.to_string(),
            dir: dir.to_path_buf(),
            message: format!("unexpected path {path:?} in its output"),
        })
    }
}
