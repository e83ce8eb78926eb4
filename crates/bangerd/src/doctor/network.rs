//! Checks of host networking: the bridge, the privilege to make TAPs, NAT tooling, the DNS
//! listeners and the host resolver's routing of `*.vm`.
//!
//! The bridge is made by the first VM, so its absence is fine. Outbound NAT needs `nft`;
//! the DNS rows say who answers on the daemon's DNS addresses (a probe for a random `*.vm`
//! name must get an authoritative NXDOMAIN to count as banger). The guests' resolver is
//! probed only when the gateway address is on this host: a probe to an address that is not
//! would be routed away from it. Resolver routing is an `info` row wherever the host has no
//! resolver banger could route (ssh still reaches guests by name through its ProxyCommand),
//! and a warning only where the host runs dnsmasq or unbound without the one line that would
//! make `NAME.vm` work in every program.

use std::path::Path;

use banger_net::resolver::{self, HostResolver};
use banger_proto::Check;

use super::probe::{self, Found};
use crate::privilege::Privilege;

/// What this group looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetFacts {
    /// The bridge's name (`banger0`).
    pub bridge: String,
    /// `/sys/class/net/<bridge>` exists.
    pub bridge_exists: bool,
    /// It is a bridge (`/sys/class/net/<bridge>/bridge` exists).
    pub bridge_is_bridge: bool,
    /// Which backend a daemon started here would use for privileged steps.
    pub privilege: Privilege,
    /// `/dev/net/tun` opens read-write for this process (QEMU, running as this user, must open
    /// it to attach to its TAP).
    pub tun_opens: bool,
    /// `nft`, and its version line.
    pub nft: Option<(String, Option<String>)>,
    /// Who answers on the DNS address.
    pub dns: DnsState,
    /// Who answers on the guests' resolver address.
    pub guest_dns: GuestDnsState,
    /// The host's resolver.
    pub resolver: HostResolver,
}

/// Who holds the guests' resolver address (the gateway, port 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestDnsState {
    /// A banger daemon answers there.
    Banger,
    /// The port is free: no daemon runs now.
    Free,
    /// Bound by something (a running daemon binds before the bridge exists), but the gateway
    /// address is not on this host yet, so it cannot be asked.
    BoundNoBridge,
    /// The address is on this host and something other than banger holds the port.
    Other,
    /// This user may not bind port 53.
    Denied,
}

impl GuestDnsState {
    /// Probes `addr` (the gateway, port 53) without sending anything off this host.
    pub fn probe(addr: std::net::SocketAddr) -> Self {
        // Binding without IP_FREEBIND succeeds only for a local address.
        let local = std::net::UdpSocket::bind(std::net::SocketAddr::new(addr.ip(), 0)).is_ok();
        if local && banger_daemon::dns::server::probe_is_banger(addr) {
            return Self::Banger;
        }
        match banger_net::dns_socket::bind_dns_on(addr) {
            Ok(_) => Self::Free,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Self::Denied,
            Err(_) if local => Self::Other,
            Err(_) => Self::BoundNoBridge,
        }
    }
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
            privilege: Privilege::probe(),
            tun_opens: std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/net/tun")
                .is_ok(),
            nft,
            dns: DnsState::probe(banger_daemon::dns::DEFAULT_ADDR),
            guest_dns: GuestDnsState::probe(guest_dns_addr()),
            resolver: resolver::detect(Path::new("/")),
        }
    }
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

/// `privileges`: who would carry out a daemon's privileged steps (bridge, TAPs, NAT)?
pub fn privileges(privilege: &Privilege, tun_opens: bool) -> Check {
    match privilege {
        Privilege::Helper(_) if !tun_opens => Check::warn(
            "privileges",
            format!(
                "{}, but /dev/net/tun does not open for this user, so QEMU (running as you) \
                 cannot attach to its TAP",
                privilege.describe()
            ),
            "sudo chmod 0666 /dev/net/tun (the mode Debian's udev rules give it)",
        ),
        Privilege::InProcess => Check::ok(
            "privileges",
            "in-process root: a daemon started here runs as root and creates the bridge and \
             TAPs itself",
        ),
        Privilege::Helper(_) => Check::ok("privileges", privilege.describe()),
        Privilege::None(_) => {
            Check::warn("privileges", privilege.describe(), crate::privilege::FIX)
        }
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

/// Where guests' resolver listens: the gateway of the bridge, port 53.
fn guest_dns_addr() -> std::net::SocketAddr {
    std::net::SocketAddr::new(
        banger_net::NetPlan::default().gateway().into(),
        banger_daemon::dns::guest::PORT,
    )
}

/// `guest-dns`: the resolver guests' `/etc/resolv.conf` names.
pub fn guest_dns(state: GuestDnsState) -> Check {
    let addr = guest_dns_addr();
    match state {
        GuestDnsState::Banger => Check::ok(
            "guest-dns",
            format!(
                "a banger daemon serves guests' DNS on {addr} (NAME.vm, other names forwarded                  to this host's resolvers)"
            ),
        ),
        GuestDnsState::Free => Check::info(
            "guest-dns",
            format!("no daemon runs now; the next one serves guests' DNS on {addr}"),
        ),
        GuestDnsState::BoundNoBridge => Check::ok(
            "guest-dns",
            format!(
                "{addr} is bound (a daemon binds it before the bridge exists); guests get it once the first VM made the bridge"
            ),
        ),
        GuestDnsState::Other => Check::warn(
            "guest-dns",
            format!("{addr} is held by another program, so guests get no resolver"),
            format!(
                "find it with `ss -lunp 'sport = :53'`; a resolver listening on every address                  (like a default dnsmasq) needs `bind-interfaces` or `except-interface={}`",
                banger_net::NetPlan::default().bridge
            ),
        ),
        GuestDnsState::Denied => Check::info(
            "guest-dns",
            format!(
                "this user cannot bind {addr} itself (port 53 needs root): the daemon gets the \
                 socket from the root helper, so guests have a resolver where the helper runs \
                 (see the privileges row)"
            ),
        ),
    }
}

/// `resolver-routing`: does the host's resolver send `*.vm` to banger?
pub fn resolver_routing(host: &HostResolver) -> Check {
    let addr = banger_daemon::dns::DEFAULT_ADDR;
    let zone = banger_daemon::dns::wire::ZONE;
    let hint = resolver::config_hint(host, zone, addr).unwrap_or_default();
    let ssh = "ssh reaches NAME.vm through banger's ProxyCommand (`banger ssh-config`)";
    match host {
        HostResolver::SystemdResolved => Check::ok(
            "resolver-routing",
            format!(
                "systemd-resolved: banger routes ~{zone} to its guests' resolver on the bridge                  link whenever it creates the bridge"
            ),
        ),
        HostResolver::Dnsmasq { routed: true } | HostResolver::Unbound { routed: true } => {
            Check::ok(
                "resolver-routing",
                format!("the host's resolver sends *.{zone} to banger ({addr})"),
            )
        }
        HostResolver::Dnsmasq { routed: false } => Check::warn(
            "resolver-routing",
            format!("dnsmasq answers this host's queries but does not know *.{zone}; {ssh}"),
            hint,
        ),
        HostResolver::Unbound { routed: false } => Check::warn(
            "resolver-routing",
            format!("unbound answers this host's queries but does not know *.{zone}; {ssh}"),
            hint,
        ),
        HostResolver::OtherLocal(server) => Check::info(
            "resolver-routing",
            format!(
                "this host's resolver ({server}) is not one banger knows how to route; {ssh};                  other programs need *.{zone} sent to {addr}"
            ),
        )
        .with_fix(hint),
        HostResolver::Plain => Check::info(
            "resolver-routing",
            format!(
                "no local resolver (/etc/resolv.conf names remote servers only); {ssh}; other                  programs need a local resolver that sends *.{zone} to {addr}"
            ),
        )
        .with_fix(hint),
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
            privilege: Privilege::InProcess,
            tun_opens: true,
            nft: None,
            dns: DnsState::Free,
            guest_dns: GuestDnsState::Free,
            resolver: HostResolver::Plain,
        }
    }

    #[test]
    fn guest_dns_is_fine_when_served_or_pending_and_named_when_held() {
        assert_eq!(guest_dns(GuestDnsState::Banger).status, Ok);
        assert_eq!(guest_dns(GuestDnsState::BoundNoBridge).status, Ok);
        assert_eq!(guest_dns(GuestDnsState::Free).status, Info);
        assert_eq!(guest_dns(GuestDnsState::Denied).status, Info);
        let held = guest_dns(GuestDnsState::Other);
        assert_eq!(held.status, Warn);
        assert!(
            held.fix
                .as_deref()
                .unwrap_or_default()
                .contains("bind-interfaces")
        );
    }

    #[test]
    fn resolver_routing_warns_only_where_one_line_would_fix_it() {
        assert_eq!(resolver_routing(&HostResolver::SystemdResolved).status, Ok);
        assert_eq!(
            resolver_routing(&HostResolver::Dnsmasq { routed: true }).status,
            Ok
        );
        let dnsmasq = resolver_routing(&HostResolver::Dnsmasq { routed: false });
        assert_eq!(dnsmasq.status, Warn);
        assert!(
            dnsmasq
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("server=/vm/127.0.0.1#42069"),
            "{dnsmasq:?}"
        );
        let unbound = resolver_routing(&HostResolver::Unbound { routed: false });
        assert_eq!(unbound.status, Warn);
        assert!(
            unbound
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("stub-zone")
        );
        let plain = resolver_routing(&HostResolver::Plain);
        assert_eq!(plain.status, Info, "nothing to route is not a problem");
        assert!(plain.detail.contains("ProxyCommand"), "{}", plain.detail);
        assert_eq!(
            resolver_routing(&HostResolver::OtherLocal("127.0.1.1".into())).status,
            Info
        );
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
    fn privileges_name_the_backend_or_the_fix() {
        use std::path::PathBuf;
        let root = privileges(&Privilege::InProcess, false);
        assert_eq!(root.status, Ok);
        assert!(root.detail.contains("in-process root"), "{}", root.detail);
        let helper = privileges(&Privilege::Helper(PathBuf::from("/run/h.sock")), true);
        assert_eq!(helper.status, Ok);
        assert!(
            helper.detail.contains("helper at /run/h.sock"),
            "{}",
            helper.detail
        );
        let no_tun = privileges(&Privilege::Helper(PathBuf::from("/run/h.sock")), false);
        assert_eq!(no_tun.status, Warn);
        assert!(no_tun.detail.contains("/dev/net/tun"), "{}", no_tun.detail);
        assert!(
            no_tun
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("chmod 0666")),
            "{no_tun:?}"
        );
        let none = privileges(&Privilege::None(PathBuf::from("/run/h.sock")), true);
        assert_eq!(none.status, Warn);
        assert!(
            none.fix
                .as_deref()
                .is_some_and(|f| f.contains("sudo banger system install")),
            "{none:?}"
        );
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
