//! Warm snapshots on a real guest, at the VMM layer: a guest booted with its RAM in a shared
//! file is paused and saved, then two VMs are restored from that one RAM file, mapped private.
//! Both must come up running the saved guest (same hostname, uptime carried on, the agent
//! answering) at the same time, and the RAM file must not change, however the clones write.
//!
//! Then each clone takes on its own identity over `POST /identity` (hostname, clock, entropy,
//! a host key of its own, checked on its disk after a clean power-off).
//!
//! No network device: nothing here is on a guest subnet. Needs root (the Guestbed's
//! namespace and host-side pulls), QEMU and the default image and kernel.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use banger_daemon::vms::agent;
use banger_guest::Identity;
use banger_guest::identity::WallClock;
use banger_vmm::qemu::{QemuVmm, Snapshot};
use banger_vmm::{AgentEndpoint, DiskSpec, LaunchSpec, Vmm, VmmHandle};
use common::{Guestbed, tagged_pids, wait_until};
use serde_json::Value;

const BOOT: Duration = Duration::from_secs(180);

fn show(bed: &Guestbed, what: &str, name: &str) -> Value {
    let out = bed.banger(&[what, "show", name, "--json"], Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn sparse_copy(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("--sparse=always")
        .arg(from)
        .arg(to)
        .output()
        .expect("cp runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn spec(id: &str, scratch: &Path, kernel: &Value) -> LaunchSpec {
    let dir = scratch.join(id);
    std::fs::create_dir_all(&dir).expect("vm dir");
    let cmdline = banger_guest::boot::GuestBoot {
        hostname: Some("snap-template".to_owned()),
        ..Default::default()
    }
    .to_cmdline()
    .expect("cmdline");
    LaunchSpec {
        vm_id: id.to_owned(),
        vcpu: 1,
        memory_mib: 512,
        kernel: PathBuf::from(kernel["vmlinux_path"].as_str().expect("vmlinux")),
        initrd: kernel["initrd_path"].as_str().map(PathBuf::from),
        cmdline,
        disks: vec![DiskSpec {
            path: dir.join("root.ext4"),
            read_only: false,
        }],
        net: None,
        run_dir: dir,
    }
}

/// The agent's health, once it answers (bounded).
async fn healthy(handle: &VmmHandle, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        if let Ok((200, body)) =
            agent::call(&handle.agent, "GET", "/healthz", Duration::from_secs(5)).await
        {
            return body;
        }
        assert!(
            start.elapsed() < within,
            "the agent of {} did not answer within {within:?}; console: {}",
            handle.tag,
            std::fs::read_to_string(&handle.console_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("Pss:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

#[test]
#[ignore = "needs root, QEMU and a real guest"]
fn two_guests_restore_from_one_saved_ram_file() {
    let bed = Guestbed::new();
    bed.pull_defaults();
    let image = show(&bed, "image", "debian-bookworm");
    let kernel = show(&bed, "kernel", "debian-cloud");
    let _ = bed.banger(&["daemon", "stop"], Duration::from_secs(30));
    let rootfs = PathBuf::from(image["rootfs_path"].as_str().expect("rootfs"));
    let scratch = tempfile::Builder::new()
        .prefix("banger-snap-")
        .tempdir_in("/var/tmp")
        .expect("scratch");
    let scratch = scratch.path();
    let vmm = QemuVmm::detect().expect("qemu");
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    rt.block_on(async {
        // The template: boots cold with its RAM in a shared file.
        let template = spec("snaptpl00000001", scratch, &kernel);
        sparse_copy(&rootfs, &template.disks[0].path);
        // The agent under test, as the daemon gives every VM its own.
        banger_daemon::images::inject_agent(
            &template.disks[0].path,
            &common::binary("banger-agent"),
        )
        .expect("inject the agent");
        let ram = scratch.join("ram");
        // Through the backend's warm-snapshot capability, as the daemon uses it.
        let warm = vmm.warm().expect("QEMU has warm snapshots");
        let handle = warm
            .launch_saveable(&template, &ram)
            .await
            .expect("template boots");
        let before = healthy(&handle, BOOT).await;
        let saved = Snapshot {
            memory: scratch.join("saved-ram"),
            state: scratch.join("state"),
        };
        let took = warm.save(&handle, &ram, &saved).await.expect("save");
        let state_size = std::fs::metadata(&saved.state).expect("state").len();
        eprintln!("saved in {took:?}: device state {state_size} bytes");
        assert!(
            state_size > 0 && state_size < 16 << 20,
            "RAM stayed out of the state"
        );

        // Disks are copied while the guest is paused; then the template goes.
        let clones: Vec<LaunchSpec> = ["snapcln00000001", "snapcln00000002"]
            .iter()
            .map(|id| spec(id, scratch, &kernel))
            .collect();
        for clone in &clones {
            sparse_copy(&template.disks[0].path, &clone.disks[0].path);
        }
        banger_vmm::process::kill(handle.pid, &handle.tag).expect("kill template");
        assert!(
            banger_vmm::process::wait_gone(handle.pid, &handle.tag, Duration::from_secs(10)).await
        );
        let ram_hash = sha256(&saved.memory);

        let mut restored = Vec::new();
        for clone in &clones {
            let start = Instant::now();
            let h = warm.restore(clone, &saved).await.expect("restore");
            let health = healthy(&h, Duration::from_secs(60)).await;
            eprintln!("{} restored and answering in {:?}", h.tag, start.elapsed());
            assert_eq!(health["hostname"], before["hostname"], "{health}");
            assert!(
                health["uptime_ms"].as_u64() >= before["uptime_ms"].as_u64(),
                "the saved guest goes on: {before} then {health}"
            );
            restored.push(h);
        }
        // Both at once, each its own process and agent channel.
        for h in &restored {
            let health = healthy(h, Duration::from_secs(30)).await;
            assert_eq!(health["status"], "ok");
            assert!(matches!(h.agent, AgentEndpoint::Serial { .. }));
            eprintln!("{} pss {} KiB", h.tag, pss_kib(h.pid));
        }
        assert_eq!(
            sha256(&saved.memory),
            ram_hash,
            "the clones' writes reached the snapshot"
        );

        // Each clone becomes itself: its own hostname, the host's clock, fresh entropy and a
        // host key of its own (then a clean power-off, so its disk holds what it wrote).
        let host_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        for (i, h) in restored.iter().enumerate() {
            let identity = Identity {
                boot: banger_guest::GuestBoot {
                    hostname: Some(format!("clone-{i}")),
                    ..Default::default()
                },
                clock: Some(WallClock {
                    secs: host_secs + 3600,
                    nanos: 0,
                }),
                seed: Some((0..32).map(|b| b ^ (i as u8)).collect()),
                ..Identity::default()
            };
            let body = identity.to_body().expect("body");
            let (status, answer) = agent::call_with_body(
                &h.agent,
                "POST",
                "/identity",
                body.as_bytes(),
                Duration::from_secs(60),
            )
            .await
            .expect("identity answered");
            assert_eq!(status, 200, "{answer}");
            let health = healthy(h, Duration::from_secs(30)).await;
            assert_eq!(health["hostname"], format!("clone-{i}"), "{health}");
            let (status, answer) = agent::call_with_body(
                &h.agent,
                "POST",
                "/identity",
                b"banger.mac=01:00:00:00:00:01",
                Duration::from_secs(10),
            )
            .await
            .expect("bad identity answered");
            assert_eq!(status, 400, "a multicast MAC is refused: {answer}");
        }
        for h in &restored {
            let (status, _) = agent::call(&h.agent, "POST", "/shutdown", Duration::from_secs(10))
                .await
                .expect("shutdown");
            assert_eq!(status, 202);
        }
        for h in &restored {
            assert!(
                wait_until(Duration::from_secs(60), || tagged_pids(&h.tag).is_empty()),
                "{} did not power off",
                h.tag
            );
        }
        let key = |disk: &Path| {
            let out = Command::new("debugfs")
                .arg("-R")
                .arg("cat /etc/ssh/ssh_host_ed25519_key.pub")
                .arg(disk)
                .output()
                .expect("debugfs");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        // Without the new key both clones would flush the saved guest's one.
        let keys: Vec<String> = clones.iter().map(|c| key(&c.disks[0].path)).collect();
        for k in &keys {
            assert!(k.starts_with("ssh-ed25519 "), "{k:?}");
        }
        assert_ne!(keys[0], keys[1], "two clones share a host key");
    });

    // A state file that is not one: the restore fails and leaves no process behind.
    let bogus = Snapshot {
        memory: scratch.join("saved-ram"),
        state: scratch.join("bogus-state"),
    };
    std::fs::write(&bogus.state, b"not a migration stream").expect("bogus");
    let bad = spec("snapbad00000001", scratch, &kernel);
    sparse_copy(&rootfs, &bad.disks[0].path);
    let err = rt
        .block_on(vmm.restore(&bad, &bogus, Duration::from_secs(30)))
        .expect_err("a bogus state does not load");
    eprintln!("bogus state: {err}");
    assert!(
        tagged_pids("banger-snapbad00000001").is_empty(),
        "a failed restore left a VMM"
    );
}
