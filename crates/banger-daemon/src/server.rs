//! The daemon's socket: one instance per layout, owner-only, drained on shutdown.
//!
//! Start-up order matters and is fixed here:
//! 1. [`InstanceLock::acquire`] takes an exclusive lock on `bangerd.lock` in the runtime dir
//!    (created 0700). A second daemon fails fast instead of stealing the socket; the lock dies
//!    with the process, so a crash never leaves a stale lock behind.
//! 2. Only the lock holder removes a leftover socket file and [`bind`]s a new one, then sets
//!    its mode (0600 in production).
//! 3. [`serve`] answers until the shutdown signal, drains in-flight requests (bounded), and
//!    removes the socket file. Each connection is read within bounds first
//!    ([`crate::connection`]).

use std::fs::{File, OpenOptions, Permissions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::UnixListener;

use banger_model::Layout;

use crate::access::AccessPolicy;
use crate::context::DaemonContext;

/// Longest path an `AF_UNIX` socket address can hold (without the trailing NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// How long in-flight requests get to finish after shutdown is signalled.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the daemon could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Another daemon holds the lock.
    #[error("another bangerd is already running for {runtime_dir} (pid {pid})")]
    AlreadyRunning {
        /// The runtime directory both would use.
        runtime_dir: PathBuf,
        /// The running daemon's pid, as it recorded it.
        pid: String,
    },
    /// The socket path does not fit in a socket address.
    #[error(
        "socket path {path} is {len} bytes; the limit is {MAX_SOCKET_PATH}: use a shorter XDG_RUNTIME_DIR"
    )]
    SocketPathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// A file-system or socket call failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ServeError + 'a {
    move |source| ServeError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Socket settings.
#[derive(Debug, Clone, Copy)]
pub struct SocketOptions {
    /// Mode of the socket file. Production uses 0600; tests may open it wider to prove that
    /// the peer-credential check holds on its own.
    pub mode: u32,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self { mode: 0o600 }
    }
}

/// Proof that this process is the one daemon for a runtime dir. Held for the daemon's life.
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    /// Creates the runtime dir (0700) and takes the lock, recording our pid in it.
    pub fn acquire(layout: &Layout) -> Result<Self, ServeError> {
        let dir = &layout.runtime_dir;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err("create runtime dir", dir))?;
        let path = layout.lock_file();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open lock file", &path))?;
        if file.try_lock().is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(ServeError::AlreadyRunning {
                runtime_dir: dir.clone(),
                pid: pid.trim().to_owned(),
            });
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .map_err(io_err("write lock file", &path))?;
        Ok(Self { _file: file })
    }
}

/// Binds the API socket. Requires the instance lock, so removing an old socket file is safe.
pub fn bind(
    layout: &Layout,
    _lock: &InstanceLock,
    options: SocketOptions,
) -> Result<UnixListener, ServeError> {
    let path = layout.socket();
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(ServeError::SocketPathTooLong { path, len });
    }
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!(socket = %path.display(), "removed a stale socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove stale socket", &path)(e)),
    }
    let listener = UnixListener::bind(&path).map_err(io_err("bind socket", &path))?;
    std::fs::set_permissions(&path, Permissions::from_mode(options.mode))
        .map_err(io_err("set mode of socket", &path))?;
    Ok(listener)
}

/// Serves the API until the context's shutdown signal fires, then removes the socket.
pub async fn serve(
    listener: UnixListener,
    ctx: DaemonContext,
    policy: AccessPolicy,
) -> Result<(), ServeError> {
    serve_with(listener, ctx, policy, crate::connection::Limits::default()).await
}

/// [`serve`] with explicit bounds on request heads (tests shorten the timeout).
pub async fn serve_with(
    listener: UnixListener,
    ctx: DaemonContext,
    policy: AccessPolicy,
    limits: crate::connection::Limits,
) -> Result<(), ServeError> {
    let socket = ctx.layout().socket();
    let shutdown = ctx.shutdown().clone();
    let app = crate::api::router(ctx, policy);
    tracing::info!(socket = %socket.display(), "listening");
    let mut connections = tokio::task::JoinSet::new();
    let result = loop {
        tokio::select! {
            () = shutdown.wait() => break Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(crate::connection::handle(stream, app.clone(), limits));
                }
                Err(e) if is_transient(&e) => {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => break Err(io_err("serve on", &socket)(e)),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };
    // No new connections; in-flight requests get a bounded time to finish.
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("in-flight requests did not finish in time; closing them");
        connections.abort_all();
    }
    if let Err(e) = std::fs::remove_file(&socket)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(socket = %socket.display(), error = %e, "could not remove socket");
    }
    tracing::info!("stopped");
    result
}

/// Accept errors that a busy server recovers from (out of fds, an aborted connection).
fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == nix::libc::EMFILE
            || code == nix::libc::ENFILE
            || code == nix::libc::ECONNABORTED
            || code == nix::libc::EINTR
            || code == nix::libc::ENOBUFS
            || code == nix::libc::ENOMEM
    )
}
