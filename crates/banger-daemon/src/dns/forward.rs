//! Forwarding guests' queries for names outside `vm.` to the host's own resolvers.
//!
//! The upstreams are the `nameserver` lines of the host's `/etc/resolv.conf`, read again for
//! every forwarded query (a small file, and the page cache holds it), so a VPN or a network
//! change on the host reaches guests at once, split DNS included. A query is relayed as it
//! came (same id, flags and EDNS options) to each upstream in turn until one answers; each try
//! is bounded ([`UPSTREAM_TIMEOUT`]) and at most [`MAX_UPSTREAMS`] are tried, as glibc does.
//! Truncated UDP answers are relayed truncated: the guest retries over TCP, which is relayed
//! over TCP.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one upstream may take to answer one query.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// How many upstreams are tried per query (glibc's `MAXNS`).
pub const MAX_UPSTREAMS: usize = 3;
/// The host's resolver configuration.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Where forwarded queries go: the servers named by a resolv.conf file, read when needed.
#[derive(Debug, Clone)]
pub struct Upstreams {
    resolv_conf: PathBuf,
    skip: Vec<SocketAddr>,
    port: u16,
}

impl Upstreams {
    /// The servers of `resolv_conf`, never including `skip` (banger's own listeners, so a host
    /// whose resolv.conf names the gateway cannot make a query loop).
    pub fn new(resolv_conf: impl Into<PathBuf>, skip: Vec<SocketAddr>) -> Self {
        Self {
            resolv_conf: resolv_conf.into(),
            skip,
            port: 53,
        }
    }

    /// The port the upstreams listen on: 53 (resolv.conf cannot name another); tests that
    /// stand in for upstreams on loopback use another.
    pub fn on_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The servers now, in resolv.conf order; empty when the file is missing or names none.
    pub fn current(&self) -> Vec<SocketAddr> {
        let text = std::fs::read_to_string(&self.resolv_conf).unwrap_or_default();
        banger_net::resolver::nameservers(&text)
            .iter()
            .filter_map(|s| s.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, self.port))
            .filter(|a| !self.skip.contains(a) && !a.ip().is_unspecified())
            .take(MAX_UPSTREAMS)
            .collect()
    }
}

fn query_id(packet: &[u8]) -> Option<[u8; 2]> {
    Some([*packet.first()?, *packet.get(1)?])
}

/// Whether `reply` answers the query with id `id`.
fn answers(reply: &[u8], id: [u8; 2]) -> bool {
    reply.len() >= 12 && reply[..2] == id && reply[2] & 0x80 != 0
}

/// The first answer any of `upstreams` gives to `query` over UDP.
pub async fn udp(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let id = query_id(query)?;
    for upstream in upstreams {
        let local = match upstream {
            SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        };
        let Ok(socket) = tokio::net::UdpSocket::bind(local).await else {
            continue;
        };
        if socket.connect(upstream).await.is_err() || socket.send(query).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        let reply = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
            loop {
                // A connected socket only sees the upstream's datagrams; skip stray ones.
                let n = socket.recv(&mut buf).await.ok()?;
                if answers(&buf[..n], id) {
                    return Some(buf[..n].to_vec());
                }
            }
        })
        .await;
        if let Ok(Some(reply)) = reply {
            return Some(reply);
        }
    }
    None
}

/// The first answer any of `upstreams` gives to `query` over TCP.
pub async fn tcp(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let id = query_id(query)?;
    let len = u16::try_from(query.len()).ok()?;
    for upstream in upstreams {
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(upstream).await.ok()?;
            stream.write_u16(len).await.ok()?;
            stream.write_all(query).await.ok()?;
            let n = usize::from(stream.read_u16().await.ok()?);
            let mut reply = vec![0u8; n];
            stream.read_exact(&mut reply).await.ok()?;
            answers(&reply, id).then_some(reply)
        };
        if let Ok(Some(reply)) = tokio::time::timeout(UPSTREAM_TIMEOUT, exchange).await {
            return Some(reply);
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dns::wire;

    #[test]
    fn upstreams_come_from_resolv_conf_at_each_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("resolv.conf");
        let own: SocketAddr = "172.30.0.1:53".parse().expect("addr");
        let upstreams = Upstreams::new(&path, vec![own]);
        assert!(upstreams.current().is_empty(), "no file, no upstream");
        std::fs::write(
            &path,
            "search lan\nnameserver 172.30.0.1\nnameserver 198.51.100.1\n# nameserver 9.9.9.9\n\
             nameserver fe80::1%eth0\nnameserver ::1\nnameserver 0.0.0.0\nnameserver 10.0.0.1\n\
             nameserver 10.0.0.2\n",
        )
        .expect("write");
        assert_eq!(
            upstreams.current(),
            [
                "198.51.100.1:53".parse().expect("a"),
                "[::1]:53".parse().expect("b"),
                "10.0.0.1:53".parse().expect("c"),
            ],
            "banger's own address, unparsable and unspecified servers are skipped; three at most"
        );
        std::fs::write(&path, "nameserver 127.0.0.1\n").expect("rewrite");
        assert_eq!(
            upstreams.current(),
            ["127.0.0.1:53".parse::<SocketAddr>().expect("d")],
            "a change is seen at the next query"
        );
    }

    /// A fake upstream on loopback that answers every query with its id and a fixed rcode.
    pub(crate) async fn fake_upstream(rcode: u8) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("udp");
        let addr = udp.local_addr().expect("addr");
        let tcp = tokio::net::TcpListener::bind(addr).await.expect("tcp");
        let answer = move |q: &[u8]| {
            let mut r = wire::error_reply(q, wire::Rcode::NoError).expect("query");
            r[3] = (r[3] & 0xf0) | rcode;
            r
        };
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                tokio::select! {
                    got = udp.recv_from(&mut buf) => {
                        let (n, peer) = got.expect("recv");
                        udp.send_to(&answer(&buf[..n]), peer).await.expect("send");
                    }
                    got = tcp.accept() => {
                        let (mut s, _) = got.expect("accept");
                        let n = usize::from(s.read_u16().await.expect("len"));
                        let mut q = vec![0; n];
                        s.read_exact(&mut q).await.expect("query");
                        let r = answer(&q);
                        s.write_u16(u16::try_from(r.len()).expect("len")).await.expect("len");
                        s.write_all(&r).await.expect("reply");
                    }
                }
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn queries_are_relayed_to_the_first_upstream_that_answers() {
        let (up, task) = fake_upstream(3).await;
        // A silent upstream first: its try times out, the next one answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("silent");
        let silent_addr = silent.local_addr().expect("addr");
        let query = wire::query_for(0x4242, "pkg.example.test");
        let reply = udp(&query, &[silent_addr, up]).await.expect("answered");
        assert_eq!(&reply[..2], &[0x42, 0x42]);
        assert_eq!(wire::read_answer(&reply).map(|r| r.0), Some(3));
        let reply = tcp(&query, &[up]).await.expect("answered over tcp");
        assert_eq!(wire::read_answer(&reply).map(|r| r.0), Some(3));
        assert_eq!(udp(&query, &[]).await, None, "no upstream, no answer");
        assert_eq!(udp(&query, &[silent_addr]).await, None);
        task.abort();
    }
}
