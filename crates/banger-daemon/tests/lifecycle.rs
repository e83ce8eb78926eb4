//! The VM lifecycle on fakes: no root, no QEMU, no guest.
//!
//! Each test builds a daemon context on a temp layout with a real store and real ext4 disks
//! (e2fsprogs, no mounts), a [`FakeVmm`] whose guests answer the agent and SSH probes on a
//! loopback subnet, and a [`FakeNet`] holding bridges and TAPs in memory. Failures are injected
//! at every create stage and the tests check that what the stage and the earlier ones made is
//! gone; restarts are simulated by building a second context over the same store, fake VMM
//! and fake network (VMMs outlive their daemon).

mod fakehost;

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use banger_daemon::{DaemonContext, vms};
use banger_model::{CatalogBundle, Size, VmState};
use banger_net::NetOps;
use banger_proto::{ErrorCode, OperationState, PruneVmsRequest, SetVmRequest, StageState};
use banger_testkit::fakes::{FakeGuest, NetCall, VmmCall};
use fakehost::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_stop_start_kill_delete_hold_and_release_what_they_should() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");

    let op = create(&ctx, "web", "base").await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    let names: Vec<_> = op.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "auto-pull",
            "prepare disks",
            "file sync",
            "network",
            "boot",
            "wait for agent",
            "wait for SSH",
            "post-start hooks"
        ]
    );
    let vm = ctx.store().vms().resolve("web").expect("record");
    assert_eq!(vm.state, VmState::Running);
    let tap = vm.tap_name.clone().expect("durable tap name");
    assert_eq!(
        host.net.link(&tap).and_then(|l| l.bridge),
        Some("bgtest0".to_owned())
    );
    assert!(host.vmm.is_running_vm(&vm.id));
    assert!(vm.dir.join("handles.json").exists());
    assert!(vm.dir.join("rootfs.ext4").exists() && vm.dir.join("work.ext4").exists());
    // The daemon's agent was written into the VM's root disk.
    let out = Command::new("debugfs")
        .args(["-R", "cat /usr/local/bin/banger-agent"])
        .arg(vm.dir.join("rootfs.ext4"))
        .output()
        .expect("debugfs");
    assert_eq!(out.stdout, std::fs::read(&host.agent).expect("agent"));

    let stopped = vms::stop(&ctx, "web").await.expect("stop");
    assert_eq!(stopped.state, VmState::Stopped);
    assert!(!host.vmm.is_running_vm(&vm.id));
    assert!(host.net.link(&tap).is_none(), "stop releases the tap");
    assert!(!vm.dir.join("handles.json").exists());

    let op = finish(&ctx, vms::start(&ctx, "web").await.expect("start")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    assert!(host.vmm.is_running_vm(&vm.id));
    assert!(host.net.link(&tap).is_some());
    // Starting a running VM is a no-op.
    let again = finish(&ctx, vms::start(&ctx, "web").await.expect("start")).await;
    assert_eq!(
        stage_states(&again),
        [("boot".to_owned(), StageState::Skipped)]
    );

    let killed = vms::kill(&ctx, "web").await.expect("kill");
    assert_eq!(killed.state, VmState::Stopped);
    assert!(!host.vmm.is_running_vm(&vm.id));
    assert!(host.net.link(&tap).is_none(), "kill releases the tap");

    let op = finish(&ctx, vms::start(&ctx, "web").await.expect("start")).await;
    assert_eq!(op.state, OperationState::Succeeded);
    vms::delete(&ctx, "web").await.expect("delete");
    assert!(!host.vmm.is_running_vm(&vm.id), "delete kills the VMM");
    assert!(host.net.link(&tap).is_none(), "delete releases the tap");
    assert!(!vm.dir.exists(), "delete removes the disks");
    assert!(ctx.store().vms().list().expect("list").is_empty());
    assert!(
        host.net.calls().contains(&NetCall::Delete(tap)),
        "the tap was deleted by name"
    );
    // stop, kill and delete each released the VM's jail, never while its VMM ran.
    let releases = releases(&host);
    let once = VmmCall::Release {
        vm_id: vm.id.clone(),
        while_running: false,
    };
    assert_eq!(releases, [once.clone(), once.clone(), once]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_each_create_stage_tears_down_that_stage_and_the_earlier_ones() {
    // prepare disks: the image's root filesystem is gone.
    let host = Host::new();
    let ctx = host.daemon();
    let image = host.seed_image(&ctx, "base");
    std::fs::remove_file(&image.rootfs_path).expect("rm rootfs");
    let op = create(&ctx, "vm1", "base").await;
    assert_eq!(
        failed_stage(&op).as_deref(),
        Some("prepare disks"),
        "{op:?}"
    );
    assert_nothing_left(&host, &ctx);

    // network: the TAP cannot be made.
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    host.net.fail_ensure_tap(true);
    let op = create(&ctx, "vm2", "base").await;
    assert_eq!(failed_stage(&op).as_deref(), Some("network"), "{op:?}");
    assert_eq!(
        op.error.as_ref().map(|e| e.code),
        Some(ErrorCode::OperationFailed)
    );
    assert_nothing_left(&host, &ctx);

    // boot: the VMM exits at once.
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    host.vmm.fail_launch(true);
    let op = create(&ctx, "vm3", "base").await;
    assert_eq!(failed_stage(&op).as_deref(), Some("boot"), "{op:?}");
    assert_nothing_left(&host, &ctx);
    let message = op.error.expect("error").message;
    assert!(message.contains("injected launch failure"), "{message}");
    let kept: Vec<_> = std::fs::read_dir(host.layout.state_dir.join("failed"))
        .expect("failed dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(kept.len(), 1, "the console log is kept for the user");
    let kept = kept[0].display().to_string();
    assert_eq!(
        message.matches("console log: ").count(),
        1,
        "one console path: {message}"
    );
    assert!(
        !message.contains("/vms/"),
        "no path that is gone: {message}"
    );
    assert!(message.contains(&kept), "the path that exists: {message}");

    // wait for agent: the guest never answers.
    let mut host = Host::new();
    host.timeouts.agent = Duration::from_secs(1);
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    host.vmm.set_guest(FakeGuest::NoAgent);
    let op = create(&ctx, "vm4", "base").await;
    assert_eq!(
        failed_stage(&op).as_deref(),
        Some("wait for agent"),
        "{op:?}"
    );
    assert_nothing_left(&host, &ctx);
    assert!(
        host.vmm
            .calls()
            .iter()
            .any(|c| matches!(c, VmmCall::Kill(_)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_auto_pull_creates_nothing() {
    let mut host = Host::new();
    host.config.catalog.push(CatalogBundle {
        name: "remote".into(),
        // Nothing listens on port 9 of loopback: the download fails at once.
        source: "http://127.0.0.1:9/manifest.json".into(),
        digest: format!("sha256:{}", "0".repeat(64)),
    });
    let ctx = host.daemon();
    let op = create(&ctx, "vm5", "remote").await;
    assert_eq!(failed_stage(&op).as_deref(), Some("auto-pull"), "{op:?}");
    assert_nothing_left(&host, &ctx);
    assert!(host.net.calls().is_empty(), "nothing touched the network");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_whose_ssh_never_answers_is_kept_in_error_with_its_console() {
    let mut host = Host::new();
    host.timeouts.ssh = Duration::from_secs(1);
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    host.vmm.set_guest(FakeGuest::NoSsh);
    let op = create(&ctx, "nossh", "base").await;
    assert_eq!(failed_stage(&op).as_deref(), Some("wait for SSH"), "{op:?}");
    let message = op.error.expect("error").message;
    assert!(message.contains("banger vm logs nossh"), "{message}");

    let vm = ctx.store().vms().resolve("nossh").expect("the vm is kept");
    assert_eq!(vm.state, VmState::Error);
    assert!(
        vm.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("wait for SSH"),
        "{vm:?}"
    );
    assert!(!host.vmm.is_running_vm(&vm.id), "its VMM is stopped");
    assert!(vm_taps(&host.net).is_empty(), "its tap is released");
    assert!(vm.dir.join("work.ext4").exists(), "its disks are kept");
    let log = vms::console_log(&ctx, "nossh", None).expect("logs");
    assert!(log.text.contains("fake guest"), "{log:?}");
    vms::delete(&ctx, "nossh").await.expect("delete");
    assert_nothing_left(&host, &ctx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprivileged_network_is_a_host_problem_that_names_sudo() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    host.net.deny_all(true);
    let op = create(&ctx, "vm6", "base").await;
    assert_eq!(failed_stage(&op).as_deref(), Some("network"), "{op:?}");
    let error = op.error.expect("error");
    assert_eq!(error.code, ErrorCode::HostProblem);
    assert!(error.message.contains("sudo"), "{}", error.message);
    assert!(ctx.store().vms().list().expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_agent_is_refused_before_anything_is_made() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    std::fs::remove_file(&host.agent).expect("rm agent");
    let err = vms::create(&ctx, request("vm7", "base"))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), ErrorCode::HostProblem);
    assert!(
        err.to_string().contains(&host.agent.display().to_string()),
        "{}",
        err.to_string()
    );
    assert!(
        ctx.operations().list().is_empty(),
        "no operation was started"
    );
    assert_nothing_left(&host, &ctx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_adopts_live_vms_and_demotes_dead_ones_releasing_taps_by_durable_name() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    create_ok(&ctx, "alive", "base").await;
    create_ok(&ctx, "dead", "base").await;
    let alive = ctx.store().vms().resolve("alive").expect("alive");
    let dead = ctx.store().vms().resolve("dead").expect("dead");
    drop(ctx);

    // The daemon is gone; one VMM dies meanwhile, and its handles file is lost too.
    host.vmm.crash(&dead.id);
    std::fs::remove_file(dead.dir.join("handles.json")).expect("rm handles");
    let ctx = host.daemon();
    let backends = ctx.backends();
    vms::reconcile_at_start(&ctx, &backends).await;

    let alive_now = ctx.store().vms().resolve("alive").expect("alive");
    assert_eq!(alive_now.state, VmState::Running);
    assert!(ctx.handles(&alive.id).is_some(), "adopted");
    assert!(
        host.vmm.is_running_vm(&alive.id),
        "never stopped by a restart"
    );
    let dead_now = ctx.store().vms().resolve("dead").expect("dead");
    assert_eq!(dead_now.state, VmState::Stopped);
    let dead_tap = dead.tap_name.expect("tap");
    assert!(
        host.net.link(&dead_tap).is_none(),
        "released by its durable name"
    );
    // The crashed VM's jail is released, after its VMM is gone; the live one's is kept.
    let releases = releases(&host);
    assert_eq!(
        releases,
        [VmmCall::Release {
            vm_id: dead.id.clone(),
            while_running: false
        }]
    );
    assert!(
        host.net
            .link(alive.tap_name.as_deref().expect("tap"))
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vmm_spawned_just_before_a_crash_is_found_by_its_tag_and_killed() {
    let host = Host::new();
    let ctx = host.daemon();
    let image = host.seed_image(&ctx, "base");
    // Two VMs whose VMMs run but were never recorded: one mid-create (state created), one
    // mid-start (state still stopped). No handles.json exists for either.
    let mut records = Vec::new();
    for (id, name, state) in [
        ("beef0001", "mid-create", VmState::Created),
        ("beef0002", "mid-start", VmState::Stopped),
    ] {
        let ip = host
            .plan
            .allocate(
                &records
                    .iter()
                    .map(|r: &banger_model::VmRecord| {
                        r.guest_ip.as_deref().expect("ip").parse().expect("ipv4")
                    })
                    .collect(),
            )
            .expect("ip");
        let record = banger_model::VmRecord {
            id: id.to_owned(),
            name: banger_model::VmName::parse(name).expect("name"),
            image_id: image.id.clone(),
            spec: spec(),
            state,
            guest_ip: Some(ip.to_string()),
            tap_name: Some(banger_net::plan::tap_name_for(id)),
            dir: host.layout.vms_dir().join(id),
            last_error: None,
            created_at: "2026-12-02T00:00:00Z".into(),
            updated_at: "2026-12-02T00:00:00Z".into(),
            workspace: None,
        };
        ctx.store().vms().insert(&record).expect("insert");
        let spec = banger_vmm::LaunchSpec {
            vm_id: id.to_owned(),
            vcpu: 1,
            memory_mib: 256,
            kernel: "/k".into(),
            initrd: None,
            cmdline: String::new(),
            disks: Vec::new(),
            net: None,
            run_dir: record.dir.clone(),
        };
        host.vmm.spawn_unrecorded(&spec).await.expect("spawn");
        assert!(host.vmm.is_running_vm(id));
        records.push(record);
    }
    drop(ctx);
    let ctx = host.daemon();
    vms::reconcile_at_start(&ctx, &ctx.backends()).await;
    for record in &records {
        assert!(
            !host.vmm.is_running_vm(&record.id),
            "{} orphaned",
            record.name
        );
    }
    assert_eq!(
        ctx.store().vms().resolve("mid-create").expect("vm").state,
        VmState::Error
    );

    // And delete finds one too.
    let ctx2 = host.daemon();
    let spec = banger_vmm::LaunchSpec {
        vm_id: "beef0002".to_owned(),
        vcpu: 1,
        memory_mib: 256,
        kernel: "/k".into(),
        initrd: None,
        cmdline: String::new(),
        disks: Vec::new(),
        net: None,
        run_dir: records[1].dir.clone(),
    };
    host.vmm.spawn_unrecorded(&spec).await.expect("spawn");
    vms::delete(&ctx2, "mid-start").await.expect("delete");
    assert!(
        !host.vmm.is_running_vm("beef0002"),
        "delete kills an unrecorded VMM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_notices_a_vmm_killed_behind_the_daemons_back() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    create_ok(&ctx, "web", "base").await;
    let vm = ctx.store().vms().resolve("web").expect("vm");
    let monitor = tokio::spawn(vms::monitor(ctx.clone(), ctx.backends()));
    host.vmm.crash(&vm.id);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = ctx.store().vms().resolve("web").expect("vm");
        if now.state == VmState::Stopped {
            break;
        }
        assert!(Instant::now() < deadline, "never demoted: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        host.net
            .link(vm.tap_name.as_deref().expect("tap"))
            .is_none()
    );
    ctx.shutdown().trigger();
    monitor.await.expect("monitor ends on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_creates_never_share_an_address_or_tap_and_a_name_is_won_once() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            create(&ctx, &format!("p{i}"), "base").await
        }));
    }
    for task in tasks {
        let op = task.await.expect("task");
        assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    }
    let vms = ctx.store().vms().list().expect("list");
    assert_eq!(vms.len(), 8);
    let mut ips: Vec<Ipv4Addr> = vms
        .iter()
        .map(|v| v.guest_ip.as_deref().expect("ip").parse().expect("ipv4"))
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 8, "distinct addresses");
    let mut taps: Vec<_> = vms
        .iter()
        .map(|v| v.tap_name.clone().expect("tap"))
        .collect();
    taps.sort();
    taps.dedup();
    assert_eq!(taps.len(), 8, "distinct taps");
    for tap in &taps {
        assert!(host.net.link(tap).is_some(), "{tap} exists and is attached");
    }

    // Three creates of one name: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            match vms::create(&ctx, request("same", "base")).await {
                Ok(op) => finish(&ctx, op).await.state == OperationState::Succeeded,
                Err(e) => {
                    assert_eq!(e.code(), ErrorCode::AlreadyExists, "{e:?}");
                    false
                }
            }
        }));
    }
    let mut winners = 0;
    for task in tasks {
        if task.await.expect("task") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(ctx.store().vms().list().expect("list").len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_claims_of_a_full_pool_never_take_one_tap_twice() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    host.net.add_bridge("bgtest0");
    for n in 0..6 {
        host.net.add_link(&format!("tap-pool-{n}"), Some("bgtest0"));
    }
    let mut tasks = Vec::new();
    for i in 0..6 {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            create(&ctx, &format!("c{i}"), "base").await
        }));
    }
    for task in tasks {
        let op = task.await.expect("task");
        assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    }
    assert_eq!(
        host.net.steals(),
        Vec::new(),
        "a claim renamed a TAP another claim owned"
    );
    for vm in ctx.store().vms().list().expect("list") {
        let tap = vm.tap_name.expect("tap");
        assert_eq!(
            host.net.link(&tap).and_then(|l| l.bridge),
            Some("bgtest0".to_owned()),
            "{tap} is on the bridge"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tap_pool_is_filled_after_first_use_and_claimed_by_the_next_create() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    assert!(host.net.links().is_empty(), "nothing before a VM needs it");
    let first = create(&ctx, "one", "base").await;
    assert_eq!(first.state, OperationState::Succeeded);
    let deadline = Instant::now() + Duration::from_secs(5);
    while host
        .net
        .links()
        .iter()
        .filter(|l| l.starts_with("tap-pool-"))
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "pool never filled: {:?}",
            host.net.links()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = create(&ctx, "two", "base").await;
    let network = second
        .stages
        .iter()
        .find(|s| s.name == "network")
        .expect("network stage");
    assert_eq!(network.detail.as_deref(), Some("tap from the pool"));
    let two = ctx.store().vms().resolve("two").expect("two");
    assert!(
        host.net
            .link(two.tap_name.as_deref().expect("tap"))
            .is_some()
    );
    assert!(
        host.net
            .calls()
            .iter()
            .any(|c| matches!(c, NetCall::Rename(from, to) if from.starts_with("tap-pool-") && Some(to) == two.tap_name.as_ref())),
        "claimed by a rename"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_changes_stopped_vms_and_prune_deletes_the_ones_not_running() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    create_ok(&ctx, "keep", "base").await;
    create_ok(&ctx, "old", "base").await;
    vms::stop(&ctx, "old").await.expect("stop");

    let running = vms::set(
        &ctx,
        "keep",
        SetVmRequest {
            vcpu: Some(2),
            ..SetVmRequest::default()
        },
    )
    .await
    .expect_err("running VMs are not changed");
    assert_eq!(running.code(), ErrorCode::BadRequest);
    let changed = vms::set(
        &ctx,
        "old",
        SetVmRequest {
            vcpu: Some(2),
            disk_size: Some(Size::from_mib(512)),
            ..SetVmRequest::default()
        },
    )
    .await
    .expect("set");
    assert_eq!(changed.spec.vcpu, 2);
    assert_eq!(changed.spec.disk_size, Size::from_mib(512));

    let pruned = vms::prune(&ctx, PruneVmsRequest::default())
        .await
        .expect("prune");
    assert_eq!(pruned.deleted, ["old"]);
    let left: Vec<_> = ctx
        .store()
        .vms()
        .list()
        .expect("list")
        .into_iter()
        .map(|v| v.name.to_string())
        .collect();
    assert_eq!(left, ["keep"]);
    assert!(host.vmm.running_pids().len() == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_vm_interrupted_by_a_restart_is_torn_down_and_marked_error() {
    let host = Host::new();
    let ctx = host.daemon();
    let image = host.seed_image(&ctx, "base");
    // A record as a create leaves it before boot: state created, a tap already made.
    let id = "cafe0001".to_owned();
    let record = banger_model::VmRecord {
        id: id.clone(),
        name: banger_model::VmName::parse("half").expect("name"),
        image_id: image.id,
        spec: spec(),
        state: VmState::Created,
        guest_ip: Some(
            host.plan
                .allocate(&Default::default())
                .expect("ip")
                .to_string(),
        ),
        tap_name: Some(banger_net::plan::tap_name_for(&id)),
        dir: host.layout.vms_dir().join(&id),
        last_error: None,
        created_at: "2026-12-02T00:00:00Z".into(),
        updated_at: "2026-12-02T00:00:00Z".into(),
        workspace: None,
    };
    ctx.store().vms().insert(&record).expect("insert");
    host.net
        .add_link(record.tap_name.as_deref().expect("tap"), Some("bgtest0"));
    vms::reconcile_at_start(&ctx, &ctx.backends()).await;
    let now = ctx.store().vms().resolve("half").expect("kept");
    assert_eq!(now.state, VmState::Error);
    assert!(now.last_error.expect("why").contains("interrupted"));
    assert!(vm_taps(&host.net).is_empty(), "its tap is released");
    let err = vms::start(&ctx, "half")
        .await
        .expect_err("never fully created");
    assert_eq!(err.code(), ErrorCode::BadRequest);
    assert!(
        err.to_string().contains("banger vm delete half"),
        "{}",
        err.to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_newest_console_logs_of_failed_creates_are_kept() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    host.vmm.fail_launch(true);
    let n = vms::FAILED_LOGS_KEPT + 3;
    for i in 0..n {
        let op = create(&ctx, &format!("f{i}"), "base").await;
        assert_eq!(failed_stage(&op).as_deref(), Some("boot"));
    }
    let kept = std::fs::read_dir(host.layout.state_dir.join("failed"))
        .expect("failed dir")
        .count();
    assert_eq!(kept, vms::FAILED_LOGS_KEPT);
}

/// Serves `files` (url path → bytes) over HTTP/1.1 on loopback; returns the base URL.
async fn serve_files(files: Vec<(String, Vec<u8>)>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let files = Arc::new(files);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let files = files.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let found = files
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, b)| b.clone());
                let (status, body) = match found {
                    Some(body) => ("200 OK", body),
                    None => ("404 Not Found", Vec::new()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    format!("http://{addr}")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A stand-in root tree with what an image needs: a shell and its own sshd (so no bundle).
fn image_tree(tree: &std::path::Path) {
    for dir in ["usr/local/bin", "usr/sbin", "bin"] {
        std::fs::create_dir_all(tree.join(dir)).expect("tree");
    }
    std::fs::write(tree.join("usr/sbin/sshd"), "stand-in").expect("sshd");
    std::fs::write(tree.join("bin/sh"), "stand-in").expect("sh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_pull_downloads_a_pinned_bundle_once_and_boots_from_it() {
    let mut host = Host::new();
    // A bundle made of a real small ext4 root filesystem and a stand-in kernel.
    let staging = tempfile::tempdir().expect("staging");
    image_tree(&staging.path().join("tree"));
    let rootfs_path = staging.path().join("rootfs.ext4");
    run(Command::new("mkfs.ext4")
        .args(["-F", "-q", "-d"])
        .arg(staging.path().join("tree"))
        .arg(&rootfs_path)
        .arg("16M"));
    let rootfs = std::fs::read(&rootfs_path).expect("rootfs");
    let kernel = banger_testkit::fakes::stand_in_vmlinux();
    let manifest = serde_json::json!({
        "kernel": {"path": "vmlinux", "sha256": sha256_hex(&kernel)},
        "rootfs": {"path": "rootfs.ext4", "sha256": sha256_hex(&rootfs)},
    })
    .to_string()
    .into_bytes();
    let digest = format!("sha256:{}", sha256_hex(&manifest));
    let base = serve_files(vec![
        ("/b/manifest.json".into(), manifest),
        ("/b/vmlinux".into(), kernel),
        ("/b/rootfs.ext4".into(), rootfs),
    ])
    .await;
    host.config.catalog.push(CatalogBundle {
        name: "bundled".into(),
        source: format!("{base}/b/manifest.json"),
        digest,
    });
    let ctx = host.daemon();

    let op = create(&ctx, "first", "bundled").await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    assert_eq!(op.stages[0].name, "auto-pull");
    assert_eq!(op.stages[0].state, StageState::Done, "downloaded: {op:?}");
    assert!(
        ctx.store()
            .images()
            .get_by_name("bundled")
            .expect("get")
            .is_some()
    );

    let op = create(&ctx, "second", "bundled").await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    assert_eq!(
        (op.stages[0].name.as_str(), op.stages[0].state),
        ("auto-pull", StageState::Skipped),
        "the second create finds it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_by_name_fetches_a_config_bundle_once() {
    let mut host = Host::new();
    let staging = tempfile::tempdir().expect("staging");
    image_tree(&staging.path().join("tree"));
    let rootfs_path = staging.path().join("rootfs.ext4");
    run(Command::new("mkfs.ext4")
        .args(["-F", "-q", "-d"])
        .arg(staging.path().join("tree"))
        .arg(&rootfs_path)
        .arg("16M"));
    let rootfs = std::fs::read(&rootfs_path).expect("rootfs");
    let kernel = banger_testkit::fakes::stand_in_vmlinux();
    let manifest = serde_json::json!({
        "kernel": {"path": "vmlinux", "sha256": sha256_hex(&kernel)},
        "rootfs": {"path": "rootfs.ext4", "sha256": sha256_hex(&rootfs)},
    })
    .to_string()
    .into_bytes();
    let digest = format!("sha256:{}", sha256_hex(&manifest));
    let base = serve_files(vec![
        ("/p/manifest.json".into(), manifest),
        ("/p/vmlinux".into(), kernel),
        ("/p/rootfs.ext4".into(), rootfs),
    ])
    .await;
    host.config.catalog.push(CatalogBundle {
        name: "pulled".into(),
        source: format!("{base}/p/manifest.json"),
        digest,
    });
    let ctx = host.daemon();
    let pull = |ctx: DaemonContext| async move {
        let op = banger_daemon::images::pull::pull_image(&ctx, "pulled", None)
            .await
            .expect("pull accepted");
        finish(&ctx, op).await
    };
    let op = pull(ctx.clone()).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    assert_eq!(op.stages[0].state, StageState::Done, "downloaded: {op:?}");
    assert!(
        ctx.store()
            .images()
            .get_by_name("pulled")
            .expect("get")
            .is_some()
    );
    assert!(
        ctx.store()
            .kernels()
            .get_by_name("pulled")
            .expect("get")
            .is_some()
    );
    let op = pull(ctx.clone()).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    assert_eq!(op.stages[0].state, StageState::Skipped, "found: {op:?}");
    let err = banger_daemon::images::pull::pull_image(&ctx, "nope", None)
        .await
        .expect_err("unknown");
    assert!(
        err.to_string().contains("pulled"),
        "known names listed: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specs_beyond_the_host_or_the_store_are_refused_before_anything_starts() {
    let mut host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let capacity = vms::capacity::probe(&host.layout.state_dir);
    let refused = |spec: banger_model::VmSpec| {
        let ctx = ctx.clone();
        async move {
            let err = vms::create(
                &ctx,
                banger_proto::CreateVmRequest {
                    name: Some("big".into()),
                    image: Some("base".into()),
                    spec,
                    cold: false,
                },
            )
            .await
            .expect_err("refused");
            assert_eq!(err.code(), ErrorCode::BadRequest, "{err:?}");
            err.to_string()
        }
    };
    let base = spec();
    let message = refused(banger_model::VmSpec {
        vcpu: capacity.cpus + 1,
        ..base
    })
    .await;
    assert!(message.contains("CPUs"), "{message}");
    let message = refused(banger_model::VmSpec {
        memory_mib: capacity.memory_mib + 1024,
        ..base
    })
    .await;
    assert!(message.contains("allow_memory_overcommit"), "{message}");
    let message = refused(banger_model::VmSpec {
        memory_mib: u64::MAX,
        ..base
    })
    .await;
    assert!(message.contains("at most"), "{message}");
    let message = refused(banger_model::VmSpec {
        disk_size: Size::from_bytes(capacity.free_disk_bytes.saturating_add(1 << 30)),
        ..base
    })
    .await;
    assert!(message.contains("allow_disk_overcommit"), "{message}");
    assert!(ctx.operations().list().is_empty(), "no operation started");
    assert!(ctx.store().vms().list().expect("list").is_empty());

    // The opt-ins let sparse disks and memory overcommit through.
    host.config.allow_memory_overcommit = true;
    host.config.allow_disk_overcommit = true;
    let ctx = host.daemon();
    let op = vms::create(
        &ctx,
        banger_proto::CreateVmRequest {
            name: Some("big".into()),
            image: Some("base".into()),
            cold: false,
            spec: banger_model::VmSpec {
                memory_mib: capacity.memory_mib + 1024,
                disk_size: Size::from_bytes(capacity.free_disk_bytes.saturating_add(1 << 30)),
                ..base
            },
        },
    )
    .await
    .expect("accepted with the opt-ins");
    let op = finish(&ctx, op).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_rules_follow_the_vm_through_every_way_it_stops() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let nat_request = |name: &str| banger_proto::CreateVmRequest {
        name: Some(name.to_owned()),
        image: Some("base".into()),
        cold: false,
        spec: banger_model::VmSpec {
            nat: true,
            ..spec()
        },
    };
    let op = finish(
        &ctx,
        vms::create(&ctx, nat_request("out")).await.expect("create"),
    )
    .await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    let out = ctx.store().vms().resolve("out").expect("vm");
    let rules = host.net.nat_rules();
    assert_eq!(
        rules.get(&out.id),
        out.tap_name.as_ref(),
        "the rule names its TAP"
    );
    let plain = create_ok(&ctx, "plain", "base").await;
    assert!(
        !host.net.nat_rules().contains_key(&plain.id),
        "no NAT unless asked"
    );

    vms::stop(&ctx, "out").await.expect("stop");
    assert!(host.net.nat_rules().is_empty(), "stop removes it");
    finish(&ctx, vms::start(&ctx, "out").await.expect("start")).await;
    assert!(
        host.net.nat_rules().contains_key(&out.id),
        "start puts it back"
    );
    vms::kill(&ctx, "out").await.expect("kill");
    assert!(host.net.nat_rules().is_empty(), "kill removes it");

    // A VMM dying while the daemon is down: the restarted daemon removes the rule.
    finish(&ctx, vms::start(&ctx, "out").await.expect("start")).await;
    drop(ctx);
    host.vmm.crash(&out.id);
    let ctx = host.daemon();
    vms::reconcile_at_start(&ctx, &ctx.backends()).await;
    assert!(host.net.nat_rules().is_empty(), "reconcile removes it");

    // `vm set --nat false` on a stopped VM: the next start adds no rule.
    vms::set(
        &ctx,
        "out",
        banger_proto::SetVmRequest {
            nat: Some(false),
            ..banger_proto::SetVmRequest::default()
        },
    )
    .await
    .expect("set");
    finish(&ctx, vms::start(&ctx, "out").await.expect("start")).await;
    assert!(host.net.nat_rules().is_empty());
    vms::set(
        &ctx,
        "out",
        banger_proto::SetVmRequest {
            nat: Some(true),
            ..Default::default()
        },
    )
    .await
    .expect_err("running VMs are not changed");
    vms::stop(&ctx, "out").await.expect("stop");
    vms::set(
        &ctx,
        "out",
        banger_proto::SetVmRequest {
            nat: Some(true),
            ..Default::default()
        },
    )
    .await
    .expect("set");
    finish(&ctx, vms::start(&ctx, "out").await.expect("start")).await;
    assert!(host.net.nat_rules().contains_key(&out.id));
    vms::delete(&ctx, "out").await.expect("delete");
    assert!(host.net.nat_rules().is_empty(), "delete removes it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vm_zone_holds_exactly_the_running_vms() {
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let web = create_ok(&ctx, "web", "base").await;
    let ip: Ipv4Addr = web.guest_ip.as_deref().expect("ip").parse().expect("ipv4");
    assert_eq!(ctx.zone().lookup("web"), Some(ip));
    vms::stop(&ctx, "web").await.expect("stop");
    assert_eq!(ctx.zone().lookup("web"), None, "stopped: NXDOMAIN");
    finish(&ctx, vms::start(&ctx, "web").await.expect("start")).await;
    assert_eq!(ctx.zone().lookup("web"), Some(ip));
    vms::kill(&ctx, "web").await.expect("kill");
    assert_eq!(ctx.zone().lookup("web"), None);
    finish(&ctx, vms::start(&ctx, "web").await.expect("start")).await;

    // A restarted daemon adopts the running VM and serves its name again.
    drop(ctx);
    let ctx = host.daemon();
    assert_eq!(ctx.zone().lookup("web"), None);
    vms::reconcile_at_start(&ctx, &ctx.backends()).await;
    assert_eq!(ctx.zone().lookup("web"), Some(ip), "adopted");
    host.vmm.crash(&web.id);
    let monitor = tokio::spawn(vms::monitor(ctx.clone(), ctx.backends()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while ctx.zone().lookup("web").is_some() {
        assert!(Instant::now() < deadline, "a dead VMM's name stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ctx.shutdown().trigger();
    monitor.await.expect("monitor");
    finish(&ctx, vms::start(&ctx, "web").await.expect("start")).await;
    vms::delete(&ctx, "web").await.expect("delete");
    assert!(ctx.zone().records().is_empty(), "deleted: gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_resolver_routes_the_zone_to_the_bridge_after_every_bridge_ensure() {
    let host = Host::new();
    host.net.manage_resolver(true);
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    create_ok(&ctx, "web", "base").await;
    let bridge = host.plan.bridge.clone();
    let route = (host.plan.gateway(), "vm".to_owned());
    assert_eq!(host.net.zone_routes().get(&bridge), Some(&route));
    let calls = host.net.calls();
    let ensured = calls
        .iter()
        .position(|c| *c == NetCall::EnsureBridge(bridge.clone()))
        .expect("bridge ensured");
    let routed = calls
        .iter()
        .position(|c| matches!(c, NetCall::RouteZone(b, ..) if *b == bridge))
        .expect("zone routed");
    assert!(
        ensured < routed,
        "routed after the bridge exists: {calls:?}"
    );

    // The bridge goes away (and the resolver forgets the link): the next start routes again.
    vms::stop(&ctx, "web").await.expect("stop");
    host.net.delete_link(&bridge).await.expect("delete bridge");
    assert!(host.net.zone_routes().is_empty());
    finish(&ctx, vms::start(&ctx, "web").await.expect("start")).await;
    assert_eq!(host.net.zone_routes().get(&bridge), Some(&route));

    // A host whose resolver banger does not manage: the start still succeeds.
    host.net.manage_resolver(false);
    vms::stop(&ctx, "web").await.expect("stop");
    let op = finish(&ctx, vms::start(&ctx, "web").await.expect("start")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    vms::delete(&ctx, "web").await.expect("delete");
}

/// The `release` calls the fake VMM saw, in order.
fn releases(host: &Host) -> Vec<VmmCall> {
    host.vmm
        .calls()
        .into_iter()
        .filter(|c| matches!(c, VmmCall::Release { .. }))
        .collect()
}
