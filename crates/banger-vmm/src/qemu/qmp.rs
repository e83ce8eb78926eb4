//! A minimal QMP client: connect, negotiate capabilities, run one command.
//!
//! QMP speaks JSON lines on a Unix socket: a greeting, then `qmp_capabilities`, then commands
//! whose answers are `{"return": …}` or `{"error": …}`, interleaved with asynchronous events
//! that we skip. Every step is bounded by one timeout.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Why a QMP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// Socket I/O failed.
    #[error("qmp i/o")]
    Io(#[from] std::io::Error),
    /// QEMU answered with an error.
    #[error("qmp error: {0}")]
    Command(String),
    /// QEMU said something we could not read.
    #[error("qmp protocol: {0}")]
    Protocol(String),
    /// The exchange took too long.
    #[error("qmp did not answer within {0:?}")]
    Timeout(Duration),
}

/// Runs `command` (with optional arguments) and returns its `return` value.
pub async fn execute(
    socket: &Path,
    command: &str,
    arguments: Option<Value>,
    timeout: Duration,
) -> Result<Value, QmpError> {
    tokio::time::timeout(timeout, exchange(socket, command, arguments))
        .await
        .map_err(|_| QmpError::Timeout(timeout))?
}

async fn exchange(
    socket: &Path,
    command: &str,
    arguments: Option<Value>,
) -> Result<Value, QmpError> {
    let stream = UnixStream::connect(socket).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = next_json(&mut lines).await?;
    if greeting.get("QMP").is_none() {
        return Err(QmpError::Protocol(format!(
            "unexpected greeting {greeting}"
        )));
    }
    send(&mut write, &json!({"execute": "qmp_capabilities"})).await?;
    answer(&mut lines).await?;
    let mut request = json!({ "execute": command });
    if let Some(args) = arguments {
        request["arguments"] = args;
    }
    send(&mut write, &request).await?;
    answer(&mut lines).await
}

async fn send(write: &mut tokio::net::unix::OwnedWriteHalf, v: &Value) -> Result<(), QmpError> {
    let mut line = v.to_string();
    line.push('\n');
    write.write_all(line.as_bytes()).await?;
    Ok(())
}

type Lines = tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>;

async fn next_json(lines: &mut Lines) -> Result<Value, QmpError> {
    let line = lines
        .next_line()
        .await?
        .ok_or_else(|| QmpError::Protocol("connection closed".to_owned()))?;
    serde_json::from_str(&line).map_err(|e| QmpError::Protocol(format!("{e}: {line}")))
}

async fn answer(lines: &mut Lines) -> Result<Value, QmpError> {
    loop {
        let v = next_json(lines).await?;
        if let Some(ret) = v.get("return") {
            return Ok(ret.clone());
        }
        if let Some(err) = v.get("error") {
            let desc = err["desc"].as_str().unwrap_or("unknown error");
            return Err(QmpError::Command(desc.to_owned()));
        }
        // An event: skip it.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// A scripted QMP peer: greets, then answers each request with the next canned line(s).
    async fn fake(path: std::path::PathBuf, replies: Vec<&'static str>) -> Vec<String> {
        let listener = UnixListener::bind(&path).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write
            .write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        for reply in replies {
            let Some(line) = lines.next_line().await.unwrap() else {
                break;
            };
            seen.push(line);
            write.write_all(reply.as_bytes()).await.unwrap();
        }
        seen
    }

    #[tokio::test]
    async fn negotiates_and_skips_events() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qmp.sock");
        let server = tokio::spawn(fake(
            sock.clone(),
            vec![
                "{\"return\": {}}\n",
                "{\"event\": \"POWERDOWN\"}\n{\"return\": {\"status\": \"running\"}}\n",
            ],
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let ret = execute(&sock, "query-status", None, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(ret["status"], "running");
        let seen = server.await.unwrap();
        assert_eq!(seen[0], "{\"execute\":\"qmp_capabilities\"}");
        assert_eq!(seen[1], "{\"execute\":\"query-status\"}");
    }

    #[tokio::test]
    async fn surfaces_errors_and_timeouts() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qmp.sock");
        let server = tokio::spawn(fake(
            sock.clone(),
            vec![
                "{\"return\": {}}\n",
                "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}\n",
            ],
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = execute(&sock, "system_powerdown", None, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        server.await.unwrap();

        let silent = dir.path().join("silent.sock");
        let _listener = UnixListener::bind(&silent).unwrap();
        let err = execute(&silent, "quit", None, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, QmpError::Timeout(_)), "{err}");
    }
}
