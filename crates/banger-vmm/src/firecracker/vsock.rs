//! Host side of Firecracker's hybrid vsock: reaching a guest vsock port through the Unix
//! socket Firecracker listens on (`uds_path` of `PUT /vsock`).
//!
//! Why: banger's guest agent listens on a vsock port; the host has no AF_VSOCK route to a
//! Firecracker guest, only this Unix-socket proxy.
//!
//! Protocol (Firecracker's `docs/vsock.md` and its muxer): connect to `uds_path`, write
//! `CONNECT <port>\n`; Firecracker answers `OK <host_port>\n` once the guest accepted, then the
//! stream carries the guest connection's bytes. If nothing listens on the port (or the guest is
//! not up) Firecracker closes the stream without answering.
//!
//! Invariants: the whole handshake is bounded by the caller's timeout; the reply is read one
//! byte at a time up to [`MAX_REPLY_LINE`] bytes so no byte of the guest's stream is consumed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Longest acceptable reply line (`OK 4294967295\n` is 14 bytes; Firecracker's own request
/// buffer is 32).
pub const MAX_REPLY_LINE: usize = 32;

/// An established connection to a guest vsock port.
#[derive(Debug)]
pub struct HybridVsockConnection {
    /// The stream, positioned right after Firecracker's `OK` line.
    pub stream: UnixStream,
    /// The host-side port Firecracker assigned to this connection.
    pub host_port: u32,
}

/// Errors of the hybrid vsock handshake.
#[derive(Debug, thiserror::Error)]
pub enum VsockConnectError {
    /// The vsock Unix socket is missing or refuses (vsock not configured, Firecracker gone).
    #[error("cannot connect to the vsock socket {}", path.display())]
    Connect {
        /// The vsock Unix socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The `CONNECT` line could not be written.
    #[error("cannot send the connect request for vsock port {port}")]
    Send {
        /// Guest port.
        port: u32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The reply could not be read.
    #[error("cannot read the reply to the connect request for vsock port {port}")]
    Receive {
        /// Guest port.
        port: u32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Firecracker closed the stream without `OK`: nothing accepted on that guest port.
    #[error(
        "vsock port {port} refused the connection (nothing listens there, or the guest is not up)"
    )]
    Refused {
        /// Guest port.
        port: u32,
    },
    /// Anything but `OK <u32>\n`.
    #[error("unexpected reply {reply:?} to the connect request for vsock port {port}")]
    BadReply {
        /// Guest port.
        port: u32,
        /// What came back (lossy UTF-8, at most [`MAX_REPLY_LINE`] bytes).
        reply: String,
    },
    /// The handshake did not finish in time.
    #[error("vsock handshake for port {port} did not finish within {} ms", timeout.as_millis())]
    Timeout {
        /// Guest port.
        port: u32,
        /// The bound that expired.
        timeout: Duration,
    },
}

/// Connects to guest vsock `port` through the hybrid vsock socket at `uds_path`, within
/// `timeout`.
pub async fn connect(
    uds_path: &Path,
    port: u32,
    timeout: Duration,
) -> Result<HybridVsockConnection, VsockConnectError> {
    match tokio::time::timeout(timeout, handshake(uds_path, port)).await {
        Ok(result) => result,
        Err(_) => Err(VsockConnectError::Timeout { port, timeout }),
    }
}

async fn handshake(uds_path: &Path, port: u32) -> Result<HybridVsockConnection, VsockConnectError> {
    let mut stream =
        UnixStream::connect(uds_path)
            .await
            .map_err(|source| VsockConnectError::Connect {
                path: uds_path.to_path_buf(),
                source,
            })?;
    stream
        .write_all(format!("CONNECT {port}\n").as_bytes())
        .await
        .map_err(|source| VsockConnectError::Send { port, source })?;

    let mut line = Vec::with_capacity(16);
    loop {
        let mut byte = [0u8; 1];
        let n = stream
            .read(&mut byte)
            .await
            .map_err(|source| VsockConnectError::Receive { port, source })?;
        if n == 0 {
            if line.is_empty() {
                return Err(VsockConnectError::Refused { port });
            }
            return Err(bad_reply(port, &line));
        }
        line.push(byte[0]);
        if byte[0] == b'\n' {
            break;
        }
        if line.len() >= MAX_REPLY_LINE {
            return Err(bad_reply(port, &line));
        }
    }
    let host_port = parse_ok(&line).ok_or_else(|| bad_reply(port, &line))?;
    Ok(HybridVsockConnection { stream, host_port })
}

fn bad_reply(port: u32, line: &[u8]) -> VsockConnectError {
    VsockConnectError::BadReply {
        port,
        reply: String::from_utf8_lossy(line).into_owned(),
    }
}

/// Parses `OK <u32>\n`.
fn parse_ok(line: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(line).ok()?;
    let digits = text.strip_prefix("OK ")?.strip_suffix('\n')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_exact_ok_line() {
        assert_eq!(parse_ok(b"OK 1073741824\n"), Some(1 << 30));
        assert_eq!(parse_ok(b"OK 0\n"), Some(0));
        for bad in [
            &b"OK\n"[..],
            b"OK \n",
            b"ok 5\n",
            b"OK 5",
            b"OK +5\n",
            b"OK 99999999999\n",
            b"ERR 5\n",
        ] {
            assert_eq!(parse_ok(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
