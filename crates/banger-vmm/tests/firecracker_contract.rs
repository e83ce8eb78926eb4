//! Contract tests: banger's Firecracker client against the fake Firecracker of
//! `banger-testkit`, which follows the official swagger definition. For every call the fake
//! must receive exactly the method, path and JSON body the spec defines; success must map to
//! `Ok`; Firecracker's `fault_message` must reach the caller. No root needed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use banger_testkit::fake_firecracker::{FIRST_HOST_PORT, FakeFirecracker, FakeState, FakeVsock};
use banger_vmm::firecracker::vsock::{self, VsockConnectError};
use banger_vmm::firecracker::{
    ApiCall, BootSource, Drive, FirecrackerApiError, FirecrackerClient, InstanceState, LogLevel,
    Logger, MachineConfig, Metrics, NetworkInterface, VmConfig, Vsock, wait_for_api_socket,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHORT: Duration = Duration::from_secs(5);

struct Env {
    dir: tempfile::TempDir,
    fake: FakeFirecracker,
    client: FirecrackerClient,
}

impl Env {
    fn new() -> Self {
        let dir = tempdir();
        let socket = dir.path().join("api.sock");
        let fake = FakeFirecracker::start(&socket).expect("the fake firecracker starts");
        let client = FirecrackerClient::new(&socket).with_timeout(SHORT);
        Self { dir, fake, client }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A file that exists (kernel, initrd, disk image).
    fn file(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, b"not really an image").expect("write a test file");
        path
    }

    fn boot_source(&self) -> BootSource {
        BootSource {
            kernel_image_path: self.file("vmlinux"),
            boot_args: "console=ttyS0 reboot=k panic=1".to_owned(),
            initrd_path: None,
        }
    }

    fn drive(&self, id: &str, root: bool) -> Drive {
        Drive {
            drive_id: id.to_owned(),
            path_on_host: self.file(&format!("{id}.ext4")),
            is_root_device: root,
            is_read_only: false,
        }
    }

    fn vsock(&self) -> Vsock {
        Vsock {
            guest_cid: 3,
            uds_path: self.path("v.sock"),
        }
    }

    async fn boot(&self) {
        self.client
            .put_boot_source(&self.boot_source())
            .await
            .expect("put boot source");
        self.client.instance_start().await.expect("instance start");
        assert_eq!(self.fake.state(), FakeState::Running);
    }

    /// The last call the fake saw, as (method, path, body, status).
    fn last(&self) -> (String, String, Option<Value>, u16) {
        let call = self.fake.calls().pop().expect("the fake saw no call");
        (call.method, call.path, call.body, call.status)
    }

    fn assert_last_put(&self, path: &str, body: Value) {
        assert_eq!(
            self.last(),
            ("PUT".to_owned(), path.to_owned(), Some(body), 204)
        );
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// A private temp dir with a short path: Unix socket paths must fit in 108 bytes.
fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("fc")
        .tempdir_in("/tmp")
        .expect("create a temp dir")
}

#[tokio::test]
async fn put_machine_config_sends_the_spec_body() {
    let env = Env::new();
    let mc = MachineConfig {
        vcpu_count: 2,
        mem_size_mib: 1024,
        smt: Some(false),
    };
    env.client.put_machine_config(&mc).await.unwrap();
    env.assert_last_put(
        "/machine-config",
        json!({"vcpu_count": 2, "mem_size_mib": 1024, "smt": false}),
    );
    assert_eq!(env.client.get_machine_config().await.unwrap(), mc);
}

#[tokio::test]
async fn get_machine_config_reports_firecracker_defaults_before_any_put() {
    let env = Env::new();
    let mc = env.client.get_machine_config().await.unwrap();
    assert_eq!((mc.vcpu_count, mc.mem_size_mib), (1, 128));
    assert_eq!(
        env.last(),
        ("GET".to_owned(), "/machine-config".to_owned(), None, 200)
    );
}

#[tokio::test]
async fn put_boot_source_sends_the_spec_body() {
    let env = Env::new();
    let mut boot = env.boot_source();
    boot.initrd_path = Some(env.file("initrd.img"));
    env.client.put_boot_source(&boot).await.unwrap();
    env.assert_last_put(
        "/boot-source",
        json!({
            "kernel_image_path": s(&boot.kernel_image_path),
            "boot_args": "console=ttyS0 reboot=k panic=1",
            "initrd_path": s(boot.initrd_path.as_deref().unwrap()),
        }),
    );
}

#[tokio::test]
async fn put_boot_source_fails_when_the_kernel_file_is_missing() {
    let env = Env::new();
    let boot = BootSource {
        kernel_image_path: env.path("no-such-vmlinux"),
        boot_args: String::new(),
        initrd_path: None,
    };
    let err = env.client.put_boot_source(&boot).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(
        err.fault_message()
            .unwrap()
            .contains("The kernel file cannot be opened"),
        "{err}"
    );
}

#[tokio::test]
async fn put_drive_sends_the_spec_path_and_body() {
    let env = Env::new();
    let drive = env.drive("rootfs", true);
    env.client.put_drive(&drive).await.unwrap();
    env.assert_last_put(
        "/drives/rootfs",
        json!({
            "drive_id": "rootfs",
            "path_on_host": s(&drive.path_on_host),
            "is_root_device": true,
            "is_read_only": false,
        }),
    );
}

#[tokio::test]
async fn a_second_root_drive_is_rejected() {
    let env = Env::new();
    env.client
        .put_drive(&env.drive("rootfs", true))
        .await
        .unwrap();
    let err = env
        .client
        .put_drive(&env.drive("other", true))
        .await
        .unwrap_err();
    assert_eq!(
        err.fault_message(),
        Some("Drive config error: A root block device already exists!")
    );
}

#[tokio::test]
async fn invalid_resource_ids_are_refused_before_any_request() {
    let env = Env::new();
    let mut drive = env.drive("rootfs", true);
    drive.drive_id = "root fs".to_owned();
    let err = env.client.put_drive(&drive).await.unwrap_err();
    assert!(
        matches!(err, FirecrackerApiError::InvalidId { .. }),
        "{err}"
    );
    assert!(env.fake.calls().is_empty());
}

#[tokio::test]
async fn put_network_interface_sends_the_spec_path_and_body() {
    let env = Env::new();
    let iface = NetworkInterface {
        iface_id: "eth0".to_owned(),
        host_dev_name: "bgr-tap0".to_owned(),
        guest_mac: Some("06:00:ac:10:00:02".to_owned()),
    };
    env.client.put_network_interface(&iface).await.unwrap();
    env.assert_last_put(
        "/network-interfaces/eth0",
        json!({"iface_id": "eth0", "host_dev_name": "bgr-tap0", "guest_mac": "06:00:ac:10:00:02"}),
    );

    let no_mac = NetworkInterface {
        iface_id: "eth1".to_owned(),
        host_dev_name: "bgr-tap1".to_owned(),
        guest_mac: None,
    };
    env.client.put_network_interface(&no_mac).await.unwrap();
    env.assert_last_put(
        "/network-interfaces/eth1",
        json!({"iface_id": "eth1", "host_dev_name": "bgr-tap1"}),
    );
}

#[tokio::test]
async fn put_vsock_sends_the_spec_body_and_binds_the_socket() {
    let env = Env::new();
    let v = env.vsock();
    env.client.put_vsock(&v).await.unwrap();
    env.assert_last_put(
        "/vsock",
        json!({"guest_cid": 3, "uds_path": s(&v.uds_path)}),
    );
    assert!(
        v.uds_path.exists(),
        "firecracker binds uds_path at PUT /vsock"
    );
}

#[tokio::test]
async fn put_logger_sends_the_spec_body_and_creates_the_file() {
    let env = Env::new();
    let logger = Logger {
        log_path: env.path("fc.log"),
        level: Some(LogLevel::Debug),
        show_level: Some(true),
        show_log_origin: Some(false),
    };
    env.client.put_logger(&logger).await.unwrap();
    env.assert_last_put(
        "/logger",
        json!({
            "log_path": s(&logger.log_path),
            "level": "Debug",
            "show_level": true,
            "show_log_origin": false,
        }),
    );
    assert!(logger.log_path.exists());
}

#[tokio::test]
async fn put_metrics_sends_the_spec_body_and_is_accepted_once() {
    let env = Env::new();
    let metrics = Metrics {
        metrics_path: env.path("fc.metrics"),
    };
    env.client.put_metrics(&metrics).await.unwrap();
    env.assert_last_put(
        "/metrics",
        json!({"metrics_path": s(&metrics.metrics_path)}),
    );
    let err = env.client.put_metrics(&metrics).await.unwrap_err();
    assert!(
        err.fault_message()
            .unwrap()
            .ends_with("Reinitialization of metrics not allowed."),
        "{err}"
    );
}

#[tokio::test]
async fn actions_send_the_spec_bodies() {
    let env = Env::new();
    env.client
        .put_metrics(&Metrics {
            metrics_path: env.path("fc.metrics"),
        })
        .await
        .unwrap();
    env.boot().await;
    env.assert_last_put("/actions", json!({"action_type": "InstanceStart"}));

    env.client.flush_metrics().await.unwrap();
    env.assert_last_put("/actions", json!({"action_type": "FlushMetrics"}));
    assert!(
        !std::fs::read_to_string(env.path("fc.metrics"))
            .unwrap()
            .is_empty()
    );

    env.client.send_ctrl_alt_del().await.unwrap();
    env.assert_last_put("/actions", json!({"action_type": "SendCtrlAltDel"}));
}

#[tokio::test]
async fn describe_instance_reports_the_state() {
    let env = Env::new();
    let info = env.client.describe_instance().await.unwrap();
    assert_eq!(info.state, InstanceState::NotStarted);
    assert_eq!(info.app_name, "Firecracker");
    assert_eq!(env.last(), ("GET".to_owned(), "/".to_owned(), None, 200));

    env.boot().await;
    let info = env.client.describe_instance().await.unwrap();
    assert_eq!(info.state, InstanceState::Running);
}

#[tokio::test]
async fn instance_start_without_a_boot_source_fails() {
    let env = Env::new();
    let err = env.client.instance_start().await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(
        err.fault_message(),
        Some("Start microvm error: Cannot start microvm without kernel configuration.")
    );
    assert_eq!(env.fake.state(), FakeState::NotStarted);
}

#[tokio::test]
async fn instance_start_needs_no_machine_config() {
    // Firecracker defaults to 1 vCPU and 128 MiB; only the boot source is required.
    let env = Env::new();
    env.boot().await;
}

#[tokio::test]
async fn post_boot_only_actions_fail_before_boot() {
    let env = Env::new();
    for err in [
        env.client.send_ctrl_alt_del().await.unwrap_err(),
        env.client.flush_metrics().await.unwrap_err(),
    ] {
        assert_eq!(
            err.fault_message(),
            Some("The requested operation is not supported before starting the microVM.")
        );
    }
}

#[tokio::test]
async fn pre_boot_resources_fail_after_boot() {
    let env = Env::new();
    env.boot().await;
    let post_boot = "The requested operation is not supported after starting the microVM.";
    let c = &env.client;
    let results = [
        c.put_machine_config(&MachineConfig {
            vcpu_count: 1,
            mem_size_mib: 256,
            smt: None,
        })
        .await,
        c.put_boot_source(&env.boot_source()).await,
        c.put_logger(&Logger {
            log_path: env.path("late.log"),
            level: None,
            show_level: None,
            show_log_origin: None,
        })
        .await,
        c.put_metrics(&Metrics {
            metrics_path: env.path("late.metrics"),
        })
        .await,
        c.put_vsock(&env.vsock()).await,
        c.instance_start().await,
    ];
    for result in results {
        let err = result.unwrap_err();
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.fault_message(), Some(post_boot), "{err}");
    }
    // Drives and NICs after boot are hotplug (Firecracker >= 1.16, `--enable-pci` only).
    for err in [
        c.put_drive(&env.drive("late", false)).await.unwrap_err(),
        c.put_network_interface(&NetworkInterface {
            iface_id: "eth9".to_owned(),
            host_dev_name: "tap9".to_owned(),
            guest_mac: None,
        })
        .await
        .unwrap_err(),
    ] {
        assert_eq!(err.fault_message(), Some("PCI is not enabled"), "{err}");
    }
    assert_eq!(env.fake.state(), FakeState::Running);
}

/// Invokes one client call by name, so the fault test covers every method.
async fn call(env: &Env, name: &str) -> Result<(), FirecrackerApiError> {
    let c = &env.client;
    match name {
        "put_machine_config" => {
            c.put_machine_config(&MachineConfig {
                vcpu_count: 1,
                mem_size_mib: 128,
                smt: None,
            })
            .await
        }
        "put_boot_source" => c.put_boot_source(&env.boot_source()).await,
        "put_drive" => c.put_drive(&env.drive("rootfs", true)).await,
        "put_network_interface" => {
            c.put_network_interface(&NetworkInterface {
                iface_id: "eth0".to_owned(),
                host_dev_name: "tap0".to_owned(),
                guest_mac: None,
            })
            .await
        }
        "put_vsock" => c.put_vsock(&env.vsock()).await,
        "put_logger" => {
            c.put_logger(&Logger {
                log_path: env.path("fc.log"),
                level: None,
                show_level: None,
                show_log_origin: None,
            })
            .await
        }
        "put_metrics" => {
            c.put_metrics(&Metrics {
                metrics_path: env.path("fc.metrics"),
            })
            .await
        }
        "instance_start" => c.instance_start().await,
        "send_ctrl_alt_del" => c.send_ctrl_alt_del().await,
        "flush_metrics" => c.flush_metrics().await,
        "describe_instance" => c.describe_instance().await.map(drop),
        "get_machine_config" => c.get_machine_config().await.map(drop),
        other => panic!("unknown call {other}"),
    }
}

#[tokio::test]
async fn injected_faults_surface_with_status_and_message_for_every_call() {
    let cases = [
        ("put_machine_config", "/machine-config"),
        ("put_boot_source", "/boot-source"),
        ("put_drive", "/drives/rootfs"),
        ("put_network_interface", "/network-interfaces/eth0"),
        ("put_vsock", "/vsock"),
        ("put_logger", "/logger"),
        ("put_metrics", "/metrics"),
        ("instance_start", "/actions"),
        ("send_ctrl_alt_del", "/actions"),
        ("flush_metrics", "/actions"),
        ("describe_instance", "/"),
        ("get_machine_config", "/machine-config"),
    ];
    for (name, path) in cases {
        let env = Env::new();
        let message = format!("injected failure for {name}");
        env.fake.fail_next(path, 400, &message);
        let err = call(&env, name).await.unwrap_err();
        match &err {
            FirecrackerApiError::Fault {
                path: p,
                status,
                fault_message,
                ..
            } => {
                assert_eq!((p.as_str(), *status), (path, 400), "{name}");
                assert_eq!(fault_message, &message, "{name}");
            }
            other => panic!("{name}: expected a fault, got {other:?}"),
        }
        assert!(err.to_string().contains(&message), "{name}: {err}");
        assert_eq!(env.fake.calls().len(), 1, "{name}");
        assert_eq!(env.fake.calls()[0].status, 400, "{name}");
    }
}

#[tokio::test]
async fn a_5xx_answer_is_a_fault_too() {
    let env = Env::new();
    env.fake
        .fail_next("/boot-source", 500, "internal server error");
    let err = env
        .client
        .put_boot_source(&env.boot_source())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    // The injection is consumed: the next call succeeds.
    env.client
        .put_boot_source(&env.boot_source())
        .await
        .unwrap();
}

fn full_config(env: &Env) -> VmConfig {
    VmConfig {
        logger: Some(Logger {
            log_path: env.path("fc.log"),
            level: Some(LogLevel::Info),
            show_level: None,
            show_log_origin: None,
        }),
        metrics: Some(Metrics {
            metrics_path: env.path("fc.metrics"),
        }),
        machine: MachineConfig {
            vcpu_count: 2,
            mem_size_mib: 512,
            smt: None,
        },
        boot_source: env.boot_source(),
        drives: vec![env.drive("scratch", false), env.drive("rootfs", true)],
        network_interfaces: vec![NetworkInterface {
            iface_id: "eth0".to_owned(),
            host_dev_name: "bgr-tap0".to_owned(),
            guest_mac: Some("06:00:ac:10:00:02".to_owned()),
        }],
        vsock: Some(env.vsock()),
    }
}

#[tokio::test]
async fn the_plan_configures_and_boots_in_order_with_exact_bodies() {
    let env = Env::new();
    let plan = full_config(&env).plan().unwrap();
    env.client.apply_plan(&plan).await.unwrap();

    let expected: Vec<(String, String, Option<Value>, u16)> = plan
        .iter()
        .map(|c| {
            (
                c.method().to_owned(),
                c.path(),
                Some(serde_json::to_value(c).unwrap()),
                204,
            )
        })
        .collect();
    let seen: Vec<_> = env
        .fake
        .calls()
        .into_iter()
        .map(|c| (c.method, c.path, c.body, c.status))
        .collect();
    assert_eq!(seen, expected);
    let paths: Vec<&str> = seen.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/logger",
            "/metrics",
            "/machine-config",
            "/boot-source",
            "/drives/rootfs",
            "/drives/scratch",
            "/network-interfaces/eth0",
            "/vsock",
            "/actions",
        ]
    );
    assert_eq!(plan.last(), Some(&ApiCall::INSTANCE_START));
    assert_eq!(env.fake.state(), FakeState::Running);
}

#[tokio::test]
async fn a_failing_plan_step_is_reported_and_stops_the_plan() {
    let env = Env::new();
    let plan = full_config(&env).plan().unwrap();
    env.fake.fail_next("/drives/rootfs", 400, "disk is gone");
    let err = env.client.apply_plan(&plan).await.unwrap_err();
    assert_eq!(err.step, 4);
    assert_eq!(err.source.fault_message(), Some("disk is gone"));
    assert_eq!(env.fake.calls().len(), 5);
    assert_eq!(env.fake.state(), FakeState::NotStarted);
}

#[tokio::test]
async fn vsock_handshake_reaches_a_guest_port_after_boot() {
    let env = Env::new();
    env.fake.vsock_echo(52);
    env.client.put_vsock(&env.vsock()).await.unwrap();
    env.boot().await;

    let mut conn = vsock::connect(&env.vsock().uds_path, 52, SHORT)
        .await
        .unwrap();
    assert!(conn.host_port >= FIRST_HOST_PORT);
    conn.stream.write_all(b"ping\n").await.unwrap();
    let mut buf = [0u8; 5];
    conn.stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping\n");

    let second = vsock::connect(&env.vsock().uds_path, 52, SHORT)
        .await
        .unwrap();
    assert_ne!(second.host_port, conn.host_port);
    assert_eq!(env.fake.vsock_requested_ports(), [52, 52]);
}

#[tokio::test]
async fn vsock_to_an_unserved_port_is_refused() {
    let env = Env::new();
    env.fake.vsock_echo(52);
    env.client.put_vsock(&env.vsock()).await.unwrap();
    env.boot().await;
    let err = vsock::connect(&env.vsock().uds_path, 1024, SHORT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, VsockConnectError::Refused { port: 1024 }),
        "{err}"
    );
}

#[tokio::test]
async fn vsock_before_boot_is_refused() {
    let env = Env::new();
    env.fake.vsock_echo(52);
    env.client.put_vsock(&env.vsock()).await.unwrap();
    let err = vsock::connect(&env.vsock().uds_path, 52, SHORT)
        .await
        .unwrap_err();
    assert!(matches!(err, VsockConnectError::Refused { .. }), "{err}");
}

#[tokio::test]
async fn vsock_without_a_socket_is_a_connect_error() {
    let env = Env::new();
    let err = vsock::connect(&env.path("missing.sock"), 52, SHORT)
        .await
        .unwrap_err();
    assert!(matches!(err, VsockConnectError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn standalone_fake_vsock_hands_the_stream_to_the_test() {
    let dir = tempdir();
    let fake = FakeVsock::bind(dir.path().join("v.sock")).unwrap();
    fake.serve(7000, |mut stream| async move {
        let _ = stream.write_all(b"hello from the guest").await;
    });
    let mut conn = vsock::connect(fake.path(), 7000, SHORT).await.unwrap();
    let mut text = String::new();
    conn.stream.read_to_string(&mut text).await.unwrap();
    assert_eq!(text, "hello from the guest");
    assert_eq!(conn.host_port, FIRST_HOST_PORT);
}

#[tokio::test]
async fn vsock_garbage_reply_and_silence_are_clear_errors() {
    let dir = tempdir();
    let path = dir.path().join("v.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        // First connection: a wrong reply. Second: accept and say nothing.
        let (mut a, _) = listener.accept().await.unwrap();
        let mut line = [0u8; 8];
        let _ = a.read(&mut line).await;
        a.write_all(b"NOPE 5\n").await.unwrap();
        let (b, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop((a, b));
    });

    let err = vsock::connect(&path, 5, SHORT).await.unwrap_err();
    assert!(
        matches!(&err, VsockConnectError::BadReply { reply, .. } if reply == "NOPE 5\n"),
        "{err}"
    );
    let err = vsock::connect(&path, 5, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, VsockConnectError::Timeout { .. }), "{err}");
    server.abort();
}

#[tokio::test]
async fn wait_for_api_socket_times_out_when_nothing_listens() {
    let dir = tempdir();
    let missing = dir.path().join("api.sock");
    let err = wait_for_api_socket(&missing, Duration::from_millis(150))
        .await
        .unwrap_err();
    assert_eq!(err.path, missing);
    assert_eq!(err.last_error.kind(), std::io::ErrorKind::NotFound);

    // A stale socket file with no listener behind it (a crashed Firecracker).
    drop(std::os::unix::net::UnixListener::bind(&missing).unwrap());
    let err = wait_for_api_socket(&missing, Duration::from_millis(150))
        .await
        .unwrap_err();
    assert_eq!(err.last_error.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn wait_for_api_socket_returns_once_firecracker_listens() {
    let dir = tempdir();
    let socket = dir.path().join("api.sock");
    let late = socket.clone();
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        FakeFirecracker::start(late).unwrap()
    });
    wait_for_api_socket(&socket, SHORT).await.unwrap();
    let fake = starter.join().unwrap();
    let info = FirecrackerClient::new(&socket)
        .describe_instance()
        .await
        .unwrap();
    assert_eq!(info.state, InstanceState::NotStarted);
    drop(fake);
}

#[tokio::test]
async fn a_silent_api_socket_times_out_and_a_missing_one_fails_to_connect() {
    let dir = tempdir();
    let socket = dir.path().join("api.sock");

    let client = FirecrackerClient::new(&socket).with_timeout(Duration::from_millis(200));
    let err = client.describe_instance().await.unwrap_err();
    assert!(matches!(err, FirecrackerApiError::Connect { .. }), "{err}");

    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(stream);
    });
    let err = client.instance_start().await.unwrap_err();
    assert!(
        matches!(err, FirecrackerApiError::Timeout { ref path, .. } if path == "/actions"),
        "{err}"
    );
    server.abort();
}
