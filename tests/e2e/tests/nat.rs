//! Outbound NAT on real guests, in a topology the test makes: the bed's namespace (bridge,
//! daemon, guests) joined by a veth pair to an "uplink" namespace that plays the internet,
//! with an HTTP server on 198.51.100.1 that exists only there. Nothing leaves these two
//! namespaces.
//!
//! Needs root, QEMU, nft and (for the host-side pulls) the Debian mirror. One guest at a time.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use banger_testkit::NetNs;
use common::{Guestbed, wait_until};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(900);
const UPLINK_IP: &str = "198.51.100.1";
const BED_IP: &str = "198.51.100.2";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The bed's rules, as `nft list ruleset` prints them inside its namespace.
fn ruleset(bed: &Guestbed) -> String {
    let out = bed.in_ns("nft", &["list", "ruleset"], Duration::from_secs(30));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `GET /hello` from inside the guest with bash's /dev/tcp (the image has no curl).
fn fetch_from_guest(bed: &Guestbed, vm: &str) -> std::process::Output {
    let script = format!(
        "exec 3<>/dev/tcp/{UPLINK_IP}/8080 && printf 'GET /hello HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
    );
    bed.banger(
        &[
            "vm", "ssh", vm, "--", "timeout", "10", "bash", "-c", &script,
        ],
        Duration::from_secs(120),
    )
}

#[test]
#[ignore = "needs root, QEMU, nft and a real guest"]
fn nat_gives_a_guest_a_masqueraded_way_out_and_only_that_guest() {
    let bed = Guestbed::new();
    bed.pull_defaults();

    // The uplink: a second namespace with a web server, reachable only through the veth.
    let uplink = NetNs::new().expect("uplink namespace");
    let (up, inner) = (uplink.name().to_owned(), bed.ns().name().to_owned());
    ip(&[
        "-n", &up, "link", "add", "veth-up", "type", "veth", "peer", "name", "veth-bed", "netns",
        &inner,
    ]);
    ip(&[
        "-n",
        &up,
        "addr",
        "add",
        &format!("{UPLINK_IP}/24"),
        "dev",
        "veth-up",
    ]);
    ip(&["-n", &up, "link", "set", "veth-up", "up"]);
    ip(&["-n", &up, "link", "set", "lo", "up"]);
    ip(&[
        "-n",
        &inner,
        "addr",
        "add",
        &format!("{BED_IP}/24"),
        "dev",
        "veth-bed",
    ]);
    ip(&["-n", &inner, "link", "set", "veth-bed", "up"]);
    ip(&[
        "-n", &inner, "route", "replace", "default", "via", UPLINK_IP,
    ]);
    let site = tempfile::tempdir().expect("site");
    std::fs::write(site.path().join("hello"), "hello from the uplink\n").expect("page");
    let log = site.path().join("access.log");
    let mut server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &up,
            "python3",
            "-m",
            "http.server",
            "8080",
            "--bind",
            UPLINK_IP,
        ])
        .arg("--directory")
        .arg(site.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("http server");
    let listening = wait_until(Duration::from_secs(20), || {
        Command::new("ip")
            .args(["netns", "exec", &up, "python3", "-c"])
            .arg(format!(
                "import socket; socket.create_connection(('{UPLINK_IP}', 8080), 1)"
            ))
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(listening, "the uplink's web server never listened");

    // A VM with NAT reaches the page, and the uplink sees the bed's address, not the guest's.
    let out = bed.banger(
        &[
            "vm", "create", "--name", "nat-a", "--vcpu", "1", "--memory", "512M", "--nat",
        ],
        LONG,
    );
    assert!(
        out.status.success(),
        "create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vm: Value =
        serde_json::from_str(&bed.ok(&["vm", "show", "nat-a", "--json"])).expect("json");
    let id = vm["id"].as_str().expect("id").to_owned();
    let guest_ip = vm["guest_ip"].as_str().expect("ip").to_owned();
    let got = fetch_from_guest(&bed, "nat-a");
    let text = String::from_utf8_lossy(&got.stdout);
    assert!(
        text.contains("hello from the uplink"),
        "{text}\n{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let seen = std::fs::read_to_string(&log).expect("access log");
    assert!(seen.contains(BED_IP), "the uplink saw: {seen}");
    assert!(
        !seen.contains(&guest_ip),
        "the guest's address leaked: {seen}"
    );
    assert!(ruleset(&bed).contains(&format!("banger-vm:{id}")));

    // Stopped: the rule is gone.
    bed.ok(&["vm", "stop", "nat-a"]);
    assert!(
        !ruleset(&bed).contains(&format!("banger-vm:{id}")),
        "{}",
        ruleset(&bed)
    );
    bed.ok(&["vm", "delete", "nat-a"]);

    // A VM without NAT has no way out, even though forwarding is on for the namespace.
    let out = bed.banger(
        &[
            "vm", "create", "--name", "nat-b", "--vcpu", "1", "--memory", "512M",
        ],
        LONG,
    );
    assert!(
        out.status.success(),
        "create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = fetch_from_guest(&bed, "nat-b");
    assert!(
        !got.status.success(),
        "a VM without --nat reached the uplink: {}",
        String::from_utf8_lossy(&got.stdout)
    );
    bed.ok(&["vm", "delete", "nat-b"]);
    assert!(!ruleset(&bed).contains("banger-vm:"), "{}", ruleset(&bed));

    let _ = server.kill();
    let _ = server.wait();
}
