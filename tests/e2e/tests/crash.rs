//! A daemon killed with SIGKILL right after it spawned a VMM, on a real guest: the VMM must
//! never be orphaned. Whatever the daemon had recorded by then, the next daemon finds the
//! VMM by its `banger-<id>` tag, and once the VM is deleted no process with that tag exists.
//!
//! Needs root, QEMU and (for the host-side pulls) the Debian mirror. One guest at a time.

mod common;

use std::time::{Duration, Instant};

use common::{Guestbed, tagged_pids, wait_until};

#[test]
#[ignore = "needs root, QEMU and a real guest"]
fn a_daemon_killed_right_after_spawning_a_vmm_leaves_no_orphan() {
    let bed = Guestbed::new();
    bed.pull_defaults();
    let mut create = bed.spawn(&["vm", "create", "--name", "crash-a", "--vcpu", "1"]);

    // Wait (bounded) for the record, then for its VMM process to appear, and kill the
    // daemon at once.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut id = None;
    let mut killed_with_vmm = false;
    while Instant::now() < deadline {
        if id.is_none() {
            let out = bed.banger(&["vm", "list", "--json"], Duration::from_secs(10));
            let vms: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            id = vms.as_array().and_then(|vms| {
                vms.iter()
                    .find(|v| v["name"] == "crash-a")
                    .and_then(|v| v["id"].as_str().map(str::to_owned))
            });
        }
        if let Some(id) = &id
            && !tagged_pids(&format!("banger-{id}")).is_empty()
        {
            bed.kill_daemon();
            killed_with_vmm = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = create.kill();
    let _ = create.wait();
    let id = id.expect("the create recorded its vm");
    assert!(killed_with_vmm, "the VMM never appeared");
    let tag = format!("banger-{id}");

    // The next command brings a daemon back, which reconciles; delete must leave no VMM.
    let out = bed.banger(&["vm", "delete", "crash-a"], Duration::from_secs(120));
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_until(Duration::from_secs(15), || tagged_pids(&tag).is_empty()),
        "a VMM tagged {tag} outlived its VM: {:?}",
        tagged_pids(&tag)
    );
    assert!(
        bed.links("bgr-").is_empty(),
        "a tap is left: {:?}",
        bed.links("bgr-")
    );
}
