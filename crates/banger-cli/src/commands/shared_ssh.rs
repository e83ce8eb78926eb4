//! One SSH connection for every session of one command.
//!
//! `vm run PATH -- CMD` talks to the guest three or four times (the git bundle, the checkout,
//! the tool bootstrap, the command), and each new connection pays a full SSH handshake: key
//! exchange and public-key authentication, one to three seconds each under emulation. So those
//! commands make one [`SharedConnection`]: a private directory holding an OpenSSH control
//! socket. The daemon adds `ControlMaster=auto` with that socket to each line it builds, so the
//! first session becomes the master and every later one rides on it. If the master dies, the
//! next session simply connects on its own again.
//!
//! The master belongs to this command only: it is told to exit when the command is done (and
//! the daemon's `ControlPersist` bounds it if banger is killed first), so no connection
//! outlives the command and none can be left pointing at a deleted VM's address. The socket
//! lives in the command's own directory, never in one shared with other users or commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::CliError;

/// Unix socket paths are at most 107 bytes; ssh also appends a random suffix while binding.
const MAX_SOCKET_PATH: usize = 80;

/// A control socket in a private directory, closed when dropped.
#[derive(Debug)]
pub struct SharedConnection {
    /// Held, not read: dropping it removes the directory (after [`Drop`] closed the master).
    _dir: tempfile::TempDir,
    socket: PathBuf,
}

impl SharedConnection {
    /// Makes the private directory in `$XDG_RUNTIME_DIR` (or `/tmp` when that is unset or too
    /// deep for a socket path).
    pub fn new() -> Result<Self, CliError> {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute() && dir.as_os_str().len() < MAX_SOCKET_PATH - 24)
            .filter(|dir| dir.is_dir())
            // ssh expands `%` tokens and `${VAR}` in control paths.
            .filter(|dir| !dir.to_string_lossy().contains(['%', '$']))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        Self::new_in(&base)
    }

    /// Makes the private directory under `base`.
    pub fn new_in(base: &Path) -> Result<Self, CliError> {
        use std::os::unix::fs::PermissionsExt;
        // 0700 from the start: nobody else can reach the master through it.
        let dir = tempfile::Builder::new()
            .prefix("banger-ssh-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(base)
            .map_err(|source| CliError::Io {
                what: format!("cannot make a directory for ssh in {}", base.display()),
                source,
            })?;
        let socket = dir.path().join("c");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(CliError::Failed(format!(
                "the ssh control socket path {} is too long for a Unix socket",
                socket.display()
            )));
        }
        Ok(Self { _dir: dir, socket })
    }

    /// The control socket to ask the daemon for.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Whether a master is listening (its socket exists).
    pub fn is_open(&self) -> bool {
        self.socket.exists()
    }

    /// The argv that tells the master to exit.
    pub fn exit_args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec!["-F".into(), "/dev/null".into()];
        args.push("-S".into());
        args.push(self.socket.clone().into());
        args.extend(["-O".into(), "exit".into(), "banger-guest".into()]);
        args
    }

    /// Tells the master to exit, if one is running (best effort: the daemon's ControlPersist
    /// ends it anyway).
    fn close(&self) {
        if !self.is_open() {
            return;
        }
        let _ = Command::new("ssh")
            .args(self.exit_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for SharedConnection {
    fn drop(&mut self) {
        // The TempDir field removes the directory after this.
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_is_private_and_removed_with_the_connection() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().expect("tempdir");
        let shared = SharedConnection::new_in(base.path()).expect("shared");
        let dir = shared.socket().parent().expect("parent").to_owned();
        let mode = std::fs::metadata(&dir).expect("dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(!shared.is_open(), "no master before the first session");
        drop(shared);
        assert!(!dir.exists(), "the directory goes with the connection");
    }

    #[test]
    fn a_base_too_deep_for_a_socket_is_refused() {
        let base = tempfile::tempdir().expect("tempdir");
        let deep = base.path().join("d".repeat(90));
        std::fs::create_dir(&deep).expect("deep dir");
        let err = SharedConnection::new_in(&deep).expect_err("too long");
        assert!(err.to_string().contains("too long"), "{err}");
    }

    #[test]
    fn exit_names_the_socket_and_reads_no_config() {
        let base = tempfile::tempdir().expect("tempdir");
        let shared = SharedConnection::new_in(base.path()).expect("shared");
        let args: Vec<String> = shared
            .exit_args()
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let socket = shared.socket().to_string_lossy().into_owned();
        assert_eq!(
            args,
            [
                "-F",
                "/dev/null",
                "-S",
                &socket,
                "-O",
                "exit",
                "banger-guest"
            ]
        );
    }
}
