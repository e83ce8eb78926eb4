//! The host side of the guest agent: HTTP/1.1 over whatever stream reaches it.
//!
//! QEMU exposes the agent's virtio-serial port as a Unix socket; Firecracker forwards a vsock
//! port through its hybrid-vsock socket. Either way we get a byte stream and speak one request
//! per connection. Every call is bounded by a timeout, because an agent that has not started
//! yet (or a guest that hangs) must never hang the daemon.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use banger_vmm::AgentEndpoint;

/// Why an agent call failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No answer in time.
    #[error("the agent did not answer within {0:?}")]
    Timeout(Duration),
    /// The stream failed.
    #[error("cannot reach the agent")]
    Io(#[from] std::io::Error),
    /// The answer was not the HTTP we expect.
    #[error("the agent answered something unreadable: {0}")]
    Protocol(String),
}

/// Sends one request without a body and returns `(status, JSON body)`.
pub async fn call(
    endpoint: &AgentEndpoint,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, Value), AgentError> {
    call_with_body(endpoint, method, path, b"", timeout).await
}

/// Sends one request with `body` and returns `(status, JSON body)`.
pub async fn call_with_body(
    endpoint: &AgentEndpoint,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, Value), AgentError> {
    tokio::time::timeout(timeout, async {
        match endpoint {
            AgentEndpoint::Serial { path: socket } => {
                let stream = UnixStream::connect(socket).await?;
                exchange(stream, method, path, body).await
            }
            AgentEndpoint::Vsock { path: socket, port } => {
                let conn = banger_vmm::firecracker::vsock::connect(socket, *port, timeout)
                    .await
                    .map_err(|e| AgentError::Protocol(e.to_string()))?;
                exchange(conn.stream, method, path, body).await
            }
        }
    })
    .await
    .map_err(|_| AgentError::Timeout(timeout))?
}

/// One request on a fresh connection. The virtio-serial port is a single long-lived stream
/// on the guest side, so a previous client's half-sent request may still sit in it: we send a
/// blank line first (the agent resynchronises on it), tag the request with an id the agent
/// echoes, and skip any answer that is not ours.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, Value), AgentError> {
    let id = crate::ids::random_hex(6);
    let request = format!(
        "\r\n\r\n{method} {path} HTTP/1.1\r\nHost: agent\r\nX-Request-Id: {id}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(head_end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let status = parse_status(&head)?;
            let length = content_length(&head);
            let body_start = head_end + 4;
            while buf.len() < body_start + length {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(AgentError::Protocol("body cut short".to_owned()));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[body_start..body_start + length].to_vec();
            buf.drain(..body_start + length);
            if header(&head, "x-request-id").is_some_and(|echoed| echoed != id) {
                continue; // an answer to someone else's request
            }
            let value = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| AgentError::Protocol(format!("body: {e}")))?
            };
            return Ok((status, value));
        }
        if buf.len() > 64 * 1024 {
            return Err(AgentError::Protocol("header too large".to_owned()));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(AgentError::Protocol("connection closed".to_owned()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_status(head: &str) -> Result<u16, AgentError> {
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().and_then(|s| s.parse().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => Ok(code),
        _ => Err(AgentError::Protocol(format!("status line {line:?}"))),
    }
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

fn content_length(head: &str) -> usize {
    header(head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    #[tokio::test]
    async fn reads_status_and_json_over_a_serial_socket() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = vec![0u8; 256];
            let n = s.read(&mut req).await.unwrap();
            let body = b"{\"status\":\"ok\",\"boot_id\":\"b1\"}";
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            // Split the answer to exercise partial reads.
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(&body[..5]).await.unwrap();
            s.write_all(&body[5..]).await.unwrap();
            String::from_utf8_lossy(&req[..n]).into_owned()
        });
        let endpoint = AgentEndpoint::Serial { path: sock };
        let (status, body) = call(&endpoint, "GET", "/healthz", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["boot_id"], "b1");
        let request = server.await.unwrap();
        assert!(
            request.starts_with("\r\n\r\nGET /healthz HTTP/1.1\r\n"),
            "a blank line resynchronises the agent first: {request:?}"
        );
        assert!(request.contains("X-Request-Id: "), "{request:?}");
    }

    #[tokio::test]
    async fn skips_answers_to_someone_elses_request() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = vec![0u8; 512];
            let n = s.read(&mut req).await.unwrap();
            let text = String::from_utf8_lossy(&req[..n]).into_owned();
            let id = header(&text, "x-request-id").unwrap().to_owned();
            let stale = "HTTP/1.1 400 Bad Request\r\nX-Request-Id: someone-else\r\nContent-Length: 2\r\n\r\n{}";
            let body = "{\"status\":\"ok\"}";
            let ours = format!(
                "HTTP/1.1 200 OK\r\nX-Request-Id: {id}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(stale.as_bytes()).await.unwrap();
            s.write_all(ours.as_bytes()).await.unwrap();
        });
        let endpoint = AgentEndpoint::Serial { path: sock };
        let (status, body) = call(&endpoint, "GET", "/healthz", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    }

    #[tokio::test]
    async fn silence_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let _listener = UnixListener::bind(&sock).unwrap();
        let endpoint = AgentEndpoint::Serial { path: sock };
        let err = call(&endpoint, "GET", "/healthz", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, AgentError::Timeout(_)), "{err}");
    }
}
