//! Serving the zone over UDP and TCP, and finding out who holds the port when it is taken.
//!
//! Sockets are bound before the async runtime starts ([`bind`]), so the daemon knows (and
//! `daemon status` shows) whether it serves names. A port already taken by something that
//! answers a probe for a random `*.vm` name with an authoritative NXDOMAIN is another banger
//! daemon (say a system install beside a user one): that is reported as such, not as an error.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Zone, wire};
use crate::shutdown::Shutdown;

/// The bound sockets.
pub struct Sockets {
    udp: UdpSocket,
    tcp: TcpListener,
}

/// Whether the zone is served, for logs and `daemon status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listener {
    /// Serving on this address.
    Serving(SocketAddr),
    /// Another banger daemon answers there.
    Other(SocketAddr),
    /// The address is taken by something else, or cannot be bound.
    Unavailable(String),
}

impl Listener {
    /// One line for `daemon status`.
    pub fn describe(&self) -> String {
        match self {
            Self::Serving(addr) => format!("serving the vm zone on {addr}"),
            Self::Other(addr) => format!("another banger daemon serves the vm zone on {addr}"),
            Self::Unavailable(why) => why.clone(),
        }
    }
}

/// Binds UDP and TCP on `addr`; when taken, probes who holds it.
pub fn bind(addr: SocketAddr) -> (Option<Sockets>, Listener) {
    let udp = UdpSocket::bind(addr);
    let tcp = TcpListener::bind(addr);
    match (udp, tcp) {
        (Ok(udp), Ok(tcp)) => {
            let nonblocking = udp
                .set_nonblocking(true)
                .and_then(|()| tcp.set_nonblocking(true));
            match nonblocking {
                Ok(()) => (Some(Sockets { udp, tcp }), Listener::Serving(addr)),
                Err(e) => (
                    None,
                    Listener::Unavailable(format!("cannot serve DNS on {addr}: {e}")),
                ),
            }
        }
        (Err(e), _) | (_, Err(e)) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if probe_is_banger(addr) {
                (None, Listener::Other(addr))
            } else {
                (
                    None,
                    Listener::Unavailable(format!(
                        "{addr} is taken by another program, so NAME.vm names are not served; \
                         find it with `ss -lunp 'sport = :{}'`",
                        addr.port()
                    )),
                )
            }
        }
        (Err(e), _) | (_, Err(e)) => (
            None,
            Listener::Unavailable(format!("cannot serve DNS on {addr}: {e}")),
        ),
    }
}

/// Whether whatever answers on `addr` gives an authoritative NXDOMAIN for a random `*.vm`.
pub fn probe_is_banger(addr: SocketAddr) -> bool {
    let Ok(socket) = UdpSocket::bind((addr.ip(), 0)) else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_secs(1)));
    let name = format!("banger-probe-{}.vm", crate::ids::random_hex(6));
    if socket
        .send_to(&wire::query_for(0x6262, &name), addr)
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 512];
    match socket.recv(&mut buf) {
        Ok(n) => matches!(wire::read_answer(&buf[..n]), Some((3, true, _))),
        Err(_) => false,
    }
}

/// Answers queries until `shutdown`.
pub async fn serve(sockets: Sockets, zone: Zone, shutdown: Shutdown) {
    let (udp, tcp) = match (
        tokio::net::UdpSocket::from_std(sockets.udp),
        tokio::net::TcpListener::from_std(sockets.tcp),
    ) {
        (Ok(u), Ok(t)) => (u, t),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot serve DNS");
            return;
        }
    };
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            received = udp.recv_from(&mut buf) => {
                let Ok((n, peer)) = received else { continue };
                if let Some(reply) = wire::answer(&buf[..n], |name| zone.lookup(name)) {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
            accepted = tcp.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(serve_tcp(stream, zone.clone()));
                }
            }
        }
    }
}

/// One TCP connection: length-prefixed queries, each bounded in size and time.
async fn serve_tcp(mut stream: tokio::net::TcpStream, zone: Zone) {
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            let len = usize::from(stream.read_u16().await?);
            let mut query = vec![0u8; len];
            stream.read_exact(&mut query).await?;
            Ok::<_, std::io::Error>(query)
        })
        .await;
        let Ok(Ok(query)) = read else { return };
        let Some(reply) = wire::answer(&query, |name| zone.lookup(name)) else {
            return;
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        if stream.write_u16(len).await.is_err() || stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[tokio::test]
    async fn serves_udp_and_tcp_and_recognises_another_banger() {
        let (sockets, listener) = bind("127.0.0.1:0".parse().expect("addr"));
        let sockets = sockets.expect("bound");
        let addr = sockets.udp.local_addr().expect("addr");
        // TCP bound its own ephemeral port; rebind both on the UDP one for a fair test.
        drop(sockets);
        drop(listener);
        let (sockets, listener) = bind(addr);
        let Some(sockets) = sockets else {
            return; // the port was taken between the two binds: nothing to test here
        };
        assert_eq!(listener, Listener::Serving(addr));
        let zone = Zone::default();
        zone.insert("web", Ipv4Addr::new(172, 30, 0, 2));
        let shutdown = Shutdown::new();
        let task = tokio::spawn(serve(sockets, zone.clone(), shutdown.clone()));

        let client = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("client");
        client
            .send_to(&wire::query_for(1, "web.vm"), addr)
            .await
            .expect("send");
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
            .await
            .expect("answered")
            .expect("recv");
        assert_eq!(
            wire::read_answer(&buf[..n]),
            Some((0, true, vec![Ipv4Addr::new(172, 30, 0, 2)]))
        );

        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
        let q = wire::query_for(2, "gone.vm");
        tcp.write_u16(u16::try_from(q.len()).expect("len"))
            .await
            .expect("len");
        tcp.write_all(&q).await.expect("query");
        let len = usize::from(tcp.read_u16().await.expect("len"));
        let mut reply = vec![0u8; len];
        tcp.read_exact(&mut reply).await.expect("reply");
        assert_eq!(wire::read_answer(&reply), Some((3, true, vec![])));

        // A second daemon on the same address sees the first one as banger.
        let probe = tokio::task::spawn_blocking(move || bind(addr))
            .await
            .expect("probe");
        assert!(probe.0.is_none());
        assert_eq!(probe.1, Listener::Other(addr));

        shutdown.trigger();
        task.await.expect("serve ends on shutdown");
    }

    #[test]
    fn a_port_held_by_something_else_is_named() {
        let holder = UdpSocket::bind("127.0.0.1:0").expect("holder");
        let addr = holder.local_addr().expect("addr");
        let (sockets, listener) = bind(addr);
        assert!(sockets.is_none());
        match listener {
            Listener::Unavailable(why) => {
                assert!(why.contains("taken by another program"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}
