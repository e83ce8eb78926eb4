//! The VM lifecycle on a real guest: create, SSH, exit codes, persistence across stop/start
//! and restart, a daemon killed with SIGKILL, a VMM killed behind the daemon's back, delete,
//! and failures that must leave nothing behind.
//!
//! Needs root, QEMU and (for the host-side pulls) the Debian mirror. One guest at a time.

mod common;

use std::time::Duration;

use common::{Guestbed, wait_until};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(900);

fn vm_json(bed: &Guestbed, name: &str) -> Value {
    serde_json::from_str(&bed.ok(&["vm", "show", name, "--json"])).expect("vm show --json")
}

fn ssh(bed: &Guestbed, name: &str, cmd: &[&str]) -> std::process::Output {
    let mut args = vec!["vm", "ssh", name, "--"];
    args.extend_from_slice(cmd);
    bed.banger(&args, Duration::from_secs(120))
}

fn ssh_ok(bed: &Guestbed, name: &str, cmd: &[&str]) -> String {
    let out = ssh(bed, name, cmd);
    assert!(
        out.status.success(),
        "ssh {cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
#[ignore = "needs root, QEMU and a real guest"]
fn lifecycle_on_a_real_guest() {
    let bed = Guestbed::new();
    bed.pull_defaults();
    let vms_dir = bed.layout().vms_dir();

    // Create (a cold boot: restores are tests/warm.rs's): stages, then `ready in`.
    let out = bed.banger(
        &[
            "vm", "create", "--name", "e2e-a", "--vcpu", "1", "--memory", "512M", "--cold",
        ],
        LONG,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "create: {stderr}");
    for stage in [
        "prepare disks",
        "file sync",
        "network",
        "boot",
        "wait for agent",
        "wait for SSH",
    ] {
        assert!(stderr.contains(stage), "stage {stage:?} missing: {stderr}");
    }
    assert!(stderr.contains("ready in"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "e2e-a");
    let shown = bed.ok(&["vm", "show", "e2e-a"]);
    assert!(
        shown.contains("vmm:") && shown.contains("qemu"),
        "vm show names the VMM: {shown}"
    );
    assert!(shown.contains("console.log"), "{shown}");
    let vm = vm_json(&bed, "e2e-a");
    assert_eq!(vm["state"], "running");
    let tap = vm["tap_name"].as_str().expect("tap").to_owned();
    assert!(bed.links(&tap).contains(&tap), "tap {tap} exists");

    // SSH: hostname, exit codes and quoting survive.
    assert_eq!(ssh_ok(&bed, "e2e-a", &["cat", "/etc/hostname"]), "e2e-a");
    let out = ssh(&bed, "e2e-a", &["sh", "-c", "exit 42"]);
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(
        ssh_ok(&bed, "e2e-a", &["printf", "%s|", "two words", "it's"]),
        "two words|it's|"
    );

    // Persistence across stop/start and restart.
    ssh_ok(
        &bed,
        "e2e-a",
        &["sh", "-c", "echo kept > /root/keep.txt && sync"],
    );
    let host_key_a = ssh_ok(&bed, "e2e-a", &["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]);
    bed.ok(&["vm", "stop", "e2e-a"]);
    assert_eq!(vm_json(&bed, "e2e-a")["state"], "stopped");
    assert!(!bed.links(&tap).contains(&tap), "stop releases the tap");

    // Promote: the stopped VM's disks become an image; a VM of it sees the file, with a host
    // key of its own.
    bed.ok(&["image", "promote", "e2e-a", "e2e-golden"]);
    bed.ok(&[
        "vm",
        "create",
        "--name",
        "e2e-p",
        "--image",
        "e2e-golden",
        "--vcpu",
        "1",
        "--memory",
        "512M",
    ]);
    assert_eq!(ssh_ok(&bed, "e2e-p", &["cat", "/root/keep.txt"]), "kept");
    let host_key_p = ssh_ok(&bed, "e2e-p", &["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]);
    assert_ne!(
        host_key_a, host_key_p,
        "the promoted image shares no host key"
    );
    bed.ok(&["vm", "delete", "e2e-p"]);
    bed.ok(&["image", "rm", "e2e-golden"]);
    bed.ok(&["vm", "start", "e2e-a"]);
    assert_eq!(ssh_ok(&bed, "e2e-a", &["cat", "/root/keep.txt"]), "kept");
    bed.ok(&["vm", "restart", "e2e-a"]);
    assert_eq!(ssh_ok(&bed, "e2e-a", &["cat", "/root/keep.txt"]), "kept");

    // SIGKILL the daemon: the next call brings it back, the guest never noticed.
    let boot_id = ssh_ok(&bed, "e2e-a", &["cat", "/proc/sys/kernel/random/boot_id"]);
    let old_daemon = bed.daemon_pid().expect("daemon runs");
    bed.kill_daemon();
    let list: Value = serde_json::from_str(&bed.ok(&["vm", "list", "--json"])).expect("json");
    assert_eq!(list[0]["name"], "e2e-a");
    assert_eq!(list[0]["state"], "running");
    assert_ne!(bed.daemon_pid(), Some(old_daemon), "a new daemon answered");
    assert_eq!(
        ssh_ok(&bed, "e2e-a", &["cat", "/proc/sys/kernel/random/boot_id"]),
        boot_id,
        "the guest kept running through the daemon's death"
    );

    // Kill the VMM behind the daemon's back: the VM ends stopped, its tap released.
    let id = vm["id"].as_str().expect("id").to_owned();
    let handles: Value = serde_json::from_str(
        &std::fs::read_to_string(vms_dir.join(&id).join("handles.json")).expect("handles.json"),
    )
    .expect("handles json");
    let vmm_pid = handles["vmm"]["pid"].as_u64().expect("pid").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &vmm_pid])
            .status()
            .expect("kill")
            .success()
    );
    assert!(
        wait_until(Duration::from_secs(20), || vm_json(&bed, "e2e-a")["state"]
            == "stopped"),
        "the daemon noticed the VMM's death"
    );
    assert!(
        !bed.links(&tap).contains(&tap),
        "tap released after the VMM died"
    );
    assert!(!vms_dir.join(&id).join("handles.json").exists());

    // Delete leaves nothing: no tap, no VM dir, no known_hosts entry, no record.
    bed.ok(&["vm", "start", "e2e-a"]);
    let ip = vm_json(&bed, "e2e-a")["guest_ip"]
        .as_str()
        .expect("ip")
        .to_owned();
    let known_hosts = bed.layout().ssh_dir().join("known_hosts");
    let pinned = std::fs::read_to_string(&known_hosts).unwrap_or_default();
    assert!(pinned.contains(&ip), "first ssh pinned the host key");
    bed.ok(&["vm", "delete", "e2e-a"]);
    assert!(
        bed.links("tap-pool-").len() <= 2,
        "only the pool's idle taps remain: {:?}",
        bed.links("")
    );
    assert!(
        bed.links("bgr-").is_empty(),
        "no VM taps left: {:?}",
        bed.links("")
    );
    assert!(!vms_dir.join(&id).exists(), "vm dir removed");
    let pinned = std::fs::read_to_string(&known_hosts).unwrap_or_default();
    assert!(!pinned.contains(&ip), "known_hosts entry removed: {pinned}");
    assert_eq!(bed.ok(&["vm", "list", "--json"]).trim(), "[]");
}

#[test]
#[ignore = "needs root, QEMU and a real guest"]
fn failed_creates_leave_nothing_behind() {
    let bed = Guestbed::new();
    bed.pull_defaults();
    let vms_dir = bed.layout().vms_dir();
    let before: Vec<_> = std::fs::read_dir(&vms_dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();

    // An invalid spec never reaches the daemon.
    let out = bed.banger(
        &["vm", "create", "--name", "bad-spec", "--vcpu", "0"],
        Duration::from_secs(30),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("vcpu"));

    // Garbage is refused at registration: it is not a kernel.
    let dir = tempfile_dir();
    let junk = dir.join("junk-kernel");
    std::fs::write(&junk, vec![0x5a_u8; 1 << 20]).expect("write");
    let out = bed.banger(
        &[
            "kernel",
            "register",
            "e2e-junk",
            "--vmlinux",
            junk.to_str().expect("utf8"),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a kernel"));

    // A kernel that passes the checks but cannot boot: the create fails, names the stage and
    // the log, keeps nothing.
    let garbage = dir.join("garbage-kernel");
    let mut bytes = banger_testkit::fakes::stand_in_vmlinux();
    bytes.resize(1 << 20, 0x5a);
    std::fs::write(&garbage, bytes).expect("write");
    let image: Value =
        serde_json::from_str(&bed.ok(&["image", "show", "debian-bookworm", "--json"]))
            .expect("json");
    let rootfs = image["rootfs_path"].as_str().expect("rootfs").to_owned();
    // Fresh registrations (a previous run may have left them behind).
    let _ = bed.banger(&["image", "rm", "e2e-broken"], Duration::from_secs(60));
    let _ = bed.banger(&["kernel", "rm", "e2e-broken"], Duration::from_secs(60));
    bed.ok(&[
        "kernel",
        "register",
        "e2e-broken",
        "--vmlinux",
        garbage.to_str().expect("utf8"),
    ]);
    bed.ok(&[
        "image",
        "register",
        "--name",
        "e2e-broken",
        "--rootfs",
        &rootfs,
        "--kernel",
        "e2e-broken",
    ]);
    let out = bed.banger(
        &["vm", "create", "--name", "e2e-bad", "--image", "e2e-broken"],
        LONG,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a garbage kernel must not boot");
    assert!(
        stderr.contains("failed at boot") || stderr.contains("failed at wait for agent"),
        "{stderr}"
    );
    assert!(
        stderr.contains("console log: ") || stderr.contains("console.log"),
        "{stderr}"
    );
    assert_eq!(bed.ok(&["vm", "list", "--json"]).trim(), "[]");
    assert!(bed.links("bgr-").is_empty());
    let after: Vec<_> = std::fs::read_dir(&vms_dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(before, after, "no VM directory left");
    bed.ok(&["image", "rm", "e2e-broken"]);
    bed.ok(&["kernel", "rm", "e2e-broken"]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bgr-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
