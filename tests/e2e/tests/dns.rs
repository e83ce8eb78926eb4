//! `NAME.vm` answered by the daemon for a real guest, asked with `dig` inside the bed's
//! namespace (its loopback, nothing else).
//!
//! Needs root, QEMU, dig and (for the host-side pulls) the Debian mirror. One guest at a time.

mod common;

use std::time::Duration;

use common::Guestbed;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(900);

/// `dig` against the daemon's zone inside the namespace: (status word, aa flag, answers).
fn dig(bed: &Guestbed, name: &str) -> (String, bool, Vec<String>) {
    let out = bed.in_ns(
        "dig",
        &[
            "@127.0.0.1",
            "-p",
            "42069",
            "+time=3",
            "+tries=2",
            name,
            "A",
        ],
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "dig {name}: {text}");
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_default()
        .to_owned();
    let aa = text
        .lines()
        .find(|l| l.contains(";; flags:"))
        .is_some_and(|l| {
            l.split(';')
                .nth(2)
                .is_some_and(|f| f.split_whitespace().any(|w| w == "aa"))
        });
    let answers = short(bed, name);
    (status, aa, answers)
}

fn short(bed: &Guestbed, name: &str) -> Vec<String> {
    let out = bed.in_ns(
        "dig",
        &["@127.0.0.1", "-p", "42069", "+short", "+time=3", name, "A"],
        Duration::from_secs(30),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
#[ignore = "needs root, QEMU, dig and a real guest"]
fn running_vms_are_answered_authoritatively_and_others_are_nxdomain() {
    let bed = Guestbed::new();
    bed.pull_defaults();
    let out = bed.banger(
        &[
            "vm", "create", "--name", "dns-a", "--vcpu", "1", "--memory", "512M",
        ],
        LONG,
    );
    assert!(
        out.status.success(),
        "create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vm: Value =
        serde_json::from_str(&bed.ok(&["vm", "show", "dns-a", "--json"])).expect("json");
    let ip = vm["guest_ip"].as_str().expect("ip").to_owned();

    let (status, aa, answers) = dig(&bed, "dns-a.vm");
    assert_eq!((status.as_str(), aa), ("NOERROR", true));
    assert_eq!(answers, std::slice::from_ref(&ip));
    let (status, aa, _) = dig(&bed, "nope.vm");
    assert_eq!((status.as_str(), aa), ("NXDOMAIN", true), "unknown names");
    let status = bed.ok(&["daemon", "status"]);
    assert!(
        status.contains("serving the vm zone on 127.0.0.1:42069"),
        "{status}"
    );

    bed.ok(&["vm", "stop", "dns-a"]);
    let (status, aa, _) = dig(&bed, "dns-a.vm");
    assert_eq!(
        (status.as_str(), aa),
        ("NXDOMAIN", true),
        "a stopped VM has no name"
    );
    bed.ok(&["vm", "start", "dns-a"]);
    assert_eq!(short(&bed, "dns-a.vm"), [ip]);
    bed.ok(&["vm", "delete", "dns-a"]);
    let (status, _, _) = dig(&bed, "dns-a.vm");
    assert_eq!(status, "NXDOMAIN");
}
