//! `GET /ports`: the guest's listening sockets, read from `/proc/net/{tcp,tcp6,udp,udp6}`.
//!
//! Each table line is `sl local rem st …`, addresses as hex: an IPv4 address is the 32-bit
//! word the kernel stores (network byte order) printed as a native-endian number; an IPv6
//! address is four such words; the port is a plain hex number. A TCP socket listens when its
//! state is `0A` (`TCP_LISTEN`); a UDP socket waits for traffic when it is unconnected: state
//! `07` (`TCP_CLOSE`) and a zero remote end. Parsing is pure ([`parse_table`]); [`collect`] only
//! reads the four files, and a missing one (no IPv6 in the guest) just contributes nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::json::{self, Object};

/// Transport protocol of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// One socket waiting for traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Listening {
    /// Local port (sorts first, so lists read by port).
    pub port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Local address; unspecified (`0.0.0.0`, `::`) means every address.
    pub address: IpAddr,
}

/// `TCP_LISTEN` in `/proc/net/tcp*`.
const STATE_LISTEN: &str = "0A";
/// `TCP_CLOSE`: what an unconnected UDP socket shows.
const STATE_CLOSE: &str = "07";

/// The listening sockets in one `/proc/net/{tcp,tcp6,udp,udp6}` table. Lines that do not
/// parse (the header, anything unexpected) are skipped.
pub fn parse_table(text: &str, protocol: Protocol) -> Vec<Listening> {
    text.lines()
        .filter_map(|line| parse_line(line, protocol))
        .collect()
}

fn parse_line(line: &str, protocol: Protocol) -> Option<Listening> {
    let mut fields = line.split_whitespace();
    let slot = fields.next()?;
    if !slot.ends_with(':') {
        return None; // the header
    }
    let (local_addr, local_port) = parse_endpoint(fields.next()?)?;
    let (remote_addr, remote_port) = parse_endpoint(fields.next()?)?;
    let state = fields.next()?;
    let listening = match protocol {
        Protocol::Tcp => state.eq_ignore_ascii_case(STATE_LISTEN),
        Protocol::Udp => {
            state.eq_ignore_ascii_case(STATE_CLOSE)
                && remote_port == 0
                && remote_addr.is_unspecified()
        }
    };
    (listening && local_port != 0).then_some(Listening {
        port: local_port,
        protocol,
        address: local_addr,
    })
}

/// `0100007F:0016` → (127.0.0.1, 22); 32 hex digits of address for IPv6.
fn parse_endpoint(text: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let addr = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((addr, port))
}

/// One 32-bit word as the kernel printed it (`%08X` of the in-memory value), back to the
/// bytes it holds.
fn word(hex: &str) -> Option<[u8; 4]> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

/// Every listening socket under `proc_root` (normally `/proc`), sorted and without
/// duplicates.
pub fn collect(proc_root: &Path) -> Vec<Listening> {
    let tables = [
        ("net/tcp", Protocol::Tcp),
        ("net/tcp6", Protocol::Tcp),
        ("net/udp", Protocol::Udp),
        ("net/udp6", Protocol::Udp),
    ];
    let mut all: Vec<Listening> = tables
        .iter()
        .filter_map(|(rel, protocol)| {
            let text = std::fs::read_to_string(proc_root.join(rel)).ok()?;
            Some(parse_table(&text, *protocol))
        })
        .flatten()
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The body of `GET /ports`: `{"ports":[{"protocol":"tcp","address":"0.0.0.0","port":22},…]}`.
pub fn to_json(ports: &[Listening]) -> String {
    let items: Vec<String> = ports
        .iter()
        .map(|p| {
            Object::new()
                .str("protocol", p.protocol.as_str())
                .str("address", &p.address.to_string())
                .num("port", u64::from(p.port))
                .finish()
        })
        .collect();
    let mut out = String::from("{");
    json::push_str(&mut out, "ports");
    out.push_str(":[");
    out.push_str(&items.join(","));
    out.push_str("]}");
    out
}

// The fixtures are little-endian captures (the kernel prints addresses in host byte order).
#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    // Captured from a Debian guest (x86_64, little-endian) with sshd, a resolver stub and an
    // outgoing connection.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11723 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11800 1 0000000000000000 100 0 0 10 0
   2: 02001EAC:0016 01001EAC:D2F0 01 00000000:00000000 02:0009A8D3 00000000     0        0 11900 2 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11725 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11726 1 0000000000000000 100 0 0 10 0
";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 12001 2 0000000000000000 0
  200: 02001EAC:A1B2 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 12002 2 0000000000000000 0
";

    fn listening(protocol: Protocol, address: &str, port: u16) -> Listening {
        Listening {
            port,
            protocol,
            address: address.parse().expect("address"),
        }
    }

    #[test]
    fn tcp_keeps_only_listeners() {
        assert_eq!(
            parse_table(TCP, Protocol::Tcp),
            [
                listening(Protocol::Tcp, "0.0.0.0", 22),
                listening(Protocol::Tcp, "127.0.0.1", 8080),
            ]
        );
    }

    #[test]
    fn ipv6_words_are_decoded() {
        assert_eq!(
            parse_table(TCP6, Protocol::Tcp),
            [
                listening(Protocol::Tcp, "::", 22),
                listening(Protocol::Tcp, "::1", 631),
            ]
        );
    }

    #[test]
    fn udp_keeps_unconnected_sockets() {
        assert_eq!(
            parse_table(UDP, Protocol::Udp),
            [listening(Protocol::Udp, "127.0.0.53", 53)]
        );
    }

    #[test]
    fn garbage_is_skipped() {
        for text in [
            "",
            "nonsense",
            "0: zz:0016 00000000:0000 0A",
            "0: 00000000:0016 00000000:0000",
            "0: 0000:0016 00000000:0000 0A",
            "0: 00000000:99999 00000000:0000 0A",
            "0: 00000000:0000 00000000:0000 0A",
        ] {
            assert!(parse_table(text, Protocol::Tcp).is_empty(), "{text:?}");
        }
    }

    #[test]
    fn collect_reads_what_exists_sorted_and_deduplicated() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("net")).expect("mkdir");
        std::fs::write(dir.path().join("net/tcp"), format!("{TCP}{TCP}")).expect("write");
        std::fs::write(dir.path().join("net/udp"), UDP).expect("write");
        let ports = collect(dir.path());
        assert_eq!(
            ports,
            [
                listening(Protocol::Tcp, "0.0.0.0", 22),
                listening(Protocol::Udp, "127.0.0.53", 53),
                listening(Protocol::Tcp, "127.0.0.1", 8080),
            ]
        );
        let v: serde_json::Value = serde_json::from_str(&to_json(&ports)).expect("json");
        assert_eq!(
            v["ports"][0],
            serde_json::json!({"protocol": "tcp", "address": "0.0.0.0", "port": 22})
        );
        assert_eq!(v["ports"].as_array().map(Vec::len), Some(3));
        assert_eq!(to_json(&[]), r#"{"ports":[]}"#);
        assert!(collect(&dir.path().join("missing")).is_empty());
    }
}
