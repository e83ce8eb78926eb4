//! The byte streams the API is served on, one thread per listener.
//!
//! - [`virtio`]: the QEMU virtio-serial port `banger.agent`, one long-lived stream that the host
//!   connects to and drops at will; reopened forever with backoff, never fatal;
//! - [`vsock`]: AF_VSOCK port 52, what Firecracker's hybrid vsock forwards `CONNECT 52` to;
//! - [`unix`]: a Unix socket (`--listen-unix`, for tests).
//!
//! Connection-oriented listeners serve each connection on its own thread, at most
//! [`MAX_CONNECTIONS`] at once, each closed after [`IDLE_TIMEOUT`] without a request. Nothing
//! here can end the process: failures are logged and retried or the listener is given up.

pub mod unix;
pub mod virtio;
pub mod vsock;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::api::Api;
use crate::log;

/// Most connections served at once per listener; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 16;

/// A connection without a request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Which transports to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transports {
    /// The guest transports: virtio-serial and vsock.
    Guest,
    /// Only a Unix socket at this path.
    Unix(PathBuf),
}

/// Counts live connections of one listener.
#[derive(Debug, Default)]
pub struct ConnLimit {
    live: AtomicUsize,
}

/// A slot taken from a [`ConnLimit`]; released on drop.
#[derive(Debug)]
pub struct ConnSlot {
    limit: Arc<ConnLimit>,
}

impl ConnLimit {
    /// Takes a slot, or `None` when [`MAX_CONNECTIONS`] are live.
    pub fn acquire(self: &Arc<Self>) -> Option<ConnSlot> {
        let prev = self.live.fetch_add(1, Ordering::SeqCst);
        if prev >= MAX_CONNECTIONS {
            self.live.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(ConnSlot {
            limit: Arc::clone(self),
        })
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.limit.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Spawns a named thread, logging (not failing) when that is impossible.
pub fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Option<JoinHandle<()>> {
    match std::thread::Builder::new().name(name.to_owned()).spawn(f) {
        Ok(h) => Some(h),
        Err(e) => {
            log!("cannot start thread {name}: {e}");
            None
        }
    }
}

/// Starts the requested transports; returns the threads that serve them.
///
/// A Unix socket is bound before this returns, so a caller may connect right away.
pub fn start(api: &Arc<Api>, which: &Transports) -> Vec<JoinHandle<()>> {
    let mut threads = Vec::new();
    match which {
        Transports::Unix(path) => match unix::bind(path) {
            Ok(listener) => {
                log!("api listening on unix:{}", path.display());
                let api = Arc::clone(api);
                threads.extend(spawn("agent-unix", move || unix::run(listener, api)));
            }
            Err(e) => log!("cannot listen on {}: {e}", path.display()),
        },
        Transports::Guest => {
            let a = Arc::clone(api);
            threads.extend(spawn("agent-virtio", move || virtio::run(a)));
            let a = Arc::clone(api);
            threads.extend(spawn("agent-vsock", move || vsock::run(a)));
        }
    }
    threads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_limit_caps_and_releases() {
        let limit = Arc::new(ConnLimit::default());
        let slots: Vec<_> = (0..MAX_CONNECTIONS)
            .map(|_| limit.acquire().expect("slot"))
            .collect();
        assert!(limit.acquire().is_none());
        drop(slots);
        assert!(limit.acquire().is_some());
    }
}
