//! What the helper agrees to do: checked for every request before anything happens.
//!
//! The policy is banger's own network objects and nothing else:
//! - the one bridge of banger's [`NetPlan`], with exactly that plan's gateway and prefix;
//! - TAPs named as banger names them — `bgr-` and up to 11 id characters, or `tap-pool-` and a
//!   number — created only for the helper's owner;
//! - listing only under those prefixes;
//! - NAT only in banger's own nftables tables (the requests carry no table, family or rule:
//!   the helper builds them from `banger_net::nat`), for a VM id of id characters on a banger
//!   TAP behind banger's bridge;
//! - the guests' DNS sockets only on the plan's gateway (port 53 is fixed by the request
//!   type: no port, address family or socket option can be asked for).
//!
//! - jails only as [`crate::jail`] describes: banger's jail ids, the configured jailer and
//!   Firecracker, the owner's uid/gid, chroots under banger's dirs, files from its state dir.
//!
//! So `lo`, a veth, the host's uplink, another table or another user's TAP cannot be named in a
//! request that passes. A refusal is a typed [`Refusal`] naming what was refused.

use banger_net::NetPlan;
use banger_net::plan::{MAX_IFNAME, POOL_PREFIX};

use crate::jail::JailPolicy;
use crate::wire::Request;

/// The prefix of a VM's TAP name.
pub const VM_TAP_PREFIX: &str = "bgr-";
/// Longest id part of a VM TAP name (`bgr-` + 11 = 15 bytes, the kernel's limit).
const VM_TAP_ID_MAX: usize = MAX_IFNAME - VM_TAP_PREFIX.len();
/// Longest VM id accepted.
const VM_ID_MAX: usize = 64;
/// The only zone the host resolver may be pointed at banger for.
pub const ZONE: &str = "vm";

/// Why the helper refused a request. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The peer is neither the owner nor root.
    #[error("uid {uid} may not use this helper: it serves uid {owner} (and root) only")]
    Peer {
        /// The peer's uid.
        uid: u32,
        /// The helper's owner.
        owner: u32,
    },
    /// A bridge other than banger's.
    #[error("{name:?} is not banger's bridge ({bridge:?})")]
    NotBridge {
        /// What was asked for.
        name: String,
        /// banger's bridge.
        bridge: String,
    },
    /// The bridge's address is not banger's plan.
    #[error(
        "bridge address {gateway}/{prefix} is not banger's plan ({expected}); the daemon and \
         the helper disagree about the subnet"
    )]
    Subnet {
        /// Asked gateway.
        gateway: std::net::Ipv4Addr,
        /// Asked prefix.
        prefix: u8,
        /// The plan's gateway/prefix.
        expected: String,
    },
    /// A resolver route to a server other than banger's gateway.
    #[error("routing the vm zone to {asked} is not allowed: only to banger's gateway {gateway}")]
    ZoneServer {
        /// The server asked for.
        asked: std::net::Ipv4Addr,
        /// banger's gateway.
        gateway: std::net::Ipv4Addr,
    },
    /// A resolver route for a zone other than banger's.
    #[error("routing the zone {0:?} is not allowed: only {ZONE:?}")]
    Zone(String),
    /// Guests' DNS sockets on an address other than banger's gateway.
    #[error("binding guests' DNS on {asked} is not allowed: only on banger's gateway {gateway}")]
    DnsAddress {
        /// The address asked for.
        asked: std::net::Ipv4Addr,
        /// banger's gateway.
        gateway: std::net::Ipv4Addr,
    },
    /// A link name banger does not make.
    #[error("{0:?} is not a TAP banger makes (bgr-<id> or tap-pool-<n>)")]
    NotBangerTap(String),
    /// A listing prefix outside banger's names.
    #[error("listing links by {0:?} is not allowed: only bgr- and tap-pool- names")]
    Prefix(String),
    /// A TAP for someone other than the owner.
    #[error("a TAP owned by uid {asked} is not allowed: this helper makes TAPs for uid {owner}")]
    TapOwner {
        /// The uid asked for.
        asked: u32,
        /// The helper's owner.
        owner: u32,
    },
    /// A VM id with characters banger ids never have.
    #[error("{0:?} is not a banger VM id (1-64 lowercase letters and digits)")]
    VmId(String),
    /// A jail request to a helper started without a jailer.
    #[error(
        "this helper runs no jailer: start it with --jailer and --firecracker (a system \
         install does when jailer_bin is configured), or remove jailer_bin from config"
    )]
    JailDisabled,
    /// A jailer or Firecracker binary other than the configured one.
    #[error(
        "{what} {} is not the one this helper runs ({}); set {what}_bin in config to it, or \
         reinstall the helper with yours",
        asked.display(),
        allowed.display()
    )]
    JailBinary {
        /// `jailer` or `firecracker`.
        what: &'static str,
        /// The binary asked for.
        asked: std::path::PathBuf,
        /// The configured one.
        allowed: std::path::PathBuf,
    },
    /// A jailed VMM for someone other than the owner.
    #[error(
        "a jailed VMM as {uid}:{gid} is not allowed: this helper jails VMMs as the owner \
         {owner_uid}:{owner_gid}"
    )]
    JailUser {
        /// The uid asked for.
        uid: u32,
        /// The gid asked for.
        gid: u32,
        /// The owner's uid.
        owner_uid: u32,
        /// The owner's gid.
        owner_gid: u32,
    },
    /// A chroot base or a staged file outside what the policy allows.
    #[error("{}: {reason}", path.display())]
    JailPath {
        /// The path refused.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}

/// The objects the helper may touch, and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// banger's network plan (bridge, subnet).
    pub plan: NetPlan,
    /// The uid the helper serves; TAPs are made for it only.
    pub owner_uid: u32,
    /// What jail requests may name; `None`: none may.
    pub jail: Option<JailPolicy>,
}

impl Policy {
    /// A policy for `owner_uid` over `plan`.
    pub fn new(plan: NetPlan, owner_uid: u32) -> Self {
        Self {
            plan,
            owner_uid,
            jail: None,
        }
    }

    /// The same policy, accepting jail requests within `jail`.
    #[must_use]
    pub fn with_jail(mut self, jail: Option<JailPolicy>) -> Self {
        self.jail = jail;
        self
    }

    /// The jail policy, or the refusal of every jail request.
    pub fn jail(&self) -> Result<&JailPolicy, Refusal> {
        self.jail.as_ref().ok_or(Refusal::JailDisabled)
    }

    /// Whether a peer with `uid` may send requests at all.
    pub fn check_peer(&self, uid: u32) -> Result<(), Refusal> {
        if uid == self.owner_uid || uid == 0 {
            Ok(())
        } else {
            Err(Refusal::Peer {
                uid,
                owner: self.owner_uid,
            })
        }
    }

    /// Whether `request` stays inside banger's objects.
    pub fn check(&self, request: &Request) -> Result<(), Refusal> {
        match request {
            Request::EnsureBridge {
                name,
                gateway,
                prefix,
            } => {
                self.bridge(name)?;
                if *gateway != self.plan.gateway() || *prefix != self.plan.prefix {
                    return Err(Refusal::Subnet {
                        gateway: *gateway,
                        prefix: *prefix,
                        expected: format!("{}/{}", self.plan.gateway(), self.plan.prefix),
                    });
                }
                Ok(())
            }
            Request::EnsureTap {
                name,
                bridge,
                owner_uid,
            } => {
                tap(name)?;
                self.bridge(bridge)?;
                if *owner_uid != self.owner_uid {
                    return Err(Refusal::TapOwner {
                        asked: *owner_uid,
                        owner: self.owner_uid,
                    });
                }
                Ok(())
            }
            Request::RenameLink { from, to } => {
                tap(from)?;
                tap(to)
            }
            Request::DeleteLink { name } | Request::IsolateLink { name } => tap(name),
            Request::LinksWithPrefix { prefix } => listing_prefix(prefix),
            Request::AllowNat {
                vm_id,
                tap: t,
                bridge,
            } => {
                self::vm_id(vm_id)?;
                tap(t)?;
                self.bridge(bridge)
            }
            Request::RevokeNat { vm_id } => self::vm_id(vm_id),
            Request::RouteZone {
                bridge,
                server,
                zone,
            } => {
                self.bridge(bridge)?;
                if *server != self.plan.gateway() {
                    return Err(Refusal::ZoneServer {
                        asked: *server,
                        gateway: self.plan.gateway(),
                    });
                }
                if zone != ZONE {
                    return Err(Refusal::Zone(zone.clone()));
                }
                Ok(())
            }
            Request::BindGuestDns { gateway } => {
                if *gateway != self.plan.gateway() {
                    return Err(Refusal::DnsAddress {
                        asked: *gateway,
                        gateway: self.plan.gateway(),
                    });
                }
                Ok(())
            }
            Request::LaunchJail { launch } => self
                .jail()?
                .check_launch(launch, self.owner_uid)
                .map(|_| ()),
            Request::ReleaseJail { jail } => {
                let policy = self.jail()?;
                policy
                    .check_ref(jail, self.owner_uid, policy.owner_gid)
                    .map(|_| ())
            }
        }
    }

    fn bridge(&self, name: &str) -> Result<(), Refusal> {
        if name == self.plan.bridge {
            Ok(())
        } else {
            Err(Refusal::NotBridge {
                name: name.to_owned(),
                bridge: self.plan.bridge.clone(),
            })
        }
    }
}

fn id_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// Whether `name` is a TAP name banger makes.
pub fn is_banger_tap(name: &str) -> bool {
    if let Some(id) = name.strip_prefix(VM_TAP_PREFIX) {
        return (1..=VM_TAP_ID_MAX).contains(&id.len()) && id_chars(id);
    }
    if let Some(n) = name.strip_prefix(POOL_PREFIX) {
        return !n.is_empty() && name.len() <= MAX_IFNAME && n.bytes().all(|b| b.is_ascii_digit());
    }
    false
}

fn tap(name: &str) -> Result<(), Refusal> {
    if is_banger_tap(name) {
        Ok(())
    } else {
        Err(Refusal::NotBangerTap(name.to_owned()))
    }
}

fn listing_prefix(prefix: &str) -> Result<(), Refusal> {
    // A prefix is fine when it is a banger TAP name or the start of one.
    let ok = [VM_TAP_PREFIX, POOL_PREFIX].contains(&prefix) || is_banger_tap(prefix);
    if ok {
        Ok(())
    } else {
        Err(Refusal::Prefix(prefix.to_owned()))
    }
}

/// Whether `id` is a VM id banger makes.
pub fn check_vm_id(id: &str) -> Result<(), Refusal> {
    vm_id(id)
}

fn vm_id(id: &str) -> Result<(), Refusal> {
    if (1..=VM_ID_MAX).contains(&id.len()) && id_chars(id) {
        Ok(())
    } else {
        Err(Refusal::VmId(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const OWNER: u32 = 1000;

    fn policy() -> Policy {
        Policy::new(NetPlan::default(), OWNER)
    }

    fn tap_req(name: &str) -> Request {
        Request::EnsureTap {
            name: name.into(),
            bridge: "banger0".into(),
            owner_uid: OWNER,
        }
    }

    #[test]
    fn banger_requests_pass() {
        let p = policy();
        let ok = [
            Request::EnsureBridge {
                name: "banger0".into(),
                gateway: Ipv4Addr::new(172, 30, 0, 1),
                prefix: 24,
            },
            tap_req("bgr-0123456789a"),
            tap_req("tap-pool-0"),
            Request::RenameLink {
                from: "tap-pool-12".into(),
                to: "bgr-abc".into(),
            },
            Request::DeleteLink {
                name: "bgr-0123456789a".into(),
            },
            Request::IsolateLink {
                name: "bgr-0123456789a".into(),
            },
            Request::LinksWithPrefix {
                prefix: "tap-pool-".into(),
            },
            Request::LinksWithPrefix {
                prefix: "bgr-0123456789a".into(),
            },
            Request::AllowNat {
                vm_id: "0123456789abcdef0123".into(),
                tap: "bgr-0123456789a".into(),
                bridge: "banger0".into(),
            },
            Request::RevokeNat {
                vm_id: "0123456789abcdef".into(),
            },
            Request::RouteZone {
                bridge: "banger0".into(),
                server: Ipv4Addr::new(172, 30, 0, 1),
                zone: "vm".into(),
            },
            Request::BindGuestDns {
                gateway: Ipv4Addr::new(172, 30, 0, 1),
            },
        ];
        for r in ok {
            assert_eq!(p.check(&r), Ok(()), "{r:?}");
        }
        assert_eq!(p.check_peer(OWNER), Ok(()));
        assert_eq!(p.check_peer(0), Ok(()));
    }

    #[test]
    fn other_peers_are_refused() {
        let err = policy().check_peer(1001).expect_err("stranger");
        assert_eq!(
            err,
            Refusal::Peer {
                uid: 1001,
                owner: OWNER
            }
        );
        assert!(err.to_string().contains("uid 1001"), "{err}");
    }

    #[test]
    fn links_that_are_not_banger_taps_are_refused_everywhere() {
        let p = policy();
        for name in [
            "lo",
            "eth0",
            "veth-banger",
            "banger0",
            "bgr-",
            "bgr-0123456789ab",
            "bgr-ABC",
            "bgr-a.b",
            "bgr-a/b",
            "tap-pool-",
            "tap-pool-x",
            "tap-pool-1234567",
            "tap0",
            "",
        ] {
            let refused = Refusal::NotBangerTap(name.to_owned());
            assert_eq!(
                p.check(&tap_req(name)),
                Err(refused.clone()),
                "ensure {name:?}"
            );
            assert_eq!(
                p.check(&Request::DeleteLink { name: name.into() }),
                Err(refused.clone()),
                "delete {name:?}"
            );
            assert_eq!(
                p.check(&Request::IsolateLink { name: name.into() }),
                Err(refused.clone()),
                "isolate {name:?}"
            );
            assert_eq!(
                p.check(&Request::RenameLink {
                    from: name.into(),
                    to: "bgr-1".into()
                }),
                Err(refused.clone()),
                "rename from {name:?}"
            );
            assert_eq!(
                p.check(&Request::RenameLink {
                    from: "tap-pool-1".into(),
                    to: name.into()
                }),
                Err(refused.clone()),
                "rename to {name:?}"
            );
            assert_eq!(
                p.check(&Request::AllowNat {
                    vm_id: "abc".into(),
                    tap: name.into(),
                    bridge: "banger0".into()
                }),
                Err(refused),
                "nat on {name:?}"
            );
        }
    }

    #[test]
    fn other_bridges_and_subnets_are_refused() {
        let p = policy();
        let err = p
            .check(&Request::EnsureBridge {
                name: "docker0".into(),
                gateway: Ipv4Addr::new(172, 30, 0, 1),
                prefix: 24,
            })
            .expect_err("other bridge");
        assert!(matches!(err, Refusal::NotBridge { .. }), "{err}");
        for (gateway, prefix) in [
            (Ipv4Addr::new(10, 0, 0, 1), 24),
            (Ipv4Addr::new(172, 30, 0, 1), 16),
            (Ipv4Addr::new(172, 30, 0, 2), 24),
        ] {
            let err = p
                .check(&Request::EnsureBridge {
                    name: "banger0".into(),
                    gateway,
                    prefix,
                })
                .expect_err("other subnet");
            assert!(matches!(err, Refusal::Subnet { .. }), "{err}");
        }
        let err = p
            .check(&Request::EnsureTap {
                name: "bgr-1".into(),
                bridge: "br0".into(),
                owner_uid: OWNER,
            })
            .expect_err("tap on another bridge");
        assert!(matches!(err, Refusal::NotBridge { .. }), "{err}");
        let err = p
            .check(&Request::AllowNat {
                vm_id: "abc".into(),
                tap: "bgr-1".into(),
                bridge: "br0".into(),
            })
            .expect_err("nat behind another bridge");
        assert!(matches!(err, Refusal::NotBridge { .. }), "{err}");
    }

    #[test]
    fn resolver_routes_other_than_the_vm_zone_to_the_gateway_are_refused() {
        let p = policy();
        let route = |bridge: &str, server: Ipv4Addr, zone: &str| Request::RouteZone {
            bridge: bridge.into(),
            server,
            zone: zone.into(),
        };
        let gw = Ipv4Addr::new(172, 30, 0, 1);
        let err = p.check(&route("eth0", gw, "vm")).expect_err("other link");
        assert!(matches!(err, Refusal::NotBridge { .. }), "{err}");
        let err = p
            .check(&route("banger0", Ipv4Addr::new(1, 1, 1, 1), "vm"))
            .expect_err("other server");
        assert!(matches!(err, Refusal::ZoneServer { .. }), "{err}");
        for zone in ["", "~.", ".", "com", "vm.example"] {
            let err = p
                .check(&route("banger0", gw, zone))
                .expect_err("other zone");
            assert!(matches!(err, Refusal::Zone(_)), "{zone:?}: {err}");
        }
    }

    #[test]
    fn guests_dns_on_any_address_but_the_gateway_is_refused() {
        let p = policy();
        for asked in [
            Ipv4Addr::new(0, 0, 0, 0),
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(172, 30, 0, 2),
            Ipv4Addr::new(192, 168, 1, 1),
        ] {
            let err = p
                .check(&Request::BindGuestDns { gateway: asked })
                .expect_err("not the gateway");
            assert!(matches!(err, Refusal::DnsAddress { .. }), "{asked}: {err}");
        }
    }

    #[test]
    fn taps_for_other_users_are_refused() {
        let err = policy()
            .check(&Request::EnsureTap {
                name: "bgr-1".into(),
                bridge: "banger0".into(),
                owner_uid: 0,
            })
            .expect_err("root-owned tap");
        assert_eq!(
            err,
            Refusal::TapOwner {
                asked: 0,
                owner: OWNER
            }
        );
    }

    #[test]
    fn listing_outside_banger_prefixes_is_refused() {
        for prefix in ["", "l", "lo", "veth", "bgr", "tap", "tap-pool-x"] {
            assert_eq!(
                policy().check(&Request::LinksWithPrefix {
                    prefix: prefix.into()
                }),
                Err(Refusal::Prefix(prefix.to_owned())),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn vm_ids_that_could_reach_other_rules_are_refused() {
        let long = "a".repeat(65);
        for id in [
            "",
            "ABC",
            "a b",
            "a\"; flush ruleset",
            "../x",
            long.as_str(),
        ] {
            let refused = Refusal::VmId(id.to_owned());
            assert_eq!(
                policy().check(&Request::RevokeNat { vm_id: id.into() }),
                Err(refused.clone()),
                "revoke {id:?}"
            );
            assert_eq!(
                policy().check(&Request::AllowNat {
                    vm_id: id.into(),
                    tap: "bgr-1".into(),
                    bridge: "banger0".into()
                }),
                Err(refused),
                "allow {id:?}"
            );
        }
    }

    #[test]
    fn real_plan_names_pass() {
        let vm_id = "0123456789abcdef0123456789abcdef";
        assert!(is_banger_tap(&banger_net::plan::tap_name_for(vm_id)));
        assert!(is_banger_tap(&banger_net::plan::pool_tap_name(3)));
    }
}
