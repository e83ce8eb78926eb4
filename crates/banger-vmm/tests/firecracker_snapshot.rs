//! Warm snapshots on the Firecracker backend, against the spec-following fake: the client's
//! snapshot calls in process (exact bodies, and the requests the API refuses), then the
//! backend against `fake-firecracker` as a process: a saveable VM paused, saved and resumed,
//! two restores from one snapshot with their own TAPs, disks, API and vsock sockets, and a
//! corrupt snapshot that fails the restore and leaves no process. No root, no KVM.

mod support;

use std::path::Path;

use banger_testkit::fake_firecracker::{FakeFirecracker, FakeState};
use banger_vmm::firecracker::{
    FirecrackerApiError, FirecrackerClient, InstanceState, JailConfig, MachineConfig, MemBackend,
    MemBackendType, SnapshotCreate, SnapshotLoad, SnapshotType,
};
use banger_vmm::warm::{Snapshot, WarmSnapshots};
use banger_vmm::{AgentEndpoint, Vmm, VmmError, VmmHandle};
use serde_json::{Value, json};
use support::*;

fn fault_of(result: Result<(), FirecrackerApiError>) -> (u16, String) {
    let e = result.expect_err("the fake refuses this request");
    (
        e.status().unwrap_or(0),
        e.fault_message().unwrap_or_default().to_owned(),
    )
}

fn load_params(dir: &Path) -> SnapshotLoad {
    SnapshotLoad {
        snapshot_path: dir.join("state"),
        mem_backend: MemBackend {
            backend_type: MemBackendType::File,
            backend_path: dir.join("mem"),
        },
        resume_vm: true,
        network_overrides: Vec::new(),
        vsock_override: None,
    }
}

#[tokio::test]
async fn the_fake_refuses_snapshot_calls_out_of_order() {
    let dir = tempfile::Builder::new()
        .prefix("fcs")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let fake = FakeFirecracker::start(dir.path().join("api.sock")).expect("fake");
    let client = FirecrackerClient::new(fake.socket_path()).with_timeout(BOUND);
    let create = SnapshotCreate {
        snapshot_type: Some(SnapshotType::Full),
        snapshot_path: dir.path().join("state"),
        mem_file_path: dir.path().join("mem"),
    };

    // Pre-boot: no pause, no create.
    let (status, message) = fault_of(client.pause().await);
    assert_eq!(status, 400);
    assert!(message.contains("before starting the microVM"), "{message}");
    let (_, message) = fault_of(client.create_snapshot(&create).await);
    assert!(message.contains("before starting the microVM"), "{message}");
    // A load after boot configuration is refused.
    client
        .put_machine_config(&MachineConfig {
            vcpu_count: 1,
            mem_size_mib: 128,
            smt: None,
        })
        .await
        .expect("machine config");
    let (status, message) = fault_of(client.load_snapshot(&load_params(dir.path())).await);
    assert_eq!(status, 400);
    assert!(
        message.contains("not allowed after configuring"),
        "{message}"
    );

    // Booted and running: a snapshot needs a pause first.
    let kernel = dir.path().join("vmlinux");
    std::fs::write(&kernel, b"k").expect("kernel");
    client
        .put_boot_source(&banger_vmm::firecracker::BootSource {
            kernel_image_path: kernel,
            boot_args: "console=ttyS0".to_owned(),
            initrd_path: None,
        })
        .await
        .expect("boot source");
    client.instance_start().await.expect("start");
    let (status, message) = fault_of(client.create_snapshot(&create).await);
    assert_eq!(status, 400);
    assert!(message.contains("unavailable while running"), "{message}");
    assert!(!create.snapshot_path.exists() && !create.mem_file_path.exists());

    // Paused: the exact bodies, then the files.
    client.pause().await.expect("pause");
    assert_eq!(fake.state(), FakeState::Paused);
    client.create_snapshot(&create).await.expect("create");
    let calls = fake.calls();
    let tail: Vec<(String, String, Option<Value>)> = calls[calls.len() - 2..]
        .iter()
        .map(|c| (c.method.clone(), c.path.clone(), c.body.clone()))
        .collect();
    assert_eq!(
        tail,
        vec![
            (
                "PATCH".to_owned(),
                "/vm".to_owned(),
                Some(json!({"state": "Paused"}))
            ),
            (
                "PUT".to_owned(),
                "/snapshot/create".to_owned(),
                Some(json!({"snapshot_type": "Full",
                            "snapshot_path": create.snapshot_path,
                            "mem_file_path": create.mem_file_path}))
            ),
        ]
    );
    assert_eq!(
        std::fs::metadata(&create.mem_file_path)
            .expect("memory file")
            .len(),
        128 << 20
    );
    // A load on a booted process is refused; resuming works and is idempotent.
    let (_, message) = fault_of(client.load_snapshot(&load_params(dir.path())).await);
    assert!(message.contains("after starting the microVM"), "{message}");
    client.resume().await.expect("resume");
    client.resume().await.expect("resume again is a no-op");
    assert_eq!(fake.state(), FakeState::Running);

    // A fresh process loads the snapshot; an unknown interface override fails it.
    let fresh = FakeFirecracker::start(dir.path().join("api2.sock")).expect("fake");
    let fresh_client = FirecrackerClient::new(fresh.socket_path()).with_timeout(BOUND);
    let mut bad = load_params(dir.path());
    bad.network_overrides = vec![banger_vmm::firecracker::NetworkOverride {
        iface_id: "eth9".to_owned(),
        host_dev_name: "bgr-x".to_owned(),
    }];
    let (_, message) = fault_of(fresh_client.load_snapshot(&bad).await);
    assert!(message.contains("Unknown Network Device"), "{message}");
    let again = FakeFirecracker::start(dir.path().join("api3.sock")).expect("fake");
    let again_client = FirecrackerClient::new(again.socket_path()).with_timeout(BOUND);
    again_client
        .load_snapshot(&load_params(dir.path()))
        .await
        .expect("load");
    let info = again_client.describe_instance().await.expect("GET /");
    assert_eq!(info.state, InstanceState::Running);
}

/// The backend's warm-snapshot capability (unjailed Firecracker has one).
fn warm(vmm: &banger_vmm::FirecrackerVmm) -> &dyn WarmSnapshots {
    vmm.warm().expect("unjailed firecracker has warm snapshots")
}

fn snapshot_in(dir: &Path) -> Snapshot {
    let snap = dir.join("snap");
    std::fs::create_dir_all(&snap).expect("snapshot dir");
    Snapshot {
        memory: snap.join("memory"),
        state: snap.join("state"),
    }
}

/// A VM launched saveable and saved into `vm`'s directory.
async fn saved(vm: &Vm, vmm: &banger_vmm::FirecrackerVmm) -> (VmmHandle, Snapshot) {
    let ram = vm.path("ram");
    let handle = warm(vmm)
        .launch_saveable(&vm.spec, &ram)
        .await
        .expect("launch saveable");
    let snapshot = snapshot_in(vm.dir.path());
    warm(vmm)
        .save(&handle, &ram, &snapshot)
        .await
        .expect("save");
    (handle, snapshot)
}

async fn state(handle: &VmmHandle) -> InstanceState {
    FirecrackerClient::new(&handle.control_socket)
        .with_timeout(BOUND)
        .describe_instance()
        .await
        .expect("GET /")
        .state
}

#[tokio::test]
async fn a_saveable_vm_is_saved_paused_and_resumes() {
    let vm = Vm::new(21);
    let vmm = vmm();
    let (handle, snapshot) = saved(&vm, &vmm).await;
    let _reap = Reap(handle.clone());
    let run = vm.path("vm");

    // Booted with run-dir-relative disks and vsock, from its run directory.
    let calls = api_log(&handle.console_log);
    let body = |path: &str| call_body(&calls, path);
    assert_eq!(body("/drives/rootfs")["path_on_host"], "fc-disks/rootfs");
    assert_eq!(body("/drives/disk1")["path_on_host"], "fc-disks/disk1");
    assert_eq!(body("/vsock")["uds_path"], "vsock.sock");
    assert_eq!(
        std::fs::read_link(format!("/proc/{}/cwd", handle.pid)).expect("cwd"),
        run
    );
    assert_eq!(
        handle.agent,
        AgentEndpoint::Vsock {
            path: run.join("vsock.sock"),
            port: 52
        }
    );

    // Saved: paused, both files written, the agent unreachable until resumed.
    assert_eq!(state(&handle).await, InstanceState::Paused);
    assert!(snapshot.state.is_file());
    assert_eq!(
        std::fs::metadata(&snapshot.memory).expect("memory").len(),
        256 << 20
    );
    let AgentEndpoint::Vsock { path, port } = &handle.agent else {
        panic!("vsock agent");
    };
    assert!(
        banger_vmm::firecracker::vsock::connect(path, *port, BOUND)
            .await
            .is_err(),
        "a paused guest answers no vsock connection"
    );
    // A snapshot is never written over.
    let again = warm(&vmm)
        .save(&handle, &vm.path("ram"), &snapshot)
        .await
        .expect_err("existing files");
    assert!(matches!(again, VmmError::InvalidSpec(_)), "{again}");

    warm(&vmm).resume(&handle).await.expect("resume");
    assert_eq!(state(&handle).await, InstanceState::Running);
    let (status, body) = agent_call(&handle, "GET", "/healthz").await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")));
}

#[tokio::test]
async fn two_restores_from_one_snapshot_have_their_own_tap_disks_and_sockets() {
    let source = Vm::new(22);
    let vmm = vmm();
    let (source_handle, snapshot) = saved(&source, &vmm).await;
    let _reap_source = Reap(source_handle.clone());

    let mut restored = Vec::new();
    for (salt, tap) in [(23, "bgr-r1"), (24, "bgr-r2")] {
        let mut vm = Vm::new(salt);
        if let Some(net) = vm.spec.net.as_mut() {
            net.tap = tap.to_owned();
        }
        let handle = warm(&vmm)
            .restore(&vm.spec, &snapshot)
            .await
            .expect("restore");
        restored.push((vm, handle, tap));
    }
    let _reaps: Vec<Reap> = restored.iter().map(|(_, h, _)| Reap(h.clone())).collect();
    assert_ne!(restored[0].1.pid, restored[1].1.pid);

    for (vm, handle, tap) in &restored {
        let run = vm.path("vm");
        assert!(vmm.is_running(handle));
        assert_sockets_in(handle, &run);
        // Logger, metrics, the load with this VM's TAP: no boot configuration.
        let calls = api_log(&handle.console_log);
        let paths: Vec<&str> = calls.iter().filter_map(|c| c["path"].as_str()).collect();
        assert_eq!(paths, ["/logger", "/metrics", "/snapshot/load"]);
        assert_eq!(
            calls[2]["body"],
            json!({
                "snapshot_path": snapshot.state,
                "mem_backend": {"backend_type": "File", "backend_path": snapshot.memory},
                "resume_vm": true,
                "network_overrides": [{"iface_id": "eth0", "host_dev_name": tap}],
            })
        );
        assert_eq!(calls[2]["status"], 204);
        // The drives the restored process opened are this VM's own files.
        let console = std::fs::read_to_string(&handle.console_log).expect("console");
        for (drive, file) in [("rootfs", "rootfs.ext4"), ("disk1", "work.ext4")] {
            let own = std::fs::canonicalize(vm.path(file)).expect("disk");
            assert!(
                console.contains(&format!("restored drive {drive} from {}", own.display())),
                "{console}"
            );
        }
        assert_eq!(state(handle).await, InstanceState::Running);
        let (status, _) = agent_call(handle, "GET", "/healthz").await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn a_corrupt_snapshot_fails_the_restore_and_leaves_no_process() {
    let source = Vm::new(25);
    let vmm = vmm();
    let (source_handle, snapshot) = saved(&source, &vmm).await;
    let _reap_source = Reap(source_handle.clone());

    std::fs::write(&snapshot.state, b"\x00\x01 not a microvm state").expect("corrupt");
    let vm = Vm::new(26);
    let err = warm(&vmm)
        .restore(&vm.spec, &snapshot)
        .await
        .expect_err("a corrupt snapshot does not restore");
    assert!(matches!(err, VmmError::StartFailed { .. }), "{err}");
    assert!(err.to_string().contains("Load snapshot error"), "{err}");
    let tag = format!("banger-{}", vm.spec.vm_id);
    assert!(processes_tagged(&tag).is_empty(), "no process is left");

    // A snapshot whose disks are missing is refused before any process exists.
    let mut no_disks = Vm::new(27);
    no_disks.spec.disks[0].path = no_disks.path("missing.ext4");
    let err = warm(&vmm)
        .restore(&no_disks.spec, &snapshot)
        .await
        .expect_err("missing disk");
    assert!(matches!(err, VmmError::InvalidSpec(_)), "{err}");
}

#[test]
fn jailed_firecracker_boots_cold() {
    let jailed =
        banger_vmm::FirecrackerVmm::new("/usr/bin/firecracker").with_jail(Some(JailConfig {
            jailer_bin: "/usr/bin/jailer".into(),
            uid: 1000,
            gid: 1000,
            chroot_base: "/srv/jailer".into(),
        }));
    assert!(jailed.warm().is_none());
    assert!(vmm().warm().is_some());
}
