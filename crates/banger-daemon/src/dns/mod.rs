//! `NAME.vm` names for running VMs: an authoritative DNS zone served by the daemon.
//!
//! The zone is a map from VM name to guest address ([`Zone`]), changed by the lifecycle: a
//! VM's record is added when its VMM is up (create, start, adoption at reconcile) and removed
//! when it stops for any reason (stop, kill, delete, a dead VMM). [`server`] answers UDP and
//! TCP queries for it on `127.0.0.1:42069` ([`DEFAULT_ADDR`]) with [`wire`]: an `A` record
//! for a running VM, an authoritative NXDOMAIN for any other name in `vm.`, REFUSED outside
//! it there. [`guest`] serves the same zone to guests on the bridge gateway (port 53) and
//! forwards their other queries to the host's resolvers ([`forward`]).

pub mod forward;
pub mod guest;
pub mod server;
pub mod wire;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};

/// Where the zone is served.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::V4(std::net::SocketAddrV4::new(Ipv4Addr::LOCALHOST, 42069));

/// Running VMs by name. Cheap to clone; clones share the map.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    names: Arc<RwLock<BTreeMap<String, Ipv4Addr>>>,
}

impl Zone {
    /// Adds or replaces `name`'s record.
    pub fn insert(&self, name: &str, ip: Ipv4Addr) {
        self.names
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), ip);
    }

    /// Removes `name`'s record.
    pub fn remove(&self, name: &str) {
        self.names
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// `name`'s address, when it runs.
    pub fn lookup(&self, name: &str) -> Option<Ipv4Addr> {
        self.names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
    }

    /// Every record, by name.
    pub fn records(&self) -> BTreeMap<String, Ipv4Addr> {
        self.names.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
