//! The guests' DNS sockets: UDP and TCP on the bridge gateway, port 53.
//!
//! Port 53 needs `CAP_NET_BIND_SERVICE`, so binding it is one of the privileged steps behind
//! [`crate::NetOps`]: a daemon running as root binds in-process, an unprivileged daemon asks
//! the root helper, which binds exactly these two sockets and hands the descriptors over. The
//! daemon then serves on them as the owner; no DNS code runs as root.
//!
//! Both sockets use `IP_FREEBIND`, so the bind does not depend on the gateway address being up
//! at that instant, and are non-blocking, ready for tokio.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

/// The port guests' resolvers use.
pub const GUEST_DNS_PORT: u16 = 53;

/// The bound sockets of the guests' resolver.
#[derive(Debug)]
pub struct GuestDnsSockets {
    /// Queries over UDP.
    pub udp: UdpSocket,
    /// Queries over TCP (listening).
    pub tcp: TcpListener,
}

/// Binds UDP and TCP on `gateway`, port [`GUEST_DNS_PORT`].
pub fn bind_guest_dns(gateway: Ipv4Addr) -> std::io::Result<GuestDnsSockets> {
    bind_dns_on(SocketAddr::from((gateway, GUEST_DNS_PORT)))
}

/// Binds UDP and TCP on `addr` (any port: `doctor` probes with it too).
pub fn bind_dns_on(addr: SocketAddr) -> std::io::Result<GuestDnsSockets> {
    use socket2::{Domain, Protocol, Socket, Type};
    let udp = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    udp.set_freebind_v4(true)?;
    udp.bind(&addr.into())?;
    let tcp = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    tcp.set_freebind_v4(true)?;
    tcp.set_reuse_address(true)?;
    tcp.bind(&addr.into())?;
    tcp.listen(64)?;
    udp.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    Ok(GuestDnsSockets {
        udp: udp.into(),
        tcp: tcp.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sockets_are_bound_on_the_same_address_and_non_blocking() {
        let sockets = bind_dns_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind");
        let udp = sockets.udp.local_addr().expect("udp addr");
        assert_eq!(udp.ip(), Ipv4Addr::LOCALHOST);
        let tcp = sockets.tcp.local_addr().expect("tcp addr");
        assert_eq!(tcp.ip(), Ipv4Addr::LOCALHOST);
        let mut buf = [0u8; 8];
        let err = sockets.udp.recv_from(&mut buf).expect_err("nothing sent");
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    }

    #[test]
    fn a_taken_address_is_addr_in_use() {
        let first = bind_dns_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind");
        let taken = first.udp.local_addr().expect("addr");
        let err = bind_dns_on(taken).expect_err("taken");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    }
}
