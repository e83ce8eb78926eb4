//! Which interface is the guest's NIC (the configuration itself is [`super::nic`]).

use std::path::Path;
use std::time::{Duration, Instant};

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
}
