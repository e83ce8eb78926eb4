//! Typed client of the daemon API.
//!
//! URLs come only from [`banger_proto::routes`], bodies only from proto/model types, so the
//! CLI cannot drift from what the daemon serves. A non-2xx answer is decoded as the
//! [`ErrorBody`] envelope; anything unreadable becomes [`ApiError::Unexpected`], which the CLI
//! reports as a client/daemon mismatch.
//!
//! [`connect`] finds (or starts) the daemon; [`autostart`] is the on-demand start itself.

pub mod autostart;
pub mod connect;
pub mod error;
mod transport;

use std::path::{Path, PathBuf};
use std::time::Duration;

use banger_proto::routes::{self, Route};
use banger_proto::{DaemonInfo, ErrorBody};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::ApiError;

/// Time allowed for one ordinary request. Long work is an operation and answers at once.
const REQUEST_LIMIT: Duration = Duration::from_secs(60);
/// Time allowed for a ping, which must be instant.
const PING_LIMIT: Duration = Duration::from_secs(5);

/// A client bound to one socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    /// An upper bound on every request's time, for callers that must stay quick.
    cap: Option<Duration>,
}

impl Client {
    /// A client for the daemon listening on `socket`.
    pub fn new(socket: PathBuf) -> Self {
        Self { socket, cap: None }
    }

    /// The same client with every request bounded by `cap` (shell completion must never
    /// keep a prompt waiting).
    pub fn capped(self, cap: Duration) -> Self {
        Self {
            cap: Some(cap),
            ..self
        }
    }

    fn limit(&self, wanted: Duration) -> Duration {
        self.cap.map_or(wanted, |cap| cap.min(wanted))
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET /v1/ping`.
    pub async fn ping(&self) -> Result<DaemonInfo, ApiError> {
        self.call(routes::PING, &[], None, PING_LIMIT).await
    }

    /// A `GET` route with its path parameters.
    pub async fn get<T: DeserializeOwned>(
        &self,
        route: Route,
        params: &[&str],
    ) -> Result<T, ApiError> {
        self.call(route, params, None, REQUEST_LIMIT).await
    }

    /// A `GET` of `route` at an explicit path (a filled template plus a query string).
    pub async fn get_path<T: DeserializeOwned>(
        &self,
        route: Route,
        path: &str,
    ) -> Result<T, ApiError> {
        let limit = self.limit(REQUEST_LIMIT);
        let answer = transport::exchange(&self.socket, route.method, path, None, limit).await?;
        decode(route.method, path, answer.status, &answer.body)
    }

    /// A route with a JSON body.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        route: Route,
        params: &[&str],
        body: &B,
    ) -> Result<T, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Unexpected {
            method: route.method,
            path: route.url(params),
            status: 0,
            detail: format!("cannot encode the request: {e}"),
        })?;
        self.call(route, params, Some(bytes), REQUEST_LIMIT).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        route: Route,
        params: &[&str],
        body: Option<Vec<u8>>,
        limit: Duration,
    ) -> Result<T, ApiError> {
        let path = route.url(params);
        let limit = self.limit(limit);
        let answer = transport::exchange(&self.socket, route.method, &path, body, limit).await?;
        decode(route.method, &path, answer.status, &answer.body)
    }
}

/// Turns a status and body into the expected value or the daemon's error.
fn decode<T: DeserializeOwned>(
    method: &'static str,
    path: &str,
    status: u16,
    body: &[u8],
) -> Result<T, ApiError> {
    let unexpected = |detail: String| ApiError::Unexpected {
        method,
        path: path.to_owned(),
        status,
        detail,
    };
    if (200..300).contains(&status) {
        return serde_json::from_slice(body)
            .map_err(|e| unexpected(format!("cannot read the answer: {e}")));
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => Err(ApiError::Daemon(error)),
        Err(_) => Err(unexpected(snippet(body))),
    }
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "empty body; is bangerd from another build?".to_owned();
    }
    let short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_proto::ErrorCode;

    #[test]
    fn success_bodies_decode() {
        let v: Vec<u32> = decode("GET", "/v1/x", 200, b"[1,2]").unwrap();
        assert_eq!(v, [1, 2]);
    }

    #[test]
    fn error_envelopes_become_daemon_errors() {
        let body = br#"{"code":"not_found","message":"no vm named \"x\"","op_id":"op-1"}"#;
        let err = decode::<Vec<u32>>("GET", "/v1/vms/x", 404, body).unwrap_err();
        match err {
            ApiError::Daemon(e) => {
                assert_eq!(e.code, ErrorCode::NotFound);
                assert_eq!(e.op_id, "op-1");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unreadable_answers_are_unexpected() {
        let err = decode::<Vec<u32>>("GET", "/v1/x", 200, b"{").unwrap_err();
        assert!(matches!(err, ApiError::Unexpected { status: 200, .. }));
        let err = decode::<Vec<u32>>("GET", "/v1/x", 404, b"").unwrap_err();
        assert!(err.to_string().contains("another build"), "{err}");
    }
}
