//! The Unix-socket transport (`--listen-unix PATH`).
//!
//! Used by tests (and usable for local debugging inside a guest): the same API and serve loop as
//! the guest transports, over a socket a test can create in a temp dir without root.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{ConnLimit, IDLE_TIMEOUT};
use crate::api::{self, Api};
use crate::backoff::Backoff;
use crate::{http, log};

/// Consecutive accept failures after which the listener is given up.
const MAX_ACCEPT_FAILURES: u32 = 100;

/// Binds `path`, replacing a stale socket left by an earlier run (but never another file type).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_socket()
    {
        std::fs::remove_file(path)?;
    }
    UnixListener::bind(path)
}

/// Accepts connections until accepting keeps failing.
pub fn run(listener: UnixListener, api: Arc<Api>) {
    let limit = Arc::new(ConnLimit::default());
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
    let mut failures = 0;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                failures = 0;
                backoff.reset();
                handle(stream, &api, &limit);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                failures += 1;
                log!("unix accept failed: {e}");
                if failures >= MAX_ACCEPT_FAILURES {
                    log!("giving up the unix listener");
                    return;
                }
                std::thread::sleep(backoff.next_delay());
            }
        }
    }
}

fn handle(stream: UnixStream, api: &Arc<Api>, limit: &Arc<ConnLimit>) {
    let Some(slot) = limit.acquire() else {
        let mut s = &stream;
        let _ = http::write_response(&mut s, &busy());
        return;
    };
    if let Err(e) = stream.set_read_timeout(Some(IDLE_TIMEOUT)) {
        log!("cannot set unix read timeout: {e}");
    }
    let api = Arc::clone(api);
    super::spawn("agent-unix-conn", move || {
        let _slot = slot;
        api::serve(&api, &stream, &stream, true);
    });
}

/// The answer when too many connections are live.
pub fn busy() -> http::Response {
    let mut r = http::Response::json(
        503,
        api::error_body("busy", "too many connections to the agent"),
    );
    r.close = true;
    r
}
