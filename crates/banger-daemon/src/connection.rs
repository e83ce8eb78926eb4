//! One API connection: its request head is read here, within bounds, before the router sees it.
//!
//! A client that never finishes its head (a half-open connection, a slow loris) must not hold
//! a connection forever, and a head too large for hyper would be refused by hyper itself with
//! a bare 414/431 that skips the error envelope. So each connection is handled like this:
//! 1. its peer credentials are read (for [`crate::access`]);
//! 2. the request head is read until its blank line — at most [`Limits::max_head`] bytes,
//!    within [`Limits::head_timeout`]; a longer request line is answered `414`, a longer
//!    head `431`, a slower one `408`, each with the `{code, message, op_id}` envelope;
//! 3. hyper serves the one request (no keep-alive: the CLI opens a connection per request),
//!    reading the head from what was buffered and the body from the socket.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::UnixStream;
use tower::ServiceExt;

use banger_proto::{ErrorBody, ErrorCode};

use crate::access::PeerCred;

/// Bounds on a request head.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest request line (method, path, version).
    pub max_request_line: usize,
    /// Longest head (request line and headers).
    pub max_head: usize,
    /// Time a client has, from connecting, to send its whole head.
    pub head_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_line: 8 * 1024,
            max_head: 32 * 1024,
            head_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    UriTooLong,
    HeadTooLarge,
    TooSlow,
}

impl Refusal {
    fn status(self) -> (u16, &'static str) {
        match self {
            Self::UriTooLong => (414, "URI Too Long"),
            Self::HeadTooLarge => (431, "Request Header Fields Too Large"),
            Self::TooSlow => (408, "Request Timeout"),
        }
    }

    fn message(self, limits: &Limits) -> String {
        match self {
            Self::UriTooLong => format!(
                "the request line is longer than {} bytes",
                limits.max_request_line
            ),
            Self::HeadTooLarge => {
                format!(
                    "the request headers are larger than {} bytes",
                    limits.max_head
                )
            }
            Self::TooSlow => format!(
                "the request headers did not arrive within {:?}",
                limits.head_timeout
            ),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Checks what has arrived so far: `Ok(true)` once the head is complete.
fn check_head(buf: &[u8], limits: &Limits) -> Result<bool, Refusal> {
    let line_end = find(buf, b"\r\n");
    if line_end.unwrap_or(buf.len()) > limits.max_request_line {
        return Err(Refusal::UriTooLong);
    }
    match find(buf, b"\r\n\r\n") {
        Some(end) if end + 4 <= limits.max_head => Ok(true),
        Some(_) => Err(Refusal::HeadTooLarge),
        None if buf.len() > limits.max_head => Err(Refusal::HeadTooLarge),
        None => Ok(false),
    }
}

/// Reads until the head is complete (or the peer closes); returns what was read.
async fn read_head(stream: &mut UnixStream, limits: &Limits) -> Result<Vec<u8>, Refusal> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            if check_head(&buf, limits)? {
                return Ok(());
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Ok(()), // closed: let hyper see what there is
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    match tokio::time::timeout(limits.head_timeout, read).await {
        Ok(Ok(())) => Ok(buf),
        Ok(Err(refusal)) => Err(refusal),
        Err(_) => Err(Refusal::TooSlow),
    }
}

async fn refuse(mut stream: UnixStream, refusal: Refusal, limits: &Limits) {
    let (status, reason) = refusal.status();
    let body = ErrorBody {
        code: ErrorCode::BadRequest,
        message: refusal.message(limits),
        op_id: crate::ids::op_id(),
    };
    tracing::warn!(status, req_id = %body.op_id, error = %body.message, "refused a request head");
    let json = serde_json::to_string(&body).unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        // Read (and drop) what the client is still sending before closing: closing a socket
        // with unread input resets it, and the client would lose the answer.
        let mut sink = [0u8; 8192];
        let mut left: usize = 1 << 20;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Serves one connection with `app`.
pub async fn handle(mut stream: UnixStream, app: axum::Router, limits: Limits) {
    let peer = match stream.peer_cred() {
        Ok(cred) => PeerCred {
            uid: Some(cred.uid()),
            pid: cred.pid(),
        },
        Err(_) => PeerCred {
            uid: None,
            pid: None,
        },
    };
    let head = match read_head(&mut stream, &limits).await {
        Ok(head) => head,
        Err(refusal) => return refuse(stream, refusal, &limits).await,
    };
    let io = TokioIo::new(Replay {
        head,
        at: 0,
        stream,
    });
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(io, service)
        .await
    {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The socket, with the head that was already read put back in front.
struct Replay {
    head: Vec<u8>,
    at: usize,
    stream: UnixStream,
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.head.len() {
            let n = buf.remaining().min(self.head.len() - self.at);
            let start = self.at;
            buf.put_slice(&self.head[start..start + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_checked_as_they_arrive() {
        let limits = Limits {
            max_request_line: 32,
            max_head: 64,
            head_timeout: Duration::from_secs(1),
        };
        assert_eq!(check_head(b"GET / HTTP/1.1\r\n", &limits), Ok(false));
        assert_eq!(
            check_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &limits),
            Ok(true)
        );
        let long_line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(40));
        assert_eq!(
            check_head(long_line.as_bytes(), &limits),
            Err(Refusal::UriTooLong)
        );
        let partial_long_line = "a".repeat(40);
        assert_eq!(
            check_head(partial_long_line.as_bytes(), &limits),
            Err(Refusal::UriTooLong)
        );
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "b".repeat(80));
        assert_eq!(
            check_head(big.as_bytes(), &limits),
            Err(Refusal::HeadTooLarge)
        );
    }
}
