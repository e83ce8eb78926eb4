//! The agent's in-process NIC configuration against a real kernel: a veth interface in a
//! network namespace this test makes (and removes), configured through the same ioctls init
//! uses at boot and after a restore, and read back with `ip`.

use std::net::Ipv4Addr;

use banger_agent::init::nic::{self, NicStep, Planned};
use banger_guest::Ipv4Cidr;
use banger_testkit::NetNs;

/// Applies `steps` on a thread inside `ns` (the ioctls act on the caller's namespace).
fn apply_in(ns: &NetNs, steps: &[Planned]) -> Result<(), String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter_on_this_thread()
                .map_err(|e| format!("setns: {e}"))?;
            for step in steps {
                nic::apply(step).map_err(|e| format!("{}: {e}", step.describe()))?;
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err("the namespace thread panicked".into()))
    })
}

fn cidr(text: &str) -> Ipv4Cidr {
    text.parse().expect("cidr")
}

#[test]
#[ignore = "needs root (a network namespace)"]
fn boot_then_reidentify_a_veth_interface() {
    let ns = NetNs::new().expect("netns");
    // A veth pair (its peer up, so the link has carrier): what every kernel here has.
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "peer0",
    ])
    .expect("veth pair");
    ns.ip(&["link", "set", "peer0", "up"]).expect("peer up");
    let gw = Ipv4Addr::new(172, 30, 0, 1);
    let boot = nic::boot_steps(Some("eth0"), Some(cidr("172.30.0.2/24")), Some(gw));
    apply_in(&ns, &boot).expect("boot steps");
    let addr = ns
        .ip(&["-4", "-o", "addr", "show", "dev", "eth0"])
        .expect("addr");
    assert!(addr.contains("inet 172.30.0.2/24"), "{addr}");
    let link = ns.ip(&["-o", "link", "show", "dev", "eth0"]).expect("link");
    assert!(link.contains(",UP"), "{link}");
    let routes = ns.ip(&["-4", "route", "show", "default"]).expect("routes");
    assert!(
        routes.contains("default via 172.30.0.1 dev eth0"),
        "{routes}"
    );

    // A restored guest takes a new MAC, address and route; the old ones are gone.
    let mac = [0x02, 0xbe, 0x00, 0x00, 0x00, 0x07];
    let gw2 = Ipv4Addr::new(172, 30, 1, 1);
    let steps = nic::reidentify_steps("eth0", Some(mac), Some(cidr("172.30.1.9/24")), Some(gw2));
    assert_eq!(steps.first().map(|p| p.step), Some(NicStep::Down));
    apply_in(&ns, &steps).expect("re-identification steps");
    let link = ns.ip(&["-o", "link", "show", "dev", "eth0"]).expect("link");
    assert!(link.contains("link/ether 02:be:00:00:00:07"), "{link}");
    assert!(link.contains(",UP"), "{link}");
    let addr = ns
        .ip(&["-4", "-o", "addr", "show", "dev", "eth0"])
        .expect("addr");
    assert!(addr.contains("inet 172.30.1.9/24"), "{addr}");
    assert!(
        !addr.contains("172.30.0.2"),
        "the saved address is replaced: {addr}"
    );
    let routes = ns.ip(&["-4", "route", "show", "default"]).expect("routes");
    assert_eq!(
        routes.trim(),
        "default via 172.30.1.1 dev eth0",
        "the only default route"
    );

    // A step the kernel refuses is an error, not a silent no-op.
    let missing = nic::boot_steps(Some("nope0"), Some(cidr("172.30.2.2/24")), None);
    let refused = apply_in(&ns, &missing[1..]);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.starts_with("addr 172.30.2.2/24 dev nope0: ")),
        "{refused:?}"
    );
}
