//! One HTTP/1.1 exchange over the daemon's Unix socket.
//!
//! Each call opens its own connection: the CLI makes a handful of requests per run, so pooling
//! would buy nothing and a fresh connection never inherits a half-read response. Bodies are
//! capped ([`MAX_BODY`]) so a confused peer cannot make the CLI buffer without bound.

use std::path::Path;
use std::time::Duration;

use hyper::body::Bytes;

use super::error::ApiError;

/// Largest response body the CLI reads.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A raw answer: status and body bytes.
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The whole body.
    pub body: Bytes,
}

/// Sends one request and reads the whole answer, within `limit` (the exchange itself is
/// `banger_util::uds_http`, shared with the Firecracker client).
pub async fn exchange(
    socket: &Path,
    method: &'static str,
    path: &str,
    body: Option<Vec<u8>>,
    limit: Duration,
) -> Result<Answer, ApiError> {
    use banger_util::uds_http::{self, Call, ExchangeError};
    let call = Call {
        method,
        path,
        body: body.as_deref(),
    };
    let unexpected = |detail: String| ApiError::Unexpected {
        method,
        path: path.to_owned(),
        status: 0,
        detail,
    };
    match uds_http::exchange(socket, call, MAX_BODY, limit).await {
        Ok(answer) => Ok(Answer {
            status: answer.status,
            body: answer.body,
        }),
        Err(ExchangeError::Connect { socket, source }) => {
            Err(ApiError::from_connect(socket, source))
        }
        Err(ExchangeError::Http(source)) => Err(ApiError::Http {
            method,
            path: path.to_owned(),
            source,
        }),
        Err(ExchangeError::Timeout(_)) => Err(ApiError::Timeout {
            method,
            path: path.to_owned(),
            secs: limit.as_secs(),
        }),
        Err(e @ (ExchangeError::Request(_) | ExchangeError::ReadBody(_))) => {
            Err(unexpected(banger_util::chain(&e)))
        }
    }
}
