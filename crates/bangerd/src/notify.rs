//! Telling systemd the daemon is ready (`Type=notify`): one `READY=1` datagram to
//! `$NOTIFY_SOCKET` once the socket is bound and running VMs are re-adopted, so `systemctl
//! start|restart bangerd` returns only when the CLI can talk to the daemon.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) this does nothing. VMMs the daemon starts inherit the
//! variable, harmlessly: the unit's `NotifyAccess=main` makes systemd listen to bangerd only.

use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `READY=1` when systemd asked for it; a failure is logged, never fatal.
pub fn ready() {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let target = target.to_string_lossy().into_owned();
    let result = (|| {
        let addr = match target.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
            None => SocketAddr::from_pathname(&target)?,
        };
        let socket = UnixDatagram::unbound()?;
        socket.send_to_addr(b"READY=1\n", &addr)
    })();
    if let Err(e) = result {
        tracing::warn!(socket = %target, error = %e, "cannot tell systemd the daemon is ready");
    }
}
