//! The error envelope: every failed request answers `{code, message, op_id}`.
//!
//! `code` is a closed set so clients can branch on it; `message` is for people; `op_id` ties
//! the error to the daemon's log lines and to a long operation when there is one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Machine-readable error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The named VM, image, kernel or operation does not exist.
    NotFound,
    /// A unique name is already taken.
    AlreadyExists,
    /// The request is malformed or a value breaks a rule.
    BadRequest,
    /// Client and daemon speak incompatible API versions.
    BadVersion,
    /// The caller may not use this daemon.
    Unauthorized,
    /// No such route or method.
    UnknownMethod,
    /// The request was valid but the work failed.
    OperationFailed,
    /// The feature exists in the API but this build cannot do it yet.
    Unavailable,
    /// The host lacks something banger needs (a VMM, the guest agent, privileges); the
    /// message names the fix.
    HostProblem,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 9] = [
        Self::NotFound,
        Self::AlreadyExists,
        Self::BadRequest,
        Self::BadVersion,
        Self::Unauthorized,
        Self::UnknownMethod,
        Self::OperationFailed,
        Self::Unavailable,
        Self::HostProblem,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::BadRequest => "bad_request",
            Self::BadVersion => "bad_version",
            Self::Unauthorized => "unauthorized",
            Self::UnknownMethod => "unknown_method",
            Self::OperationFailed => "operation_failed",
            Self::Unavailable => "unavailable",
            Self::HostProblem => "host_problem",
        }
    }

    /// The HTTP status that carries this code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::NotFound | Self::UnknownMethod => 404,
            Self::AlreadyExists => 409,
            Self::BadRequest => 400,
            Self::BadVersion => 426,
            Self::Unauthorized => 403,
            Self::OperationFailed => 500,
            Self::Unavailable => 501,
            Self::HostProblem => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What kind of failure.
    pub code: ErrorCode,
    /// Human-readable explanation, lowercase, naming the fix when there is one.
    pub message: String,
    /// The request's or operation's id, for the logs.
    pub op_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_as_snake_case() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
    }
}
