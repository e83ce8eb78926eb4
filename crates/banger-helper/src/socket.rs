//! The helper's listening socket: a root-owned 0755 directory, a socket only the owner can
//! open (owned by the owner, 0600). Peer credentials are still checked per connection, so the
//! file mode is a second fence, not the only one.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// A filesystem or socket call failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Something other than a socket sits where the socket goes.
    #[error("{0} exists and is not a socket; remove it or choose another --socket")]
    NotASocket(PathBuf),
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SocketError {
    let path = path.to_path_buf();
    move |source| SocketError::Io {
        action,
        path,
        source,
    }
}

/// Binds `path` for `owner_uid`: creates its directory (0755), replaces a stale socket, binds,
/// then gives the socket to the owner with mode 0600.
pub fn bind(path: &Path, owner_uid: u32) -> Result<UnixListener, SocketError> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(io("create", dir))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(io("remove the stale socket", path))?;
        }
        Ok(_) => return Err(SocketError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("inspect", path)(e)),
    }
    let listener = UnixListener::bind(path).map_err(io("bind", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io("set the mode of", path))?;
    nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(owner_uid)), None)
        .map_err(|e| io("give the socket to its owner:", path)(e.into()))?;
    Ok(listener)
}
