//! Exit codes of `banger`, the contract scripts rely on.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (also: output closed early by the reader, e.g. `banger vm ls \| head`) |
//! | 1 | the operation failed, or another error |
//! | 2 | usage error: bad arguments, invalid config, or the daemon said `bad_request` |
//! | 3 | `not_found`: no such VM, image, kernel or operation |
//! | 4 | `already_exists`: the name is taken |
//! | 5 | `unauthorized`, permission denied on the daemon's socket, or a command that needs root (`system install`) |
//! | 6 | `bad_version` or `unknown_method`: client and daemon do not match |
//! | 7 | not available yet in this build (`unavailable`) |
//! | 8 | could not reach or start the daemon |
//! | 9 | `host_problem`: the host lacks something (a VMM, the guest agent, privileges); the message names the fix. Also `banger doctor` when a check failed |
//!
//! The same table is printed at the end of `banger --help` ([`HELP`]); a unit test keeps the
//! two in step. Daemon error codes map through [`Exit::from_code`], so every client of the API
//! gets the same number for the same failure.

use banger_proto::ErrorCode;

/// One documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok = 0,
    /// 1: the operation failed, or another error.
    Failed = 1,
    /// 2: usage error, invalid config or `bad_request`.
    Usage = 2,
    /// 3: `not_found`.
    NotFound = 3,
    /// 4: `already_exists`.
    AlreadyExists = 4,
    /// 5: `unauthorized` or permission denied on the socket.
    Denied = 5,
    /// 6: `bad_version` or `unknown_method`.
    Mismatch = 6,
    /// 7: not available yet in this build.
    NotAvailable = 7,
    /// 8: could not reach or start the daemon.
    NoDaemon = 8,
    /// 9: the host lacks something banger needs.
    HostProblem = 9,
}

impl Exit {
    /// The code that a daemon error code maps to.
    pub fn from_code(code: ErrorCode) -> Self {
        match code {
            ErrorCode::NotFound => Self::NotFound,
            ErrorCode::AlreadyExists => Self::AlreadyExists,
            ErrorCode::BadRequest => Self::Usage,
            ErrorCode::BadVersion | ErrorCode::UnknownMethod => Self::Mismatch,
            ErrorCode::Unauthorized => Self::Denied,
            ErrorCode::OperationFailed => Self::Failed,
            ErrorCode::Unavailable => Self::NotAvailable,
            ErrorCode::HostProblem => Self::HostProblem,
        }
    }

    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
    }
}

/// The exit-code table as shown in `banger --help`.
pub const HELP: &str = "\
Exit codes:
  0  success
  1  the operation failed, or another error
  2  usage error, invalid config, or bad_request
  3  not found
  4  already exists
  5  unauthorized, permission denied on the daemon socket, or a command that needs root
  6  client and daemon do not match (bad_version, unknown_method)
  7  not available yet in this build
  8  could not reach or start the daemon
  9  the host lacks something banger needs (a VMM, the guest agent, privileges),
     or `banger doctor` found a failing check";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_daemon_code_has_a_documented_exit() {
        let expected = [
            (ErrorCode::NotFound, 3),
            (ErrorCode::AlreadyExists, 4),
            (ErrorCode::BadRequest, 2),
            (ErrorCode::BadVersion, 6),
            (ErrorCode::Unauthorized, 5),
            (ErrorCode::UnknownMethod, 6),
            (ErrorCode::OperationFailed, 1),
            (ErrorCode::Unavailable, 7),
            (ErrorCode::HostProblem, 9),
        ];
        assert_eq!(expected.len(), ErrorCode::ALL.len());
        for (code, exit) in expected {
            assert_eq!(Exit::from_code(code).code(), exit, "{code}");
        }
    }

    #[test]
    fn help_lists_every_code() {
        let all = [
            Exit::Ok,
            Exit::Failed,
            Exit::Usage,
            Exit::NotFound,
            Exit::AlreadyExists,
            Exit::Denied,
            Exit::Mismatch,
            Exit::NotAvailable,
            Exit::NoDaemon,
            Exit::HostProblem,
        ];
        for exit in all {
            let line = format!("\n  {}  ", exit.code());
            assert!(HELP.contains(&line), "{exit:?} missing from help");
        }
    }
}
