//! Health, stats, ports, set and prune over the real socket, in-process, on a temp layout.
//!
//! The test daemon has no VMM, so these cover everything that can be decided without a guest:
//! request checks, stopped VMs, disk growth on a real ext4 file, and prune and delete working
//! on a host without a VMM. Running guests are covered by `tests/e2e/tests/inspect.rs`.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use banger_model::{Size, VmName, VmRecord, VmSpec, VmState};
use common::TestDaemon;

fn insert_vm(d: &TestDaemon, id: &str, name: &str, state: VmState, disk: Size) -> VmRecord {
    let vm = VmRecord {
        id: id.to_owned(),
        name: VmName::parse(name).expect("name"),
        image_id: "img".to_owned(),
        spec: VmSpec {
            vcpu: 1,
            memory_mib: 512,
            disk_size: disk,
            nat: false,
        },
        state,
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

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

fn mkfs(path: &Path, size: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("vm dir");
    let out = Command::new("mkfs.ext4")
        .args(["-F", "-q"])
        .arg(path)
        .arg(size)
        .output()
        .expect("mkfs.ext4 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_stopped_vm_is_unhealthy_has_disk_stats_and_no_ports() {
    let d = TestDaemon::start_default().await;
    d.seed_image();
    let vm = insert_vm(&d, "aaaa0001", "web", VmState::Stopped, Size::from_mib(256));
    mkfs(&vm.dir.join("work.ext4"), "256M");

    let (status, body) = d.call("GET", "/v1/vms/web/health", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["vm"], "web");
    assert_eq!(body["state"], "stopped");
    assert_eq!(body["vmm_alive"], false);
    for check in ["agent", "ssh"] {
        assert_eq!(body[check]["ok"], false, "{body}");
        assert!(
            body[check]["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("stopped"),
            "{body}"
        );
    }

    let (status, body) = d.call("GET", "/v1/vms/aaaa/stats", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["vm"], "web");
    assert_eq!(body["vcpu"], 1);
    assert_eq!(body["memory_mib"], 512);
    assert_eq!(body["process"], Value::Null);
    let disks = body["disks"].as_array().expect("disks");
    assert_eq!(disks.len(), 1, "only the work disk exists: {body}");
    assert_eq!(disks[0]["name"], "work");
    assert_eq!(disks[0]["apparent_bytes"], 256u64 << 20);
    let allocated = disks[0]["allocated_bytes"].as_u64().expect("allocated");
    assert!(
        allocated > 0 && allocated < 256 << 20,
        "ext4 images are sparse: {allocated}"
    );

    let (status, body) = d.call("GET", "/v1/vms/web/ports", None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "bad_request");
    assert!(message(&body).contains("banger vm start web"), "{body}");

    for path in [
        "/v1/vms/nope/health",
        "/v1/vms/nope/stats",
        "/v1/vms/nope/ports",
    ] {
        let (status, body) = d.call("GET", path, None).await;
        assert_eq!((status, body["code"].clone()), (404, json!("not_found")));
    }
    d.stop().await;
}

#[tokio::test]
async fn set_checks_the_request_and_the_state_first() {
    let d = TestDaemon::start_default().await;
    d.seed_image();
    insert_vm(&d, "aaaa0001", "web", VmState::Running, Size::from_mib(256));
    insert_vm(&d, "bbbb0002", "db", VmState::Stopped, Size::from_gib(8));

    let (status, body) = d
        .call("PATCH", "/v1/vms/web", Some(json!({"vcpu": 2})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("banger vm stop web"), "{body}");

    let cases = [
        (json!({}), "nothing to change"),
        (json!({"vcpu": 0}), "vcpu"),
        (json!({"vcpu": 99}), "vcpu"),
        (json!({"memory_mib": 64}), "memory"),
        (json!({"disk_size": "4G"}), "disks only grow"),
    ];
    for (request, needle) in cases {
        let (status, body) = d.call("PATCH", "/v1/vms/db", Some(request.clone())).await;
        assert_eq!(status, 400, "{request}: {body}");
        assert_eq!(body["code"], "bad_request");
        assert!(message(&body).contains(needle), "{request}: {body}");
    }
    let (status, body) = d.call_raw("PATCH", "/v1/vms/db", "{nope").await;
    assert_eq!((status, body["code"].clone()), (400, json!("bad_request")));
    let (status, _) = d
        .call("PATCH", "/v1/vms/nope", Some(json!({"vcpu": 2})))
        .await;
    assert_eq!(status, 404);

    let db = d
        .ctx
        .store()
        .vms()
        .get("bbbb0002")
        .expect("get")
        .expect("db");
    assert_eq!(db.spec.vcpu, 1, "refusals changed nothing");
    assert_eq!(db.updated_at, "2026-11-22T00:00:00Z");
    d.stop().await;
}

#[tokio::test]
async fn set_grows_the_work_disk_and_updates_the_record() {
    let d = TestDaemon::start_default().await;
    d.seed_image();
    let vm = insert_vm(&d, "aaaa0001", "web", VmState::Stopped, Size::from_mib(256));
    let work = vm.dir.join("work.ext4");
    mkfs(&work, "256M");

    let (status, body) = d
        .call(
            "PATCH",
            "/v1/vms/web",
            Some(json!({"vcpu": 2, "memory_mib": 1024, "disk_size": "512M", "nat": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["spec"],
        json!({"vcpu": 2, "memory_mib": 1024, "disk_size": "512M", "nat": true})
    );
    assert_ne!(body["updated_at"], "2026-11-22T00:00:00Z");
    let stored = d
        .ctx
        .store()
        .vms()
        .get("aaaa0001")
        .expect("get")
        .expect("vm");
    assert_eq!(stored.spec.disk_size, Size::from_mib(512));
    assert_eq!(stored.spec.vcpu, 2);
    assert!(stored.spec.nat);
    assert_eq!(std::fs::metadata(&work).expect("work").len(), 512 << 20);
    let out = Command::new("dumpe2fs")
        .arg("-h")
        .arg(&work)
        .output()
        .expect("dumpe2fs");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(
        field("Block count:") * field("Block size:"),
        512 << 20,
        "the file system fills the grown file"
    );

    // The same values again change nothing, not even the timestamp.
    let before = stored.updated_at.clone();
    let (status, body) = d
        .call("PATCH", "/v1/vms/web", Some(json!({"disk_size": "512M"})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["updated_at"], json!(before));

    // A VM whose disks are gone cannot grow; its record stays as it was.
    let broken = insert_vm(
        &d,
        "cccc0003",
        "broken",
        VmState::Error,
        Size::from_mib(256),
    );
    let (status, body) = d
        .call("PATCH", "/v1/vms/broken", Some(json!({"disk_size": "1G"})))
        .await;
    assert_eq!(status, 500, "{body}");
    assert!(
        message(&body).contains("cannot grow the disk of broken"),
        "{body}"
    );
    let stored = d
        .ctx
        .store()
        .vms()
        .get(&broken.id)
        .expect("get")
        .expect("vm");
    assert_eq!(stored.spec.disk_size, Size::from_mib(256));
    d.stop().await;
}

#[tokio::test]
async fn prune_without_candidates_is_empty_and_works_without_a_vmm() {
    let d = TestDaemon::start_default().await;
    let (status, body) = d.call("POST", "/v1/vms/prune", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"deleted": [], "failed": []}));

    d.seed_image();
    insert_vm(&d, "aaaa0001", "web", VmState::Running, Size::from_gib(8));
    let (status, body) = d.call("POST", "/v1/vms/prune", Some(json!({}))).await;
    assert_eq!(status, 200, "a running VM is never a candidate: {body}");
    assert_eq!(body["deleted"], json!([]));

    insert_vm(&d, "bbbb0002", "old", VmState::Stopped, Size::from_gib(8));
    let (status, body) = d
        .call("POST", "/v1/vms/prune", Some(json!({"ids": ["nope"]})))
        .await;
    assert_eq!(status, 200, "only the listed ids: {body}");
    assert_eq!(body["deleted"], json!([]));
    let (status, body) = d.call("POST", "/v1/vms/prune", Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["deleted"],
        json!(["old"]),
        "prune needs no VMM: {body}"
    );
    let left: Vec<_> = d
        .ctx
        .store()
        .vms()
        .list()
        .expect("list")
        .into_iter()
        .map(|v| v.name.to_string())
        .collect();
    assert_eq!(left, ["web"]);
    let (status, body) = d.call_raw("POST", "/v1/vms/prune", "{nope").await;
    assert_eq!((status, body["code"].clone()), (400, json!("bad_request")));
    d.stop().await;
}

#[tokio::test]
async fn a_vm_named_prune_is_still_reachable() {
    let d = TestDaemon::start_default().await;
    d.seed_image();
    insert_vm(&d, "dddd0004", "prune", VmState::Stopped, Size::from_gib(8));
    let (status, body) = d.call("GET", "/v1/vms/prune", None).await;
    assert_eq!((status, body["id"].clone()), (200, json!("dddd0004")));
    let (status, body) = d.call("GET", "/v1/vms/prune/logs", None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = d.call("GET", "/v1/vms/prune/health", None).await;
    assert_eq!((status, body["vm"].clone()), (200, json!("prune")));
    let (status, body) = d
        .call("PATCH", "/v1/vms/prune", Some(json!({"vcpu": 0})))
        .await;
    assert_eq!(
        status, 400,
        "set reaches the vm and checks the spec: {body}"
    );
    assert!(message(&body).contains("vcpu"), "{body}");
    let (status, body) = d.call("DELETE", "/v1/vms/prune", None).await;
    assert_eq!(
        (status, body["name"].clone()),
        (200, json!("prune")),
        "delete reaches the vm, with no VMM on the host: {body}"
    );
    let (status, body) = d.call("PUT", "/v1/vms/prune", None).await;
    assert_eq!(
        (status, body["code"].clone()),
        (404, json!("unknown_method"))
    );
    d.stop().await;
}

#[tokio::test]
async fn ssh_lines_share_a_connection_only_when_asked() {
    let d = TestDaemon::start_default().await;
    d.seed_image();
    insert_vm(&d, "aaaa0001", "web", VmState::Running, Size::from_mib(256));
    insert_vm(&d, "bbbb0002", "db", VmState::Stopped, Size::from_gib(8));
    let args = |body: &Value| -> Vec<String> {
        body["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("string").to_owned())
            .collect()
    };

    let (status, own) = d
        .call("POST", "/v1/vms/web/ssh", Some(json!({"remote": ["true"]})))
        .await;
    assert_eq!(status, 200, "{own}");
    assert!(
        !args(&own).iter().any(|a| a.starts_with("Control")),
        "{own}"
    );

    let request = json!({"remote": ["true"], "control_path": "/run/user/1000/banger-ssh-x/c"});
    let (status, shared) = d.call("POST", "/v1/vms/web/ssh", Some(request)).await;
    assert_eq!(status, 200, "{shared}");
    let shared = args(&shared);
    let host = shared
        .iter()
        .position(|a| a == "root@172.30.0.9")
        .expect("destination");
    for option in [
        "ControlMaster=auto",
        "ControlPath=\"/run/user/1000/banger-ssh-x/c\"",
        "ControlPersist=30",
    ] {
        let at = shared.iter().position(|a| a == option);
        assert!(
            at.is_some_and(|i| i < host),
            "{option} before the host: {shared:?}"
        );
    }

    let (status, body) = d
        .call(
            "POST",
            "/v1/vms/web/ssh",
            Some(json!({"remote": ["true"], "control_path": "relative/c"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("absolute"), "{body}");
    let (status, body) = d
        .call("POST", "/v1/vms/db/ssh", Some(json!({"remote": ["true"]})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("banger vm start db"), "{body}");
    d.stop().await;
}
