//! Re-identifying a guest restored from a warm snapshot (`POST /identity`).
//!
//! A restored guest is, to the byte, the guest that was saved. Before the host calls it ready it
//! sends this VM's own values ([`banger_guest::Identity`]) and init applies them here, in an
//! order that keeps the guest from answering as someone else: the clock and the entropy pool
//! first, then the SSH host key (the host's, else one made here from the fresh pool) and, unless
//! sshd reads its key anew for each connection ([`KeyPickup`]), an sshd restarted with it (it
//! starts while the rest is applied), then the hostname and its
//! files, the resolver, and the NIC (down, new MAC, new address, up, default route; see
//! [`nic`]). The host keeps the VM's TAP off the bridge until the answer, so no connection can
//! see the saved guest's key or address.
//!
//! [`plan`] is pure (what to do, as typed steps); [`apply`] performs the steps, so each step's
//! outcome is reported to the host.

use banger_guest::Identity;
use banger_guest::identity::{HostKey, WallClock};

use super::nic::{self, Planned};
use super::sshd::KeyPickup;

/// One thing to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Step the wall clock.
    Clock(WallClock),
    /// Mix in and credit host randomness.
    Seed(Vec<u8>),
    /// Replace the SSH host key: with the host's, or a new one made here.
    HostKey(Option<HostKey>),
    /// Restart sshd, so it serves the new key.
    RestartSshd,
    /// Hostname, `/etc/hostname`, `/etc/hosts`.
    Hostname(String),
    /// `/etc/resolv.conf`.
    Resolver(std::net::Ipv4Addr),
    /// One change to the NIC.
    Nic(Planned),
}

/// What was applied and what failed, one line each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Steps that took.
    pub applied: Vec<String>,
    /// Steps that failed, with why.
    pub failed: Vec<String>,
}

/// The steps for `id` on NIC `iface`, with an sshd that picks up a new key as `sshd`.
pub fn plan(id: &Identity, iface: Option<&str>, sshd: KeyPickup) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(clock) = id.clock {
        steps.push(Step::Clock(clock));
    }
    if let Some(seed) = &id.seed {
        steps.push(Step::Seed(seed.clone()));
    }
    steps.push(Step::HostKey(id.host_key.clone()));
    if sshd == KeyPickup::Restart {
        steps.push(Step::RestartSshd);
    }
    if let Some(name) = &id.boot.hostname {
        steps.push(Step::Hostname(name.clone()));
    }
    if let Some(dns) = id.boot.dns {
        steps.push(Step::Resolver(dns));
    }
    if let Some(iface) = iface {
        steps.extend(
            nic::reidentify_steps(iface, id.mac, id.boot.ip, id.boot.gw)
                .into_iter()
                .map(Step::Nic),
        );
    }
    steps
}

/// Describes a step for the outcome lines.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Clock(c) => format!("clock {}.{:09}", c.secs, c.nanos),
        Step::Seed(s) => format!("entropy {} bytes", s.len()),
        Step::HostKey(Some(_)) => "the host's ssh host key".to_owned(),
        Step::HostKey(None) => "new ssh host key".to_owned(),
        Step::RestartSshd => "sshd restarted".to_owned(),
        Step::Hostname(n) => format!("hostname {n}"),
        Step::Resolver(d) => format!("resolver {d}"),
        Step::Nic(p) => p.describe(),
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
            host_key: None,
        }
    }

    #[test]
    fn clock_and_entropy_come_first_then_the_key_and_sshd_then_the_rest() {
        let steps = plan(&identity(), Some("eth0"), KeyPickup::Restart);
        let lines: Vec<String> = steps.iter().map(describe).collect();
        assert_eq!(
            lines,
            [
                "clock 1764720000.000000001",
                "entropy 32 bytes",
                "new ssh host key",
                "sshd restarted",
                "hostname web",
                "resolver 172.30.0.1",
                "link eth0 down",
                "link eth0 address 06:00:ac:1e:00:07",
                "addr 172.30.0.7/24 dev eth0",
                "link eth0 up",
                "route default via 172.30.0.1 dev eth0",
            ]
        );
    }

    #[test]
    fn without_a_nic_only_the_guest_side_steps_run_and_the_key_is_always_replaced() {
        let steps = plan(&identity(), None, KeyPickup::Restart);
        assert!(!steps.iter().any(|s| matches!(s, Step::Nic(_))));
        assert_eq!(
            plan(&Identity::default(), Some("eth0"), KeyPickup::Restart),
            [Step::HostKey(None), Step::RestartSshd]
        );
        assert_eq!(
            plan(
                &Identity::default(),
                Some("eth0"),
                KeyPickup::NextConnection
            ),
            [Step::HostKey(None)],
            "an sshd that reads its key per connection is not restarted"
        );
        let key = HostKey {
            private: "k".into(),
            public: "p".into(),
        };
        let with_key = Identity {
            host_key: Some(key.clone()),
            ..Identity::default()
        };
        assert_eq!(
            plan(&with_key, None, KeyPickup::Restart)[0],
            Step::HostKey(Some(key))
        );
    }

    #[test]
    fn every_step_is_reported_and_a_failure_does_not_stop_the_rest() {
        let steps = plan(&identity(), Some("eth0"), KeyPickup::Restart);
        let out = apply(&steps, |s| match s {
            Step::Resolver(_) => Err("read-only file system".into()),
            _ => Ok(()),
        });
        assert_eq!(out.failed, ["resolver 172.30.0.1: read-only file system"]);
        assert_eq!(out.applied.len(), steps.len() - 1);
        assert_eq!(
            out.applied.last().map(String::as_str),
            Some("route default via 172.30.0.1 dev eth0")
        );
    }
}
