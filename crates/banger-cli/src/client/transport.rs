//! One HTTP/1.1 exchange over the daemon's Unix socket.
//!
//! Each call opens its own connection: the CLI makes a handful of requests per run, so pooling
//! would buy nothing and a fresh connection never inherits a half-read response. Bodies are
//! capped ([`MAX_BODY`]) so a confused peer cannot make the CLI buffer without bound.

use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

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

/// Sends one request and reads the whole answer, within `limit`.
pub async fn exchange(
    socket: &Path,
    method: &'static str,
    path: &str,
    body: Option<Vec<u8>>,
    limit: Duration,
) -> Result<Answer, ApiError> {
    match tokio::time::timeout(limit, exchange_unbounded(socket, method, path, body)).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::Timeout {
            method,
            path: path.to_owned(),
            secs: limit.as_secs(),
        }),
    }
}

async fn exchange_unbounded(
    socket: &Path,
    method: &'static str,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<Answer, ApiError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| ApiError::from_connect(socket.to_path_buf(), e))?;
    let http = |source| ApiError::Http {
        method,
        path: path.to_owned(),
        source,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    // The connection future drives the socket; it ends when the exchange is done or the
    // sender is dropped. Its own errors surface through `send_request`.
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });

    let request = build_request(method, path, body).map_err(|detail| ApiError::Unexpected {
        method,
        path: path.to_owned(),
        status: 0,
        detail,
    })?;
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::Unexpected {
            method,
            path: path.to_owned(),
            status,
            detail: format!("cannot read the body: {e}"),
        })?
        .to_bytes();
    drop(sender);
    driver.abort();
    Ok(Answer { status, body })
}

fn build_request(
    method: &'static str,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<Request<Full<Bytes>>, String> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, "localhost")
        .header(ACCEPT, "application/json");
    if body.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())
}
