//! What `prepare disks` leaves on the fake host, read back from the real ext4 disks: every VM
//! gets its own SSH host key written into its system disk (so its guest never runs
//! `ssh-keygen`), and once a create is over, spare copies of its disks are made that the next
//! create takes instead of copying.

mod fakehost;

use std::time::{Duration, Instant};

use banger_image::ext4;
use banger_model::VmRecord;
use banger_proto::{Operation, OperationState};
use fakehost::*;

const KEY: &str = "/etc/ssh/ssh_host_ed25519_key";

fn rootfs_text(vm: &VmRecord, path: &str) -> String {
    let bytes = ext4::read_file(&vm.dir.join("rootfs.ext4"), path).expect("debugfs cat");
    String::from_utf8(bytes).expect("utf-8")
}

fn disks_detail(op: &Operation) -> String {
    op.stages
        .iter()
        .find(|s| s.name == "prepare disks")
        .and_then(|s| s.detail.clone())
        .unwrap_or_default()
}

/// Waits (bounded) until `n` spare disks exist.
fn wait_for_spares(dir: &std::path::Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let count = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0);
        if count >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} spares of {n} after 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs e2fsprogs (mkfs.ext4, debugfs)"]
async fn each_vm_has_its_own_host_key_and_the_next_create_takes_spare_disks() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");

    let first = finish(&ctx, create(&ctx, "alpha", "base").await).await;
    assert_eq!(first.state, OperationState::Succeeded, "{first:?}");
    assert!(disks_detail(&first).contains("disks made"), "{first:?}");
    wait_for_spares(ctx.spares().dir(), 2);

    let second = finish(&ctx, create(&ctx, "beta", "base").await).await;
    assert_eq!(second.state, OperationState::Succeeded, "{second:?}");
    assert!(disks_detail(&second).contains("spare disks"), "{second:?}");

    let vms = ctx.store().vms();
    let a = vms.get_by_name("alpha").expect("store").expect("alpha");
    let b = vms.get_by_name("beta").expect("store").expect("beta");
    for vm in [&a, &b] {
        let st = ext4::stat(&vm.dir.join("rootfs.ext4"), KEY)
            .expect("debugfs stat")
            .expect("a host key");
        assert_eq!((st.mode, st.uid, st.gid), (0o600, 0, 0), "{}", vm.name);
        assert!(
            rootfs_text(vm, KEY).starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
            "{}",
            vm.name
        );
        let public = rootfs_text(vm, &format!("{KEY}.pub"));
        assert!(public.starts_with("ssh-ed25519 "), "{public}");
        assert!(
            public.trim_end().ends_with(&format!("root@{}", vm.name)),
            "{public}"
        );
    }
    assert_ne!(
        rootfs_text(&a, KEY),
        rootfs_text(&b, KEY),
        "no two VMs share a key"
    );
    // The staged halves are gone from the VMs' directories.
    for vm in [&a, &b] {
        assert!(!vm.dir.join(".host-key").exists() && !vm.dir.join(".host-key.pub").exists());
    }
}
