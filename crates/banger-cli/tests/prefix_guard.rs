//! Destructive commands and prefixes: `vm delete|stop|kill`, `image rm` and `kernel rm` look
//! the reference up first; a record matched only by prefix is refused off a terminal (exit 2,
//! nothing sent) unless `-f`, and the destructive request always names the record by id.
//! Tests run with stdin not a terminal, so the refusal is what they see.

mod support;

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;
use support::{Request, error};

const VM_ID: &str = "webapp-0123456789abcdef";
const IMAGE_ID: &str = "5eed5eed00000001";
const KERNEL_ID: &str = "cafe0000beef0001";

fn image() -> String {
    serde_json::json!({
        "id": IMAGE_ID, "name": "web-golden", "source": "registered", "digest": null,
        "rootfs_path": "/s/images/x/rootfs.ext4", "work_seed_path": null,
        "kernel_name": "debian-cloud", "created_at": "2026-01-02T03:04:05Z",
    })
    .to_string()
}

fn kernel() -> String {
    serde_json::json!({
        "id": KERNEL_ID, "name": "old-kernel", "version": null, "source": "registered",
        "vmlinux_path": "/s/kernels/old/vmlinux", "initrd_path": null,
        "created_at": "2026-01-02T03:04:05Z",
    })
    .to_string()
}

/// One VM `webapp`, one image `web-golden`, one kernel `old-kernel`; the daemon resolves
/// exact names, ids and the prefixes the tests use.
fn daemon(env: &TestEnv) -> support::FakeDaemon {
    support::serve(env, |r: &Request| {
        let vm = || (200, support::vm_record("webapp", false));
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/v1/vms/w" | "/v1/vms/webapp" | "/v1/vms/webapp-0123456789abcdef") => vm(),
            ("GET", "/v1/vms/ghost") => (404, error("not_found", "no vm named \"ghost\"", "op-1")),
            ("DELETE", p) if p == format!("/v1/vms/{VM_ID}") => vm(),
            ("POST", p) if p == format!("/v1/vms/{VM_ID}/stop") => vm(),
            ("POST", p) if p == format!("/v1/vms/{VM_ID}/kill") => vm(),
            ("GET", "/v1/images/web-g" | "/v1/images/web-golden") => (200, image()),
            ("DELETE", p) if p == format!("/v1/images/{IMAGE_ID}") => (200, image()),
            ("GET", "/v1/kernels/old" | "/v1/kernels/old-kernel") => (200, kernel()),
            ("DELETE", p) if p == format!("/v1/kernels/{KERNEL_ID}") => (200, kernel()),
            _ => (404, error("not_found", "unexpected request", "op-9")),
        }
    })
}

fn destructive(fake: &support::FakeDaemon) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn a_prefix_is_refused_off_a_terminal_and_nothing_is_touched() {
    for verb in ["delete", "rm", "stop", "kill"] {
        let env = TestEnv::new().unwrap();
        let fake = daemon(&env);
        env.command("banger")
            .args(["vm", verb, "w"])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(
                "\"w\" matches vm webapp (id webapp-0) only by prefix",
            ))
            .stderr(predicate::str::contains("use the full name, or -f"));
        assert_eq!(destructive(&fake), Vec::<String>::new(), "vm {verb}");
    }
}

#[test]
fn one_prefix_among_several_refuses_them_all() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env);
    env.command("banger")
        .args(["vm", "delete", "webapp", "w"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("only by prefix"));
    assert_eq!(destructive(&fake), Vec::<String>::new());
}

#[test]
fn force_acts_on_the_prefix_match_by_id() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env);
    env.command("banger")
        .args(["vm", "delete", "-f", "w"])
        .assert()
        .success()
        .stderr("webapp deleted\n");
    env.command("banger")
        .args(["vm", "stop", "--force", "w"])
        .assert()
        .success()
        .stderr("webapp stopped\n");
    env.command("banger")
        .args(["vm", "kill", "w", "-f"])
        .assert()
        .success()
        .stderr("webapp killed\n");
    assert_eq!(
        destructive(&fake),
        [
            format!("DELETE /v1/vms/{VM_ID}"),
            format!("POST /v1/vms/{VM_ID}/stop"),
            format!("POST /v1/vms/{VM_ID}/kill"),
        ]
    );
}

#[test]
fn exact_names_and_ids_need_no_force() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env);
    env.command("banger")
        .args(["vm", "rm", "webapp"])
        .assert()
        .success()
        .stderr("webapp deleted\n");
    env.command("banger")
        .args(["vm", "stop", VM_ID])
        .assert()
        .success()
        .stderr("webapp stopped\n");
    assert_eq!(
        destructive(&fake),
        [
            format!("DELETE /v1/vms/{VM_ID}"),
            format!("POST /v1/vms/{VM_ID}/stop"),
        ]
    );
}

#[test]
fn a_missing_vm_fails_on_its_own_and_the_others_go_ahead() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env);
    env.command("banger")
        .args(["vm", "delete", "ghost", "webapp"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("no vm named \"ghost\""))
        .stderr(predicate::str::contains("webapp deleted"));
    assert_eq!(destructive(&fake), [format!("DELETE /v1/vms/{VM_ID}")]);
}

#[test]
fn images_and_kernels_follow_the_same_rule() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env);
    env.command("banger")
        .args(["image", "rm", "web-g"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "\"web-g\" matches image web-golden (id {}) only by prefix",
            &IMAGE_ID[..8]
        )));
    env.command("banger")
        .args(["kernel", "rm", "old"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "\"old\" matches kernel old-kernel (id cafe0000) only by prefix",
        ));
    assert_eq!(destructive(&fake), Vec::<String>::new());
    env.command("banger")
        .args(["image", "rm", "-f", "web-g"])
        .assert()
        .success()
        .stderr("deleted image web-golden\n");
    env.command("banger")
        .args(["kernel", "delete", "old-kernel"])
        .assert()
        .success()
        .stderr("deleted kernel old-kernel\n");
    assert_eq!(
        destructive(&fake),
        [
            format!("DELETE /v1/images/{IMAGE_ID}"),
            format!("DELETE /v1/kernels/{KERNEL_ID}"),
        ]
    );
}

#[test]
fn force_exists_only_where_it_does_something() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env);
    for args in [
        ["vm", "start", "-f", "w"],
        ["vm", "restart", "-f", "w"],
        ["kernel", "pull", "-f", "x"],
    ] {
        env.command("banger")
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("unexpected argument '-f'"));
    }
    assert!(fake.requests().is_empty());
}
