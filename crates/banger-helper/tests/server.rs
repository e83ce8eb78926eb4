//! The helper's server on a real Unix socket with a recording `FakeNet` behind it: allowed
//! requests reach the backend, refused ones (policy or peer credentials) never do.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use banger_helper::{HelperNet, Policy, Request, Response, server, socket};
use banger_net::{NetError, NetOps, NetPlan};
use banger_testkit::fakes::{FakeNet, NetCall};

const OWNER: u32 = 4242;

struct Helper {
    dir: tempfile::TempDir,
    net: Arc<FakeNet>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Helper {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("root/helper.sock");
        let listener = socket::bind(&path, OWNER).expect("bind");
        let net = Arc::new(FakeNet::new());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(server::serve(
            listener,
            Arc::new(Policy::new(NetPlan::default(), OWNER)),
            net.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        Self {
            dir,
            net,
            stop: Some(tx),
            task,
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("root/helper.sock")
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.expect("server task");
    }
}

#[tokio::test]
#[ignore = "needs root: chowns the socket to another uid"]
async fn allowed_requests_reach_the_backend_and_refused_ones_never_do() {
    let h = Helper::start();
    let meta = std::fs::metadata(h.socket()).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), OWNER);
    let dir_mode = std::fs::metadata(h.dir.path().join("root"))
        .expect("dir")
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o755);

    // Root (this test) may talk to the helper; these pass the policy.
    let client = HelperNet::new(h.socket());
    let plan = NetPlan::default();
    client
        .ensure_bridge(&plan.bridge, plan.gateway(), plan.prefix)
        .await
        .expect("bridge");
    client
        .ensure_tap("bgr-abc", &plan.bridge, OWNER)
        .await
        .expect("tap");
    assert_eq!(
        client.links_with_prefix("bgr-").await.expect("list"),
        ["bgr-abc"]
    );
    assert_eq!(h.net.link("bgr-abc").expect("made").owner_uid, OWNER);
    let before = h.net.calls();
    assert_eq!(
        before,
        [
            NetCall::EnsureBridge(plan.bridge.clone()),
            NetCall::EnsureTap("bgr-abc".into(), plan.bridge.clone()),
        ]
    );

    // Each refused request answers Refused and leaves the backend untouched.
    let refused = [
        Request::DeleteLink { name: "lo".into() },
        Request::DeleteLink {
            name: "veth0".into(),
        },
        Request::RenameLink {
            from: "bgr-abc".into(),
            to: "eth0".into(),
        },
        Request::EnsureTap {
            name: "bgr-abc".into(),
            bridge: plan.bridge.clone(),
            owner_uid: 0,
        },
        Request::EnsureBridge {
            name: "docker0".into(),
            gateway: plan.gateway(),
            prefix: plan.prefix,
        },
        Request::AllowNat {
            vm_id: "x; flush ruleset".into(),
            tap: "bgr-abc".into(),
            bridge: plan.bridge.clone(),
        },
        Request::LinksWithPrefix { prefix: "".into() },
    ];
    for request in refused {
        let answer = client.send(&request).await.expect("answered");
        assert!(
            matches!(answer, Response::Refused { .. }),
            "{request:?} → {answer:?}"
        );
    }
    let err = client.delete_link("lo").await.expect_err("refused");
    assert!(
        matches!(err, NetError::Refused(ref r) if r.contains("\"lo\"")),
        "{err}"
    );

    // Lines that are not requests at all: refused, nothing reached the backend.
    for line in [
        "{\"op\":\"flush_table\",\"family\":\"inet\",\"table\":\"filter\"}",
        "{\"op\":\"write_file\",\"path\":\"/etc/passwd\",\"data\":\"\"}",
        "garbage",
    ] {
        let answer = raw_exchange(&h.socket(), line).await;
        assert!(
            answer.contains("\"result\":\"refused\""),
            "{line} → {answer}"
        );
    }
    assert_eq!(
        h.net.calls(),
        before,
        "refused requests reached the backend"
    );
    assert_eq!(h.net.links(), ["bgr-abc"]);
    h.stop().await;
}

#[tokio::test]
#[ignore = "needs root: runs a client as another uid"]
async fn another_uid_is_refused_by_peer_credentials_and_by_the_socket_mode() {
    let h = Helper::start();
    // The socket's mode alone keeps a stranger out.
    let stranger = tokio::task::spawn_blocking({
        let socket = h.socket();
        move || request_as(65534, &socket)
    })
    .await
    .expect("join");
    assert!(stranger.starts_with("CONNECT-ERROR 13"), "{stranger}");
    // With the socket opened to everyone, the credential check alone refuses strangers...
    std::fs::set_permissions(h.socket(), std::fs::Permissions::from_mode(0o666)).expect("chmod");
    std::fs::set_permissions(h.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let stranger = tokio::task::spawn_blocking({
        let socket = h.socket();
        move || request_as(65534, &socket)
    })
    .await
    .expect("join");
    assert!(stranger.contains("\"result\":\"refused\""), "{stranger}");
    assert!(stranger.contains("uid 65534"), "{stranger}");
    assert!(h.net.calls().is_empty(), "a stranger reached the backend");
    assert!(h.net.bridges().is_empty());
    // ...and the owner is served.
    let owner = tokio::task::spawn_blocking({
        let socket = h.socket();
        move || request_as(OWNER, &socket)
    })
    .await
    .expect("join");
    assert!(owner.contains("\"result\":\"ok\""), "{owner}");
    assert_eq!(h.net.bridges(), [NetPlan::default().bridge]);
    h.stop().await;
}

async fn raw_exchange(socket: &Path, line: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect");
    stream
        .write_all(format!("{line}\n").as_bytes())
        .await
        .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}

/// Sends banger's own bridge request as `uid` with Python's socket module (a separate process,
/// so the uid really differs) and returns the answer, or `CONNECT-ERROR errno`. Sending may
/// fail when the helper answers a stranger without reading; the answer is still there.
fn request_as(uid: u32, socket: &Path) -> String {
    let plan = NetPlan::default();
    let request = serde_json::to_string(&Request::EnsureBridge {
        name: plan.bridge.clone(),
        gateway: plan.gateway(),
        prefix: plan.prefix,
    })
    .expect("json");
    let script = "import socket,sys\n\
s=socket.socket(socket.AF_UNIX)\n\
try:\n    s.connect(sys.argv[1])\n\
except OSError as e:\n    print('CONNECT-ERROR', e.errno); sys.exit(0)\n\
try:\n    s.sendall(sys.argv[2].encode() + b'\\n')\n\
except OSError:\n    pass\n\
data=b''\n\
while True:\n    chunk=s.recv(65536)\n    if not chunk: break\n    data+=chunk\n\
print(data.decode())\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(socket)
        .arg(request)
        .uid(uid)
        .gid(65534)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
#[ignore = "needs root: chowns the socket to another uid"]
async fn the_guests_dns_sockets_come_back_over_the_socket_and_receive() {
    let h = Helper::start();
    let client = HelperNet::new(h.socket());
    let plan = NetPlan::default();
    // The fake binds loopback on free ports where the real helper binds the gateway's 53.
    let sockets = client
        .bind_guest_dns(plan.gateway())
        .await
        .expect("sockets handed over");
    let udp_addr = sockets.udp.local_addr().expect("udp");
    let tcp_addr = sockets.tcp.local_addr().expect("tcp");
    assert!(udp_addr.ip().is_loopback() && tcp_addr.ip().is_loopback());
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("probe");
    probe.send_to(b"q", udp_addr).expect("send");
    sockets.udp.set_nonblocking(false).expect("blocking");
    sockets
        .udp
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 4];
    let (n, _) = sockets
        .udp
        .recv_from(&mut buf)
        .expect("the handed-over socket receives");
    assert_eq!(&buf[..n], b"q");
    std::net::TcpStream::connect(tcp_addr).expect("the handed-over listener accepts");

    // Any address but the gateway is refused before the backend is asked.
    let err = client
        .bind_guest_dns(std::net::Ipv4Addr::new(0, 0, 0, 0))
        .await
        .expect_err("not the gateway");
    assert!(matches!(err, NetError::Refused(_)), "{err}");
    let binds = h
        .net
        .calls()
        .into_iter()
        .filter(|c| matches!(c, NetCall::BindGuestDns(_)))
        .count();
    assert_eq!(binds, 1, "the refused request never reached the backend");
    h.stop().await;
}
