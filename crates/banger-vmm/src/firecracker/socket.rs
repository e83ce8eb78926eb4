//! Waiting for a freshly spawned Firecracker to serve its API socket.
//!
//! Why: Firecracker creates and binds the socket some milliseconds after the process starts;
//! the first API call must not race it. Invariant: the wait is bounded, polls at
//! [`POLL_INTERVAL`], and always makes at least one attempt, so the error carries the last
//! reason a connection failed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::time::Instant;

/// Pause between two connection attempts.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The API socket did not accept a connection in time.
#[derive(Debug, thiserror::Error)]
#[error("firecracker api socket {} did not accept connections within {} ms", path.display(), timeout.as_millis())]
pub struct WaitForSocketError {
    /// The socket waited for.
    pub path: PathBuf,
    /// The bound that expired.
    pub timeout: Duration,
    /// Why the last attempt failed.
    #[source]
    pub last_error: std::io::Error,
}

/// Polls until a connection to `path` succeeds, for at most `timeout`.
pub async fn wait_for_api_socket(path: &Path, timeout: Duration) -> Result<(), WaitForSocketError> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let attempt = tokio::time::timeout(
            remaining.max(Duration::from_millis(1)),
            UnixStream::connect(path),
        )
        .await;
        let last_error = match attempt {
            Ok(Ok(_stream)) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connection attempt did not finish",
            ),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitForSocketError {
                path: path.to_path_buf(),
                timeout,
                last_error,
            });
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}
