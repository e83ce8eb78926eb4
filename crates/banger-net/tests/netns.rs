//! Real bridges and TAPs, made through netlink and the TUN ioctls inside a network namespace
//! this test creates (and removes).

use std::net::Ipv4Addr;

use banger_net::{LinuxNet, NetOps};
use banger_testkit::NetNs;

/// Runs `f` on a fresh thread that has entered `ns`, with its own single-threaded runtime, so
/// every netlink socket and TUN fd is opened inside the namespace.
fn in_ns<T: Send + 'static>(
    ns: &NetNs,
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    let name = ns.name().to_owned();
    std::thread::spawn(move || {
        let ns_file = std::fs::File::open(format!("/var/run/netns/{name}")).expect("netns file");
        nix::sched::setns(ns_file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f())
    })
    .join()
    .expect("thread")
}

#[test]
#[ignore = "needs root: creates a network namespace"]
fn bridge_and_taps_are_idempotent_and_cleaned_up() {
    let ns = NetNs::new().expect("netns");
    in_ns(&ns, || {
        Box::pin(async {
            let net = LinuxNet;
            let gw = Ipv4Addr::new(172, 30, 0, 1);
            net.ensure_bridge("banger0", gw, 24).await.expect("bridge");
            net.ensure_bridge("banger0", gw, 24)
                .await
                .expect("bridge again");
            net.ensure_tap("tap-pool-0", "banger0", 0)
                .await
                .expect("tap");
            net.ensure_tap("tap-pool-0", "banger0", 0)
                .await
                .expect("tap again");
            net.ensure_tap("bgr-abc", "banger0", 4242)
                .await
                .expect("tap 2");
            let taps = net.links_with_prefix("tap-pool-").await.expect("list");
            assert_eq!(taps, ["tap-pool-0"]);
            net.ensure_tap("tap-pool-1", "banger0", 0)
                .await
                .expect("tap 3");
            net.rename_link("tap-pool-1", "bgr-renamed")
                .await
                .expect("rename");
            net.ensure_tap("bgr-renamed", "banger0", 0)
                .await
                .expect("re-attach");
            assert!(
                net.rename_link("tap-pool-9", "x").await.is_err(),
                "missing link"
            );
        })
    });
    let addr = ns
        .ip(&["-4", "-o", "addr", "show", "dev", "banger0"])
        .expect("ip addr");
    assert_eq!(addr.matches("172.30.0.1/24").count(), 1, "{addr}");
    let link = ns
        .ip(&["-d", "link", "show", "tap-pool-0"])
        .expect("ip link");
    assert!(link.contains("master banger0"), "{link}");
    assert!(link.contains("tun type tap"), "{link}");
    assert!(link.contains("UP"), "{link}");
    let renamed = ns
        .ip(&["-d", "link", "show", "bgr-renamed"])
        .expect("renamed tap");
    assert!(
        renamed.contains("master banger0") && renamed.contains("UP"),
        "{renamed}"
    );
    let owned = ns.ip(&["-d", "link", "show", "bgr-abc"]).expect("ip link");
    assert!(owned.contains("user 4242"), "{owned}");

    // Isolated: down (no UP flag), still on the bridge; ensure_tap brings it back up.
    in_ns(&ns, || {
        Box::pin(async {
            let net = LinuxNet;
            net.isolate_link("bgr-abc").await.expect("isolate");
            assert!(net.isolate_link("bgr-gone").await.is_err(), "missing link");
        })
    });
    let down = ns.ip(&["link", "show", "bgr-abc"]).expect("ip link");
    let flags = down.split(['<', '>']).nth(1).unwrap_or_default();
    assert!(!flags.split(',').any(|f| f == "UP"), "{down}");
    in_ns(&ns, || {
        Box::pin(async {
            net_up("bgr-abc").await;
        })
    });
    let up = ns.ip(&["link", "show", "bgr-abc"]).expect("ip link");
    let flags = up.split(['<', '>']).nth(1).unwrap_or_default();
    assert!(flags.split(',').any(|f| f == "UP"), "{up}");

    in_ns(&ns, || {
        Box::pin(async {
            let net = LinuxNet;
            net.delete_link("bgr-abc").await.expect("delete");
            net.delete_link("bgr-renamed")
                .await
                .expect("delete renamed");
            net.delete_link("bgr-abc")
                .await
                .expect("delete twice is fine");
            assert!(
                net.links_with_prefix("bgr-")
                    .await
                    .expect("list")
                    .is_empty()
            );
            let err = net.ensure_tap("x/y", "banger0", 0).await.unwrap_err();
            assert!(err.to_string().contains("interface name"), "{err}");
        })
    });
    assert!(ns.ip(&["link", "show", "bgr-abc"]).is_err());
}

fn ruleset(ns: &NetNs) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns.name(), "nft", "list", "ruleset"])
        .output()
        .expect("nft runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root and nft: changes nftables inside a network namespace"]
fn nat_rules_are_per_vm_idempotent_and_removed_exactly() {
    let ns = NetNs::new().expect("netns");
    in_ns(&ns, || {
        Box::pin(async {
            let net = LinuxNet;
            net.revoke_nat("nothing-yet")
                .await
                .expect("revoke before any table");
            net.allow_nat("vm-a", "bgr-a", "banger0")
                .await
                .expect("allow a");
            net.allow_nat("vm-a", "bgr-a", "banger0")
                .await
                .expect("allow a again");
            net.allow_nat("vm-b", "bgr-b", "banger0")
                .await
                .expect("allow b");
            let forwarding =
                std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("sysctl");
            assert_eq!(forwarding.trim(), "1", "forwarding on in the namespace");
        })
    });
    let rules = ruleset(&ns);
    assert_eq!(
        rules.matches("banger-vm:vm-a").count(),
        1,
        "one rule per VM: {rules}"
    );
    assert_eq!(rules.matches("banger-vm:vm-b").count(), 1, "{rules}");
    assert_eq!(
        rules.matches("masquerade").count(),
        1,
        "the base is built once: {rules}"
    );
    assert!(rules.contains("table bridge banger") && rules.contains("table inet banger"));
    assert!(
        rules.contains("iifname \"bgr-a\""),
        "matched by TAP, not address: {rules}"
    );
    assert!(!rules.contains("saddr"), "never by source address: {rules}");

    in_ns(&ns, || {
        Box::pin(async {
            LinuxNet.revoke_nat("vm-a").await.expect("revoke a");
            LinuxNet.revoke_nat("vm-a").await.expect("revoke a again");
        })
    });
    let rules = ruleset(&ns);
    assert!(!rules.contains("banger-vm:vm-a"), "{rules}");
    assert_eq!(rules.matches("banger-vm:vm-b").count(), 1, "{rules}");
}

async fn net_up(tap: &str) {
    LinuxNet
        .ensure_tap(tap, "banger0", 4242)
        .await
        .expect("up again");
}
