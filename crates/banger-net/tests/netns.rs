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
