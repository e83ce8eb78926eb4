//! The API socket's bounds on request heads, over a real socket: heads too long or too slow
//! get the error envelope (never a bare framework answer), and half-open connections are
//! closed instead of held.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use banger_daemon::SocketOptions;
use banger_daemon::access::AccessPolicy;
use banger_daemon::connection::Limits;
use common::TestDaemon;

async fn daemon(head_timeout: Duration) -> TestDaemon {
    let owner_uid = nix::unistd::geteuid().as_raw();
    TestDaemon::start_with(
        SocketOptions::default(),
        AccessPolicy { owner_uid },
        Limits {
            head_timeout,
            ..Limits::default()
        },
    )
    .await
}

/// Sends `bytes` and reads the whole answer: (status, JSON body).
async fn exchange(d: &TestDaemon, bytes: &[u8]) -> (u16, Value) {
    let mut stream = UnixStream::connect(d.socket()).await.expect("connect");
    // The server may answer (and close) before it has read everything we send.
    let _ = stream.write_all(bytes).await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

fn assert_envelope(body: &Value) {
    assert_eq!(body["code"], "bad_request", "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["op_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("op-")),
        "{body}"
    );
}

#[tokio::test]
async fn oversized_request_lines_and_heads_get_the_envelope() {
    let d = daemon(Duration::from_secs(10)).await;
    let long_uri = format!(
        "GET /v1/vms/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(20_000)
    );
    let (status, body) = exchange(&d, long_uri.as_bytes()).await;
    assert_eq!(status, 414, "{body}");
    assert_envelope(&body);

    let big_head = format!(
        "GET /v1/ping HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(100_000)
    );
    let (status, body) = exchange(&d, big_head.as_bytes()).await;
    assert_eq!(status, 431, "{body}");
    assert_envelope(&body);

    // An ordinary request still works.
    let (status, body) = exchange(&d, b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status, 200, "{body}");
    d.stop().await;
}

#[tokio::test]
async fn slow_and_half_open_connections_are_closed_after_the_head_timeout() {
    let d = daemon(Duration::from_millis(500)).await;
    let (status, body) = exchange(&d, b"GET /v1/ping HTTP/1.1\r\nHost:").await;
    assert_eq!(status, 408, "{body}");
    assert_envelope(&body);

    // Many connections that never send a byte: each is answered and closed, none is held.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(UnixStream::connect(d.socket()).await.expect("connect"));
    }
    let started = Instant::now();
    for mut stream in idle {
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("closed by the server")
            .expect("read");
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"));
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let (status, _) = exchange(&d, b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status, 200, "the daemon still serves");
    d.stop().await;
}
