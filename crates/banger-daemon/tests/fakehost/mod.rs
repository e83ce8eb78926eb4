//! A simulated host for the daemon's host-tier tests: a temp layout with a real store and
//! real ext4 disks, a [`FakeVmm`] whose guests answer the agent and SSH probes on a loopback
//! subnet, and a [`FakeNet`] with bridges and TAPs in memory.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use banger_daemon::agent_binary::AgentLocator;
use banger_daemon::vms::{self, Timeouts, VmBackends};
use banger_daemon::{DaemonContext, Shutdown};
use banger_model::{Config, ImageRecord, KernelRecord, Layout, Mode, Size, VmSpec};
use banger_net::NetPlan;
use banger_proto::{BuildInfo, CreateVmRequest, DaemonInfo, Operation, OperationState, StageState};
use banger_store::Store;
use banger_testkit::fakes::{FakeNet, FakeVmm};

pub const SSH_PORT: u16 = 2222;

/// A distinct loopback /24 per test, so fake guests of parallel tests never share an address.
pub fn loopback_plan() -> NetPlan {
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let second = 100 + u8::try_from(std::process::id() % 100).expect("small");
    NetPlan::new("bgtest0", &format!("127.{second}.{n}.0/24")).expect("plan")
}

/// One simulated host: layout, store, fakes, an image and a kernel.
pub struct Host {
    pub _dir: tempfile::TempDir,
    pub layout: Layout,
    pub vmm: Arc<FakeVmm>,
    pub net: Arc<FakeNet>,
    pub plan: NetPlan,
    pub agent: PathBuf,
    pub timeouts: Timeouts,
    pub config: Config,
    /// The daemon owner's home (`~/` of `[[file_sync]]`, the git identity's `HOME`).
    pub home: PathBuf,
}

pub fn run(cmd: &mut Command) {
    let out = cmd.output().expect("tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Host {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bgl")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let layout = Layout::rooted(Mode::User, dir.path());
        std::fs::create_dir_all(&layout.state_dir).expect("state dir");
        let agent = dir.path().join("banger-agent");
        std::fs::write(&agent, b"#!/bin/sh\nexit 0\n").expect("agent");
        run(Command::new("chmod").arg("0755").arg(&agent));
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        Self {
            _dir: dir,
            layout,
            vmm: Arc::new(FakeVmm::new(SSH_PORT)),
            net: Arc::new(FakeNet::new()),
            plan: loopback_plan(),
            agent,
            timeouts: Timeouts {
                agent: Duration::from_secs(10),
                ssh: Duration::from_secs(10),
                stop: Duration::from_secs(2),
            },
            config: Config::default(),
            home,
        }
    }

    /// A host whose fake VMM has warm snapshots (its "binary" is a file in the temp dir).
    pub fn with_warm() -> Self {
        let mut host = Self::new();
        let binary = host._dir.path().join("fake-vmm");
        std::fs::write(&binary, b"fake vmm build 1\n").expect("vmm binary");
        host.vmm = Arc::new(FakeVmm::new(SSH_PORT).with_warm(binary));
        host
    }

    /// A daemon over this host's store and fakes (call again to "restart" it).
    pub fn daemon(&self) -> DaemonContext {
        let store = Store::open(&self.layout.db_file()).expect("store");
        let ssh_dir = self.layout.ssh_dir();
        let backends = Arc::new(VmBackends {
            vmm: self.vmm.clone(),
            net: self.net.clone(),
            plan: self.plan.clone(),
            ssh_key: banger_ssh::ensure_keypair(&ssh_dir).expect("key"),
            known_hosts: banger_ssh::known_hosts::path(&ssh_dir),
            owner_uid: 1000,
            home: self.home.clone(),
            ssh_port: SSH_PORT,
            timeouts: self.timeouts,
        });
        let info = DaemonInfo {
            build: BuildInfo {
                version: "v0.0.0-test".to_owned(),
                commit: "test".to_owned(),
                built_at: "2026-01-01T00:00:00Z".to_owned(),
            },
            pid: std::process::id(),
            mode: Mode::User,
            owner_uid: 1000,
            socket: self.layout.socket(),
            state_dir: self.layout.state_dir.clone(),
            started_at: banger_daemon::ids::now_rfc3339(),
            dns: None,
            guest_dns: None,
        };
        DaemonContext::new(
            self.layout.clone(),
            self.config.clone(),
            store,
            info,
            Shutdown::new(),
            backends,
            AgentLocator::at(&self.agent),
        )
    }

    /// Registers a small real ext4 image `name` and its kernel.
    pub fn seed_image(&self, ctx: &DaemonContext, name: &str) -> ImageRecord {
        self.seed_image_with_work(ctx, name, None)
    }

    /// Registers image `name` and its kernel; with `work_tree`, a work seed made from it.
    pub fn seed_image_with_work(
        &self,
        ctx: &DaemonContext,
        name: &str,
        work_tree: Option<&std::path::Path>,
    ) -> ImageRecord {
        let dir = self.layout.images_dir().join(name);
        std::fs::create_dir_all(&dir).expect("image dir");
        let rootfs = dir.join("rootfs.ext4");
        let tree = dir.join("tree");
        std::fs::create_dir_all(tree.join("usr/local/bin")).expect("tree");
        run(Command::new("mkfs.ext4")
            .args(["-F", "-q", "-d"])
            .arg(&tree)
            .arg(&rootfs)
            .arg("16M"));
        let kernel = KernelRecord {
            id: format!("k-{name}"),
            name: format!("{name}-kernel"),
            version: None,
            source: "test".into(),
            vmlinux_path: dir.join("vmlinux"),
            initrd_path: None,
            created_at: "2026-12-02T00:00:00Z".into(),
        };
        std::fs::write(&kernel.vmlinux_path, b"not a real kernel").expect("vmlinux");
        ctx.store().kernels().insert(&kernel).expect("kernel");
        let image = ImageRecord {
            id: format!("i-{name}"),
            name: name.to_owned(),
            source: "test".into(),
            digest: None,
            rootfs_path: rootfs,
            work_seed_path: work_tree.map(|tree| {
                let seed = dir.join("work-seed.ext4");
                run(Command::new("mkfs.ext4")
                    .args(["-F", "-q", "-d"])
                    .arg(tree)
                    .arg(&seed)
                    .arg("16M"));
                seed
            }),
            kernel_name: Some(kernel.name.clone()),
            created_at: "2026-12-02T00:00:00Z".into(),
            oci_config: None,
        };
        ctx.store().images().insert(&image).expect("image");
        image
    }
}

pub fn spec() -> VmSpec {
    VmSpec {
        vcpu: 1,
        memory_mib: 256,
        disk_size: Size::from_mib(256),
        nat: false,
    }
}

pub fn request(name: &str, image: &str) -> CreateVmRequest {
    CreateVmRequest {
        name: Some(name.to_owned()),
        image: Some(image.to_owned()),
        spec: spec(),
        cold: false,
    }
}

/// Polls an operation until it ends (bounded).
pub async fn finish(ctx: &DaemonContext, op: Operation) -> Operation {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = ctx.operations().get(&op.id).expect("operation is known");
        if now.state != OperationState::Running {
            return now;
        }
        assert!(Instant::now() < deadline, "operation never ended: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn create(ctx: &DaemonContext, name: &str, image: &str) -> Operation {
    let op = vms::create(ctx, request(name, image))
        .await
        .expect("create accepted");
    finish(ctx, op).await
}

/// Creates VM `name`, asserting that the create succeeded; returns its record.
pub async fn create_ok(ctx: &DaemonContext, name: &str, image: &str) -> banger_model::VmRecord {
    let op = create(ctx, name, image).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    ctx.store().vms().resolve(name).expect("the created vm")
}

pub fn stage_states(op: &Operation) -> Vec<(String, StageState)> {
    op.stages
        .iter()
        .map(|s| (s.name.clone(), s.state))
        .collect()
}

pub fn failed_stage(op: &Operation) -> Option<String> {
    let failed: Vec<_> = op
        .stages
        .iter()
        .filter(|s| s.state == StageState::Failed)
        .map(|s| s.name.clone())
        .collect();
    assert!(failed.len() <= 1, "one failed stage at most: {op:?}");
    failed.into_iter().next()
}

pub fn vm_dirs(layout: &Layout) -> Vec<String> {
    std::fs::read_dir(layout.vms_dir())
        .map(|rd| {
            rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn vm_taps(net: &FakeNet) -> Vec<String> {
    net.links()
        .into_iter()
        .filter(|l| l.starts_with("bgr-"))
        .collect()
}

/// Nothing of a failed create is left: no record, no VM dir, no VM TAP, no VMM.
pub fn assert_nothing_left(host: &Host, ctx: &DaemonContext) {
    assert!(
        ctx.store().vms().list().expect("list").is_empty(),
        "a record is left"
    );
    assert!(
        vm_dirs(&host.layout).is_empty(),
        "vm dirs left: {:?}",
        vm_dirs(&host.layout)
    );
    assert!(
        vm_taps(&host.net).is_empty(),
        "taps left: {:?}",
        vm_taps(&host.net)
    );
    assert!(host.vmm.running_pids().is_empty(), "a VMM is left running");
}
