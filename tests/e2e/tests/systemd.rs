//! The systemd tier: `banger system install` under a real systemd (a Debian 12 container
//! booted with `systemd-nspawn -b --private-network`), a VM created and reached by an
//! unprivileged owner without sudo, VMs surviving unit restarts, and `system uninstall`.
//!
//! Needs root, `systemd-container`, debootstrap and the Debian mirror (the container root and
//! the default image are built once per machine and cached), and QEMU inside the container.
//! The container's private network namespace holds the bridge and the guest.

mod common;

use std::time::Duration;

use common::Guestbed;
use common::container::{self, Bind, Container};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(600);
const OWNER: &str = "tester";

/// Where the binaries under test appear inside the container (an install's layout, so
/// `system install` finds the agent as it would from `install.sh`'s prefix).
const SRC_BIN: &str = "/opt/banger-under-test/bin";
const SRC_AGENT: &str = "/opt/banger-under-test/libexec/banger/banger-agent";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not json ({e}): {text}"))
}

fn boot_id(ct: &Container, vm: &str) -> String {
    ct.ok_as(
        OWNER,
        &[
            "banger",
            "vm",
            "ssh",
            vm,
            "--",
            "cat",
            "/proc/sys/kernel/random/boot_id",
        ],
        Duration::from_secs(120),
    )
    .trim()
    .to_owned()
}

#[test]
#[ignore = "needs root, systemd-nspawn, debootstrap, the Debian mirror and QEMU"]
fn system_install_runs_the_daemon_as_the_owner_and_vms_survive_restarts() {
    // The container root first (its own lock), then the default image and kernel, built (or
    // reused) on the host side; the bed's lock keeps this the only guest-booting test on the
    // machine while it runs.
    let root = container::root();
    let bed = Guestbed::new();
    let guest = container::guest_binds(&bed);
    let mut binds = vec![
        Bind {
            host: common::binary("banger"),
            inside: format!("{SRC_BIN}/banger"),
        },
        Bind {
            host: common::binary("bangerd"),
            inside: format!("{SRC_BIN}/bangerd"),
        },
        Bind {
            host: common::binary("banger-agent"),
            inside: SRC_AGENT.to_owned(),
        },
    ];
    binds.extend(guest);

    let ct = Container::boot(&root, &binds);
    ct.ok(&["useradd", "--create-home", "--shell", "/bin/bash", OWNER]);

    // Refused for a non-root caller, changing nothing.
    let out = ct.exec_as(
        OWNER,
        &[&format!("{SRC_BIN}/banger"), "system", "install"],
        LONG,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sudo banger system install"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !ct.root()
            .join("etc/systemd/system/bangerd.service")
            .exists()
    );

    // Install: returns once the daemon answers.
    let out = ct.ok(&[
        &format!("{SRC_BIN}/banger"),
        "system",
        "install",
        "--owner",
        OWNER,
    ]);
    assert!(out.contains("bangerd answers"), "{out}");
    for unit in ["bangerd", "bangerd-root"] {
        let state = ct.exec(&["systemctl", "is-active", unit], Duration::from_secs(10));
        assert_eq!(
            String::from_utf8_lossy(&state.stdout).trim(),
            "active",
            "{unit}"
        );
    }
    let show = |unit: &str, props: &str| ct.ok(&["systemctl", "show", "-p", props, unit]);
    let daemon = show(
        "bangerd",
        "KillMode,RuntimeDirectoryPreserve,User,ExecStart",
    );
    assert!(daemon.contains("KillMode=process"), "{daemon}");
    assert!(daemon.contains("RuntimeDirectoryPreserve=yes"), "{daemon}");
    assert!(daemon.contains(&format!("User={OWNER}")), "{daemon}");
    let helper = show(
        "bangerd-root",
        "KillMode,SendSIGKILL,RuntimeDirectoryPreserve,CapabilityBoundingSet,User",
    );
    assert!(helper.contains("KillMode=process"), "{helper}");
    assert!(helper.contains("SendSIGKILL=no"), "{helper}");
    assert!(helper.contains("RuntimeDirectoryPreserve=yes"), "{helper}");
    assert!(helper.contains("cap_net_admin"), "{helper}");
    assert!(
        !helper.contains("cap_sys_module"),
        "a minimal bounding set: {helper}"
    );
    let verify = ct.exec(
        &[
            "systemd-analyze",
            "verify",
            "/etc/systemd/system/bangerd.service",
            "/etc/systemd/system/bangerd-root.service",
        ],
        Duration::from_secs(60),
    );
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let installed =
        std::fs::read_to_string(ct.root().join("etc/banger/install.toml")).expect("install.toml");
    assert!(
        installed.contains(&format!("owner = \"{OWNER}\"")),
        "{installed}"
    );
    let status = json(&ct.ok_as(OWNER, &["banger", "system", "status", "--json"], LONG));
    assert_eq!(status["daemon"]["active"], "active", "{status}");
    assert_eq!(status["helper"]["active"], "active", "{status}");
    assert_eq!(status["drift"], Value::Array(vec![]), "{status}");

    // The owner imports the image and runs a VM, no sudo anywhere.
    ct.register_guest(OWNER, LONG);
    ct.ok_as(
        OWNER,
        &[
            "banger",
            "vm",
            "create",
            "--name",
            "sd1",
            "--image",
            "debian-bookworm",
            "--vcpu",
            "1",
            "--memory",
            "512M",
            // NAT too: the helper's nftables and forwarding work inside its bounding set (the
            // container has no uplink: the rules exist, nothing leaves).
            "--nat",
        ],
        LONG,
    );
    let uname = ct.ok_as(
        OWNER,
        &["banger", "vm", "ssh", "sd1", "--", "uname", "-a"],
        Duration::from_secs(120),
    );
    assert!(uname.starts_with("Linux sd1 "), "{uname}");
    let rules = ct.ok(&["nft", "list", "table", "bridge", "banger"]);
    assert!(
        rules.contains("banger-vm:"),
        "no NAT rule for the VM: {rules}"
    );
    // The host resolver (systemd-resolved, running in the container) sends `*.vm` to banger's
    // DNS on the bridge link: the unprivileged daemon asked the helper for the link's settings.
    let dns = ct.ok(&["resolvectl", "dns", "banger0"]);
    assert!(dns.contains("172.30.0.1"), "resolvectl dns banger0: {dns}");
    let domain = ct.ok(&["resolvectl", "domain", "banger0"]);
    assert!(
        domain.contains("~vm"),
        "resolvectl domain banger0: {domain}"
    );

    // Only the helper runs as root; the daemon and the VMM run as the owner.
    let ps = ct.ok(&["ps", "-eo", "user:32,args", "--no-headers"]);
    let ours: Vec<&str> = ps
        .lines()
        .filter(|l| l.contains("bangerd") || l.contains("qemu-system"))
        .collect();
    assert!(ours.iter().any(|l| l.contains("qemu-system")), "{ps}");
    for line in &ours {
        let user = line.split_whitespace().next().unwrap_or_default();
        if line.contains("root-helper") {
            assert_eq!(user, "root", "{line}");
        } else {
            assert_eq!(user, OWNER, "{line}");
        }
    }
    assert!(ours.iter().any(|l| l.contains("root-helper")), "{ps}");

    // Restarting both units keeps the guest: same boot id afterwards.
    let before = boot_id(&ct, "sd1");
    ct.ok(&["systemctl", "restart", "bangerd-root", "bangerd"]);
    ct.ok(&["banger", "system", "status"]);
    let after = boot_id(&ct, "sd1");
    assert_eq!(before, after, "the guest rebooted across the unit restarts");
    let restarted = ct.ok(&["banger", "system", "restart"]);
    assert!(restarted.contains("bangerd answers"), "{restarted}");
    assert_eq!(
        boot_id(&ct, "sd1"),
        before,
        "the guest rebooted across `system restart`"
    );
    // A crash of either (SIGKILL to the main processes only): systemd restarts them, the
    // new daemon re-adopts the guest.
    ct.ok(&[
        "systemctl",
        "kill",
        "--kill-whom=main",
        "--signal=SIGKILL",
        "bangerd-root",
        "bangerd",
    ]);
    let mut after_crash = String::new();
    assert!(
        common::wait_until(Duration::from_secs(60), || {
            let out = ct.exec_as(
                OWNER,
                &[
                    "banger",
                    "vm",
                    "ssh",
                    "sd1",
                    "--",
                    "cat",
                    "/proc/sys/kernel/random/boot_id",
                ],
                Duration::from_secs(60),
            );
            after_crash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            out.status.success()
        }),
        "the VM is not reachable after the units were killed"
    );
    assert_eq!(
        after_crash, before,
        "the guest rebooted across a crash of both units"
    );
    // A re-install (here from the installed banger itself) upgrades in place, VM kept.
    let again = ct.ok(&["banger", "system", "install", "--owner", OWNER]);
    assert!(again.contains("bangerd answers"), "{again}");
    assert_eq!(
        boot_id(&ct, "sd1"),
        before,
        "the guest rebooted across a re-install"
    );
    ct.ok_as(OWNER, &["banger", "vm", "delete", "sd1"], LONG);

    // Uninstall removes units and binaries, keeps state.
    ct.ok(&["banger", "system", "uninstall"]);
    for gone in [
        "etc/systemd/system/bangerd.service",
        "etc/systemd/system/bangerd-root.service",
        "usr/local/bin/banger",
        "usr/local/bin/bangerd",
        "usr/local/libexec/banger/banger-agent",
    ] {
        assert!(!ct.root().join(gone).exists(), "{gone} is left");
    }
    assert!(
        ct.root().join("var/lib/banger/state.db").exists(),
        "state was removed"
    );
    let active = ct.exec(
        &["systemctl", "is-active", "bangerd"],
        Duration::from_secs(10),
    );
    assert_ne!(String::from_utf8_lossy(&active.stdout).trim(), "active");
    // --purge (from the binary under test: the installed one is gone) removes the state too.
    ct.ok(&[
        &format!("{SRC_BIN}/banger"),
        "system",
        "uninstall",
        "--purge",
    ]);
    for gone in ["var/lib/banger", "var/cache/banger", "etc/banger"] {
        assert!(
            !ct.root().join(gone).exists(),
            "{gone} is left after --purge"
        );
    }
    drop(ct);
    drop(bed);
}
