//! What can go wrong talking to the daemon, sorted by what the caller does about it.
//!
//! The connect step splits socket errors three ways, because each has its own remedy:
//! [`ApiError::NotRunning`] (no socket, or nobody listening: start one), [`ApiError::Denied`]
//! (another user's daemon: never start one), and [`ApiError::Connect`] (anything else).

use std::io;
use std::path::PathBuf;

use banger_proto::ErrorBody;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The socket is missing or refuses connections: no daemon is running.
    #[error("bangerd is not running (no answer on {socket})")]
    NotRunning {
        /// The socket tried.
        socket: PathBuf,
        /// The connect error.
        #[source]
        source: io::Error,
    },
    /// `connect()` was refused by file permissions.
    #[error("permission denied on {socket}: the daemon belongs to another user")]
    Denied {
        /// The socket tried.
        socket: PathBuf,
    },
    /// Any other connect failure.
    #[error("cannot connect to bangerd at {socket}")]
    Connect {
        /// The socket tried.
        socket: PathBuf,
        /// The connect error.
        #[source]
        source: io::Error,
    },
    /// The HTTP exchange broke off.
    #[error("the connection to bangerd broke during {method} {path}")]
    Http {
        /// Request method.
        method: &'static str,
        /// Request path.
        path: String,
        /// The transport error.
        #[source]
        source: hyper::Error,
    },
    /// The daemon took too long.
    #[error("bangerd did not answer {method} {path} within {secs}s")]
    Timeout {
        /// Request method.
        method: &'static str,
        /// Request path.
        path: String,
        /// The limit.
        secs: u64,
    },
    /// The daemon answered with an error envelope.
    #[error("{}", .0.message)]
    Daemon(ErrorBody),
    /// The daemon answered something this client cannot read.
    #[error("unexpected answer from bangerd to {method} {path} (HTTP {status}): {detail}")]
    Unexpected {
        /// Request method.
        method: &'static str,
        /// Request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// What was wrong with it.
        detail: String,
    },
}

impl ApiError {
    /// Sorts a `connect()` error on `socket` into the three connect variants.
    pub fn from_connect(socket: PathBuf, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                Self::NotRunning { socket, source }
            }
            io::ErrorKind::PermissionDenied => Self::Denied { socket },
            _ => Self::Connect { socket, source },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sort(kind: io::ErrorKind) -> ApiError {
        ApiError::from_connect(PathBuf::from("/run/x.sock"), io::Error::from(kind))
    }

    #[test]
    fn connect_errors_sort_by_remedy() {
        assert!(matches!(
            sort(io::ErrorKind::NotFound),
            ApiError::NotRunning { .. }
        ));
        assert!(matches!(
            sort(io::ErrorKind::ConnectionRefused),
            ApiError::NotRunning { .. }
        ));
        let denied = sort(io::ErrorKind::PermissionDenied);
        assert!(matches!(denied, ApiError::Denied { .. }));
        assert_eq!(
            denied.to_string(),
            "permission denied on /run/x.sock: the daemon belongs to another user"
        );
        assert!(matches!(
            sort(io::ErrorKind::TimedOut),
            ApiError::Connect { .. }
        ));
    }
}
