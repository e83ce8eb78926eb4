//! The little of the DNS wire format (RFC 1035) an authoritative `vm.` zone needs.
//!
//! A query is parsed for its id, flags and first question; an answer echoes the question and
//! carries either one `A` record, or nothing (the name exists but has no such record), or an
//! authoritative NXDOMAIN — the last two with the zone's SOA in the authority section, so
//! resolvers cache the negative answer briefly. Names outside the zone are REFUSED by
//! [`answer`]; the guests' resolver ([`super::guest`]) forwards them instead when a guest asks
//! ([`wants_forwarding`]), and answers SERVFAIL ([`error_reply`]) when no upstream does. Every
//! function here is pure.

use std::net::Ipv4Addr;

/// The zone banger is authoritative for.
pub const ZONE: &str = "vm";
/// TTL of answers and of the SOA's negative caching, in seconds (VMs come and go).
pub const TTL: u32 = 5;

const TYPE_A: u16 = 1;
const TYPE_SOA: u16 = 6;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;

/// Response codes used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// NOERROR.
    NoError = 0,
    /// FORMERR: the query could not be read.
    FormErr = 1,
    /// SERVFAIL: the query could not be answered (no upstream answered a forwarded query).
    ServFail = 2,
    /// NXDOMAIN: no such name in the zone.
    NxDomain = 3,
    /// NOTIMP: not a standard query.
    NotImp = 4,
    /// REFUSED: not our zone.
    Refused = 5,
}

/// The parts of a query that decide the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Transaction id.
    pub id: u16,
    /// Recursion desired (echoed).
    pub rd: bool,
    /// Standard query (opcode 0).
    pub standard: bool,
    /// The question name, lowercase, without the trailing dot.
    pub name: String,
    /// The question's raw bytes (name, type, class), echoed in the answer.
    pub question: Vec<u8>,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
}

/// Parses a query; `None` for anything that is not a readable query with one question.
pub fn parse_query(packet: &[u8]) -> Option<Query> {
    if packet.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    if flags & 0x8000 != 0 {
        return None; // a response, not a query
    }
    let qdcount = u16::from_be_bytes([packet[4], packet[5]]);
    if qdcount != 1 {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*packet.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // no compression in questions we answer
        }
        let label = packet.get(at..at + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
        if at > 12 + 255 {
            return None;
        }
    }
    let qtype = u16::from_be_bytes([*packet.get(at)?, *packet.get(at + 1)?]);
    let qclass = u16::from_be_bytes([*packet.get(at + 2)?, *packet.get(at + 3)?]);
    Some(Query {
        id,
        rd: flags & 0x0100 != 0,
        standard: (flags >> 11) & 0xf == 0,
        name: labels.join("."),
        question: packet[12..at + 4].to_vec(),
        qtype,
        qclass,
    })
}

fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let bytes = label.as_bytes();
        out.push(u8::try_from(bytes.len().min(63)).unwrap_or(63));
        out.extend_from_slice(&bytes[..bytes.len().min(63)]);
    }
    out.push(0);
    out
}

fn soa_record() -> Vec<u8> {
    let mut rdata = encode_name(&format!("ns.{ZONE}"));
    rdata.extend(encode_name(&format!("hostmaster.{ZONE}")));
    for value in [1u32, 60, 30, 3600, TTL] {
        rdata.extend_from_slice(&value.to_be_bytes());
    }
    let mut rr = encode_name(ZONE);
    rr.extend_from_slice(&TYPE_SOA.to_be_bytes());
    rr.extend_from_slice(&CLASS_IN.to_be_bytes());
    rr.extend_from_slice(&TTL.to_be_bytes());
    rr.extend_from_slice(&u16::try_from(rdata.len()).unwrap_or(0).to_be_bytes());
    rr.extend(rdata);
    rr
}

fn header(id: u16, rd: bool, authoritative: bool, rcode: Rcode, counts: [u16; 4]) -> Vec<u8> {
    let mut flags: u16 = 0x8000 | (rcode as u16);
    if authoritative {
        flags |= 0x0400;
    }
    if rd {
        flags |= 0x0100;
    }
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out
}

/// The answer to `packet`, looking names up with `lookup` (a VM name without `.vm`). `None`
/// when the packet is too broken to answer at all (no header).
pub fn answer(packet: &[u8], lookup: impl Fn(&str) -> Option<Ipv4Addr>) -> Option<Vec<u8>> {
    let Some(query) = parse_query(packet) else {
        if packet.len() < 12 || packet[2] & 0x80 != 0 {
            return None;
        }
        let id = u16::from_be_bytes([packet[0], packet[1]]);
        return Some(header(id, false, false, Rcode::FormErr, [0; 4]));
    };
    let reply = |rcode, answers: Vec<Vec<u8>>, authority: Vec<Vec<u8>>, aa| {
        let counts = [
            1,
            u16::try_from(answers.len()).unwrap_or(0),
            u16::try_from(authority.len()).unwrap_or(0),
            0,
        ];
        let mut out = header(query.id, query.rd, aa, rcode, counts);
        out.extend_from_slice(&query.question);
        for rr in answers.into_iter().chain(authority) {
            out.extend(rr);
        }
        out
    };
    if !query.standard {
        return Some(reply(Rcode::NotImp, Vec::new(), Vec::new(), false));
    }
    if !in_zone(&query.name) || query.qclass != CLASS_IN {
        return Some(reply(Rcode::Refused, Vec::new(), Vec::new(), false));
    }
    if query.name == ZONE {
        let answers = if matches!(query.qtype, TYPE_SOA | TYPE_ANY) {
            vec![soa_record()]
        } else {
            Vec::new()
        };
        let authority = if answers.is_empty() {
            vec![soa_record()]
        } else {
            Vec::new()
        };
        return Some(reply(Rcode::NoError, answers, authority, true));
    }
    let vm = &query.name[..query.name.len() - ZONE.len() - 1];
    let Some(ip) = lookup(vm) else {
        return Some(reply(Rcode::NxDomain, Vec::new(), vec![soa_record()], true));
    };
    if matches!(query.qtype, TYPE_A | TYPE_ANY) {
        // The answer's name points back at the question (offset 12).
        let mut rr = vec![0xc0, 12];
        rr.extend_from_slice(&TYPE_A.to_be_bytes());
        rr.extend_from_slice(&CLASS_IN.to_be_bytes());
        rr.extend_from_slice(&TTL.to_be_bytes());
        rr.extend_from_slice(&4u16.to_be_bytes());
        rr.extend_from_slice(&ip.octets());
        Some(reply(Rcode::NoError, vec![rr], Vec::new(), true))
    } else {
        // The name exists, without this type (AAAA, MX, …).
        Some(reply(Rcode::NoError, Vec::new(), vec![soa_record()], true))
    }
}

/// Whether `name` (lowercase, no trailing dot) is in the `vm.` zone.
pub fn in_zone(name: &str) -> bool {
    name == ZONE || name.ends_with(&format!(".{ZONE}"))
}

/// Whether `packet` is a standard query for a name outside the zone: the kind a guest's
/// resolver forwards upstream. Everything else (the zone, broken packets, other opcodes) is
/// answered locally by [`answer`].
pub fn wants_forwarding(packet: &[u8]) -> bool {
    parse_query(packet).is_some_and(|q| q.standard && !in_zone(&q.name))
}

/// An empty answer with `rcode` to `packet`, echoing its question; `None` when it is not a
/// readable query.
pub fn error_reply(packet: &[u8], rcode: Rcode) -> Option<Vec<u8>> {
    let query = parse_query(packet)?;
    let mut out = header(query.id, query.rd, false, rcode, [1, 0, 0, 0]);
    out.extend_from_slice(&query.question);
    Some(out)
}

/// A query for `name` (type A), for probes and tests.
pub fn query_for(id: u16, name: &str) -> Vec<u8> {
    let mut out = header(id, true, false, Rcode::NoError, [1, 0, 0, 0]);
    out[2] &= 0x7f; // QR = 0: a query
    out.extend(encode_name(name));
    out.extend_from_slice(&TYPE_A.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// The parts of an answer tests and probes look at: (rcode, authoritative, A addresses).
pub fn read_answer(packet: &[u8]) -> Option<(u8, bool, Vec<Ipv4Addr>)> {
    if packet.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    let qdcount = u16::from_be_bytes([packet[4], packet[5]]);
    let ancount = u16::from_be_bytes([packet[6], packet[7]]);
    let mut at = 12;
    for _ in 0..qdcount {
        while *packet.get(at)? != 0 {
            at += 1 + usize::from(packet[at]);
        }
        at += 5;
    }
    let mut addrs = Vec::new();
    for _ in 0..ancount {
        if packet.get(at)? & 0xc0 == 0xc0 {
            at += 2;
        } else {
            while *packet.get(at)? != 0 {
                at += 1 + usize::from(packet[at]);
            }
            at += 1;
        }
        let rtype = u16::from_be_bytes([*packet.get(at)?, *packet.get(at + 1)?]);
        let rdlen = usize::from(u16::from_be_bytes([
            *packet.get(at + 8)?,
            *packet.get(at + 9)?,
        ]));
        at += 10;
        if rtype == TYPE_A && rdlen == 4 {
            let b = packet.get(at..at + 4)?;
            addrs.push(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        }
        at += rdlen;
    }
    Some(((flags & 0xf) as u8, flags & 0x0400 != 0, addrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<Ipv4Addr> {
        (name == "web").then_some(Ipv4Addr::new(172, 30, 0, 2))
    }

    #[test]
    fn answers_running_vms_and_nxdomains_the_rest_authoritatively() {
        let a = answer(&query_for(7, "web.vm"), lookup).expect("answer");
        assert_eq!(u16::from_be_bytes([a[0], a[1]]), 7, "the id is echoed");
        assert_eq!(
            read_answer(&a),
            Some((0, true, vec![Ipv4Addr::new(172, 30, 0, 2)]))
        );
        let a = answer(&query_for(8, "WEB.VM."), lookup).expect("answer");
        assert_eq!(
            read_answer(&a).map(|r| r.2.len()),
            Some(1),
            "case and trailing dot"
        );
        let a = answer(&query_for(9, "nope.vm"), lookup).expect("answer");
        assert_eq!(
            read_answer(&a),
            Some((3, true, vec![])),
            "authoritative NXDOMAIN"
        );
        let a = answer(&query_for(10, "example.com"), lookup).expect("answer");
        assert_eq!(
            read_answer(&a).map(|r| r.0),
            Some(5),
            "other zones are refused"
        );
        let a = answer(&query_for(11, "vm"), lookup).expect("answer");
        assert_eq!(read_answer(&a).map(|r| (r.0, r.1)), Some((0, true)));
    }

    #[test]
    fn other_types_of_a_known_name_are_nodata_and_garbage_is_handled() {
        let mut q = query_for(12, "web.vm");
        let n = q.len();
        q[n - 4..n - 2].copy_from_slice(&28u16.to_be_bytes()); // AAAA
        let a = answer(&q, lookup).expect("answer");
        assert_eq!(read_answer(&a), Some((0, true, vec![])));
        assert_eq!(answer(&[1, 2, 3], lookup), None, "no header, no answer");
        let mut broken = query_for(13, "web.vm");
        broken.truncate(15);
        let a = answer(&broken, lookup).expect("a FORMERR");
        assert_eq!(read_answer(&a).map(|r| r.0), Some(1));
        let parsed = parse_query(&query_for(14, "a.b.vm")).expect("parse");
        assert_eq!(parsed.name, "a.b.vm");
    }

    #[test]
    fn only_standard_queries_outside_the_zone_are_forwarded() {
        assert!(wants_forwarding(&query_for(1, "pkg.example.test")));
        assert!(!wants_forwarding(&query_for(2, "web.vm")));
        assert!(!wants_forwarding(&query_for(3, "vm")));
        assert!(
            wants_forwarding(&query_for(4, "myvm")),
            "a suffix is not the zone"
        );
        let mut notify = query_for(5, "example.com");
        notify[2] |= 4 << 3; // opcode NOTIFY
        assert!(!wants_forwarding(&notify));
        assert!(!wants_forwarding(&[0; 5]));
        let fail = error_reply(&query_for(6, "example.com"), Rcode::ServFail).expect("reply");
        assert_eq!(u16::from_be_bytes([fail[0], fail[1]]), 6);
        assert_eq!(read_answer(&fail), Some((2, false, vec![])));
        assert_eq!(error_reply(&[1, 2], Rcode::ServFail), None);
    }
}
