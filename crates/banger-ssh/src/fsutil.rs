//! Small filesystem and process helpers shared by the modules.
//!
//! - [`DirLock`] serialises banger processes (daemon, CLI) and threads that rewrite files in one
//!   directory: an exclusive `flock` on the directory itself, so no lock file is left behind.
//! - [`run_tool`] runs a system tool from a fixed argv with stdin closed and output captured;
//!   there is never a shell in between.
//! - [`write_atomic`] replaces a file through a sibling temporary file and a rename, so a reader
//!   sees the old bytes or the new ones, never a torn write.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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

/// Replaces `path` with `bytes` (mode `mode`) through a temporary sibling and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".banger-tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
