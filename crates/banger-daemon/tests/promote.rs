//! `image promote` on fakes: real store, real ext4 disks (e2fsprogs, no mounts), fake VMM.
//!
//! A VM's first boot is simulated by writing what a guest writes (an SSH host key, a machine
//! id, a file under `/root`) straight into its disks; the promoted image must carry the
//! user's files, lose the per-VM identity, leave the source VM untouched, and boot a new VM.

mod fakehost;

use std::path::Path;

use banger_daemon::images::promote::promote;
use banger_image::ext4;
use banger_proto::{ErrorCode, OperationState};
use fakehost::*;

fn write(image: &Path, guest_dir: &str, guest: &str, text: &str) {
    let host = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(host.path(), text).expect("write");
    let mut edits = ext4::Edits::new();
    edits.mkdir_p(guest_dir).put(host.path(), guest);
    ext4::apply(image, &edits).expect("debugfs write");
}

fn read(image: &Path, guest: &str) -> String {
    String::from_utf8(ext4::read_file(image, guest).expect("debugfs cat")).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs e2fsprogs (mkfs.ext4, debugfs)"]
async fn a_stopped_vm_becomes_an_image_without_its_identity_and_boots_a_new_vm() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let vm = create_ok(&ctx, "web", "base").await;
    let (rootfs, work) = (vm.dir.join("rootfs.ext4"), vm.dir.join("work.ext4"));
    write(
        &rootfs,
        "/etc/ssh",
        "/etc/ssh/ssh_host_ed25519_key",
        "secret",
    );
    write(
        &rootfs,
        "/etc/ssh",
        "/etc/ssh/ssh_host_ed25519_key.pub",
        "public",
    );
    write(
        &rootfs,
        "/etc/ssh",
        "/etc/ssh/sshd_config",
        "PermitRootLogin yes\n",
    );
    write(&rootfs, "/etc", "/etc/machine-id", "0123456789abcdef\n");
    write(&rootfs, "/opt", "/opt/tool", "installed\n");
    write(&work, "/", "/notes.txt", "kept\n");

    // A running VM is refused, and nothing is made.
    let err = promote(&ctx, "web", "golden").await.expect_err("running");
    assert_eq!(err.code(), ErrorCode::BadRequest, "{err}");
    assert!(err.to_string().contains("banger vm stop web"), "{err}");
    let err = promote(&ctx, "web", "Bad Name")
        .await
        .expect_err("bad name");
    assert_eq!(err.code(), ErrorCode::BadRequest, "{err}");
    let err = promote(&ctx, "nope", "golden").await.expect_err("no vm");
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    let err = promote(&ctx, "web", "base").await.expect_err("taken");
    assert_eq!(err.code(), ErrorCode::AlreadyExists, "{err}");
    assert_eq!(ctx.store().images().list().expect("list").len(), 1);

    banger_daemon::vms::stop(&ctx, "web").await.expect("stop");
    let before = std::fs::read(&rootfs).expect("source rootfs");
    let op = finish(
        &ctx,
        promote(&ctx, "web", "golden").await.expect("accepted"),
    )
    .await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    let stages: Vec<_> = op.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stages, ["copy disks", "scrub per-vm identity", "register"]);

    let image = ctx
        .store()
        .images()
        .get_by_name("golden")
        .expect("store")
        .expect("the promoted image");
    assert_eq!(image.kernel_name.as_deref(), Some("base-kernel"));
    assert!(image.source.contains("web"), "{}", image.source);
    let seed = image.work_seed_path.clone().expect("a work seed");
    assert_eq!(read(&image.rootfs_path, "/opt/tool"), "installed\n");
    assert_eq!(read(&seed, "/notes.txt"), "kept\n");
    let ssh = ext4::list_dir(&image.rootfs_path, "/etc/ssh").expect("ls");
    assert_eq!(ssh, ["sshd_config"], "host keys scrubbed, the rest kept");
    assert_eq!(read(&image.rootfs_path, "/etc/machine-id"), "");
    // The source VM is untouched: its disk is byte for byte what it was.
    assert_eq!(std::fs::read(&rootfs).expect("source rootfs"), before);
    assert_eq!(read(&rootfs, "/etc/ssh/ssh_host_ed25519_key"), "secret");

    // A second promote to the same name is refused; a new VM boots from the image.
    let err = promote(&ctx, "web", "golden").await.expect_err("taken");
    assert_eq!(err.code(), ErrorCode::AlreadyExists, "{err}");
    let clone = create_ok(&ctx, "web2", "golden").await;
    assert_eq!(read(&clone.dir.join("work.ext4"), "/notes.txt"), "kept\n");
    assert_eq!(
        read(&clone.dir.join("rootfs.ext4"), "/opt/tool"),
        "installed\n"
    );

    // The image is in use by web2, so it stays until that VM goes.
    assert!(banger_daemon::images::delete_image(&ctx, "golden").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs e2fsprogs (mkfs.ext4, debugfs)"]
async fn a_failed_promote_leaves_no_image_and_no_file() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let vm = create_ok(&ctx, "web", "base").await;
    banger_daemon::vms::stop(&ctx, "web").await.expect("stop");
    // A work disk that is not there makes the copy fail half way.
    std::fs::remove_file(vm.dir.join("work.ext4")).expect("remove work disk");
    let images_before = std::fs::read_dir(host.layout.images_dir())
        .expect("images dir")
        .count();
    let op = finish(
        &ctx,
        promote(&ctx, "web", "golden").await.expect("accepted"),
    )
    .await;
    assert_eq!(op.state, OperationState::Failed, "{op:?}");
    assert!(
        ctx.store()
            .images()
            .get_by_name("golden")
            .expect("store")
            .is_none()
    );
    let images_after = std::fs::read_dir(host.layout.images_dir())
        .expect("images dir")
        .count();
    assert_eq!(images_before, images_after, "no image dir left");
    let staging = host.layout.state_dir.join("staging");
    let left = std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "no staging dir left");
}
