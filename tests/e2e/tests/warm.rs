//! Warm snapshots through banger itself, on real guests: the first VM of a boot class is
//! saved, the next ones restore and each becomes its own VM (hostname, address, MAC, SSH host
//! key pinned per VM, random streams, the host's clock even after the snapshot aged); a
//! corrupt snapshot and a new image both boot cold and save a new snapshot; `--cold` skips
//! them; `vm run --rm` gives the same output and exit code warm and cold.
//!
//! Needs root, QEMU and (for the host-side pulls) the Debian mirror. Up to three small guests
//! at once.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Guestbed;

const LONG: Duration = Duration::from_secs(900);
const SIZE: [&str; 4] = ["--vcpu", "1", "--memory", "512M"];

fn run(bed: &Guestbed, args: &[&str]) -> (Output, String, String) {
    let out = bed.banger(args, LONG);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn ok(bed: &Guestbed, args: &[&str]) -> (String, String) {
    let (out, stdout, stderr) = run(bed, args);
    assert!(
        out.status.success(),
        "banger {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// Creates VM `name` (plus `extra` flags) and returns the create's progress lines.
fn create(bed: &Guestbed, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["vm", "create", "--name", name];
    args.extend_from_slice(&SIZE);
    args.extend_from_slice(extra);
    ok(bed, &args).1
}

fn restored(progress: &str) -> bool {
    progress.contains("✓ restore")
}

fn saved(progress: &str) -> bool {
    progress.contains("✓ save warm snapshot")
}

/// The complete snapshots in the state dir (directories with a meta.json).
fn snapshots(root: &std::path::Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join("meta.json").is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// What makes a VM itself, read inside it over `vm ssh`.
#[derive(Debug)]
struct Facts {
    hostname: String,
    addr: String,
    mac: String,
    host_key: String,
    uuid: String,
    clock_skew: i64,
}

fn facts(bed: &Guestbed, vm: &str) -> Facts {
    let script = "hostname; ip -4 -o addr show dev eth0 | awk '{print $4}'; \
                  cat /sys/class/net/eth0/address; \
                  awk '{print $2}' /etc/ssh/ssh_host_ed25519_key.pub; \
                  cat /proc/sys/kernel/random/uuid; date +%s";
    let (stdout, _) = ok(bed, &["vm", "ssh", vm, "--", "sh", "-c", script]);
    let host_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    let guest_now: i64 = lines[5].parse().expect("date +%s");
    Facts {
        hostname: lines[0].to_owned(),
        addr: lines[1].to_owned(),
        mac: lines[2].to_owned(),
        host_key: lines[3].to_owned(),
        uuid: lines[4].to_owned(),
        clock_skew: host_now - guest_now,
    }
}

fn vm_ip(bed: &Guestbed, vm: &str) -> String {
    let (stdout, _) = ok(bed, &["vm", "show", vm, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("vm show --json");
    v["guest_ip"].as_str().expect("guest_ip").to_owned()
}

#[test]
#[ignore = "needs root, QEMU and a real guest"]
fn restored_vms_are_their_own() {
    let bed = Guestbed::new();
    bed.pull_defaults();
    let root = bed.layout().state_dir.join("snapshots");
    // Start without snapshots, so the first create of the class is the one saved.
    let _ = std::fs::remove_dir_all(&root);

    // The first VM boots cold and is saved.
    let progress = create(&bed, "warm-a", &[]);
    assert!(saved(&progress) && !restored(&progress), "{progress}");
    let saved_once = snapshots(&root);
    assert_eq!(saved_once.len(), 1, "{saved_once:?}");
    let (shown, _) = ok(&bed, &["vm", "show", "warm-a", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("vm show --json");
    let id = shown["id"].as_str().expect("id");
    let ram = PathBuf::from(format!("/dev/shm/banger-warm-{id}.ram"));
    assert!(
        !ram.exists(),
        "the template's RAM file {} is removed once saved",
        ram.display()
    );

    // Let the snapshot age, so a restore that kept the saved clock would be far off.
    std::thread::sleep(Duration::from_secs(20));

    // Two VMs restore from it, each its own.
    let mut vms = vec![("warm-a".to_owned(), facts(&bed, "warm-a"))];
    for name in ["warm-b", "warm-c"] {
        let progress = create(&bed, name, &[]);
        assert!(restored(&progress) && !saved(&progress), "{progress}");
        vms.push((name.to_owned(), facts(&bed, name)));
    }
    for (name, f) in &vms {
        eprintln!("{name}: {f:?}");
        assert_eq!(&f.hostname, name);
        let ip = vm_ip(&bed, name);
        assert_eq!(f.addr, format!("{ip}/24"), "{name}");
        assert!(
            f.clock_skew.abs() <= 2,
            "{name}'s clock is {}s off",
            f.clock_skew
        );
    }
    for field in [
        |f: &Facts| f.addr.clone(),
        |f: &Facts| f.mac.clone(),
        |f: &Facts| f.host_key.clone(),
        |f: &Facts| f.uuid.clone(),
    ] {
        let distinct: BTreeSet<String> = vms.iter().map(|(_, f)| field(f)).collect();
        assert_eq!(distinct.len(), vms.len(), "{vms:?}");
    }
    // Random streams differ right after the restore: the first bytes each clone draws.
    let draws: BTreeSet<String> = ["warm-b", "warm-c"]
        .iter()
        .map(|vm| {
            ok(
                &bed,
                &[
                    "vm",
                    "ssh",
                    vm,
                    "--",
                    "od",
                    "-An",
                    "-N16",
                    "-tx1",
                    "/dev/urandom",
                ],
            )
            .0
        })
        .collect();
    assert_eq!(draws.len(), 2, "{draws:?}");
    // Trust on first use pinned each VM's own key.
    let pinned =
        std::fs::read_to_string(bed.layout().ssh_dir().join("known_hosts")).expect("known_hosts");
    for (name, f) in &vms {
        let ip = vm_ip(&bed, name);
        let line = pinned
            .lines()
            .find(|l| l.split_whitespace().next() == Some(ip.as_str()) && l.contains("ed25519"))
            .unwrap_or_else(|| panic!("no pinned key for {name} ({ip}) in {pinned}"));
        assert!(
            line.contains(&f.host_key),
            "{name}: {line} vs {}",
            f.host_key
        );
    }
    for vm in ["warm-b", "warm-c"] {
        ok(&bed, &["vm", "delete", vm]);
    }

    // --cold skips the snapshot and saves none.
    let progress = create(&bed, "warm-d", &["--cold"]);
    assert!(!restored(&progress) && !saved(&progress), "{progress}");
    ok(&bed, &["vm", "delete", "warm-d"]);

    // A corrupt snapshot: the create warns, boots cold and saves a new one.
    let state = saved_once[0].join("state");
    std::fs::write(&state, b"not a device state").expect("corrupt the snapshot");
    let progress = create(&bed, "warm-e", &[]);
    assert!(
        progress.contains("warning: the warm snapshot did not restore") && saved(&progress),
        "{progress}"
    );
    let f = facts(&bed, "warm-e");
    assert_eq!(f.hostname, "warm-e");
    assert_ne!(
        std::fs::read(&state).expect("the new state"),
        b"not a device state",
        "the snapshot was rebuilt"
    );
    ok(&bed, &["vm", "delete", "warm-e"]);

    // A new image (promoted from warm-a) is another class: cold, then saved.
    ok(&bed, &["vm", "stop", "warm-a"]);
    ok(&bed, &["image", "promote", "warm-a", "warm-golden"]);
    let progress = create(&bed, "warm-f", &["--image", "warm-golden"]);
    assert!(saved(&progress) && !restored(&progress), "{progress}");
    assert_eq!(snapshots(&root).len(), 2);
    let progress = create(&bed, "warm-g", &["--image", "warm-golden"]);
    assert!(restored(&progress), "{progress}");
    assert_eq!(facts(&bed, "warm-g").hostname, "warm-g");
    for vm in ["warm-a", "warm-f", "warm-g"] {
        ok(&bed, &["vm", "delete", vm]);
    }
    ok(&bed, &["image", "delete", "warm-golden"]);

    // vm run --rm: the same output and exit code restored and cold.
    let scratch = common::e2e_root().join(format!("warm-scratch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch");
    std::fs::write(scratch.join("hello.txt"), "hello from the repo\n").expect("a tracked file");
    for git in [
        &["init", "-q", "-b", "main"][..],
        &["add", "hello.txt"][..],
        &[
            "-c",
            "user.name=e2e",
            "-c",
            "user.email=e2e@example.com",
            "commit",
            "-qm",
            "one",
        ][..],
    ] {
        let status = std::process::Command::new("git")
            .arg("-C")
            .arg(&scratch)
            .args(git)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .status()
            .expect("git runs");
        assert!(status.success(), "git {git:?}");
    }
    let dir = scratch.to_str().expect("utf-8 path");
    let mut results = Vec::new();
    for extra in [&[][..], &["--cold"][..]] {
        let mut args = vec!["vm", "run", "--rm"];
        args.extend_from_slice(&SIZE);
        args.extend_from_slice(extra);
        args.extend_from_slice(&[dir, "--", "sh", "-c", "cat /root/repo/hello.txt; exit 5"]);
        let (out, stdout, stderr) = run(&bed, &args);
        assert_eq!(restored(&stderr), extra.is_empty(), "{stderr}");
        results.push((out.status.code(), stdout));
    }
    assert_eq!(results[0], (Some(5), "hello from the repo".to_owned()));
    assert_eq!(results[0], results[1]);
    let _ = std::fs::remove_dir_all(&scratch);
}
