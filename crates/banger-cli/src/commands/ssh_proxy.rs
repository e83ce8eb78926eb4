//! `banger vm ssh-proxy HOST`: the `ProxyCommand` of banger's ssh_config.
//!
//! ssh runs it with the name it was given (`web.vm`); it asks the daemon for the VM's guest
//! address and relays bytes between its stdin/stdout and the guest's port 22, so `ssh NAME.vm`
//! needs no DNS. stdin is copied on a plain thread: a blocked read on a terminal or pipe cannot
//! be cancelled, and the process must be free to exit as soon as the guest closes the
//! connection.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use banger_model::{VmRecord, VmState};
use banger_proto::routes;

use crate::args::ssh_config::SshProxyArgs;
use crate::client::connect::connect_or_start;
use crate::context::Context;
use crate::error::CliError;
use crate::validate;

/// The guest's ssh port.
const SSH_PORT: u16 = 22;
/// How long to wait for the guest to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Relays stdin/stdout to the VM's ssh port until either side closes.
pub async fn run(args: &SshProxyArgs, ctx: &Context) -> Result<(), CliError> {
    let vm = vm_name(&args.host);
    validate::reference("vm", vm)?;
    let daemon = connect_or_start(ctx).await?;
    let record: VmRecord = daemon.client.get(routes::GET_VM, &[vm]).await?;
    if record.state != VmState::Running {
        return Err(CliError::Failed(format!(
            "VM {vm} is {}, not running: start it with `banger vm start {vm}`",
            record.state
        )));
    }
    let Some(ip) = record.guest_ip.as_deref() else {
        return Err(CliError::Failed(format!(
            "VM {vm} has no guest address yet: see `banger vm logs {vm}`"
        )));
    };
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| CliError::Failed(format!("VM {vm} has an invalid guest address {ip:?}")))?;
    let addr = SocketAddr::new(ip, SSH_PORT);
    let socket =
        TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|source| CliError::Io {
            what: format!("cannot connect to VM {vm} at {addr} (see `banger vm logs {vm}`)"),
            source,
        })?;
    let io_error = |what: &str, source| CliError::Io {
        what: what.to_owned(),
        source,
    };
    let mut to_guest = socket
        .try_clone()
        .map_err(|e| io_error("cannot duplicate the guest connection", e))?;
    // Not joined: the process exits when the guest side closes, even mid-read.
    std::thread::spawn(move || {
        let _ = copy(&mut io::stdin().lock(), &mut to_guest);
        let _ = to_guest.shutdown(Shutdown::Write);
    });
    let mut from_guest = socket;
    tokio::task::spawn_blocking(move || copy(&mut from_guest, &mut io::stdout().lock()))
        .await
        .map_err(|e| CliError::Failed(format!("the relay failed: {e}")))?
        .map_err(|e| io_error("cannot relay the guest connection", e))
}

/// The VM name in `host`: a trailing `.vm` stripped.
fn vm_name(host: &str) -> &str {
    host.strip_suffix(".vm").unwrap_or(host)
}

/// Copies until EOF, flushing after every read (ssh waits for each packet); a peer that went
/// away (broken pipe, reset) ends the copy normally.
fn copy(from: &mut impl Read, to: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if closed(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        match to.write_all(&buf[..n]).and_then(|()| to.flush()) {
            Ok(()) => {}
            Err(e) if closed(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_vm_suffix() {
        assert_eq!(vm_name("web.vm"), "web");
        assert_eq!(vm_name("web"), "web");
        assert_eq!(vm_name("a.vm.vm"), "a.vm");
    }

    #[test]
    fn copy_moves_every_byte() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        copy(&mut data.as_slice(), &mut out).expect("copy");
        assert_eq!(out, data);
    }
}
