//! Checks of host networking: the bridge, the privilege to make TAPs, NAT tooling and the
//! DNS listener.
//!
//! The bridge is made by the first VM, so its absence is fine. Outbound NAT needs `nft`;
//! the DNS row says who answers on the daemon's DNS address (a probe for a random `*.vm`
//! name must get an authoritative NXDOMAIN to count as banger).

use std::path::Path;

use banger_proto::Check;

use super::probe::{self, Found};

/// Bit of `CAP_NET_ADMIN` in the capability sets.
const CAP_NET_ADMIN: u32 = 12;

/// What this group looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetFacts {
    /// The bridge's name (`banger0`).
    pub bridge: String,
    /// `/sys/class/net/<bridge>` exists.
    pub bridge_exists: bool,
    /// It is a bridge (`/sys/class/net/<bridge>/bridge` exists).
    pub bridge_is_bridge: bool,
    /// This process holds `CAP_NET_ADMIN` (`CapEff` in `/proc/self/status`), when readable.
    pub net_admin: Option<bool>,
    /// `nft`, and its version line.
    pub nft: Option<(String, Option<String>)>,
    /// Who answers on the DNS address.
    pub dns: DnsState,
}

/// Who answers on `127.0.0.1:42069`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsState {
    /// A banger daemon: a random `*.vm` name gets an authoritative NXDOMAIN.
    Banger,
    /// Nothing: the port is free (no daemon runs now).
    Free,
    /// Something else holds the port.
    Other,
}

impl DnsState {
    /// Probes the address without binding it for longer than the check.
    pub fn probe(addr: std::net::SocketAddr) -> Self {
        if banger_daemon::dns::server::probe_is_banger(addr) {
            return Self::Banger;
        }
        let free =
            std::net::UdpSocket::bind(addr).is_ok() && std::net::TcpListener::bind(addr).is_ok();
        if free { Self::Free } else { Self::Other }
    }
}

impl NetFacts {
    /// Probes this host.
    pub fn probe() -> Self {
        let bridge = banger_net::NetPlan::default().bridge;
        let sys = Path::new("/sys/class/net").join(&bridge);
        let nft = match probe::find("nft") {
            Found::Path(p) | Found::Sbin(p) => Some((p.display().to_string(), probe::version(&p))),
            Found::Missing => None,
        };
        Self {
            bridge_exists: sys.exists(),
            bridge_is_bridge: sys.join("bridge").is_dir(),
            bridge,
            net_admin: std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| has_net_admin(&s)),
            nft,
            dns: DnsState::probe(banger_daemon::dns::DEFAULT_ADDR),
        }
    }
}

/// Whether the `CapEff` line of a `/proc/self/status` text has `CAP_NET_ADMIN`.
pub fn has_net_admin(status: &str) -> Option<bool> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let caps = u64::from_str_radix(hex, 16).ok()?;
    Some(caps & (1 << CAP_NET_ADMIN) != 0)
}

/// `bridge`: there, missing (made by the first VM), or a non-bridge device with its name.
pub fn bridge(f: &NetFacts) -> Check {
    let name = &f.bridge;
    match (f.bridge_exists, f.bridge_is_bridge) {
        (true, true) => Check::ok("bridge", format!("{name} exists")),
        (false, _) => Check::ok(
            "bridge",
            format!("{name} does not exist yet (the first VM creates it)"),
        ),
        (true, false) => Check::fail(
            "bridge",
            format!("{name} exists but is not a bridge"),
            format!("remove or rename that device (`sudo ip link delete {name}`)"),
        ),
    }
}

/// `privileges`: can a daemon started here create the bridge and TAPs?
pub fn privileges(net_admin: Option<bool>) -> Check {
    match net_admin {
        Some(true) => Check::ok(
            "privileges",
            "CAP_NET_ADMIN held: a daemon started here can create the bridge and TAPs",
        ),
        Some(false) => Check::info(
            "privileges",
            "no CAP_NET_ADMIN: a daemon started by this user cannot create the bridge or TAPs, \
             so VM commands need `sudo banger …` in this build (the root helper is still to come)",
        )
        .with_fix("run VM commands with sudo"),
        None => Check::info(
            "privileges",
            "cannot read this process's capabilities; VM commands need CAP_NET_ADMIN",
        ),
    }
}

/// `nat`: outbound NAT (`--nat`) needs `nft`; banger's rules live in its own tables.
pub fn nat(nft: Option<&(String, Option<String>)>) -> Check {
    match nft {
        Some((path, version)) => Check::ok(
            "nat",
            format!(
                "{} found ({path}); --nat VMs are masqueraded through banger's own nftables \
                 tables (inet banger, bridge banger)",
                version.as_deref().unwrap_or("nft")
            ),
        ),
        None => Check::warn(
            "nat",
            "nft is not installed, so VMs created with --nat fail at the network stage",
            "install nftables: `sudo apt install nftables`",
        ),
    }
}

/// `dns`: who answers `NAME.vm` on the daemon's DNS address.
pub fn dns(state: DnsState) -> Check {
    let addr = banger_daemon::dns::DEFAULT_ADDR;
    match state {
        DnsState::Banger => Check::ok(
            "dns",
            format!("a banger daemon answers NAME.vm on {addr} (for running VMs)"),
        ),
        DnsState::Free => Check::info(
            "dns",
            format!("no daemon runs now; the next one serves NAME.vm on {addr}"),
        ),
        DnsState::Other => Check::warn(
            "dns",
            format!("{addr} is held by another program, so NAME.vm names are not served"),
            format!(
                "find it with `ss -lunp 'sport = :{}'` and stop it, then `banger daemon stop`",
                addr.port()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_proto::CheckStatus::{Fail, Info, Ok, Warn};

    fn facts(exists: bool, is_bridge: bool) -> NetFacts {
        NetFacts {
            bridge: "banger0".to_owned(),
            bridge_exists: exists,
            bridge_is_bridge: is_bridge,
            net_admin: Some(true),
            nft: None,
            dns: DnsState::Free,
        }
    }

    #[test]
    fn an_absent_bridge_is_fine_and_a_wrong_device_fails() {
        assert_eq!(bridge(&facts(true, true)).status, Ok);
        let absent = bridge(&facts(false, false));
        assert_eq!(absent.status, Ok);
        assert!(absent.detail.contains("first VM"), "{}", absent.detail);
        let wrong = bridge(&facts(true, false));
        assert_eq!(wrong.status, Fail);
        assert!(wrong.fix.is_some());
    }

    #[test]
    fn capabilities_come_from_cap_eff() {
        let root = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        let user = "CapEff:\t0000000000000000\n";
        assert_eq!(has_net_admin(root), Some(true));
        assert_eq!(has_net_admin(user), Some(false));
        assert_eq!(has_net_admin("nothing"), None);
        assert_eq!(privileges(Some(true)).status, Ok);
        assert!(privileges(Some(false)).detail.contains("sudo banger"));
    }

    #[test]
    fn nat_needs_nft_and_dns_says_it_is_not_built() {
        let found = (
            "/usr/sbin/nft".to_owned(),
            Some("nftables v1.0.6".to_owned()),
        );
        let c = nat(Some(&found));
        assert_eq!(c.status, Ok);
        assert!(
            c.detail.starts_with("nftables v1.0.6 found"),
            "{}",
            c.detail
        );
        let c = nat(None);
        assert_eq!(c.status, Warn);
        assert!(c.fix.as_deref().unwrap_or_default().contains("nftables"));
        assert_eq!(dns(DnsState::Banger).status, Ok);
        assert_eq!(dns(DnsState::Free).status, Info);
        let held = dns(DnsState::Other);
        assert_eq!(held.status, Warn);
        assert!(held.fix.as_deref().unwrap_or_default().contains("ss -lunp"));
    }
}
