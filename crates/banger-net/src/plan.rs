//! The network plan: pure arithmetic over the bridge subnet.
//!
//! The host takes the first address of the subnet (the guests' gateway); guests get the lowest
//! free address after it. A guest's MAC is derived from its IP (`06:00:a:b:c:d`, a locally
//! administered unicast prefix), so it never needs storing and never collides inside the
//! subnet. Interface names are checked against the kernel's rules (1–15 bytes, no `/`, no
//! whitespace) before anything reaches the kernel.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// Prefix of the names of idle pooled TAPs.
pub const POOL_PREFIX: &str = "tap-pool-";

/// Why a plan value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The subnet is not usable.
    #[error("subnet {0}: {1}")]
    Subnet(String, &'static str),
    /// Every guest address is taken.
    #[error("no free guest address left in {0}; delete unused VMs or use a larger subnet")]
    Exhausted(String),
    /// An interface name breaks the kernel's rules.
    #[error("interface name {0:?} must be 1-15 characters of letters, digits, '-', '_' or '.'")]
    BadIfname(String),
}

/// The bridge and subnet all VMs share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPlan {
    /// Bridge name.
    pub bridge: String,
    /// Network address of the subnet.
    pub network: Ipv4Addr,
    /// Prefix length (16–29).
    pub prefix: u8,
}

impl Default for NetPlan {
    fn default() -> Self {
        Self {
            bridge: "banger0".to_owned(),
            network: Ipv4Addr::new(172, 30, 0, 0),
            prefix: 24,
        }
    }
}

impl NetPlan {
    /// Parses `A.B.C.D/N` and checks that it is a network address with room for guests.
    pub fn new(bridge: &str, cidr: &str) -> Result<Self, PlanError> {
        check_ifname(bridge)?;
        let bad = |why| PlanError::Subnet(cidr.to_owned(), why);
        let (addr, len) = cidr
            .split_once('/')
            .ok_or_else(|| bad("write it as A.B.C.D/N"))?;
        let network: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = len.parse().map_err(|_| bad("prefix is not a number"))?;
        if !(16..=29).contains(&prefix) {
            return Err(bad("prefix must be between 16 and 29"));
        }
        if u32::from(network) & !mask(prefix) != 0 {
            return Err(bad("host bits are set; use the network address"));
        }
        Ok(Self {
            bridge: bridge.to_owned(),
            network,
            prefix,
        })
    }

    /// The host's address on the bridge, which guests use as their gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// `A.B.C.D/N` of the subnet.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network, self.prefix)
    }

    /// Whether `ip` is a guest address of this subnet (not network, gateway or broadcast).
    pub fn is_guest_address(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(self.network);
        let v = u32::from(ip);
        let broadcast = n | !mask(self.prefix);
        v & mask(self.prefix) == n && v > n + 1 && v < broadcast
    }

    /// The lowest guest address not in `used`.
    pub fn allocate(&self, used: &BTreeSet<Ipv4Addr>) -> Result<Ipv4Addr, PlanError> {
        let n = u32::from(self.network);
        let broadcast = n | !mask(self.prefix);
        (n + 2..broadcast)
            .map(Ipv4Addr::from)
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| PlanError::Exhausted(self.cidr()))
    }

    /// The guest MAC for an address.
    pub fn mac_for(ip: Ipv4Addr) -> String {
        let [a, b, c, d] = ip.octets();
        format!("06:00:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
    }

    /// [`NetPlan::mac_for`] as bytes.
    pub fn mac_bytes_for(ip: Ipv4Addr) -> [u8; 6] {
        let [a, b, c, d] = ip.octets();
        [0x06, 0x00, a, b, c, d]
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// Checks a name against the kernel's interface-name rules (stricter: no odd characters).
pub fn check_ifname(name: &str) -> Result<(), PlanError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(PlanError::BadIfname(name.to_owned()))
    }
}

/// The TAP name of a VM: `bgr-` and the first 11 characters of its id.
pub fn tap_name_for(vm_id: &str) -> String {
    let short: String = vm_id.chars().take(MAX_IFNAME - 4).collect();
    format!("bgr-{short}")
}

/// The name of pooled TAP number `n`.
pub fn pool_tap_name(n: usize) -> String {
    format!("{POOL_PREFIX}{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_subnets() {
        let p = NetPlan::new("banger0", "10.50.0.0/24").unwrap();
        assert_eq!(p.gateway(), Ipv4Addr::new(10, 50, 0, 1));
        assert_eq!(p.cidr(), "10.50.0.0/24");
        assert!(NetPlan::new("banger0", "10.50.0.1/24").is_err());
        assert!(NetPlan::new("banger0", "10.50.0.0/30").is_err());
        assert!(NetPlan::new("banger0", "10.50.0.0").is_err());
        assert!(NetPlan::new("bad name", "10.50.0.0/24").is_err());
    }

    #[test]
    fn allocates_the_lowest_free_guest_address() {
        let p = NetPlan::new("b", "10.0.0.0/29").unwrap();
        let mut used = BTreeSet::new();
        let first = p.allocate(&used).unwrap();
        assert_eq!(first, Ipv4Addr::new(10, 0, 0, 2));
        used.insert(first);
        used.insert(Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(p.allocate(&used).unwrap(), Ipv4Addr::new(10, 0, 0, 3));
        for last in 3..=6 {
            used.insert(Ipv4Addr::new(10, 0, 0, last));
        }
        assert!(matches!(p.allocate(&used), Err(PlanError::Exhausted(_))));
        assert!(p.is_guest_address(Ipv4Addr::new(10, 0, 0, 6)));
        assert!(!p.is_guest_address(Ipv4Addr::new(10, 0, 0, 7)));
        assert!(!p.is_guest_address(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!p.is_guest_address(Ipv4Addr::new(10, 0, 1, 2)));
    }

    #[test]
    fn names_and_macs() {
        assert_eq!(
            NetPlan::mac_for(Ipv4Addr::new(172, 30, 0, 2)),
            "06:00:ac:1e:00:02"
        );
        let tap = tap_name_for("0123456789abcdef");
        assert_eq!(tap, "bgr-0123456789a");
        assert!(check_ifname(&tap).is_ok());
        assert!(check_ifname(&pool_tap_name(12)).is_ok());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("0123456789abcdef").is_err());
    }
}
