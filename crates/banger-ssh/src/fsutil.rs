//! Small filesystem and process helpers shared by the modules.
//!
//! - [`DirLock`] serialises banger processes (daemon, CLI) and threads that rewrite files in one
//!   directory: an exclusive `flock` on the directory itself, so no lock file is left behind.
//! - [`run_tool`] runs a system tool from a fixed argv with stdin closed and output captured;
//!   there is never a shell in between.
//! - [`write_atomic`] replaces a file through a sibling temporary file and a rename, so a reader
//!   sees the old bytes or the new ones, never a torn write.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// An exclusive `flock` on a directory, released on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    _lock: Flock<File>,
}

impl DirLock {
    /// Blocks until this process holds the directory's lock.
    pub(crate) fn acquire(dir: &Path) -> io::Result<Self> {
        let mut file = File::open(dir)?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusive) {
                Ok(lock) => return Ok(Self { _lock: lock }),
                Err((f, Errno::EINTR)) => file = f,
                Err((_, errno)) => return Err(io::Error::from(errno)),
            }
        }
    }
}

/// The effective uid of this process.
pub(crate) fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Runs `program` with `args`, stdin from `/dev/null`, stdout and stderr captured.
pub(crate) fn run_tool<I, S>(program: &str, args: I) -> io::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
}

/// The last non-empty line of a tool's stderr, for error messages.
pub(crate) fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no error output")
        .to_owned()
}
