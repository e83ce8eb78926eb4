//! Inspecting and changing a real guest: `vm health`, `vm stats`, `vm ports`, `vm set` (more
//! vCPUs, a bigger `/root`) and `vm prune`.
//!
//! Needs root, QEMU and (for the host-side pulls) the Debian mirror. One guest.
//!
//! The default image is built once per machine and cached, so its agent may predate
//! `GET /ports`; the test writes this build's agent into the VM's own system disk while the
//! VM is stopped (what `image pull` does for a fresh image) before it asks for ports.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Guestbed, wait_until};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(900);
const VM: &str = "e2e-inspect";
/// Where images carry the agent.
const AGENT_GUEST_PATH: &str = banger_guest::paths::AGENT_PATH;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not json ({e}): {text}"))
}

fn ssh_ok(bed: &Guestbed, cmd: &[&str]) -> String {
    let mut args = vec!["vm", "ssh", VM, "--"];
    args.extend_from_slice(cmd);
    let out = bed.banger(&args, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "ssh {cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `vm health` passes (retried briefly: the checks have short timeouts and TCG is slow).
fn assert_healthy(bed: &Guestbed) {
    let mut last = String::new();
    let healthy = wait_until(Duration::from_secs(60), || {
        let out = bed.banger(&["vm", "health", VM], Duration::from_secs(60));
        last = format!(
            "{}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success()
    });
    assert!(healthy, "vm health never passed: {last}");
    for check in ["vmm", "agent", "ssh"] {
        assert!(
            last.lines()
                .any(|l| l.starts_with(check) && l.contains(" ok ")),
            "{check} line: {last}"
        );
    }
}

/// Writes this build's agent into an ext4 system disk, as `image pull` does.
fn refresh_agent(rootfs: &Path) {
    let agent = common::binary("banger-agent");
    assert!(
        agent.is_file(),
        "{} missing: build the workspace binaries first",
        agent.display()
    );
    let script = format!(
        "rm {AGENT_GUEST_PATH}\nwrite {} {AGENT_GUEST_PATH}\n\
         sif {AGENT_GUEST_PATH} mode 0100755\nsif {AGENT_GUEST_PATH} uid 0\n\
         sif {AGENT_GUEST_PATH} gid 0\n",
        agent.display()
    );
    let script_file = rootfs.with_file_name("refresh-agent.debugfs");
    std::fs::write(&script_file, script).expect("write debugfs script");
    let out = Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&script_file)
        .arg(rootfs)
        .output()
        .expect("debugfs runs");
    let _ = std::fs::remove_file(&script_file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs root, QEMU and a real guest"]
fn health_stats_ports_set_and_prune_on_a_real_guest() {
    let bed = Guestbed::new();
    bed.pull_defaults();
    let out = bed.banger(
        &[
            "vm",
            "create",
            "--name",
            VM,
            "--vcpu",
            "1",
            "--memory",
            "512M",
            "--disk-size",
            "8G",
        ],
        LONG,
    );
    assert!(
        out.status.success(),
        "create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vm = json(&bed.ok(&["vm", "show", VM, "--json"]));
    let dir = bed.layout().vms_dir().join(vm["id"].as_str().expect("id"));

    // Health: VMM, agent and SSH, as lines and as JSON.
    assert_healthy(&bed);
    let health = json(&bed.ok(&["vm", "health", VM, "--json"]));
    assert_eq!(health["vmm_alive"], true, "{health}");
    assert_eq!(health["agent"]["ok"], true, "{health}");
    assert_eq!(health["ssh"]["ok"], true, "{health}");

    // Stats: the VMM has burnt CPU and holds memory; the work disk is sparse.
    let stats = json(&bed.ok(&["vm", "stats", VM, "--json"]));
    let process = &stats["process"];
    assert!(
        process["cpu_seconds"].as_f64().unwrap_or(0.0) > 0.0,
        "{stats}"
    );
    assert!(process["rss_bytes"].as_u64().unwrap_or(0) > 0, "{stats}");
    assert_eq!(stats["memory_mib"], 512);
    let work = stats["disks"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "work"))
        .unwrap_or_else(|| panic!("work disk in {stats}"));
    assert_eq!(work["apparent_bytes"], 8u64 << 30);
    assert!(
        work["allocated_bytes"].as_u64().unwrap_or(u64::MAX) < 8 << 30,
        "{stats}"
    );
    let text = bed.ok(&["vm", "stats", VM]);
    assert!(text.contains("resident of 512.0 MiB"), "{text}");

    // Set refuses a running VM and names the fix.
    let out = bed.banger(&["vm", "set", VM, "--vcpu", "2"], Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("banger vm stop"));

    // Stopped: unhealthy (exit 1), no ports, but set works; disks only grow.
    bed.ok(&["vm", "stop", VM]);
    let out = bed.banger(&["vm", "health", VM], Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("fail"));
    let out = bed.banger(&["vm", "ports", VM], Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    refresh_agent(&dir.join("rootfs.ext4"));
    bed.ok(&["vm", "set", VM, "--vcpu", "2", "--disk-size", "10G"]);
    let out = bed.banger(
        &["vm", "set", VM, "--disk-size", "9G"],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only grow"));
    let vm = json(&bed.ok(&["vm", "show", VM, "--json"]));
    assert_eq!(vm["spec"]["vcpu"], 2);
    assert_eq!(vm["spec"]["disk_size"], "10G");

    // Started again: two CPUs, a bigger /root, sshd listening.
    bed.ok(&["vm", "start", VM]);
    assert_eq!(ssh_ok(&bed, &["nproc"]), "2");
    let df = ssh_ok(&bed, &["df", "-B1", "--output=size", "/root"]);
    let root_size: u64 = df
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("df: {df}"));
    assert!(root_size > 9 << 30, "/root is {root_size} bytes");
    let ports = json(&bed.ok(&["vm", "ports", VM, "--json"]));
    let listed = ports["ports"].as_array().expect("ports");
    assert!(
        listed
            .iter()
            .any(|p| p["protocol"] == "tcp" && p["port"] == 22),
        "sshd listens on 22: {ports}"
    );
    let table = bed.ok(&["vm", "ports", VM]);
    assert!(table.starts_with("PROTO"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("tcp") && l.ends_with(" 22")),
        "{table}"
    );
    assert_healthy(&bed);

    // Prune: refused without -f and a terminal, keeps running VMs, then deletes it stopped.
    let out = bed.banger(&["vm", "prune"], Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    let out = bed.banger(&["vm", "prune", "-f"], Duration::from_secs(120));
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("deleted"));
    assert_eq!(
        json(&bed.ok(&["vm", "show", VM, "--json"]))["state"],
        "running"
    );
    bed.ok(&["vm", "stop", VM]);
    let out = bed.banger(&["vm", "prune", "-f"], Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("{VM} deleted")), "{stderr}");
    assert_eq!(bed.ok(&["vm", "list", "--json"]).trim(), "[]");
    assert!(!dir.exists(), "vm dir removed");
    assert!(bed.links("bgr-").is_empty(), "{:?}", bed.links(""));
}
