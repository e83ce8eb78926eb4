//! Warm snapshots on the fake host: the first create of a boot class saves a snapshot, later
//! ones restore from it (TAP cut off until the guest took its identity), and `--cold`, a new
//! class, `[[file_sync]]` and a restore that fails all boot cold, the last with a warning and
//! a fresh snapshot in place of the failed one.

mod fakehost;

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use banger_daemon::{DaemonContext, vms};
use banger_model::{FileSync, VmRecord, VmState};
use banger_proto::{Operation, OperationState, StageState};
use banger_testkit::fakes::{NetCall, VmmCall};
use banger_vmm::Vmm;
use fakehost::*;

const SAVE: &str = "save warm snapshot";
const RESTORE: &str = "restore";

/// Complete snapshots (directories with `meta.json`) under `<state>/snapshots/`.
fn snapshots(host: &Host) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(host.layout.snapshots_dir())
        .map(|rd| {
            rd.map(|e| e.expect("entry").path())
                .filter(|p| p.join("meta.json").is_file())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn stage_names(op: &Operation) -> Vec<&str> {
    op.stages.iter().map(|s| s.name.as_str()).collect()
}

fn succeeded(op: &Operation, name: &str) -> bool {
    op.stages
        .iter()
        .any(|s| s.name == name && s.state == StageState::Done)
}

fn warnings(op: &Operation) -> Vec<String> {
    op.stages
        .iter()
        .flat_map(|s| s.warnings.iter().cloned())
        .collect()
}

/// Where a template's RAM file lives while it runs (see `warm::flow::ram_path`).
fn ram_file(vm: &VmRecord) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let name = format!("banger-warm-{}.ram", vm.id);
    if shm.is_dir() {
        shm.join(name)
    } else {
        vm.dir.join(name)
    }
}

fn vmm_calls_for(host: &Host, vm: &VmRecord) -> Vec<VmmCall> {
    host.vmm
        .calls()
        .into_iter()
        .filter(|c| match c {
            VmmCall::Launch(id) | VmmCall::LaunchSaveable(id) | VmmCall::Restore(id) => {
                *id == vm.id
            }
            _ => false,
        })
        .collect()
}

fn pid_of(ctx: &DaemonContext, vm: &VmRecord) -> u32 {
    ctx.handles(&vm.id)
        .expect("handles of a running vm")
        .vmm
        .pid
}

async fn create_with(
    ctx: &DaemonContext,
    name: &str,
    memory_mib: u64,
    cold: bool,
) -> (Operation, VmRecord) {
    let mut req = request(name, "base");
    req.spec.memory_mib = memory_mib;
    req.cold = cold;
    let op = vms::create(ctx, req).await.expect("create accepted");
    let op = finish(ctx, op).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    let vm = ctx.store().vms().resolve(name).expect("the created vm");
    (op, vm)
}

/// The SSH banner at the VM's address: the guest is reachable on its own IP.
fn banner(vm: &VmRecord) -> String {
    let ip: Ipv4Addr = vm.guest_ip.as_deref().expect("ip").parse().expect("ip");
    let mut stream =
        TcpStream::connect_timeout(&SocketAddr::from((ip, SSH_PORT)), Duration::from_secs(2))
            .expect("connect to the guest");
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).expect("banner");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_create_of_a_class_saves_a_snapshot_and_frees_its_ram() {
    let host = Host::with_warm();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");

    let (op, vm) = create_with(&ctx, "first", 256, false).await;
    assert!(succeeded(&op, SAVE), "{:?}", stage_names(&op));
    let names = stage_names(&op);
    let at = |n: &str| names.iter().position(|s| *s == n).expect(n);
    assert!(at("wait for agent") < at(SAVE) && at(SAVE) < at("wait for SSH"));
    assert!(warnings(&op).is_empty(), "{op:?}");

    let pid = pid_of(&ctx, &vm);
    let calls = host.vmm.calls();
    for call in [
        VmmCall::LaunchSaveable(vm.id.clone()),
        VmmCall::Save(pid),
        VmmCall::Resume(pid),
    ] {
        assert!(calls.contains(&call), "{call:?} not in {calls:?}");
    }
    assert!(
        !calls.contains(&VmmCall::Launch(vm.id.clone())),
        "{calls:?}"
    );
    assert!(
        host.vmm.paused_pids().is_empty(),
        "the template is left paused"
    );

    let saved = snapshots(&host);
    assert_eq!(saved.len(), 1, "{saved:?}");
    for file in ["ram", "state", "disk0.ext4", "disk1.ext4"] {
        assert!(saved[0].join(file).is_file(), "{file} missing in {saved:?}");
    }
    let meta = std::fs::read_to_string(saved[0].join("meta.json")).expect("meta");
    assert!(meta.contains("\"image_id\": \"i-base\""), "{meta}");
    assert!(!ram_file(&vm).exists(), "the template's RAM file is left");
    assert_eq!(banner(&vm), "SSH-2.0-FakeGuest\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_create_restores_and_joins_the_bridge_only_after_its_identity() {
    let host = Host::with_warm();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    create_with(&ctx, "first", 256, false).await;

    // What the host network looked like when each identity arrived.
    let seen: Arc<Mutex<Vec<Vec<NetCall>>>> = Arc::default();
    let (net, log) = (host.net.clone(), seen.clone());
    host.vmm.on_identity(move |_| {
        log.lock().expect("log").push(net.calls());
    });

    let (op, vm) = create_with(&ctx, "second", 256, false).await;
    assert!(succeeded(&op, RESTORE), "{:?}", stage_names(&op));
    assert!(succeeded(&op, "wait for SSH"), "{op:?}");
    assert!(!stage_names(&op).contains(&SAVE), "{op:?}");
    assert!(!stage_names(&op).contains(&"boot"), "{op:?}");
    assert!(warnings(&op).is_empty(), "{op:?}");
    assert_eq!(
        vmm_calls_for(&host, &vm),
        vec![VmmCall::Restore(vm.id.clone())]
    );
    assert_eq!(snapshots(&host).len(), 1);

    // Its own identity, taken by the restored process.
    let posts = host.vmm.identities();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].pid, pid_of(&ctx, &vm));
    let identity = &posts[0].identity;
    assert_eq!(identity.boot.hostname.as_deref(), Some("second"));
    let ip = identity.boot.ip.expect("ip").addr.to_string();
    assert_eq!(Some(ip.as_str()), vm.guest_ip.as_deref());
    assert!(identity.mac.is_some() && identity.clock.is_some() && identity.seed.is_some());

    // The TAP is cut off before the restore and brought up only after the identity.
    let tap = vm.tap_name.clone().expect("tap");
    let is_isolate = |c: &NetCall| *c == NetCall::Isolate(tap.clone());
    let is_up = |c: &NetCall| matches!(c, NetCall::EnsureTap(t, _) if *t == tap);
    let calls = host.net.calls();
    let isolated = calls
        .iter()
        .rposition(is_isolate)
        .expect("the tap was isolated");
    let up = calls.iter().rposition(is_up).expect("the tap came up");
    assert!(isolated < up, "{calls:?}");
    let at_identity = seen.lock().expect("log").pop().expect("observed");
    let isolated = at_identity
        .iter()
        .rposition(is_isolate)
        .expect("isolated by then");
    assert!(
        !at_identity[isolated..].iter().any(is_up),
        "the tap came up before the identity: {at_identity:?}"
    );

    let now = ctx.store().vms().resolve("second").expect("vm");
    assert_eq!(now.state, VmState::Running);
    assert!(host.vmm.is_running_vm(&vm.id));
    assert_eq!(banner(&vm), "SSH-2.0-FakeGuest\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_memory_size_is_another_class() {
    let host = Host::with_warm();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    create_with(&ctx, "small", 256, false).await;

    let (op, vm) = create_with(&ctx, "big", 512, false).await;
    assert!(succeeded(&op, SAVE), "{:?}", stage_names(&op));
    assert_eq!(
        vmm_calls_for(&host, &vm),
        vec![VmmCall::LaunchSaveable(vm.id.clone())]
    );
    assert_eq!(snapshots(&host).len(), 2);

    // And each class restores its own.
    let (op, vm) = create_with(&ctx, "big2", 512, false).await;
    assert!(succeeded(&op, RESTORE), "{:?}", stage_names(&op));
    assert_eq!(
        vmm_calls_for(&host, &vm),
        vec![VmmCall::Restore(vm.id.clone())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_creates_neither_restore_nor_save() {
    let host = Host::with_warm();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");

    let (op, vm) = create_with(&ctx, "cold1", 256, true).await;
    assert!(!stage_names(&op).contains(&SAVE), "{op:?}");
    assert_eq!(
        vmm_calls_for(&host, &vm),
        vec![VmmCall::Launch(vm.id.clone())]
    );
    assert!(snapshots(&host).is_empty());
    assert!(!ram_file(&vm).exists());

    create_with(&ctx, "warm", 256, false).await;
    assert_eq!(snapshots(&host).len(), 1);
    let (op, vm) = create_with(&ctx, "cold2", 256, true).await;
    assert!(!stage_names(&op).contains(&RESTORE), "{op:?}");
    assert_eq!(
        vmm_calls_for(&host, &vm),
        vec![VmmCall::Launch(vm.id.clone())]
    );
    assert_eq!(snapshots(&host).len(), 1);
}

/// Creates `second` after `first` saved, with the restore broken by `break_it`; asserts the
/// create booted cold with a warning and saved a new snapshot in place of the failed one.
async fn restore_fails_then_boots_cold(
    break_it: impl FnOnce(&Host, &Path),
) -> (Host, DaemonContext, VmRecord) {
    let host = Host::with_warm();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    create_with(&ctx, "first", 256, false).await;
    let saved = snapshots(&host);
    assert_eq!(saved.len(), 1);
    break_it(&host, &saved[0]);

    let (op, vm) = create_with(&ctx, "second", 256, false).await;
    let warned = warnings(&op);
    assert!(
        warned.iter().any(|w| w.contains("did not restore")),
        "{warned:?}"
    );
    assert!(succeeded(&op, SAVE), "{:?}", stage_names(&op));
    assert_eq!(
        vmm_calls_for(&host, &vm),
        vec![
            VmmCall::Restore(vm.id.clone()),
            VmmCall::LaunchSaveable(vm.id.clone())
        ]
    );
    // One VMM of it: the cold boot's, running.
    let pids = host.vmm.tagged_pids(&vm.id);
    assert_eq!(pids, vec![pid_of(&ctx, &vm)], "{pids:?}");
    assert_eq!(
        ctx.store().vms().resolve("second").expect("vm").state,
        VmState::Running
    );
    assert_eq!(banner(&vm), "SSH-2.0-FakeGuest\r\n");
    // A TAP the restore cut off came up again for the cold boot.
    let tap = vm.tap_name.clone().expect("tap");
    let calls = host.net.calls();
    if let Some(isolated) = calls
        .iter()
        .rposition(|c| *c == NetCall::Isolate(tap.clone()))
    {
        assert!(
            calls[isolated..]
                .iter()
                .any(|c| matches!(c, NetCall::EnsureTap(t, _) if *t == tap)),
            "the tap stays down after the fallback: {calls:?}"
        );
    }

    // The failed snapshot was replaced by the cold boot's.
    let now = snapshots(&host);
    assert_eq!(now, saved, "one snapshot of the class");
    let state = std::fs::read_to_string(now[0].join("state")).expect("state");
    assert!(
        state.contains(&format!("vm={}", vm.id)),
        "not saved anew by {}: {state}",
        vm.id
    );
    (host, ctx, vm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_the_vmm_rejects_boots_cold_and_saves_anew() {
    restore_fails_then_boots_cold(|host, _| host.vmm.fail_restore(true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_snapshot_boots_cold_and_saves_anew() {
    restore_fails_then_boots_cold(|_, dir| {
        std::fs::write(dir.join("state"), "garbage\n").expect("corrupt the state file");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_guest_that_refuses_its_identity_is_killed_and_the_vm_boots_cold() {
    let (host, ctx, vm) =
        restore_fails_then_boots_cold(|host, _| host.vmm.refuse_identity(true)).await;
    // The restored process ran (it was asked for the identity) and was killed.
    let current = pid_of(&ctx, &vm);
    let calls = host.vmm.calls();
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, VmmCall::Kill(p) if *p != current)),
        "the restored VMM was never killed: {calls:?}"
    );
    assert!(host.vmm.identities().is_empty());
    assert_eq!(host.vmm.tagged_pids(&vm.id).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sync_makes_creates_boot_cold() {
    let mut host = Host::with_warm();
    std::fs::write(host.home.join("tool.conf"), "v1\n").expect("write");
    host.config.file_sync = vec![FileSync {
        host: "~/tool.conf".into(),
        guest: "~/tool.conf".into(),
        mode: None,
    }];
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");

    for name in ["sync1", "sync2"] {
        let (op, vm) = create_with(&ctx, name, 256, false).await;
        assert!(!stage_names(&op).contains(&SAVE), "{op:?}");
        assert!(!stage_names(&op).contains(&RESTORE), "{op:?}");
        assert_eq!(
            vmm_calls_for(&host, &vm),
            vec![VmmCall::Launch(vm.id.clone())]
        );
    }
    assert!(snapshots(&host).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_creates_at_once_both_succeed_and_leave_one_snapshot() {
    let host = Host::with_warm();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");

    let (a, b) = tokio::join!(
        create_with(&ctx, "race1", 256, false),
        create_with(&ctx, "race2", 256, false)
    );
    for (op, vm) in [&a, &b] {
        assert!(succeeded(op, "wait for SSH"), "{op:?}");
        assert!(host.vmm.is_running_vm(&vm.id));
        assert!(!ram_file(vm).exists(), "a RAM file is left");
    }
    assert_eq!(snapshots(&host).len(), 1);
    assert!(
        host.vmm.paused_pids().is_empty(),
        "a template is left paused"
    );
    let (op, _) = create_with(&ctx, "after", 256, false).await;
    assert!(succeeded(&op, RESTORE), "{:?}", stage_names(&op));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_vm_stops_and_starts_again_cold() {
    let host = Host::with_warm();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    create_with(&ctx, "first", 256, false).await;
    let (_, vm) = create_with(&ctx, "second", 256, false).await;

    vms::stop(&ctx, "second").await.expect("stop");
    assert!(!host.vmm.is_running_vm(&vm.id));
    let op = vms::start(&ctx, "second").await.expect("start accepted");
    let op = finish(&ctx, op).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    assert_eq!(
        vmm_calls_for(&host, &vm),
        vec![
            VmmCall::Restore(vm.id.clone()),
            VmmCall::Launch(vm.id.clone())
        ]
    );
    assert!(host.vmm.is_running_vm(&vm.id));
    assert_eq!(banner(&vm), "SSH-2.0-FakeGuest\r\n");
}
