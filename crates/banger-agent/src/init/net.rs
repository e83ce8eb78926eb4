//! Guest network configuration from `banger.ip` / `banger.gw`.
//!
//! The agent runs iproute2's `/usr/sbin/ip` (the image's, else the one in banger's bundle for
//! images without it, else busybox's `/sbin/ip`) with fixed argument vectors built by [`ip_commands`] from parsed, validated values, instead of speaking netlink
//! itself; no string from outside the guest reaches a shell. `replace` forms are used so that a
//! NIC already configured by the initramfs does not make the step fail.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use banger_guest::Ipv4Cidr;

/// iproute2.
pub const IP: &str = "/usr/sbin/ip";

/// The `ip` to run: the image's iproute2, the bundled one, or `/sbin/ip` (busybox).
pub fn ip_program() -> Option<super::bundle::Program> {
    super::bundle::resolve(&[IP], "ip").or_else(|| {
        Path::new("/sbin/ip")
            .exists()
            .then(|| super::bundle::Program::direct("/sbin/ip"))
    })
}

/// A network interface found in `/sys/class/net`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Whether it is backed by a device (`/sys/class/net/NAME/device` exists), i.e. is a NIC
    /// rather than a virtual interface such as `sit0`.
    pub has_device: bool,
}

/// The interface to configure: `eth0` if present, else the first (by name) non-loopback
/// interface backed by a device, else the first non-loopback one.
pub fn pick_interface(ifaces: &[Interface]) -> Option<String> {
    if ifaces.iter().any(|i| i.name == "eth0") {
        return Some("eth0".into());
    }
    let mut candidates: Vec<&Interface> = ifaces.iter().filter(|i| i.name != "lo").collect();
    candidates.sort_by(|a, b| b.has_device.cmp(&a.has_device).then(a.name.cmp(&b.name)));
    candidates.first().map(|i| i.name.clone())
}

/// Lists the interfaces under `sys_class_net` (normally `/sys/class/net`).
pub fn list_interfaces(sys_class_net: &Path) -> Vec<Interface> {
    let Ok(rd) = std::fs::read_dir(sys_class_net) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let has_device = e.path().join("device").exists();
            e.file_name()
                .into_string()
                .ok()
                .map(|name| Interface { name, has_device })
        })
        .collect()
}

/// The `ip` invocations (argv without the program) that configure the guest: loopback up, then,
/// with an address, address + link up (+ default route via `gw`).
pub fn ip_commands(
    iface: Option<&str>,
    addr: Option<Ipv4Cidr>,
    gw: Option<Ipv4Addr>,
) -> Vec<Vec<String>> {
    let argv = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut cmds = vec![argv(&["link", "set", "dev", "lo", "up"])];
    let (Some(iface), Some(addr)) = (iface, addr) else {
        return cmds;
    };
    let addr = addr.to_string();
    cmds.push(argv(&["addr", "replace", &addr, "dev", iface]));
    cmds.push(argv(&["link", "set", "dev", iface, "up"]));
    if let Some(gw) = gw {
        let gw = gw.to_string();
        cmds.push(argv(&[
            "route", "replace", "default", "via", &gw, "dev", iface,
        ]));
    }
    cmds
}

/// Waits (bounded) until a non-loopback interface shows up, then picks one.
pub fn wait_for_interface(sys_class_net: &Path, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(i) = pick_interface(&list_interfaces(sys_class_net)) {
            return Some(i);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(name: &str, has_device: bool) -> Interface {
        Interface {
            name: name.into(),
            has_device,
        }
    }

    #[test]
    fn prefers_eth0_then_devices() {
        assert_eq!(
            pick_interface(&[i("lo", false), i("ens3", true), i("eth0", true)]),
            Some("eth0".into())
        );
        assert_eq!(
            pick_interface(&[
                i("sit0", false),
                i("lo", false),
                i("enp0s2", true),
                i("ens9", true)
            ]),
            Some("enp0s2".into())
        );
        assert_eq!(
            pick_interface(&[i("lo", false), i("sit0", false)]),
            Some("sit0".into())
        );
        assert_eq!(pick_interface(&[i("lo", false)]), None);
        assert_eq!(pick_interface(&[]), None);
    }

    #[test]
    fn lists_sysfs_interfaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("lo")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("eth1/device")).expect("mkdir");
        std::fs::write(dir.path().join("bonding_masters"), "").expect("file");
        let mut got = list_interfaces(dir.path());
        got.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(got, vec![i("eth1", true), i("lo", false)]);
    }

    #[test]
    fn full_configuration_argv() {
        let addr: Ipv4Cidr = "172.16.0.2/24".parse().expect("cidr");
        let cmds = ip_commands(Some("eth0"), Some(addr), Some(Ipv4Addr::new(172, 16, 0, 1)));
        let joined: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            joined,
            vec![
                "link set dev lo up",
                "addr replace 172.16.0.2/24 dev eth0",
                "link set dev eth0 up",
                "route replace default via 172.16.0.1 dev eth0",
            ]
        );
    }

    #[test]
    fn partial_configuration_argv() {
        let addr: Ipv4Cidr = "10.0.0.2/8".parse().expect("cidr");
        assert_eq!(ip_commands(Some("eth0"), None, None).len(), 1);
        assert_eq!(ip_commands(None, Some(addr), None).len(), 1);
        let cmds = ip_commands(Some("ens3"), Some(addr), None);
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[2].join(" "), "link set dev ens3 up");
    }
}
