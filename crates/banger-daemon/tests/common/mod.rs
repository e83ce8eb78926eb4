//! An in-process daemon on a temp layout, and a raw HTTP client for its socket.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixStream;

use std::sync::Arc;

use banger_daemon::access::AccessPolicy;
use banger_daemon::agent_binary::AgentLocator;
use banger_daemon::server::{self, InstanceLock};
use banger_daemon::vms::{Timeouts, VmBackends};
use banger_daemon::{DaemonContext, Shutdown, SocketOptions};
use banger_model::{Config, Layout, Mode};
use banger_proto::{BuildInfo, DaemonInfo};
use banger_store::Store;

/// The build the test daemon reports (the daemon library reports what its binary hands it).
pub fn test_build() -> BuildInfo {
    BuildInfo {
        version: "v0.0.0-test".to_owned(),
        commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        built_at: "2026-01-01T00:00:00Z".to_owned(),
    }
}

pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub layout: Layout,
    pub ctx: DaemonContext,
    pub task: tokio::task::JoinHandle<Result<(), banger_daemon::ServeError>>,
    _lock: InstanceLock,
}

impl TestDaemon {
    pub async fn start(options: SocketOptions, policy: AccessPolicy) -> Self {
        Self::start_with(
            options,
            policy,
            banger_daemon::connection::Limits::default(),
        )
        .await
    }

    pub async fn start_with(
        options: SocketOptions,
        policy: AccessPolicy,
        limits: banger_daemon::connection::Limits,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bgd")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let layout = Layout::rooted(Mode::User, dir.path());
        std::fs::create_dir_all(&layout.state_dir).expect("state dir");
        let lock = InstanceLock::acquire(&layout).expect("lock");
        let store = Store::open(&layout.db_file()).expect("store");
        let info = DaemonInfo {
            build: test_build(),
            pid: std::process::id(),
            mode: Mode::User,
            owner_uid: policy.owner_uid,
            socket: layout.socket(),
            state_dir: layout.state_dir.clone(),
            started_at: banger_daemon::ids::now_rfc3339(),
            dns: None,
            guest_dns: None,
        };
        let backends = no_vmm_backends(&layout, policy.owner_uid);
        let ctx = DaemonContext::new(
            layout.clone(),
            Config::default(),
            store,
            info,
            Shutdown::new(),
            backends,
            AgentLocator::at(dir.path().join("no-agent-here")),
        );
        let listener = server::bind(&layout, &lock, options).expect("bind");
        let task = tokio::spawn(server::serve_with(listener, ctx.clone(), policy, limits));
        Self {
            dir,
            layout,
            ctx,
            task,
            _lock: lock,
        }
    }

    /// A daemon that serves the uid running the tests.
    pub async fn start_default() -> Self {
        let owner_uid = nix::unistd::geteuid().as_raw();
        Self::start(SocketOptions::default(), AccessPolicy { owner_uid }).await
    }

    /// Inserts the image record `img` that test VMs point at.
    pub fn seed_image(&self) {
        self.ctx
            .store()
            .images()
            .insert(&banger_model::ImageRecord {
                id: "img".to_owned(),
                name: "debian-bookworm".to_owned(),
                source: "test".to_owned(),
                digest: None,
                rootfs_path: "/tmp/rootfs.ext4".into(),
                work_seed_path: None,
                kernel_name: None,
                created_at: "2026-11-22T00:00:00Z".to_owned(),
                oci_config: None,
            })
            .expect("insert image");
    }

    pub fn socket(&self) -> PathBuf {
        self.layout.socket()
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(&self.socket(), method, path, body.map(|b| b.to_string())).await
    }

    pub async fn call_raw(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        call(&self.socket(), method, path, Some(body.to_owned())).await
    }

    pub async fn stop(self) {
        self.ctx.shutdown().trigger();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("daemon stopped in time")
            .expect("no panic")
            .expect("serve returned ok");
    }
}

/// Backends of a host without a hypervisor: fake networking, a real key pair.
pub fn no_vmm_backends(layout: &Layout, owner_uid: u32) -> Arc<VmBackends> {
    let ssh_dir = layout.ssh_dir();
    Arc::new(VmBackends {
        vmm: Arc::new(banger_vmm::NoVmm::new(
            "qemu-system-x86_64 is not on PATH; install QEMU (Debian: qemu-system-x86)",
        )),
        net: Arc::new(banger_testkit::fakes::FakeNet::new()),
        plan: banger_net::NetPlan::default(),
        ssh_key: banger_ssh::ensure_keypair(&ssh_dir).expect("key pair"),
        known_hosts: banger_ssh::known_hosts::path(&ssh_dir),
        owner_uid,
        home: layout.state_dir.join("home"),
        ssh_port: 22,
        timeouts: Timeouts::default(),
    })
}

pub async fn call(socket: &Path, method: &str, path: &str, body: Option<String>) -> (u16, Value) {
    let stream = UnixStream::connect(socket).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let res = sender.send_request(req).await.expect("response");
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, value)
}
