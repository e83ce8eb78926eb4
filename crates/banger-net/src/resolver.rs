//! Host resolver routing: which resolver the host uses, and how `NAME.vm` reaches banger.
//!
//! The daemon serves the `vm.` zone itself; the host's resolver must send `*.vm` queries to
//! it before `curl http://web.vm/` works on the host. Where systemd-resolved is in use banger
//! does that itself, per link: the bridge gets banger's guest resolver (the gateway, port 53)
//! as its DNS server, `~vm` as a routing-only domain, and no default route, so only `*.vm`
//! goes there ([`resolvectl_commands`]). systemd-resolved forgets a link's settings when the
//! link goes away, so the daemon re-applies them whenever it ensures the bridge.
//!
//! Any other resolver (dnsmasq, unbound, a plain `/etc/resolv.conf`) is the user's to
//! configure; [`detect`] says which one is in use and whether it already routes the zone, so
//! `banger doctor` can name the one line to add. Detection reads files under a root directory
//! (`/` on a host, a temp dir in tests) and never runs anything.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The resolver the host uses, as far as banger can tell from its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostResolver {
    /// systemd-resolved runs (`/run/systemd/resolve/` holds its files): banger routes the
    /// zone itself.
    SystemdResolved,
    /// `/etc/resolv.conf` names a loopback server and dnsmasq is configured.
    Dnsmasq {
        /// A `server=/vm/…` line exists in its configuration.
        routed: bool,
    },
    /// `/etc/resolv.conf` names a loopback server and unbound is configured.
    Unbound {
        /// A stub or forward zone named `vm` exists in its configuration.
        routed: bool,
    },
    /// `/etc/resolv.conf` names this loopback server, which banger does not recognise.
    OtherLocal(String),
    /// `/etc/resolv.conf` names only remote servers (or none): no local resolver to route.
    Plain,
}

/// Where systemd-resolved keeps its runtime files.
const RESOLVED_DIR: &str = "run/systemd/resolve";
/// Files systemd-resolved creates there while it runs.
const RESOLVED_MARKERS: [&str; 3] = ["io.systemd.Resolve", "resolv.conf", "stub-resolv.conf"];
/// systemd-resolved's stub listener.
const RESOLVED_STUB: &str = "127.0.0.53";

/// Reads the resolver in use under `root` (`/` on a host).
pub fn detect(root: &Path) -> HostResolver {
    let resolved = root.join(RESOLVED_DIR);
    if RESOLVED_MARKERS.iter().any(|m| resolved.join(m).exists()) {
        return HostResolver::SystemdResolved;
    }
    let servers = std::fs::read_to_string(root.join("etc/resolv.conf"))
        .map(|text| nameservers(&text))
        .unwrap_or_default();
    let Some(local) = servers.iter().find(|s| is_loopback(s)) else {
        return HostResolver::Plain;
    };
    if local == RESOLVED_STUB {
        // The stub's address without its runtime files: resolved is configured but stopped.
        return HostResolver::OtherLocal(local.clone());
    }
    let dnsmasq = config_files(
        root,
        &["etc/dnsmasq.conf"],
        &["etc/dnsmasq.d", "etc/NetworkManager/dnsmasq.d"],
    );
    if !dnsmasq.is_empty() {
        return HostResolver::Dnsmasq {
            routed: dnsmasq.iter().any(|f| dnsmasq_routes_vm(&read(f))),
        };
    }
    let unbound = config_files(
        root,
        &["etc/unbound/unbound.conf"],
        &["etc/unbound/unbound.conf.d"],
    );
    if !unbound.is_empty() {
        return HostResolver::Unbound {
            routed: unbound.iter().any(|f| unbound_routes_vm(&read(f))),
        };
    }
    HostResolver::OtherLocal(local.clone())
}

/// The `nameserver` addresses of a resolv.conf text, in order.
pub fn nameservers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next().map(str::to_owned))
                .flatten()
        })
        .collect()
}

fn is_loopback(server: &str) -> bool {
    server
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The files among `files` that exist, and the files in `dirs`.
fn config_files(root: &Path, files: &[&str], dirs: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = files
        .iter()
        .map(|f| root.join(f))
        .filter(|p| p.is_file())
        .collect();
    for dir in dirs {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            out.extend(found);
        }
    }
    out
}

/// Whether a dnsmasq config text has a `server=/…/vm/…` or `server=/vm/…` line.
fn dnsmasq_routes_vm(text: &str) -> bool {
    text.lines().map(str::trim).any(|l| {
        l.strip_prefix("server=/").is_some_and(|rest| {
            let domains = rest.rsplit_once('/').map_or("", |(d, _)| d);
            domains
                .split('/')
                .any(|d| d.trim_end_matches('.').eq_ignore_ascii_case("vm"))
        })
    })
}

/// Whether an unbound config text has a zone named `vm`.
fn unbound_routes_vm(text: &str) -> bool {
    text.lines().map(str::trim).any(|l| {
        l.strip_prefix("name:").is_some_and(|v| {
            v.trim()
                .trim_matches('"')
                .trim_end_matches('.')
                .eq_ignore_ascii_case("vm")
        })
    })
}

/// The line (or lines) that routes `zone` to banger's loopback listener `addr` in the host's
/// resolver, and where it goes; `None` where there is nothing to add (systemd-resolved, which
/// banger routes itself) or nothing banger knows how to configure.
pub fn config_hint(
    resolver: &HostResolver,
    zone: &str,
    addr: std::net::SocketAddr,
) -> Option<String> {
    let (ip, port) = (addr.ip(), addr.port());
    match resolver {
        HostResolver::Dnsmasq { .. } => Some(format!(
            "add `server=/{zone}/{ip}#{port}` to /etc/dnsmasq.d/banger.conf and restart dnsmasq"
        )),
        HostResolver::Unbound { .. } => Some(format!(
            "add to /etc/unbound/unbound.conf.d/banger.conf: `server: do-not-query-localhost: no` \
             `domain-insecure: \"{zone}\"` and `stub-zone: name: \"{zone}\" stub-addr: {ip}@{port}`, \
             then restart unbound"
        )),
        HostResolver::OtherLocal(_) | HostResolver::Plain => Some(format!(
            "for NAME.{zone} in curl and browsers, run systemd-resolved (banger routes ~{zone} \
             itself), or dnsmasq with `server=/{zone}/{ip}#{port}`"
        )),
        HostResolver::SystemdResolved => None,
    }
}

/// The `resolvectl` invocations that route `zone` to `server` on link `bridge`: its DNS
/// server, `~zone` as its only (routing-only) domain, and no default route, so nothing but
/// the zone is sent there.
pub fn resolvectl_commands(bridge: &str, server: Ipv4Addr, zone: &str) -> Vec<Vec<String>> {
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    vec![
        owned(&["dns", bridge, &server.to_string()]),
        owned(&["domain", bridge, &format!("~{zone}")]),
        owned(&["default-route", bridge, "false"]),
    ]
}

/// Whether `zone` is a single DNS label banger may route (letters, digits, `-`).
pub fn valid_zone(zone: &str) -> bool {
    !zone.is_empty()
        && zone.len() <= 63
        && zone.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !zone.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn systemd_resolved_is_found_by_its_runtime_files() {
        let dir = root();
        write(dir.path(), "etc/resolv.conf", "nameserver 127.0.0.53\n");
        assert_eq!(
            detect(dir.path()),
            HostResolver::OtherLocal("127.0.0.53".into()),
            "the stub address alone is a stopped resolved"
        );
        write(dir.path(), "run/systemd/resolve/stub-resolv.conf", "");
        assert_eq!(detect(dir.path()), HostResolver::SystemdResolved);
    }

    #[test]
    fn dnsmasq_and_unbound_are_found_with_or_without_the_vm_zone() {
        let dir = root();
        write(
            dir.path(),
            "etc/resolv.conf",
            "search lan\nnameserver 127.0.0.1\n",
        );
        write(
            dir.path(),
            "etc/dnsmasq.conf",
            "# defaults\nserver=/corp/10.0.0.1\n",
        );
        assert_eq!(detect(dir.path()), HostResolver::Dnsmasq { routed: false });
        write(
            dir.path(),
            "etc/dnsmasq.d/banger.conf",
            "  server=/vm/127.0.0.1#42069\n",
        );
        assert_eq!(detect(dir.path()), HostResolver::Dnsmasq { routed: true });

        let dir = root();
        write(dir.path(), "etc/resolv.conf", "nameserver ::1\n");
        write(
            dir.path(),
            "etc/unbound/unbound.conf",
            "server:\n  verbosity: 1\n",
        );
        assert_eq!(detect(dir.path()), HostResolver::Unbound { routed: false });
        write(
            dir.path(),
            "etc/unbound/unbound.conf.d/banger.conf",
            "stub-zone:\n    name: \"vm.\"\n    stub-addr: 127.0.0.1@42069\n",
        );
        assert_eq!(detect(dir.path()), HostResolver::Unbound { routed: true });
    }

    #[test]
    fn remote_servers_or_no_file_are_plain_and_unknown_local_servers_are_named() {
        let dir = root();
        assert_eq!(detect(dir.path()), HostResolver::Plain, "no resolv.conf");
        write(dir.path(), "etc/resolv.conf", "nameserver 198.51.100.1\n");
        assert_eq!(detect(dir.path()), HostResolver::Plain);
        write(dir.path(), "etc/resolv.conf", "nameserver 127.0.1.1\n");
        assert_eq!(
            detect(dir.path()),
            HostResolver::OtherLocal("127.0.1.1".into())
        );
    }

    #[test]
    fn dnsmasq_lines_for_other_zones_do_not_count() {
        assert!(dnsmasq_routes_vm("server=/vm/127.0.0.1#42069"));
        assert!(dnsmasq_routes_vm("server=/corp/vm./127.0.0.1#42069"));
        assert!(!dnsmasq_routes_vm("server=/vmware.corp/10.0.0.1"));
        assert!(!dnsmasq_routes_vm("# server=/vm/127.0.0.1#42069"));
        assert!(!dnsmasq_routes_vm("server=10.0.0.1"));
        assert!(unbound_routes_vm("  name: vm"));
        assert!(!unbound_routes_vm("  name: \"vmware\""));
    }

    #[test]
    fn resolvectl_gets_the_server_a_routing_only_domain_and_no_default_route() {
        let cmds = resolvectl_commands("banger0", Ipv4Addr::new(172, 30, 0, 1), "vm");
        assert_eq!(
            cmds,
            vec![
                vec!["dns", "banger0", "172.30.0.1"],
                vec!["domain", "banger0", "~vm"],
                vec!["default-route", "banger0", "false"],
            ]
        );
        assert!(valid_zone("vm"));
        assert!(!valid_zone("vm;rm"));
        assert!(!valid_zone(""));
        assert!(!valid_zone("-x"));
    }

    #[test]
    fn hints_name_the_line_for_each_resolver() {
        let addr: std::net::SocketAddr = "127.0.0.1:42069".parse().expect("addr");
        let hint = |r| config_hint(&r, "vm", addr).unwrap_or_default();
        assert!(
            hint(HostResolver::Dnsmasq { routed: false }).contains("server=/vm/127.0.0.1#42069")
        );
        assert!(
            hint(HostResolver::Unbound { routed: false }).contains("stub-addr: 127.0.0.1@42069")
        );
        assert!(hint(HostResolver::Plain).contains("systemd-resolved"));
        assert_eq!(
            config_hint(&HostResolver::SystemdResolved, "vm", addr),
            None
        );
    }
}
