//! One HTTP/1.1 request over a Unix socket, bounded in time and size.
//!
//! The daemon's clients of Firecracker's API socket and the CLI's client of the daemon's socket
//! do the same thing: connect, hand the stream to hyper's low-level `client::conn::http1`, send
//! one JSON request, read the whole answer. This is that exchange, once.
//!
//! Invariants:
//! - every call opens its own connection (nothing pooled, so no call inherits a half-read
//!   answer) and is bounded as a whole (connect, send, read) by the caller's timeout;
//! - the connection driver is aborted when the call ends, including when the timeout drops it;
//! - answers are read up to the caller's byte limit;
//! - the status is returned as is: what counts as success is the caller's business.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// A raw answer: status and body bytes.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The whole body.
    pub body: Bytes,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The socket refused or does not exist.
    #[error("cannot connect to {}", socket.display())]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// Why the connection failed.
        #[source]
        source: std::io::Error,
    },
    /// The request could not be assembled (an invalid method or path).
    #[error("cannot build the request")]
    Request(#[source] hyper::http::Error),
    /// The HTTP exchange broke (connection reset, malformed answer).
    #[error("the http exchange failed")]
    Http(#[source] hyper::Error),
    /// The answer body could not be read (broken stream or over the limit).
    #[error("cannot read the answer body")]
    ReadBody(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No whole answer within the timeout.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
}

/// One request: method, path (with query) and an optional JSON body.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// HTTP method (`GET`, `PUT`, …).
    pub method: &'a str,
    /// Request target, e.g. `/v1/vms?all=true`.
    pub path: &'a str,
    /// JSON body, if any (sets `Content-Type: application/json`).
    pub body: Option<&'a [u8]>,
}

/// Sends `call` on a fresh connection to `socket` and reads the whole answer (at most
/// `max_body` bytes), all within `timeout`.
pub async fn exchange(
    socket: &Path,
    call: Call<'_>,
    max_body: usize,
    timeout: Duration,
) -> Result<Answer, ExchangeError> {
    match tokio::time::timeout(timeout, unbounded(socket, call, max_body)).await {
        Ok(result) => result,
        Err(_) => Err(ExchangeError::Timeout(timeout)),
    }
}

/// Aborts the connection driver when the call ends, including when its timeout drops it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn request(call: Call<'_>) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
    let method = Method::from_bytes(call.method.as_bytes()).map_err(hyper::http::Error::from)?;
    let mut builder = Request::builder()
        .method(method)
        .uri(call.path)
        .header(HOST, "localhost")
        .header(ACCEPT, "application/json");
    if call.body.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    builder.body(Full::new(Bytes::copy_from_slice(
        call.body.unwrap_or_default(),
    )))
}

async fn unbounded(
    socket: &Path,
    call: Call<'_>,
    max_body: usize,
) -> Result<Answer, ExchangeError> {
    let request = request(call).map_err(ExchangeError::Request)?;
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| ExchangeError::Connect {
            socket: socket.to_path_buf(),
            source,
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(ExchangeError::Http)?;
    // The driver moves bytes on the socket; its errors surface through `send_request`.
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let response = sender
        .send_request(request)
        .await
        .map_err(ExchangeError::Http)?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), max_body)
        .collect()
        .await
        .map_err(ExchangeError::ReadBody)?
        .to_bytes();
    Ok(Answer { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    /// A one-shot server answering `answer` to the first request, returning what it received.
    fn serve_once(socket: &Path, answer: &'static str) -> tokio::task::JoinHandle<String> {
        let listener = UnixListener::bind(socket).expect("bind");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut req = vec![0u8; 4096];
            let n = s.read(&mut req).await.expect("read");
            s.write_all(answer.as_bytes()).await.expect("write");
            String::from_utf8_lossy(&req[..n]).into_owned()
        })
    }

    #[tokio::test]
    async fn sends_json_and_reads_the_whole_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("api.sock");
        let server = serve_once(
            &sock,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
        );
        let call = Call {
            method: "PUT",
            path: "/x?y=1",
            body: Some(b"{}"),
        };
        let answer = exchange(&sock, call, 1024, Duration::from_secs(5))
            .await
            .expect("answer");
        assert_eq!(answer.status, 404);
        assert_eq!(&answer.body[..], b"{\"a\":1}");
        let seen = server.await.expect("server").to_ascii_lowercase();
        assert!(seen.starts_with("put /x?y=1 http/1.1\r\n"), "{seen}");
        assert!(seen.contains("host: localhost"), "{seen}");
        assert!(seen.contains("content-type: application/json"), "{seen}");
    }

    #[tokio::test]
    async fn failures_are_typed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.sock");
        let call = Call {
            method: "GET",
            path: "/",
            body: None,
        };
        let err = exchange(&missing, call, 16, Duration::from_secs(5)).await;
        assert!(matches!(err, Err(ExchangeError::Connect { .. })), "{err:?}");

        let silent = dir.path().join("silent.sock");
        let _listener = UnixListener::bind(&silent).expect("bind");
        let err = exchange(&silent, call, 16, Duration::from_millis(100)).await;
        assert!(matches!(err, Err(ExchangeError::Timeout(_))), "{err:?}");

        let big = dir.path().join("big.sock");
        let _server = serve_once(
            &big,
            "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234567890123456789",
        );
        let err = exchange(&big, call, 16, Duration::from_secs(5)).await;
        assert!(matches!(err, Err(ExchangeError::ReadBody(_))), "{err:?}");

        let bad = Call {
            method: "NOT A METHOD",
            ..call
        };
        let err = exchange(&big, bad, 16, Duration::from_secs(5)).await;
        assert!(matches!(err, Err(ExchangeError::Request(_))), "{err:?}");
    }
}
