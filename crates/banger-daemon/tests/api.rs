//! The daemon API over a real Unix socket, served in-process on a temp layout with a real
//! SQLite store.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{Value, json};

use banger_daemon::SocketOptions;
use banger_daemon::access::AccessPolicy;
use banger_model::{Size, VmName, VmRecord, VmSpec, VmState};
use banger_proto::routes;
use common::TestDaemon;

fn spec() -> Value {
    json!({"vcpu": 1, "memory_mib": 512, "disk_size": "8G", "nat": false})
}

fn assert_envelope(body: &Value, code: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["op_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("op-")),
        "{body}"
    );
}

fn vm(id: &str, name: &str) -> VmRecord {
    VmRecord {
        id: id.to_owned(),
        name: VmName::parse(name).expect("name"),
        image_id: "img".to_owned(),
        spec: VmSpec {
            vcpu: 1,
            memory_mib: 512,
            disk_size: Size::from_gib(8),
            nat: false,
        },
        state: VmState::Stopped,
        guest_ip: None,
        tap_name: None,
        dir: format!("/tmp/vms/{id}").into(),
        last_error: None,
        created_at: "2026-11-22T00:00:00Z".to_owned(),
        updated_at: "2026-11-22T00:00:00Z".to_owned(),
        workspace: None,
    }
}

#[tokio::test]
async fn ping_identifies_the_build_and_socket_is_owner_only() {
    let d = TestDaemon::start_default().await;
    let (status, body) = d.call("GET", "/v1/ping", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["build"]["commit"], common::test_build().commit);
    assert_eq!(body["pid"], std::process::id());
    assert_eq!(body["mode"], "user");
    let mode = std::fs::metadata(d.socket())
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let run_mode = std::fs::metadata(&d.layout.runtime_dir)
        .expect("runtime dir")
        .permissions()
        .mode();
    assert_eq!(run_mode & 0o777, 0o700);
    d.stop().await;
}

#[tokio::test]
async fn empty_store_lists_are_empty_arrays() {
    let d = TestDaemon::start_default().await;
    for path in ["/v1/vms", "/v1/images", "/v1/kernels", "/v1/operations"] {
        let (status, body) = d.call("GET", path, None).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body, json!([]), "{path}");
    }
    d.stop().await;
}

#[tokio::test]
async fn every_documented_route_is_served_and_nothing_else() {
    let doc: Value = serde_json::from_str(include_str!("../../../docs/openapi.json"))
        .expect("openapi.json parses");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let table: BTreeSet<(String, String)> = routes::ALL
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(
        documented, table,
        "docs/openapi.json and proto routes disagree"
    );

    let d = TestDaemon::start_default().await;
    for route in routes::ALL.iter().filter(|r| **r != routes::SHUTDOWN) {
        let path = route.url(&["x"]);
        let body = (route.method == "POST").then(|| json!({"spec": spec()}));
        let (status, body) = d.call(route.method, &path, body).await;
        assert_ne!(
            body["code"], "unknown_method",
            "{} {path} fell through to the fallback ({status})",
            route.method
        );
    }
    let (status, body) = d.call("GET", "/v1/nope", None).await;
    assert_eq!(status, 404);
    assert_envelope(&body, "unknown_method");
    let (status, body) = d.call("DELETE", "/v1/ping", None).await;
    assert_eq!(status, 405);
    assert_envelope(&body, "unknown_method");
    let (status, body) = d.call("POST", routes::SHUTDOWN.path, None).await;
    assert_eq!((status, body), (202, json!({})));
    tokio::time::timeout(Duration::from_secs(10), d.task)
        .await
        .expect("shutdown over the API stops the daemon")
        .expect("no panic")
        .expect("serve ok");
    assert!(!d.layout.socket().exists(), "socket removed on shutdown");
}

#[tokio::test]
async fn create_checks_the_request_before_anything_else() {
    let d = TestDaemon::start_default().await;
    let (status, body) = d
        .call(
            "POST",
            "/v1/vms",
            Some(json!({"name": "Bad Name", "spec": spec()})),
        )
        .await;
    assert_eq!(status, 400);
    assert_envelope(&body, "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("lowercase letters"),
        "{body}"
    );

    let mut bad_spec = spec();
    bad_spec["vcpu"] = json!(0);
    let (status, body) = d
        .call(
            "POST",
            "/v1/vms",
            Some(json!({"name": "ok", "spec": bad_spec})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("vcpu"),
        "{body}"
    );

    let (status, body) = d.call_raw("POST", "/v1/vms", "{not json").await;
    assert_eq!(status, 400);
    assert_envelope(&body, "bad_request");

    // The framework's message quotes the input as typed, never lowercased.
    let (status, body) = d
        .call_raw(
            "POST",
            "/v1/vms",
            r#"{"name": "x", "spec": {"vcpu": "TwoCPUs", "memory_mib": 512, "disk_size": "8G", "nat": false}}"#,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_envelope(&body, "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("TwoCPUs"),
        "{body}"
    );

    d.seed_image();
    d.ctx
        .store()
        .vms()
        .insert(&vm("aaaa1111", "taken"))
        .expect("insert");
    let (status, body) = d
        .call(
            "POST",
            "/v1/vms",
            Some(json!({"name": "taken", "spec": spec()})),
        )
        .await;
    assert_eq!(status, 409);
    assert_envelope(&body, "already_exists");

    let (status, body) = d
        .call(
            "POST",
            "/v1/vms",
            Some(json!({"name": "fresh", "spec": spec()})),
        )
        .await;
    assert_eq!(status, 503);
    assert_envelope(&body, "host_problem");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("install"),
        "a daemon without a VMM says what to install: {body}"
    );
    assert_eq!(
        d.ctx.store().vms().list().expect("list").len(),
        1,
        "nothing written"
    );
    d.stop().await;
}

#[tokio::test]
async fn lookups_resolve_ids_names_and_prefixes() {
    let d = TestDaemon::start_default().await;
    d.seed_image();
    let store = d.ctx.store();
    store
        .vms()
        .insert(&vm("1111aaaa", "web-1"))
        .expect("insert");
    store
        .vms()
        .insert(&vm("2222bbbb", "web-2"))
        .expect("insert");

    let (status, body) = d.call("GET", "/v1/vms/web-1", None).await;
    assert_eq!((status, body["id"].clone()), (200, json!("1111aaaa")));
    let (status, body) = d.call("GET", "/v1/vms/2222", None).await;
    assert_eq!((status, body["name"].clone()), (200, json!("web-2")));
    let (status, body) = d.call("GET", "/v1/vms/web", None).await;
    assert_eq!(status, 400);
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("ambiguous") && msg.contains("web-1") && msg.contains("web-2"),
        "{msg}"
    );
    let (status, body) = d.call("GET", "/v1/vms/zzz", None).await;
    assert_eq!(status, 404);
    assert_envelope(&body, "not_found");
    let (status, body) = d.call("GET", "/v1/vms", None).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(2));
    d.stop().await;
}

/// Runs a raw HTTP request as another uid with Python's socket module and returns the
/// status line and body.
fn request_as(uid: u32, socket: &std::path::Path) -> String {
    let script = "import socket,sys\n\
s=socket.socket(socket.AF_UNIX)\n\
try:\n    s.connect(sys.argv[1])\n\
except OSError as e:\n    print('CONNECT-ERROR', e.errno); sys.exit(0)\n\
s.sendall(b'GET /v1/ping HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n')\n\
data=b''\n\
while True:\n    chunk=s.recv(65536)\n    if not chunk: break\n    data+=chunk\n\
print(data.decode())\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(socket)
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

use std::os::unix::process::CommandExt;

#[tokio::test]
#[ignore = "needs root: runs clients as other uids"]
async fn peer_credentials_are_checked_even_on_an_open_socket() {
    // Socket opened to everyone on purpose: the credential check alone must refuse strangers.
    let d = TestDaemon::start(
        SocketOptions { mode: 0o666 },
        AccessPolicy { owner_uid: 4242 },
    )
    .await;
    for dir in [d.dir.path(), d.layout.runtime_dir.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let socket = d.socket();
    let stranger = tokio::task::spawn_blocking({
        let socket = socket.clone();
        move || request_as(65534, &socket)
    })
    .await
    .expect("join");
    assert!(stranger.starts_with("HTTP/1.1 403"), "{stranger}");
    assert!(stranger.contains("\"code\":\"unauthorized\""), "{stranger}");
    assert!(stranger.contains("uid 65534"), "{stranger}");
    let owner = tokio::task::spawn_blocking(move || request_as(4242, &socket))
        .await
        .expect("join");
    assert!(owner.starts_with("HTTP/1.1 200"), "{owner}");
    d.stop().await;
}

#[tokio::test]
async fn the_catalog_lists_what_pull_takes_and_whether_it_is_here() {
    let d = TestDaemon::start_default().await;
    let (status, body) = d.call("GET", "/v1/catalog", None).await;
    assert_eq!(status, 200, "{body}");
    let image = &body["images"][0];
    assert_eq!(image["name"], "debian-bookworm", "{body}");
    assert_eq!(image["kernel"], "debian-cloud", "{body}");
    assert_eq!(image["pulled"], false, "{body}");
    assert_eq!(body["kernels"][0]["name"], "debian-cloud", "{body}");
    assert_eq!(body["kernels"][0]["pulled"], false, "{body}");
    d.stop().await;
}

#[tokio::test]
async fn an_operation_can_be_waited_on_until_it_changes() {
    let d = TestDaemon::start_default().await;
    let op = d.ctx.operations().begin("test.wait", Some("x"));
    let id = op.id().to_owned();
    // Without wait_ms: at once, still running.
    let (status, body) = d.call("GET", &format!("/v1/operations/{id}"), None).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("running")),
        "{body}"
    );
    // Unchanged: the wait runs out and the answer is the same running operation.
    let started = std::time::Instant::now();
    let (status, body) = d
        .call("GET", &format!("/v1/operations/{id}?wait_ms=300"), None)
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("running")),
        "{body}"
    );
    assert!(started.elapsed() >= Duration::from_millis(250), "it waited");
    // A change ends the wait early, with the changed operation.
    let finisher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        op.succeed();
    });
    let started = std::time::Instant::now();
    let (status, body) = d
        .call("GET", &format!("/v1/operations/{id}?wait_ms=5000"), None)
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("succeeded")),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the change ended the wait"
    );
    finisher.await.expect("finisher");
    let (status, body) = d
        .call("GET", "/v1/operations/op-nope?wait_ms=100", None)
        .await;
    assert_eq!(status, 404, "{body}");
    d.stop().await;
}
