//! `PUT`/`DELETE /v1/vms/{vm}/workspace` over the real socket, in-process, with a real store.

mod common;

use serde_json::{Value, json};

use banger_model::{Size, VmName, VmRecord, VmSpec, VmState};
use common::TestDaemon;

const HEAD: &str = "0123456789abcdef0123456789abcdef01234567";

fn seed_vm(d: &TestDaemon, id: &str, name: &str) -> VmRecord {
    d.seed_image();
    let vm = VmRecord {
        id: id.to_owned(),
        name: VmName::parse(name).expect("name"),
        image_id: "img".to_owned(),
        spec: VmSpec {
            vcpu: 1,
            memory_mib: 512,
            disk_size: Size::from_gib(1),
            nat: false,
        },
        state: VmState::Stopped,
        guest_ip: Some("172.30.0.9".to_owned()),
        tap_name: None,
        dir: d.layout.vms_dir().join(id),
        last_error: None,
        created_at: "2026-11-22T00:00:00Z".to_owned(),
        updated_at: "2026-11-22T00:00:00Z".to_owned(),
        workspace: None,
    };
    d.ctx.store().vms().insert(&vm).expect("insert vm");
    vm
}

fn workspace(guest: &str, host: &str, head: &str) -> Value {
    json!({
        "guest_path": guest,
        "host_path": host,
        "head": head,
        "prepared_at": "2026-11-22T01:02:03Z",
    })
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_workspace_is_set_shown_and_cleared() {
    let d = TestDaemon::start_default().await;
    seed_vm(&d, "0a1b2c3d4e5f", "web");

    // A VM without a workspace has no `workspace` key at all.
    let (status, body) = d.call("GET", "/v1/vms/web", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("workspace").is_none(), "{body}");

    let ws = workspace("/root/repo", "/home/me/src/repo", HEAD);
    let (status, body) = d
        .call("PUT", "/v1/vms/web/workspace", Some(ws.clone()))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workspace"], ws, "{body}");
    assert_ne!(body["updated_at"], "2026-11-22T00:00:00Z", "{body}");

    let (status, body) = d.call("GET", "/v1/vms/0a1b", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workspace"], ws, "{body}");
    let (_, list) = d.call("GET", "/v1/vms", None).await;
    assert_eq!(list[0]["workspace"], ws, "{list}");
    let stored = d
        .ctx
        .store()
        .vms()
        .get("0a1b2c3d4e5f")
        .unwrap()
        .unwrap()
        .workspace
        .expect("stored");
    assert_eq!(stored.head, HEAD);
    assert_eq!(stored.guest_path.to_str(), Some("/root/repo"));

    // Upper-case hex is accepted and stored lower-case.
    let upper = workspace(
        "/root/repo",
        "/home/me/src/repo",
        &HEAD.to_ascii_uppercase(),
    );
    let (status, body) = d.call("PUT", "/v1/vms/web/workspace", Some(upper)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workspace"]["head"], HEAD, "{body}");

    let (status, body) = d.call("DELETE", "/v1/vms/web/workspace", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("workspace").is_none(), "{body}");
    let (_, body) = d.call("GET", "/v1/vms/web", None).await;
    assert!(body.get("workspace").is_none(), "{body}");
    // Clearing twice is fine.
    let (status, body) = d.call("DELETE", "/v1/vms/web/workspace", None).await;
    assert_eq!(status, 200, "{body}");
    d.stop().await;
}

#[tokio::test]
async fn bad_workspaces_are_refused_and_change_nothing() {
    let d = TestDaemon::start_default().await;
    seed_vm(&d, "0a1b2c3d4e5f", "web");
    let bad_head = HEAD.replace('0', "z");
    let cases = [
        (workspace("repo", "/home/me/repo", HEAD), "guest_path"),
        (workspace("/srv/repo", "/home/me/repo", HEAD), "under /root"),
        (workspace("/root", "/home/me/repo", HEAD), "guest_path"),
        (
            workspace("/root/../etc", "/home/me/repo", HEAD),
            "guest_path",
        ),
        (workspace("/root/repo", "me/repo", HEAD), "host_path"),
        (workspace("/root/repo", "/home/me/repo", "abc123"), "40 hex"),
        (
            workspace("/root/repo", "/home/me/repo", &bad_head),
            "40 hex",
        ),
    ];
    for (body, needle) in cases {
        let (status, reply) = d.call("PUT", "/v1/vms/web/workspace", Some(body)).await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["code"], "bad_request", "{reply}");
        assert!(message(&reply).contains(needle), "{reply}");
    }
    // A body that is not a workspace at all.
    let (status, reply) = d
        .call(
            "PUT",
            "/v1/vms/web/workspace",
            Some(json!({"guest_path": "/root/x"})),
        )
        .await;
    assert!(matches!(status, 400 | 422), "{reply}");
    assert_eq!(reply["code"], "bad_request", "{reply}");
    assert!(
        d.ctx
            .store()
            .vms()
            .get("0a1b2c3d4e5f")
            .unwrap()
            .unwrap()
            .workspace
            .is_none()
    );

    // An unknown VM.
    let ws = workspace("/root/repo", "/home/me/repo", HEAD);
    let (status, reply) = d.call("PUT", "/v1/vms/nope/workspace", Some(ws)).await;
    assert_eq!(status, 404, "{reply}");
    let (status, reply) = d.call("DELETE", "/v1/vms/nope/workspace", None).await;
    assert_eq!(status, 404, "{reply}");
    d.stop().await;
}
