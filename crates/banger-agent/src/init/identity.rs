//! Re-identifying a guest restored from a warm snapshot (`POST /identity`).
//!
//! A restored guest is, to the byte, the guest that was saved. Before the host calls it ready it
//! sends this VM's own values ([`banger_guest::Identity`]) and init applies them here, in an
//! order that keeps the guest from answering as someone else: the clock and the entropy pool
//! first (so the new host key is made from fresh randomness at the right time), then the
//! hostname and its files, the resolver, the NIC (down, new MAC, old addresses flushed, new
//! address, up, default route), and last a new SSH host key. Init then restarts sshd with it
//! before the request is answered, so no connection can ever see the saved guest's key.
//!
//! [`plan`] is pure (what to do, as typed steps and `ip` argv); [`apply`] performs the steps
//! with the system calls, so each step's outcome is reported to the host.

use std::net::Ipv4Addr;

use banger_guest::identity::{WallClock, format_mac};
use banger_guest::{Identity, Ipv4Cidr};

use super::net;

/// One thing to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Step the wall clock.
    Clock(WallClock),
    /// Mix in and credit host randomness.
    Seed(Vec<u8>),
    /// Hostname, `/etc/hostname`, `/etc/hosts`.
    Hostname(String),
    /// `/etc/resolv.conf`.
    Resolver(Ipv4Addr),
    /// One `ip` invocation (argv without the program).
    Ip(Vec<String>),
    /// Replace the SSH host key.
    HostKey,
}

/// What was applied and what failed, one line each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Steps that took.
    pub applied: Vec<String>,
    /// Steps that failed, with why.
    pub failed: Vec<String>,
}

/// The steps for `id` on NIC `iface`.
pub fn plan(id: &Identity, iface: Option<&str>) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(clock) = id.clock {
        steps.push(Step::Clock(clock));
    }
    if let Some(seed) = &id.seed {
        steps.push(Step::Seed(seed.clone()));
    }
    if let Some(name) = &id.boot.hostname {
        steps.push(Step::Hostname(name.clone()));
    }
    if let Some(dns) = id.boot.dns {
        steps.push(Step::Resolver(dns));
    }
    if let Some(iface) = iface {
        steps.extend(
            nic_commands(iface, id.mac, id.boot.ip, id.boot.gw)
                .into_iter()
                .map(Step::Ip),
        );
    }
    steps.push(Step::HostKey);
    steps
}

/// Takes NIC `iface` off the saved guest's address and onto this VM's.
pub fn nic_commands(
    iface: &str,
    mac: Option<[u8; 6]>,
    addr: Option<Ipv4Cidr>,
    gw: Option<Ipv4Addr>,
) -> Vec<Vec<String>> {
    let argv = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut cmds = Vec::new();
    if let Some(mac) = mac {
        cmds.push(argv(&["link", "set", "dev", iface, "down"]));
        cmds.push(argv(&[
            "link",
            "set",
            "dev",
            iface,
            "address",
            &format_mac(mac),
        ]));
    }
    if addr.is_some() {
        cmds.push(argv(&["addr", "flush", "dev", iface]));
    }
    // Loopback, the address, link up and the route, as at boot.
    cmds.extend(net::ip_commands(Some(iface), addr, gw).into_iter().skip(1));
    if addr.is_none() && mac.is_some() {
        cmds.push(argv(&["link", "set", "dev", iface, "up"]));
    }
    cmds
}

/// Describes a step for the outcome lines.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Clock(c) => format!("clock {}.{:09}", c.secs, c.nanos),
        Step::Seed(s) => format!("entropy {} bytes", s.len()),
        Step::Hostname(n) => format!("hostname {n}"),
        Step::Resolver(d) => format!("resolver {d}"),
        Step::Ip(argv) => format!("ip {}", argv.join(" ")),
        Step::HostKey => "new ssh host key".to_owned(),
    }
}

/// Runs `steps` with `run`, collecting each result.
pub fn apply(steps: &[Step], mut run: impl FnMut(&Step) -> Result<(), String>) -> Outcome {
    let mut out = Outcome::default();
    for step in steps {
        match run(step) {
            Ok(()) => out.applied.push(describe(step)),
            Err(e) => out.failed.push(format!("{}: {e}", describe(step))),
        }
    }
    out
}

/// Steps the wall clock to `c`.
pub fn set_clock(c: WallClock) -> Result<(), nix::Error> {
    use nix::sys::time::TimeSpec;
    use nix::time::{ClockId, clock_settime};
    let secs = nix::libc::time_t::try_from(c.secs).map_err(|_| nix::Error::EOVERFLOW)?;
    let spec = TimeSpec::new(secs, i64::from(c.nanos));
    clock_settime(ClockId::CLOCK_REALTIME, spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_guest::GuestBoot;

    fn identity() -> Identity {
        Identity {
            boot: GuestBoot {
                hostname: Some("web".into()),
                ip: Some("172.30.0.7/24".parse().expect("ip")),
                gw: Some("172.30.0.1".parse().expect("gw")),
                dns: Some("172.30.0.1".parse().expect("dns")),
                work: None,
            },
            mac: Some([6, 0, 0xac, 0x1e, 0, 7]),
            clock: Some(WallClock {
                secs: 1_764_720_000,
                nanos: 1,
            }),
            seed: Some(vec![7; 32]),
        }
    }

    #[test]
    fn clock_and_entropy_come_first_and_the_host_key_last() {
        let steps = plan(&identity(), Some("eth0"));
        assert!(matches!(steps[0], Step::Clock(_)));
        assert!(matches!(steps[1], Step::Seed(_)));
        assert_eq!(steps[2], Step::Hostname("web".into()));
        assert_eq!(steps[3], Step::Resolver("172.30.0.1".parse().expect("dns")));
        assert_eq!(steps.last(), Some(&Step::HostKey));
        let ip: Vec<String> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Ip(argv) => Some(argv.join(" ")),
                _ => None,
            })
            .collect();
        assert_eq!(
            ip,
            [
                "link set dev eth0 down",
                "link set dev eth0 address 06:00:ac:1e:00:07",
                "addr flush dev eth0",
                "addr replace 172.30.0.7/24 dev eth0",
                "link set dev eth0 up",
                "route replace default via 172.30.0.1 dev eth0",
            ]
        );
    }

    #[test]
    fn without_a_nic_only_the_host_side_steps_run_and_the_key_is_always_new() {
        let steps = plan(&identity(), None);
        assert!(!steps.iter().any(|s| matches!(s, Step::Ip(_))));
        assert_eq!(plan(&Identity::default(), Some("eth0")), [Step::HostKey]);
        let mac_only = nic_commands("eth0", Some([6, 0, 0, 0, 0, 1]), None, None);
        assert_eq!(
            mac_only.last().map(|a| a.join(" ")).as_deref(),
            Some("link set dev eth0 up")
        );
    }

    #[test]
    fn every_step_is_reported_and_a_failure_does_not_stop_the_rest() {
        let steps = plan(&identity(), Some("eth0"));
        let out = apply(&steps, |s| match s {
            Step::Resolver(_) => Err("read-only file system".into()),
            _ => Ok(()),
        });
        assert_eq!(out.failed, ["resolver 172.30.0.1: read-only file system"]);
        assert_eq!(out.applied.len(), steps.len() - 1);
        assert_eq!(
            out.applied.last().map(String::as_str),
            Some("new ssh host key")
        );
    }
}
