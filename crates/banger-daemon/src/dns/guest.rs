//! The guests' resolver: DNS on the bridge gateway, port 53, UDP and TCP.
//!
//! Guests boot with `banger.dns=<gateway>`, so their `/etc/resolv.conf` names this listener.
//! It answers `vm.` from the same [`Zone`] as the loopback listener (guests find each other by
//! name) and forwards every other query to the host's resolvers ([`forward`]), so whatever the
//! host resolves (VPN, split DNS) a guest resolves too.
//!
//! Invariants:
//! - Queries are forwarded only for guest addresses of the bridge subnet
//!   ([`banger_net::NetPlan::is_guest_address`]); anyone else gets `vm.` answers and REFUSED
//!   for the rest, so this is never an open resolver, even if the gateway address is reachable
//!   from elsewhere.
//! - At most [`MAX_FORWARDS`] forwarded queries and [`MAX_TCP`] TCP connections are in flight;
//!   beyond that a query gets SERVFAIL at once (UDP) or the connection is closed (TCP), so a
//!   guest flooding the resolver costs bounded memory and tasks. Each forward is bounded in
//!   time by [`forward::UPSTREAM_TIMEOUT`] per upstream.
//! - The sockets are bound when a VM's network stage has made the bridge, not at daemon start
//!   ([`GuestResolver::ensure_serving`]): a daemon that never runs a VM never holds port 53
//!   on a guest-subnet address (tests of the daemon binary run outside any namespace), and
//!   binding next to `ensure_bridge` keeps both privileged steps together. Binding port 53
//!   is privileged, so it goes through `NetOps::bind_guest_dns`: an unprivileged daemon gets
//!   the two sockets from the root helper and serves on them itself.
//!   Once bound the sockets stay: a socket bound to an address survives the address going
//!   away with the bridge and receives again when it comes back. `IP_FREEBIND`
//!   (`banger_net::dns_socket`) makes that bind independent of the address being up at that instant.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use banger_net::{NetOps, NetPlan};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use super::{Zone, forward, wire};
use crate::shutdown::Shutdown;

/// The port guests' resolvers use.
pub const PORT: u16 = banger_net::GUEST_DNS_PORT;
/// Forwarded queries in flight, at most.
pub const MAX_FORWARDS: usize = 64;
/// TCP connections open, at most.
pub const MAX_TCP: usize = 16;

/// The bound sockets.
pub struct GuestSockets {
    udp: UdpSocket,
    tcp: TcpListener,
}

/// Whether guests get a resolver, for logs and `daemon status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestListener {
    /// No VM has made the bridge since the daemon started: nothing is bound yet.
    NotYet(SocketAddr),
    /// Serving on this address.
    Serving(SocketAddr),
    /// The address cannot be bound (why, with the fix); tried again at the next VM start.
    Unavailable(String),
}

impl GuestListener {
    /// One line for `daemon status`.
    pub fn describe(&self) -> String {
        match self {
            Self::NotYet(addr) => format!(
                "not bound yet: guests' DNS is served on {addr} once a VM has made the bridge"
            ),
            Self::Serving(addr) => format!(
                "serving guests on {addr} (the vm zone, other names forwarded to the host's resolvers)"
            ),
            Self::Unavailable(why) => why.clone(),
        }
    }
}

/// The guests' resolver of one daemon: bound the first time a VM's network stage has made
/// the bridge ([`GuestResolver::ensure_serving`]), then served until shutdown.
pub struct GuestResolver {
    plan: NetPlan,
    resolver: Resolver,
    shutdown: Shutdown,
    state: std::sync::Mutex<GuestListener>,
    binding: tokio::sync::Mutex<()>,
}

impl GuestResolver {
    /// A resolver for the guests of `plan`'s bridge, answering from `zone` and forwarding to
    /// `upstreams`; nothing is bound until [`Self::ensure_serving`].
    pub fn new(
        plan: NetPlan,
        zone: Zone,
        upstreams: forward::Upstreams,
        shutdown: Shutdown,
    ) -> Self {
        let addr = SocketAddr::new(IpAddr::V4(plan.gateway()), PORT);
        Self {
            resolver: Resolver {
                zone,
                guests: Guests(plan.clone()),
                upstreams,
            },
            plan,
            shutdown,
            state: std::sync::Mutex::new(GuestListener::NotYet(addr)),
            binding: tokio::sync::Mutex::new(()),
        }
    }

    /// The listener's state.
    pub fn listener(&self) -> GuestListener {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Binds (through `net`: in-process as root, else the root helper hands the sockets
    /// over) and starts serving, unless already serving; a failure is kept (for `daemon
    /// status`) and logged, and tried again at the next call. Must run inside the runtime.
    pub async fn ensure_serving(&self, net: &dyn NetOps) {
        // One bind at a time: two VMs starting together must not both bind.
        let _binding = self.binding.lock().await;
        if matches!(self.listener(), GuestListener::Serving(_)) {
            return;
        }
        let (sockets, listener) = bind(&self.plan, net).await;
        if let (GuestListener::Serving(addr), Some(sockets)) = (&listener, sockets) {
            tracing::info!(guest_dns = %addr, "serving guests' DNS");
            tokio::spawn(serve(sockets, self.resolver.clone(), self.shutdown.clone()));
        } else if self.listener() != listener {
            tracing::warn!(reason = %listener.describe(), "guests get no resolver");
        }
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = listener;
    }
}

/// Binds the guests' resolver on the bridge gateway of `plan`, through `net`.
pub async fn bind(plan: &NetPlan, net: &dyn NetOps) -> (Option<GuestSockets>, GuestListener) {
    let addr = SocketAddr::new(IpAddr::V4(plan.gateway()), PORT);
    match net.bind_guest_dns(plan.gateway()).await {
        Ok(sockets) => {
            // What was bound, which a test backend may put elsewhere than the gateway.
            let bound = sockets.udp.local_addr().unwrap_or(addr);
            (
                Some(GuestSockets {
                    udp: sockets.udp,
                    tcp: sockets.tcp,
                }),
                GuestListener::Serving(bound),
            )
        }
        Err(e) if e.is_addr_in_use() => (
            None,
            GuestListener::Unavailable(format!(
                "{addr} is taken by another program, so guests get no resolver; find it with \
                 `ss -lunp 'sport = :{PORT}'` (a resolver bound to every address, like a \
                 default dnsmasq, needs `bind-interfaces` or `except-interface={}`)",
                plan.bridge
            )),
        ),
        Err(e) if e.is_permission_denied() => (
            None,
            GuestListener::Unavailable(format!(
                "cannot bind {addr} for guests' DNS ({}): port 53 needs root or the root \
                 helper (`sudo banger system install`); guests get no resolver",
                banger_util::chain(&e)
            )),
        ),
        Err(e) => (
            None,
            GuestListener::Unavailable(format!(
                "cannot bind {addr} for guests' DNS: {}",
                banger_util::chain(&e)
            )),
        ),
    }
}

/// Who may have queries forwarded: guest addresses of the bridge subnet.
#[derive(Debug, Clone)]
pub struct Guests(pub NetPlan);

impl Guests {
    /// Whether `peer` is a guest.
    pub fn contains(&self, peer: IpAddr) -> bool {
        let v4 = match peer {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        };
        v4.is_some_and(|ip: Ipv4Addr| self.0.is_guest_address(ip))
    }
}

/// What the resolver needs besides its sockets.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// Running VMs.
    pub zone: Zone,
    /// Who gets forwarding.
    pub guests: Guests,
    /// Where forwarded queries go.
    pub upstreams: forward::Upstreams,
}

/// Answers queries until `shutdown`.
pub async fn serve(sockets: GuestSockets, resolver: Resolver, shutdown: Shutdown) {
    let (udp, tcp) = match (
        tokio::net::UdpSocket::from_std(sockets.udp),
        tokio::net::TcpListener::from_std(sockets.tcp),
    ) {
        (Ok(u), Ok(t)) => (Arc::new(u), t),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot serve guests' DNS");
            return;
        }
    };
    let resolver = Arc::new(resolver);
    let forwards = Arc::new(Semaphore::new(MAX_FORWARDS));
    let connections = Arc::new(Semaphore::new(MAX_TCP));
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            received = udp.recv_from(&mut buf) => {
                let Ok((n, peer)) = received else { continue };
                let query = buf[..n].to_vec();
                if !(wire::wants_forwarding(&query) && resolver.guests.contains(peer.ip())) {
                    if let Some(reply) = wire::answer(&query, |name| resolver.zone.lookup(name)) {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                    continue;
                }
                let Ok(permit) = forwards.clone().try_acquire_owned() else {
                    if let Some(reply) = wire::error_reply(&query, wire::Rcode::ServFail) {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                    continue;
                };
                let (udp, resolver) = (udp.clone(), resolver.clone());
                tokio::spawn(async move {
                    let upstreams = resolver.upstreams.current();
                    let reply = match forward::udp(&query, &upstreams).await {
                        Some(reply) => Some(reply),
                        None => wire::error_reply(&query, wire::Rcode::ServFail),
                    };
                    if let Some(reply) = reply {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                    drop(permit);
                });
            }
            accepted = tcp.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    continue; // dropped: closed
                };
                let resolver = resolver.clone();
                tokio::spawn(async move {
                    serve_tcp(stream, peer.ip(), &resolver).await;
                    drop(permit);
                });
            }
        }
    }
}

/// One TCP connection: length-prefixed queries, each bounded in size and time.
async fn serve_tcp(mut stream: tokio::net::TcpStream, peer: IpAddr, resolver: &Resolver) {
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            let len = usize::from(stream.read_u16().await?);
            let mut query = vec![0u8; len];
            stream.read_exact(&mut query).await?;
            Ok::<_, std::io::Error>(query)
        })
        .await;
        let Ok(Ok(query)) = read else { return };
        let reply = if wire::wants_forwarding(&query) && resolver.guests.contains(peer) {
            match forward::tcp(&query, &resolver.upstreams.current()).await {
                Some(reply) => Some(reply),
                None => wire::error_reply(&query, wire::Rcode::ServFail),
            }
        } else {
            wire::answer(&query, |name| resolver.zone.lookup(name))
        };
        let Some(reply) = reply else { return };
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

    #[test]
    fn only_guest_addresses_get_forwarding() {
        let guests = Guests(NetPlan::default());
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(guests.contains(ip("172.30.0.2")));
        assert!(guests.contains(ip("::ffff:172.30.0.9")));
        assert!(
            !guests.contains(ip("172.30.0.1")),
            "the gateway is the host"
        );
        assert!(!guests.contains(ip("172.30.0.255")), "broadcast");
        assert!(!guests.contains(ip("172.30.1.2")));
        assert!(!guests.contains(ip("127.0.0.1")));
        assert!(!guests.contains(ip("198.51.100.7")));
    }

    async fn ask(from: &str, to: SocketAddr, name: &str) -> Option<(u8, bool, Vec<Ipv4Addr>)> {
        let client = tokio::net::UdpSocket::bind(from).await.expect("client");
        client
            .send_to(&wire::query_for(9, name), to)
            .await
            .expect("send");
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(10), client.recv(&mut buf))
            .await
            .expect("answered")
            .expect("recv");
        wire::read_answer(&buf[..n])
    }

    /// The whole listener on loopback: 127.0.0.0/24 plays the bridge subnet, so 127.0.0.2 is
    /// a guest and 127.0.0.1 (the "gateway") is not; a fake upstream answers NXDOMAIN.
    #[tokio::test]
    async fn guests_get_the_zone_and_forwarding_and_others_only_the_zone() {
        let (upstream, task) = forward::tests::fake_upstream(3).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("resolv.conf");
        std::fs::write(&conf, "nameserver 127.0.0.1\n").expect("write");
        let bound = banger_net::dns_socket::bind_dns_on("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let (udp, tcp) = (bound.udp, bound.tcp);
        let addr = udp.local_addr().expect("addr");
        let tcp_addr = tcp.local_addr().expect("addr");
        let zone = Zone::default();
        zone.insert("web", Ipv4Addr::new(127, 0, 0, 9));
        let resolver = Resolver {
            zone,
            guests: Guests(NetPlan::new("banger0", "127.0.0.0/24").expect("plan")),
            upstreams: forward::Upstreams::new(&conf, vec![addr]).on_port(upstream.port()),
        };
        let shutdown = Shutdown::new();
        let server = tokio::spawn(serve(GuestSockets { udp, tcp }, resolver, shutdown.clone()));

        assert_eq!(
            ask("127.0.0.2:0", addr, "web.vm").await,
            Some((0, true, vec![Ipv4Addr::new(127, 0, 0, 9)]))
        );
        assert_eq!(
            ask("127.0.0.2:0", addr, "pkg.example.test")
                .await
                .map(|r| r.0),
            Some(3),
            "a guest's query is forwarded and the upstream's answer relayed"
        );
        assert_eq!(
            ask("127.0.0.1:0", addr, "pkg.example.test")
                .await
                .map(|r| r.0),
            Some(5),
            "anyone else is refused"
        );
        assert_eq!(
            ask("127.0.0.1:0", addr, "web.vm").await.map(|r| r.1),
            Some(true),
            "but gets the zone"
        );

        // Over TCP, from a guest address.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.2:0".parse().expect("addr"))
            .expect("bind");
        let mut stream = socket.connect(tcp_addr).await.expect("connect");
        let q = wire::query_for(10, "pkg.example.test");
        stream
            .write_u16(u16::try_from(q.len()).expect("len"))
            .await
            .expect("len");
        stream.write_all(&q).await.expect("query");
        let len = usize::from(stream.read_u16().await.expect("len"));
        let mut reply = vec![0u8; len];
        stream.read_exact(&mut reply).await.expect("reply");
        assert_eq!(wire::read_answer(&reply).map(|r| r.0), Some(3));

        // No upstream left: SERVFAIL, not silence.
        std::fs::write(&conf, "# nothing\n").expect("rewrite");
        assert_eq!(
            ask("127.0.0.2:0", addr, "pkg.example.test")
                .await
                .map(|r| r.0),
            Some(2)
        );
        shutdown.trigger();
        server.await.expect("serve ends on shutdown");
        task.abort();
    }

    #[tokio::test]
    async fn the_backend_binds_and_a_refusal_names_the_fix() {
        let plan = NetPlan::new("banger0", "172.30.0.0/24").expect("plan");
        let net = banger_testkit::fakes::FakeNet::default();
        let (sockets, listener) = bind(&plan, &net).await;
        assert!(sockets.is_some());
        assert!(
            matches!(listener, GuestListener::Serving(a) if a.ip() == Ipv4Addr::LOCALHOST),
            "serving on what the backend bound: {listener:?}"
        );
        net.deny_all(true);
        let (sockets, listener) = bind(&plan, &net).await;
        assert!(sockets.is_none());
        let GuestListener::Unavailable(why) = listener else {
            panic!("{listener:?}");
        };
        assert!(
            why.contains("172.30.0.1:53") && why.contains("system install"),
            "{why}"
        );
    }
}
