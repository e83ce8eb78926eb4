//! [`FakeNet`]: host networking in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};

use banger_net::{BoxFuture, NetError, NetOps, ZoneRoute};

/// One call made to the fake, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetCall {
    /// `ensure_bridge(name)`.
    EnsureBridge(String),
    /// `ensure_tap(name, bridge)`.
    EnsureTap(String, String),
    /// `rename_link(from, to)`.
    Rename(String, String),
    /// `isolate_link(name)`.
    Isolate(String),
    /// `delete_link(name)`.
    Delete(String),
    /// `allow_nat(vm_id, tap)`.
    AllowNat(String, String),
    /// `revoke_nat(vm_id)`.
    RevokeNat(String),
    /// `route_zone(bridge, server, zone)`.
    RouteZone(String, Ipv4Addr, String),
    /// `bind_guest_dns(gateway)`.
    BindGuestDns(Ipv4Addr),
}

/// A TAP as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeLink {
    /// Its interface index (stable across renames, as in the kernel).
    pub index: u32,
    /// The bridge it is attached to.
    pub bridge: Option<String>,
    /// Its owner.
    pub owner_uid: u32,
}

#[derive(Default)]
struct State {
    bridges: BTreeSet<String>,
    links: BTreeMap<String, FakeLink>,
    calls: Vec<NetCall>,
    fail_ensure_tap: bool,
    deny: bool,
    next_index: u32,
    steals: Vec<(String, String, String)>,
    nat: BTreeMap<String, String>,
    zone_routes: BTreeMap<String, (Ipv4Addr, String)>,
    manages_resolver: bool,
}

/// Bridges and TAPs in memory. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct FakeNet {
    state: Mutex<State>,
}

fn denied() -> NetError {
    NetError::Connect(std::io::Error::from_raw_os_error(libc_eperm()))
}

const fn libc_eperm() -> i32 {
    1 // EPERM on Linux
}

impl FakeNet {
    /// An empty host.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes every later `ensure_tap` fail (a TAP that cannot be made).
    pub fn fail_ensure_tap(&self, fail: bool) {
        self.lock().fail_ensure_tap = fail;
    }

    /// Makes every call fail with EPERM, as netlink does for an unprivileged daemon.
    pub fn deny_all(&self, deny: bool) {
        self.lock().deny = deny;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<NetCall> {
        self.lock().calls.clone()
    }

    /// Renames that hit an interface whose name had changed since it was looked up
    /// (`(looked up as, renamed while called, to)`): each one took a TAP from another claim.
    pub fn steals(&self) -> Vec<(String, String, String)> {
        self.lock().steals.clone()
    }

    /// Existing TAP names.
    pub fn links(&self) -> Vec<String> {
        self.lock().links.keys().cloned().collect()
    }

    /// One TAP.
    pub fn link(&self, name: &str) -> Option<FakeLink> {
        self.lock().links.get(name).cloned()
    }

    /// VMs with outbound NAT, and their TAPs.
    pub fn nat_rules(&self) -> BTreeMap<String, String> {
        self.lock().nat.clone()
    }

    /// Plays a host whose resolver banger routes itself (systemd-resolved): `route_zone`
    /// answers [`ZoneRoute::Routed`] and remembers the route until the bridge is deleted.
    pub fn manage_resolver(&self, manages: bool) {
        self.lock().manages_resolver = manages;
    }

    /// Zone routes by link: `(server, zone)`; like systemd-resolved, deleting the link forgets
    /// its route.
    pub fn zone_routes(&self) -> BTreeMap<String, (Ipv4Addr, String)> {
        self.lock().zone_routes.clone()
    }

    /// Existing bridges.
    pub fn bridges(&self) -> Vec<String> {
        self.lock().bridges.iter().cloned().collect()
    }

    /// Adds a TAP behind the daemon's back (a leftover of an earlier run).
    pub fn add_link(&self, name: &str, bridge: Option<&str>) {
        let mut s = self.lock();
        s.next_index += 1;
        let index = s.next_index;
        s.links.insert(
            name.to_owned(),
            FakeLink {
                index,
                bridge: bridge.map(str::to_owned),
                owner_uid: 0,
            },
        );
    }

    /// Adds a bridge behind the daemon's back.
    pub fn add_bridge(&self, name: &str) {
        self.lock().bridges.insert(name.to_owned());
    }
}

impl NetOps for FakeNet {
    fn ensure_bridge<'a>(
        &'a self,
        name: &'a str,
        _gateway: Ipv4Addr,
        _prefix: u8,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(async move {
            let mut s = self.lock();
            s.calls.push(NetCall::EnsureBridge(name.to_owned()));
            if s.deny {
                return Err(denied());
            }
            s.bridges.insert(name.to_owned());
            Ok(())
        })
    }

    fn ensure_tap<'a>(
        &'a self,
        name: &'a str,
        bridge: &'a str,
        owner_uid: u32,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(async move {
            let mut s = self.lock();
            s.calls
                .push(NetCall::EnsureTap(name.to_owned(), bridge.to_owned()));
            if s.deny {
                return Err(denied());
            }
            if s.fail_ensure_tap {
                return Err(NetError::Tap {
                    name: name.to_owned(),
                    source: std::io::Error::other("injected failure"),
                });
            }
            if !s.bridges.contains(bridge) {
                return Err(NetError::Missing(bridge.to_owned()));
            }
            let index = match s.links.get(name) {
                Some(link) => link.index,
                None => {
                    s.next_index += 1;
                    s.next_index
                }
            };
            s.links.insert(
                name.to_owned(),
                FakeLink {
                    index,
                    bridge: Some(bridge.to_owned()),
                    owner_uid,
                },
            );
            Ok(())
        })
    }

    fn rename_link<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        // Like the kernel through netlink: look the index up by name, then (a moment later)
        // rename whatever interface has that index. Two renames of one name can both succeed.
        Box::pin(async move {
            let index = {
                let mut s = self.lock();
                s.calls
                    .push(NetCall::Rename(from.to_owned(), to.to_owned()));
                if s.deny {
                    return Err(denied());
                }
                s.links
                    .get(from)
                    .map(|l| l.index)
                    .ok_or_else(|| NetError::Missing(from.to_owned()))?
            };
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            let mut s = self.lock();
            if s.links.contains_key(to) {
                return Err(NetError::Tap {
                    name: to.to_owned(),
                    source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                });
            }
            let current = s
                .links
                .iter()
                .find(|(_, l)| l.index == index)
                .map(|(name, _)| name.clone())
                .ok_or_else(|| NetError::Missing(from.to_owned()))?;
            if current != from {
                // The name changed between lookup and rename: the kernel would rename the
                // other interface anyway, taking a TAP another claim already owns.
                s.steals
                    .push((from.to_owned(), current.clone(), to.to_owned()));
            }
            if let Some(link) = s.links.remove(&current) {
                s.links.insert(to.to_owned(), link);
            }
            Ok(())
        })
    }

    fn isolate_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(async move {
            let mut s = self.lock();
            s.calls.push(NetCall::Isolate(name.to_owned()));
            if s.deny {
                return Err(denied());
            }
            if s.links.contains_key(name) {
                Ok(())
            } else {
                Err(NetError::Missing(name.to_owned()))
            }
        })
    }

    fn delete_link<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(async move {
            let mut s = self.lock();
            s.calls.push(NetCall::Delete(name.to_owned()));
            if s.deny {
                return Err(denied());
            }
            s.links.remove(name);
            s.bridges.remove(name);
            s.zone_routes.remove(name);
            Ok(())
        })
    }

    fn allow_nat<'a>(
        &'a self,
        vm_id: &'a str,
        tap: &'a str,
        _bridge: &'a str,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(async move {
            let mut s = self.lock();
            s.calls
                .push(NetCall::AllowNat(vm_id.to_owned(), tap.to_owned()));
            if s.deny {
                return Err(denied());
            }
            s.nat.insert(vm_id.to_owned(), tap.to_owned());
            Ok(())
        })
    }

    fn revoke_nat<'a>(&'a self, vm_id: &'a str) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(async move {
            let mut s = self.lock();
            s.calls.push(NetCall::RevokeNat(vm_id.to_owned()));
            if s.deny {
                return Err(denied());
            }
            s.nat.remove(vm_id);
            Ok(())
        })
    }

    fn links_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, NetError>> {
        Box::pin(async move {
            let s = self.lock();
            if s.deny {
                return Err(denied());
            }
            Ok(s.links
                .keys()
                .filter(|l| l.starts_with(prefix))
                .cloned()
                .collect())
        })
    }

    fn route_zone<'a>(
        &'a self,
        bridge: &'a str,
        server: Ipv4Addr,
        zone: &'a str,
    ) -> BoxFuture<'a, Result<ZoneRoute, NetError>> {
        Box::pin(async move {
            let mut s = self.lock();
            s.calls.push(NetCall::RouteZone(
                bridge.to_owned(),
                server,
                zone.to_owned(),
            ));
            if s.deny {
                return Err(denied());
            }
            if !s.manages_resolver {
                return Ok(ZoneRoute::Unmanaged);
            }
            if !s.bridges.contains(bridge) {
                return Err(NetError::Missing(bridge.to_owned()));
            }
            s.zone_routes
                .insert(bridge.to_owned(), (server, zone.to_owned()));
            Ok(ZoneRoute::Routed)
        })
    }

    /// Binds loopback sockets on free ports in place of the gateway's port 53 (tests are not
    /// root and must not hold a guest-subnet address), so the daemon serves on what it got.
    fn bind_guest_dns(
        &self,
        gateway: Ipv4Addr,
    ) -> BoxFuture<'_, Result<banger_net::GuestDnsSockets, NetError>> {
        Box::pin(async move {
            let deny = {
                let mut s = self.lock();
                s.calls.push(NetCall::BindGuestDns(gateway));
                s.deny
            };
            if deny {
                return Err(denied());
            }
            let addr = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            banger_net::dns_socket::bind_dns_on(addr)
                .map_err(|source| NetError::Bind { addr, source })
        })
    }
}
