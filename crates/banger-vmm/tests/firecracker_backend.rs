//! The Firecracker backend end to end against `fake-firecracker`, the spec-following fake run
//! as a real process: spawning detached, pid file and tag, the exact API calls of a launch,
//! the agent over the hybrid vsock, shutdown by Ctrl-Alt-Del and by the agent, failed launches
//! that leave nothing behind, socket paths too long for `AF_UNIX`, and VMs outliving the
//! runtime that launched them. No root, no KVM, no network: the fake opens no TAP.
//!
//! Under the jailer (`fake-jailer`, which follows the real jailer's contract and runs the fake
//! Firecracker confined to the jail's root): the chroot staged with hard links, in-jail paths
//! in every API call, liveness through the jailer's pid file, the jail removed after the VM and
//! after a failed launch; as root, the VMM dropped to another uid/gid.
//!
//! `cargo test -p banger-vmm` does not build other packages' binaries, so the first test to
//! need the fake builds it ([`banger_testkit::fake_firecracker_bins`]).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use banger_vmm::firecracker::{FirecrackerClient, FirecrackerVmm, InstanceState, JailConfig};
use banger_vmm::process::is_our_process;
use banger_vmm::{LaunchSpec, Vmm, VmmError, VmmHandle, VmmKind};
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn launch_configures_boots_serves_the_agent_and_shuts_down() {
    let vm = Vm::new(1);
    let vmm = vmm();
    let handle = vmm.launch(&vm.spec).await.expect("launch");
    let _reap = Reap(handle.clone());
    let run = vm.path("vm");
    let tag = format!("banger-{}", vm.spec.vm_id);

    assert_eq!(handle.kind, VmmKind::Firecracker);
    assert_eq!(handle.tag, tag);
    assert_sockets_in(&handle, &run);
    assert_eq!(handle.console_log, run.join("console.log"));
    assert!(is_our_process(handle.pid, &tag));
    assert!(vmm.is_running(&handle));
    assert_eq!(
        std::fs::read_to_string(run.join("vmm.pid")).expect("pid file"),
        format!("{}\n", handle.pid)
    );
    // Detached: its own process group, not ours.
    assert_eq!(process_group(handle.pid), Some(handle.pid));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", handle.pid)).expect("cmdline");
    let argv: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert_eq!(
        argv[1..],
        [
            "--api-sock".to_owned(),
            run.join("fc.sock").display().to_string(),
            "--id".to_owned(),
            tag.clone(),
        ]
    );

    // The full plan, in order, with exact bodies, each accepted.
    let p = |name: &str| vm.path(name).display().to_string();
    let r = |name: &str| run.join(name).display().to_string();
    let expected = vec![
        (
            "/logger",
            json!({"log_path": r("firecracker-vmm.log"), "level": "Info", "show_level": true}),
        ),
        (
            "/metrics",
            json!({"metrics_path": r("firecracker-metrics.json")}),
        ),
        (
            "/machine-config",
            json!({"vcpu_count": 2, "mem_size_mib": 256}),
        ),
        (
            "/boot-source",
            json!({"kernel_image_path": p("vmlinux"), "initrd_path": p("initrd.img"),
                   "boot_args": "console=ttyS0 reboot=k panic=1 root=/dev/vda rw pci=off"}),
        ),
        (
            "/drives/rootfs",
            json!({"drive_id": "rootfs", "path_on_host": p("rootfs.ext4"),
                   "is_root_device": true, "is_read_only": false}),
        ),
        (
            "/drives/disk1",
            json!({"drive_id": "disk1", "path_on_host": p("work.ext4"),
                   "is_root_device": false, "is_read_only": false}),
        ),
        (
            "/network-interfaces/eth0",
            json!({"iface_id": "eth0", "host_dev_name": "bgr-test0",
                   "guest_mac": "06:00:0a:00:00:02"}),
        ),
        (
            "/vsock",
            json!({"guest_cid": 3, "uds_path": r("vsock.sock")}),
        ),
        ("/actions", json!({"action_type": "InstanceStart"})),
    ];
    let expected: Vec<Value> = expected
        .into_iter()
        .map(|(path, body)| json!({"method": "PUT", "path": path, "status": 204, "body": body}))
        .collect();
    assert_eq!(api_log(&handle.console_log), expected);

    // The API reports this instance, running.
    let client = FirecrackerClient::new(&handle.control_socket).with_timeout(BOUND);
    let info = client.describe_instance().await.expect("GET /");
    assert_eq!(info.id, tag);
    assert_eq!(info.state, InstanceState::Running);

    // The console (Firecracker's stdout) is the console log.
    let console = std::fs::read_to_string(&handle.console_log).expect("console");
    assert!(
        console.contains("booted; agent on vsock port 52"),
        "{console}"
    );

    // The agent answers through the hybrid vsock.
    let (status, body) = agent_call(&handle, "GET", "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["hostname"], tag.as_str());

    // Ctrl-Alt-Del through the API: the VM goes away.
    vmm.request_shutdown(&handle).await.expect("ctrl-alt-del");
    assert!(
        vmm.wait_exit(&handle, BOUND).await,
        "exits after ctrl-alt-del"
    );
    assert!(!vmm.is_running(&handle));
    let calls = api_log(&handle.console_log);
    assert_eq!(
        calls.last(),
        Some(&json!({"method": "PUT", "path": "/actions", "status": 204,
                     "body": {"action_type": "SendCtrlAltDel"}}))
    );
    // Shutting a stopped VM down is a control error, not a hang.
    assert!(matches!(
        vmm.request_shutdown(&handle).await,
        Err(VmmError::Control { .. })
    ));
}

#[tokio::test]
async fn agent_shutdown_powers_the_vm_off() {
    let vm = Vm::new(2);
    let vmm = vmm();
    let handle = vmm.launch(&vm.spec).await.expect("launch");
    let _reap = Reap(handle.clone());
    let (status, body) = agent_call(&handle, "POST", "/shutdown").await;
    assert_eq!((status, body), (202, json!({"status": "shutting_down"})));
    assert!(
        vmm.wait_exit(&handle, BOUND).await,
        "exits after agent shutdown"
    );
    assert!(!vmm.is_running(&handle));
}

#[tokio::test]
async fn a_rejected_call_is_start_failed_and_leaves_no_process() {
    let mut vm = Vm::new(3);
    vm.spec.kernel = vm.path("no-such-vmlinux");
    let tag = format!("banger-{}", vm.spec.vm_id);
    let err = vmm().launch(&vm.spec).await.expect_err("launch fails");
    let VmmError::StartFailed {
        kind,
        status,
        stderr,
        console_log,
    } = &err
    else {
        panic!("expected StartFailed, got {err:?}");
    };
    assert_eq!(*kind, "firecracker");
    assert!(status.contains("PUT /boot-source"), "{status}");
    assert!(status.contains("400"), "{status}");
    assert!(
        status.contains("The kernel file cannot be opened"),
        "{status}"
    );
    assert_eq!(*console_log, vm.path("vm/console.log"));
    // The tail of the log shows what Firecracker saw.
    assert!(stderr.contains("/boot-source"), "{stderr}");
    let message = err.to_string();
    assert!(message.contains("console.log"), "{message}");
    assert!(
        processes_tagged(&tag).is_empty(),
        "a tagged process survived"
    );
    assert!(!vm.path("vm/vmm.pid").exists());
}

#[tokio::test]
async fn a_firecracker_that_exits_at_once_is_start_failed() {
    // A "firecracker" that dies before serving its API: the launch fails fast, with its exit
    // status and its output.
    let vm = Vm::new(4);
    let script = vm.path("fc-wrapper.sh");
    std::fs::write(&script, "#!/bin/sh\necho 'about to fail' >&2\nexit 7\n").expect("script");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let err = FirecrackerVmm::new(&script)
        .with_socket_link_base(None)
        .launch(&vm.spec)
        .await
        .expect_err("fails");
    let VmmError::StartFailed { status, stderr, .. } = &err else {
        panic!("expected StartFailed, got {err:?}");
    };
    assert!(status.contains("exit status: 7"), "{status}");
    assert!(stderr.contains("about to fail"), "{stderr}");
}

#[test]
fn the_vm_outlives_the_runtime_that_launched_it() {
    let vm = Vm::new(5);
    let vmm = vmm();
    let launching = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let handle = launching.block_on(vmm.launch(&vm.spec)).expect("launch");
    let _reap = Reap(handle.clone());
    drop(launching); // the daemon's runtime goes away (restart)

    std::thread::sleep(Duration::from_millis(300));
    assert!(vmm.is_running(&handle), "the VM died with the runtime");

    let later = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    later.block_on(async {
        // A fresh backend (as after a daemon restart) finds and drives it from the handle.
        let adopted = FirecrackerVmm::new(fake_bin());
        let (status, _) = agent_call(&handle, "GET", "/healthz").await;
        assert_eq!(status, 200);
        adopted
            .request_shutdown(&handle)
            .await
            .expect("ctrl-alt-del");
        assert!(adopted.wait_exit(&handle, BOUND).await);
    });
}

const HELPER_SPEC: &str = "BANGER_TEST_FC_SPEC";
const HELPER_BIN: &str = "BANGER_TEST_FC_BIN";
const HELPER_OUT: &str = "BANGER_TEST_FC_HANDLE";

/// Not a test: the launching "daemon" of `the_vm_outlives_the_process_that_launched_it`, run in
/// a child process. Without its environment it does nothing.
#[test]
#[ignore = "helper process of the_vm_outlives_the_process_that_launched_it"]
fn launcher_helper() {
    let (Some(spec), Some(bin), Some(out)) = (
        std::env::var_os(HELPER_SPEC),
        std::env::var_os(HELPER_BIN),
        std::env::var_os(HELPER_OUT),
    ) else {
        return;
    };
    let spec: LaunchSpec =
        serde_json::from_str(&spec.to_string_lossy()).expect("spec in the environment");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let handle = runtime
        .block_on(
            FirecrackerVmm::new(PathBuf::from(bin))
                .with_socket_link_base(None)
                .launch(&spec),
        )
        .expect("launch");
    std::fs::write(out, serde_json::to_vec(&handle).expect("json")).expect("write handle");
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn the_vm_outlives_the_process_that_launched_it() {
    let vm = Vm::new(8);
    let out = vm.path("handle.json");
    let mut launcher = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "launcher_helper",
            "--ignored",
            "--test-threads=1",
            "--quiet",
        ])
        .env(HELPER_SPEC, serde_json::to_string(&vm.spec).expect("json"))
        .env(HELPER_BIN, fake_bin())
        .env(HELPER_OUT, &out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("launcher runs");
    let launcher_pid = launcher.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = launcher.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the launcher hangs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "launcher: {status}");
    let handle: VmmHandle =
        serde_json::from_slice(&std::fs::read(&out).expect("handle written")).expect("handle");
    let _reap = Reap(handle.clone());

    // The launcher is gone; its VM runs on, re-parented away from it.
    let vmm = vmm();
    assert!(vmm.is_running(&handle));
    assert_ne!(parent_pid(handle.pid), Some(launcher_pid));
    let (status, _) = agent_call(&handle, "GET", "/healthz").await;
    assert_eq!(status, 200);
    vmm.request_shutdown(&handle).await.expect("ctrl-alt-del");
    assert!(vmm.wait_exit(&handle, BOUND).await);
}

#[tokio::test]
async fn long_run_dirs_bind_through_a_short_link() {
    let vm = Vm::new(6);
    let mut spec = vm.spec.clone();
    spec.run_dir = vm.path(&format!("{}/vm", "deep".repeat(25)));
    assert!(spec.run_dir.join("vsock.sock").as_os_str().len() > 107);
    let base = tempfile::Builder::new()
        .prefix("fcl")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let vmm = FirecrackerVmm::new(fake_bin()).with_socket_link_base(Some(base.path().into()));
    let handle = vmm.launch(&spec).await.expect("launch");
    let _reap = Reap(handle.clone());
    let link = base.path().join(format!("banger-{}", spec.vm_id));
    assert_eq!(std::fs::read_link(&link).expect("link"), spec.run_dir);
    assert_eq!(handle.control_socket, link.join("fc.sock"));
    // The sockets live in the VM directory.
    assert!(spec.run_dir.join("fc.sock").exists());
    assert!(spec.run_dir.join("vsock.sock").exists());
    let (status, _) = agent_call(&handle, "GET", "/healthz").await;
    assert_eq!(status, 200);
    vmm.request_shutdown(&handle).await.expect("ctrl-alt-del");
    assert!(vmm.wait_exit(&handle, BOUND).await);

    // Without a short base the same spec is refused before anything starts.
    let err = FirecrackerVmm::new(fake_bin())
        .with_socket_link_base(None)
        .launch(&spec)
        .await
        .expect_err("too long");
    assert!(
        matches!(err, VmmError::InvalidSpec(ref m) if m.contains("AF_UNIX")),
        "{err}"
    );
}

#[tokio::test]
async fn relaunch_replaces_stale_sockets() {
    let vm = Vm::new(7);
    let vmm = vmm();
    let first = vmm.launch(&vm.spec).await.expect("launch");
    let reap = Reap(first.clone());
    // Killed hard: its sockets stay behind.
    vmm.kill(&first).expect("kill");
    assert!(vmm.wait_exit(&first, BOUND).await);
    drop(reap);
    assert!(first.control_socket.exists());
    let second = vmm.launch(&vm.spec).await.expect("relaunch");
    let _reap = Reap(second.clone());
    assert_ne!(first.pid, second.pid);
    let (status, _) = agent_call(&second, "GET", "/healthz").await;
    assert_eq!(status, 200);
}

fn jailed_vmm(firecracker: &Path, base: &Path, uid: u32, gid: u32) -> FirecrackerVmm {
    FirecrackerVmm::new(firecracker)
        .with_socket_link_base(None)
        .with_jail(Some(JailConfig {
            jailer_bin: jailer_bin(),
            chroot_base: base.to_path_buf(),
            uid,
            gid,
        }))
}

fn inode(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).expect("metadata");
    (m.dev(), m.ino())
}

#[tokio::test]
async fn jailed_launch_stages_the_chroot_boots_and_tears_down() {
    let vm = Vm::new(101);
    let base = vm.path("jail");
    let vmm = jailed_vmm(
        fake_bin(),
        &base,
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let handle = vmm.launch(&vm.spec).await.expect("jailed launch");
    let _reap = Reap(handle.clone());
    let jail = base
        .join("fake-firecracker")
        .join(format!("banger-{}", vm.spec.vm_id));
    let root = jail.join("root");

    // The jail: Firecracker copied in by the jailer, the VM's files hard-linked by banger.
    assert!(root.join("fake-firecracker").is_file());
    assert_eq!(inode(&root.join("vmlinux")), inode(&vm.spec.kernel));
    assert_eq!(inode(&root.join("disk0")), inode(&vm.spec.disks[0].path));
    assert_eq!(inode(&root.join("disk1")), inode(&vm.spec.disks[1].path));

    // Liveness: the jailer's pid file names the process, which carries the VM's tag.
    let recorded = std::fs::read_to_string(root.join("fake-firecracker.pid")).expect("pid file");
    assert_eq!(recorded.trim(), handle.pid.to_string());
    let run_pid = std::fs::read_to_string(vm.spec.run_dir.join("vmm.pid")).expect("vmm.pid");
    assert_eq!(run_pid.trim(), handle.pid.to_string());
    assert!(vmm.is_running(&handle));
    assert_eq!(handle.control_socket, root.join("firecracker.socket"));

    // Firecracker was told only in-jail paths.
    let calls = api_log(&handle.console_log);
    let body = |path: &str| call_body(&calls, path);
    assert_eq!(body("/boot-source")["kernel_image_path"], "/vmlinux");
    assert_eq!(body("/boot-source")["initrd_path"], "/initrd");
    assert_eq!(body("/drives/rootfs")["path_on_host"], "/disk0");
    assert_eq!(body("/drives/disk1")["path_on_host"], "/disk1");
    assert_eq!(body("/vsock")["uds_path"], "/vsock.sock");
    assert_eq!(body("/logger")["log_path"], "/firecracker-vmm.log");

    // The agent answers through the jail's vsock socket.
    let (status, _) = agent_call(&handle, "GET", "/healthz").await;
    assert_eq!(status, 200);

    vmm.request_shutdown(&handle).await.expect("ctrl-alt-del");
    assert!(vmm.wait_exit(&handle, BOUND).await, "exits");
    vmm.remove_jail(&vm.spec.vm_id).expect("remove jail");
    assert!(!jail.exists(), "the jail is gone");
    assert!(vm.spec.disks[0].path.is_file(), "the VM's disk stays");
    vmm.remove_jail(&vm.spec.vm_id)
        .expect("a missing jail is fine");
}

#[tokio::test]
async fn a_failed_jailed_launch_leaves_no_jail_and_no_process() {
    let vm = Vm::new(102);
    let base = vm.path("jail");
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    // The jailer only execs binaries named like Firecracker: it refuses this one.
    let renamed = vm.path("vmm-binary");
    std::fs::copy(fake_bin(), &renamed).expect("copy");
    let err = jailed_vmm(&renamed, &base, uid, gid)
        .launch(&vm.spec)
        .await
        .expect_err("the jailer refuses");
    assert!(matches!(err, VmmError::StartFailed { .. }), "{err}");
    assert!(
        format!("{err:?}").contains("is not a firecracker binary"),
        "the jailer's refusal is in the error: {err:?}"
    );
    let jail = base
        .join("vmm-binary")
        .join(format!("banger-{}", vm.spec.vm_id));
    assert!(!jail.exists(), "no jail left");
    assert!(processes_tagged(&format!("banger-{}", vm.spec.vm_id)).is_empty());

    // A missing jailer is named, and stages nothing either.
    let vmm = FirecrackerVmm::new(fake_bin()).with_jail(Some(JailConfig {
        jailer_bin: "/nonexistent/jailer".into(),
        chroot_base: base.clone(),
        uid,
        gid,
    }));
    let err = vmm.launch(&vm.spec).await.expect_err("no jailer");
    assert!(
        matches!(err, VmmError::MissingBinary { ref binary } if binary == "/nonexistent/jailer"),
        "{err}"
    );
    assert!(
        !base
            .join("fake-firecracker")
            .join(format!("banger-{}", vm.spec.vm_id))
            .exists()
    );
}

#[tokio::test]
#[ignore = "needs root: the jailer drops the VMM to another uid/gid and makes device nodes"]
async fn the_jailed_vmm_runs_as_the_owner_uid() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    const OWNER: u32 = 65534;
    let vm = Vm::new(103);
    // The fake resolves the jail from the host, so the owner must be able to walk to it; the
    // VM's disks are the owner's files, as in a system install.
    std::fs::set_permissions(vm.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for disk in &vm.spec.disks {
        std::os::unix::fs::chown(&disk.path, Some(OWNER), Some(OWNER)).expect("chown disk");
    }
    let base = vm.path("jail");
    let vmm = jailed_vmm(fake_bin(), &base, OWNER, OWNER);
    let handle = vmm.launch(&vm.spec).await.expect("jailed launch as root");
    let _reap = Reap(handle.clone());
    let status = std::fs::read_to_string(format!("/proc/{}/status", handle.pid)).expect("status");
    for key in ["Uid:", "Gid:"] {
        let line = status.lines().find(|l| l.starts_with(key)).expect("line");
        let ids: Vec<&str> = line.split_whitespace().skip(1).collect();
        assert_eq!(ids, ["65534"; 4], "{line}");
    }
    let root = base
        .join("fake-firecracker")
        .join(format!("banger-{}", vm.spec.vm_id))
        .join("root");
    assert_eq!(std::fs::metadata(&root).expect("root").uid(), OWNER);
    let kvm = std::fs::metadata(root.join("dev/kvm")).expect("dev/kvm");
    assert!(kvm.file_type().is_char_device());
    assert_eq!(
        (kvm.rdev(), kvm.uid()),
        (nix::sys::stat::makedev(10, 232), OWNER)
    );
    let (code, _) = agent_call(&handle, "GET", "/healthz").await;
    assert_eq!(code, 200);
    vmm.kill(&handle).expect("kill");
    assert!(vmm.wait_exit(&handle, BOUND).await);
    vmm.remove_jail(&vm.spec.vm_id).expect("remove jail");
    assert!(!root.exists());
}
