//! Waiting for a guest's sshd.
//!
//! A guest is ready for SSH when something on its port speaks first with an SSH identification
//! line (`SSH-2.0-…`, RFC 4253 §4.2), not merely when the TCP port accepts: a half-booted guest or
//! a forwarding proxy can accept and then close. [`wait_for_ssh`] polls with short connect and
//! read timeouts, reads at most 255 bytes per attempt (the RFC's limit for that line; servers may
//! send other lines before it), backs off from 50 ms to 500 ms between attempts, and never waits
//! past its deadline by more than one sub-second step. It sends nothing, so a successful wait
//! costs sshd one pre-authentication disconnect (well below OpenSSH's per-source penalties).
//!
//! It is blocking, plain `std`: the daemon (tokio) calls it through `spawn_blocking`, where one
//! thread for the wait costs nothing next to booting a VM.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// Longest identification exchange read per attempt (RFC 4253 §4.2 caps the line at 255 bytes).
pub const MAX_BANNER: usize = 255;

const MAX_STEP_TIMEOUT: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// A probe is one local TCP connect: cheap, while every interval of waiting between probes
/// can land on the boot's critical path, so the backoff stays short.
const MAX_BACKOFF: Duration = Duration::from_millis(100);
const MIN_TIMEOUT: Duration = Duration::from_millis(10);

/// Why one probe attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The TCP connection failed.
    #[error("cannot connect")]
    Connect(#[source] io::Error),
    /// Reading the banner failed or timed out.
    #[error("no ssh banner")]
    Read(#[source] io::Error),
    /// The peer closed the connection before sending a banner.
    #[error("connection closed before an ssh banner")]
    Closed,
    /// The peer sent something that is not an SSH identification line.
    #[error("not an ssh server: it sent {start:?}")]
    NotSsh {
        /// The start of what it sent.
        start: String,
    },
}

/// SSH did not become ready in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "ssh on {addr} did not answer within {:.1}s ({attempts} attempts)",
    waited.as_secs_f64()
)]
pub struct SshWaitError {
    /// The address probed.
    pub addr: SocketAddr,
    /// How long it waited.
    pub waited: Duration,
    /// How many attempts were made.
    pub attempts: u32,
    /// The last attempt's failure.
    #[source]
    pub last: ProbeError,
}

/// Polls `addr` until it sends an SSH banner; returns how long that took.
///
/// At least one attempt is made, even with a zero deadline.
pub fn wait_for_ssh(addr: SocketAddr, deadline: Duration) -> Result<Duration, SshWaitError> {
    let start = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    loop {
        let remaining = deadline.saturating_sub(start.elapsed());
        let step = remaining.clamp(MIN_TIMEOUT, MAX_STEP_TIMEOUT);
        attempts += 1;
        let last = match probe(addr, step) {
            Ok(()) => return Ok(start.elapsed()),
            Err(e) => e,
        };
        let remaining = deadline.saturating_sub(start.elapsed());
        if remaining.is_zero() {
            return Err(SshWaitError {
                addr,
                waited: start.elapsed(),
                attempts,
                last,
            });
        }
        thread::sleep(backoff.min(remaining));
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One attempt: connect within `timeout`, then wait up to `timeout` for an SSH banner.
pub fn probe(addr: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
    let timeout = timeout.max(MIN_TIMEOUT);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(ProbeError::Connect)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(ProbeError::Read)?;
    let mut buf = [0u8; MAX_BANNER];
    let mut len = 0;
    let read_until = Instant::now() + timeout;
    while len < buf.len() {
        let n = match stream.read(&mut buf[len..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ProbeError::Read(e)),
        };
        if n == 0 {
            return Err(closed_or_not_ssh(&buf[..len]));
        }
        len += n;
        if has_banner(&buf[..len]) {
            return Ok(());
        }
        // A peer dribbling bytes must not stretch the attempt past its timeout.
        let left = read_until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ProbeError::Read(io::ErrorKind::TimedOut.into()));
        }
        stream
            .set_read_timeout(Some(left.max(MIN_TIMEOUT)))
            .map_err(ProbeError::Read)?;
    }
    Err(closed_or_not_ssh(&buf[..len]))
}

/// Whether a complete line of `bytes` is an SSH identification line.
fn has_banner(bytes: &[u8]) -> bool {
    let mut lines = bytes.split(|&b| b == b'\n');
    // The piece after the last newline is incomplete.
    let _ = lines.next_back();
    lines.any(|l| l.starts_with(b"SSH-2.0-") || l.starts_with(b"SSH-1.99-"))
}

fn closed_or_not_ssh(bytes: &[u8]) -> ProbeError {
    if bytes.is_empty() {
        ProbeError::Closed
    } else {
        let text = String::from_utf8_lossy(bytes);
        ProbeError::NotSsh {
            start: text.chars().take(40).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn recognises_banners() {
        assert!(has_banner(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"));
        assert!(has_banner(b"hello\r\nSSH-2.0-x\r\n"));
        assert!(has_banner(b"SSH-1.99-old\n"));
        assert!(!has_banner(b"SSH-2.0-incomplete"));
        assert!(!has_banner(b"HTTP/1.1 400 Bad Request\r\n"));
        assert!(!has_banner(b"SSH-1.5-ancient\n"));
    }

    /// A one-shot server on loopback that writes `reply` to each connection and closes it.
    fn serve(reply: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let _ = conn.write_all(reply);
            }
        });
        addr
    }

    fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    }

    #[test]
    fn succeeds_on_a_banner() {
        let addr = serve(b"SSH-2.0-fake\r\n");
        let took = wait_for_ssh(addr, Duration::from_secs(5)).expect("ready");
        assert!(took < Duration::from_secs(5));
    }

    #[test]
    fn a_silent_listener_is_not_ssh() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let err = wait_for_ssh(addr, Duration::from_millis(300)).expect_err("not ready");
        assert!(matches!(err.last, ProbeError::Read(_)), "{err:?}");
        drop(listener);
    }

    #[test]
    fn another_protocol_is_not_ssh() {
        let addr = serve(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        let err = wait_for_ssh(addr, Duration::from_millis(300)).expect_err("not ready");
        assert!(matches!(err.last, ProbeError::NotSsh { .. }), "{err:?}");
        let addr = serve(b"");
        let err = wait_for_ssh(addr, Duration::from_millis(300)).expect_err("not ready");
        assert!(matches!(err.last, ProbeError::Closed), "{err:?}");
    }

    #[test]
    fn times_out_on_a_closed_port_within_bounds() {
        let addr = closed_port();
        let start = Instant::now();
        let err = wait_for_ssh(addr, Duration::from_secs(1)).expect_err("closed");
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(1), "{took:?}");
        assert!(took < Duration::from_secs(3), "bounded: {took:?}");
        assert!(err.attempts >= 2, "{err:?}");
        assert!(matches!(err.last, ProbeError::Connect(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&addr.to_string()), "{msg}");
        assert!(msg.contains("did not answer within "), "{msg}");
    }

    #[test]
    fn zero_deadline_still_tries_once() {
        let err = wait_for_ssh(closed_port(), Duration::ZERO).expect_err("closed");
        assert_eq!(err.attempts, 1);
    }
}
