//! The CLI's error type: every failure a command can return, each with its exit code.
//!
//! Commands return [`CliError`]; only `main` turns it into a message (see
//! [`crate::render::error`]) and an exit code ([`CliError::exit`], table in [`crate::exit`]).
//! Messages are lowercase, describe their own layer, and keep causes in `source` so the
//! renderer can print the chain once.

use std::io;
use std::path::PathBuf;

use banger_model::LayoutError;
use banger_proto::ErrorCode;

use crate::client::ApiError;
use crate::client::autostart::StartError;
use crate::exit::Exit;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments caught by the CLI's own validation.
    #[error("{0}")]
    Usage(String),
    /// The config file is invalid.
    #[error("invalid config: {}: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it: `field: reason` when the field is known.
        message: String,
    },
    /// The config file exists but cannot be read.
    #[error("cannot read config {}", path.display())]
    ConfigUnreadable {
        /// The config file.
        path: PathBuf,
        /// The read error.
        #[source]
        source: io::Error,
    },
    /// The state layout could not be resolved from the environment.
    #[error(transparent)]
    Layout(LayoutError),
    /// A command that changes the system install was run without root.
    #[error("this needs root: run `{hint}`")]
    NotRoot {
        /// The command line to run instead.
        hint: String,
    },
    /// A daemon API call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The on-demand daemon could not be started.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A system install's daemon is down; the CLI never starts that one itself.
    #[error(
        "bangerd is not running (no answer on {}); banger is installed as a system \
         service: see `banger system status`",
        socket.display()
    )]
    SystemDaemonDown {
        /// The system socket.
        socket: PathBuf,
    },
    /// The daemon went away while an operation was followed and could not be reached again;
    /// the message says what may exist and how to check.
    #[error("{0}")]
    DaemonLost(String),
    /// Writing to stdout failed (a closed pipe is not reported, see [`CliError::is_broken_pipe`]).
    #[error("cannot write output")]
    Output(#[source] io::Error),
    /// A local I/O step failed.
    #[error("{what}")]
    Io {
        /// What was being done, e.g. `cannot read /proc/meminfo`.
        what: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A step failed for a reason with no better category.
    #[error("{0}")]
    Failed(String),
    /// A command run in the guest exited with this code, or `doctor` found a failing check
    /// (exit 9, after printing its rows); banger exits with it, silently.
    #[error("exited with {0}")]
    Exited(u8),
}

impl CliError {
    /// The documented exit code for this error.
    pub fn exit(&self) -> Exit {
        match self {
            Self::Usage(_) | Self::Config { .. } | Self::ConfigUnreadable { .. } => Exit::Usage,
            Self::NotRoot { .. } => Exit::Denied,
            Self::Api(api) => match api {
                ApiError::Daemon(body) => Exit::from_code(body.code),
                ApiError::Denied { .. } => Exit::Denied,
                ApiError::Unexpected { .. } => Exit::Mismatch,
                ApiError::NotRunning { .. }
                | ApiError::Connect { .. }
                | ApiError::Http { .. }
                | ApiError::Timeout { .. } => Exit::NoDaemon,
            },
            Self::Start(_) | Self::SystemDaemonDown { .. } | Self::DaemonLost(_) => Exit::NoDaemon,
            Self::Layout(_) | Self::Output(_) | Self::Io { .. } | Self::Failed(_) => Exit::Failed,
            Self::Exited(_) => Exit::Failed,
        }
    }

    /// The daemon's error code, when the daemon produced this error.
    pub fn daemon_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api(ApiError::Daemon(body)) => Some(body.code),
            _ => None,
        }
    }

    /// The daemon's operation id, when there is one.
    pub fn op_id(&self) -> Option<&str> {
        match self {
            Self::Api(ApiError::Daemon(body)) if !body.op_id.is_empty() => Some(&body.op_id),
            _ => None,
        }
    }

    /// Whether stdout's reader went away (`banger vm ls | head`): not an error to report.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl From<banger_proto::ErrorBody> for CliError {
    fn from(body: banger_proto::ErrorBody) -> Self {
        Self::Api(ApiError::Daemon(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_proto::ErrorBody;

    fn daemon(code: ErrorCode) -> CliError {
        CliError::from(ErrorBody {
            code,
            message: "m".into(),
            op_id: "op-7".into(),
        })
    }

    #[test]
    fn exit_codes_follow_the_table() {
        assert_eq!(CliError::Usage("x".into()).exit().code(), 2);
        assert_eq!(
            CliError::Config {
                path: "/c".into(),
                message: "bad".into()
            }
            .exit()
            .code(),
            2
        );
        assert_eq!(daemon(ErrorCode::NotFound).exit().code(), 3);
        assert_eq!(daemon(ErrorCode::AlreadyExists).exit().code(), 4);
        assert_eq!(daemon(ErrorCode::Unauthorized).exit().code(), 5);
        assert_eq!(daemon(ErrorCode::BadVersion).exit().code(), 6);
        assert_eq!(daemon(ErrorCode::Unavailable).exit().code(), 7);
        assert_eq!(daemon(ErrorCode::OperationFailed).exit().code(), 1);
        let denied = CliError::Api(ApiError::Denied {
            socket: "/s".into(),
        });
        assert_eq!(denied.exit().code(), 5);
        let down = CliError::Api(ApiError::from_connect(
            "/s".into(),
            io::Error::from(io::ErrorKind::NotFound),
        ));
        assert_eq!(down.exit().code(), 8);
        let odd = CliError::Api(ApiError::Unexpected {
            method: "GET",
            path: "/v1/x".into(),
            status: 404,
            detail: "?".into(),
        });
        assert_eq!(odd.exit().code(), 6);
    }

    #[test]
    fn only_closed_stdout_is_a_broken_pipe() {
        let pipe = CliError::Output(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(pipe.is_broken_pipe());
        let full = CliError::Output(io::Error::from(io::ErrorKind::StorageFull));
        assert!(!full.is_broken_pipe());
    }

    #[test]
    fn op_ids_come_from_the_daemon() {
        assert_eq!(daemon(ErrorCode::NotFound).op_id(), Some("op-7"));
        assert_eq!(CliError::Usage("x".into()).op_id(), None);
    }
}
