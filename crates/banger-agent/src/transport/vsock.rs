//! The AF_VSOCK transport (Firecracker).
//!
//! Firecracker exposes the guest's vsock to the host as a Unix socket ("hybrid vsock"): the host
//! writes `CONNECT 52\n` there and Firecracker connects to guest port [`VSOCK_PORT`]. The
//! agent listens on that port for any CID. The vsock transport is a kernel module in Debian's
//! cloud kernel, so the listener waits a bounded time for `/dev/vsock` (the initramfs loads the
//! module) and gives up, logged, when the guest has no vsock device (e.g. under QEMU).
//!
//! `nix::sys::socket::accept4` returns a raw fd, so this module needs one `unsafe` to take
//! ownership of it.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, Backlog, SockFlag, SockType, VsockAddr, setsockopt, sockopt,
};
use nix::sys::time::{TimeVal, TimeValLike};

use banger_guest::agent::VSOCK_PORT;

use super::{ConnLimit, IDLE_TIMEOUT};
use crate::api::{self, Api};
use crate::backoff::Backoff;
use crate::{http, log};

/// How many times to look for a vsock device (with backoff) before giving up: about 20 s.
const DEVICE_CHECKS: u32 = 25;
/// How many times to try binding before giving up.
const BIND_ATTEMPTS: u32 = 5;
/// Consecutive accept failures after which the listener is given up.
const MAX_ACCEPT_FAILURES: u32 = 100;

/// Whether the guest has a vsock transport: `/dev/vsock` exists or the module is loaded.
pub fn available() -> bool {
    Path::new("/dev/vsock").exists() || Path::new("/sys/module/vmw_vsock_virtio_transport").exists()
}

/// A listening vsock stream socket on `port`, any CID.
pub fn listen(port: u32) -> Result<OwnedFd, Errno> {
    let fd = socket::socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::bind(
        fd.as_raw_fd(),
        &VsockAddr::new(nix::libc::VMADDR_CID_ANY, port),
    )?;
    socket::listen(&fd, Backlog::new(16)?)?;
    Ok(fd)
}

/// Accepts one connection as a `File` (read/write on a socket fd), with the idle timeout set.
pub fn accept(listener: &OwnedFd) -> Result<File, Errno> {
    let raw = socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC)?;
    // SAFETY: accept4 just returned this fd; nothing else owns or closes it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let timeout =
        TimeVal::milliseconds(i64::try_from(IDLE_TIMEOUT.as_millis()).unwrap_or(i64::MAX));
    if let Err(e) = setsockopt(&fd, sockopt::ReceiveTimeout, &timeout) {
        log!("cannot set vsock read timeout: {e}");
    }
    Ok(File::from(fd))
}

/// Waits for a vsock device, binds, and accepts until that keeps failing.
pub fn run(api: Arc<Api>) {
    let mut wait = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    let mut checks = 0;
    while !available() {
        checks += 1;
        if checks >= DEVICE_CHECKS {
            log!("no vsock device; vsock transport disabled");
            return;
        }
        std::thread::sleep(wait.next_delay());
    }
    let mut retry = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
    let mut attempt = 0;
    let listener = loop {
        attempt += 1;
        match listen(VSOCK_PORT) {
            Ok(l) => break l,
            Err(e) if attempt < BIND_ATTEMPTS => {
                log!("vsock listen on port {} failed: {e}; retrying", VSOCK_PORT);
                std::thread::sleep(retry.next_delay());
            }
            Err(e) => {
                log!(
                    "vsock listen on port {} failed: {e}; vsock transport disabled",
                    VSOCK_PORT
                );
                return;
            }
        }
    };
    log!("api listening on vsock port {}", VSOCK_PORT);
    let limit = Arc::new(ConnLimit::default());
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
    let mut failures = 0;
    loop {
        match accept(&listener) {
            Ok(conn) => {
                failures = 0;
                backoff.reset();
                handle(conn, &api, &limit);
            }
            Err(Errno::EINTR | Errno::ECONNABORTED) => {}
            Err(e) => {
                failures += 1;
                log!("vsock accept failed: {e}");
                if failures >= MAX_ACCEPT_FAILURES {
                    log!("giving up the vsock listener");
                    return;
                }
                std::thread::sleep(backoff.next_delay());
            }
        }
    }
}

fn handle(conn: File, api: &Arc<Api>, limit: &Arc<ConnLimit>) {
    let Some(slot) = limit.acquire() else {
        let mut c = &conn;
        let _ = http::write_response(&mut c, &super::unix::busy());
        return;
    };
    let api = Arc::clone(api);
    super::spawn("agent-vsock-conn", move || {
        let _slot = slot;
        api::serve(&api, &conn, &conn, true);
    });
}
