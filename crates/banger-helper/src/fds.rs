//! Descriptors across the helper's socket: an answer line with sockets attached
//! (`SCM_RIGHTS`).
//!
//! Ancillary data rides on the bytes it was sent with, and a plain `read` of those bytes drops
//! it, so the answer that carries descriptors is written with one `sendmsg` (the whole line
//! and the descriptors) and read only with `recvmsg`, never through a buffered reader.
#![allow(unsafe_code)]

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use tokio::io::Interest;
use tokio::net::UnixStream;

use crate::wire::{MAX_LINE, WireError};

/// Most descriptors one answer carries.
pub const MAX_FDS: usize = 2;

/// Sends `line` (newline included) with `fds` attached.
pub async fn send_line_with_fds(
    stream: &UnixStream,
    line: &[u8],
    fds: &[RawFd],
) -> std::io::Result<()> {
    let mut sent = 0;
    while sent < line.len() {
        let rest = &line[sent..];
        // The descriptors go with the first bytes only.
        let attach = if sent == 0 { fds } else { &[] };
        let n = stream
            .async_io(Interest::WRITABLE, || {
                let cmsgs: &[ControlMessage] = if attach.is_empty() {
                    &[]
                } else {
                    &[ControlMessage::ScmRights(attach)]
                };
                sendmsg::<()>(
                    stream.as_raw_fd(),
                    &[IoSlice::new(rest)],
                    cmsgs,
                    MsgFlags::MSG_NOSIGNAL,
                    None,
                )
                .map_err(std::io::Error::from)
            })
            .await?;
        sent += n;
    }
    Ok(())
}

/// Reads one line with `recvmsg`, keeping every descriptor that arrives with it (closed on
/// exec, owned by the caller; closed again if the line is bad).
pub async fn recv_line_with_fds(stream: &UnixStream) -> Result<(Vec<u8>, Vec<OwnedFd>), WireError> {
    let mut line = Vec::new();
    let mut fds = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let (n, got) = stream
            .async_io(Interest::READABLE, || {
                let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
                let mut iov = [IoSliceMut::new(&mut buf)];
                let msg = recvmsg::<()>(
                    stream.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                )
                .map_err(std::io::Error::from)?;
                let mut got = Vec::new();
                for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(raw) = cmsg {
                        // SAFETY: the kernel just installed these descriptors in this
                        // process for this message; nothing else owns them.
                        got.extend(
                            raw.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                Ok((msg.bytes, got))
            })
            .await?;
        fds.extend(got);
        if n == 0 {
            return Err(WireError::Closed);
        }
        line.extend_from_slice(&buf[..n]);
        if line.last() == Some(&b'\n') {
            return Ok((line, fds));
        }
        if line.len() >= MAX_LINE {
            return Err(WireError::TooLong);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[tokio::test]
    async fn a_line_and_its_sockets_arrive_together_and_still_work() {
        let (a, b) = UnixStream::pair().expect("pair");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp");
        let udp_addr = udp.local_addr().expect("addr");
        send_line_with_fds(
            &a,
            b"{\"result\":\"sockets\"}\n",
            &[udp.as_fd().as_raw_fd(), tcp.as_fd().as_raw_fd()],
        )
        .await
        .expect("send");
        drop(udp);
        drop(tcp);
        let (line, fds) = recv_line_with_fds(&b).await.expect("recv");
        assert_eq!(line, b"{\"result\":\"sockets\"}\n");
        assert_eq!(fds.len(), 2);
        let mut fds = fds.into_iter();
        let received = std::net::UdpSocket::from(fds.next().expect("udp fd"));
        assert_eq!(received.local_addr().expect("addr"), udp_addr);
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("probe");
        probe.send_to(b"ping", udp_addr).expect("send");
        let mut buf = [0u8; 8];
        let (n, _) = received
            .recv_from(&mut buf)
            .expect("the handed-over socket receives");
        assert_eq!(&buf[..n], b"ping");
    }

    #[tokio::test]
    async fn a_peer_that_closes_early_is_closed_not_a_hang() {
        let (a, b) = UnixStream::pair().expect("pair");
        drop(a);
        let err = recv_line_with_fds(&b).await.expect_err("closed");
        assert!(matches!(err, WireError::Closed), "{err}");
    }
}
