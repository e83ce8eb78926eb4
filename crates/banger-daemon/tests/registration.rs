//! Registering kernels and images, and the start-up reconcile of the state dir, on a
//! simulated host (no root, no VMM): races of one name, content checks, and leftovers of
//! interrupted work.

mod fakehost;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use banger_daemon::images::{self, validate::Requester};
use banger_daemon::state_dir;
use banger_proto::{ErrorCode, RegisterImageRequest, RegisterKernelRequest};
use fakehost::*;

fn elf(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, banger_testkit::fakes::stand_in_vmlinux()).expect("write");
    path
}

fn ext4(dir: &Path, name: &str) -> PathBuf {
    let tree = dir.join(format!("{name}.tree"));
    std::fs::create_dir_all(tree.join("usr/local/bin")).expect("tree");
    // What registration checks for: a shell (sessions run through it) and an sshd (so no
    // OpenSSH bundle is injected).
    for dir in ["bin", "usr/sbin"] {
        std::fs::create_dir_all(tree.join(dir)).expect("tree");
    }
    std::fs::write(tree.join("bin/sh"), "stand-in shell\n").expect("sh");
    std::fs::write(tree.join("usr/sbin/sshd"), "stand-in sshd\n").expect("sshd");
    let path = dir.join(name);
    run(Command::new("mkfs.ext4")
        .args(["-F", "-q", "-d"])
        .arg(&tree)
        .arg(&path)
        .arg("16M"));
    path
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_parallel_registrations_of_one_kernel_name_have_one_winner_with_its_files() {
    let host = Host::new();
    let ctx = host.daemon();
    let src = tempfile::tempdir().expect("src");
    let mut tasks = Vec::new();
    for i in 0..3 {
        let ctx = ctx.clone();
        let vmlinux = elf(src.path(), &format!("vmlinux-{i}"));
        tasks.push(tokio::spawn(async move {
            images::register_kernel(
                &ctx,
                RegisterKernelRequest {
                    name: "k1".into(),
                    vmlinux,
                    initrd: None,
                },
                &Requester::root(),
            )
            .await
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(k) => winners.push(k),
            Err(e) => assert_eq!(e.code(), ErrorCode::AlreadyExists, "{e:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let kernel = &winners[0];
    assert!(
        kernel.vmlinux_path.is_file(),
        "the winner's files are intact"
    );
    let listed = ctx.store().kernels().list().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(entries(&host.layout.kernels_dir()), ["k1"]);
    assert!(
        entries(&host.layout.state_dir.join("staging")).is_empty(),
        "losers left nothing"
    );
    let mode = std::fs::metadata(&kernel.vmlinux_path)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "stored copies are private");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_parallel_registrations_of_one_image_name_have_one_winner() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let src = tempfile::tempdir().expect("src");
    let rootfs = ext4(src.path(), "rootfs.ext4");
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let ctx = ctx.clone();
        let rootfs = rootfs.clone();
        tasks.push(tokio::spawn(async move {
            images::register_image(
                &ctx,
                RegisterImageRequest {
                    name: "mine".into(),
                    rootfs,
                    work_seed: None,
                    kernel: "base-kernel".into(),
                },
                &Requester::root(),
            )
            .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(image) => {
                won += 1;
                assert!(image.rootfs_path.is_file());
            }
            Err(e) => assert_eq!(e.code(), ErrorCode::AlreadyExists, "{e:?}"),
        }
    }
    assert_eq!(won, 1);
    // The seeded image's dir plus the winner's; nothing from the losers.
    assert_eq!(entries(&host.layout.images_dir()).len(), 2);
    assert!(entries(&host.layout.state_dir.join("staging")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_refuse_files_that_are_not_what_they_claim() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let src = tempfile::tempdir().expect("src");
    let text = src.path().join("shadow");
    std::fs::write(&text, "root:*:19000:0:99999:7:::\n").expect("write");
    let empty = src.path().join("empty");
    std::fs::write(&empty, b"").expect("write");
    for vmlinux in [&text, &empty, &PathBuf::from("/bin/true")] {
        let err = images::register_kernel(
            &ctx,
            RegisterKernelRequest {
                name: "bad".into(),
                vmlinux: vmlinux.clone(),
                initrd: None,
            },
            &Requester::root(),
        )
        .await
        .expect_err("refused");
        assert_eq!(err.code(), ErrorCode::BadRequest, "{err:?}");
        assert!(err.to_string().contains("is not a kernel"), "{err}");
    }
    let err = images::register_kernel(
        &ctx,
        RegisterKernelRequest {
            name: "bad".into(),
            vmlinux: elf(src.path(), "vmlinux"),
            initrd: Some(text.clone()),
        },
        &Requester::root(),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("initramfs"), "{err}");
    let err = images::register_image(
        &ctx,
        RegisterImageRequest {
            name: "bad".into(),
            rootfs: ext4(src.path(), "ok.ext4"),
            work_seed: Some(text.clone()),
            kernel: "base-kernel".into(),
        },
        &Requester::root(),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("work seed"), "{err}");
    assert!(err.to_string().contains("ext4"), "{err}");

    // A file only its owner may read is refused for anyone else, before it is read.
    let private = elf(src.path(), "private-vmlinux");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let stranger = Requester {
        uid: 4242,
        groups: vec![4242],
    };
    let err = images::register_kernel(
        &ctx,
        RegisterKernelRequest {
            name: "stolen".into(),
            vmlinux: private,
            initrd: None,
        },
        &stranger,
    )
    .await
    .expect_err("refused");
    assert!(
        err.to_string().contains("not readable by you"),
        "{}",
        err.to_string()
    );
    assert_eq!(
        ctx.store().kernels().list().expect("list").len(),
        1,
        "only the seeded kernel"
    );
    assert!(entries(&host.layout.kernels_dir()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_reconcile_removes_unowned_image_and_kernel_files_and_reports_the_rest() {
    let host = Host::new();
    let ctx = host.daemon();
    let image = host.seed_image(&ctx, "base");
    // Leftovers of interrupted work: a registration's staging dir, a pull's half-built image,
    // a kernel dir without a record, a vm dir without a record.
    let leftovers = [
        host.layout.state_dir.join("staging/0123abcd"),
        host.layout.images_dir().join("half-built"),
        host.layout.kernels_dir().join("orphan"),
    ];
    for dir in &leftovers {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join("big.ext4"), b"bytes").expect("write");
    }
    let stray_vm = host.layout.vms_dir().join("feedfacecafe0001");
    std::fs::create_dir_all(&stray_vm).expect("mkdir");
    std::fs::write(stray_vm.join("work.ext4"), b"someone's work").expect("write");

    let report = state_dir::reconcile(&ctx);
    for dir in &leftovers {
        assert!(!dir.exists(), "{} left", dir.display());
        assert!(report.removed.contains(dir), "{report:?}");
    }
    assert!(image.rootfs_path.exists(), "an owned image stays");
    assert!(
        stray_vm.join("work.ext4").exists(),
        "vm disks are never removed"
    );
    assert_eq!(report.unowned_vm_dirs, [stray_vm]);

    std::fs::remove_file(&image.rootfs_path).expect("rm");
    let report = state_dir::reconcile(&ctx);
    assert!(
        report
            .missing_files
            .iter()
            .any(|m| m.starts_with("image base")),
        "{report:?}"
    );
}
