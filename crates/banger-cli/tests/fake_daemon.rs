//! The CLI's side of the API against a scripted stand-in daemon: URLs, JSON output, error
//! rendering with operation ids, and exit codes. The real daemon has its own tests; this
//! one pins what the CLI does with each kind of answer.

mod support;

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;
use support::{Request, error};

fn serve(env: &TestEnv, script: fn(&str, &str) -> (u16, String)) -> support::FakeDaemon {
    support::serve(env, move |r: &Request| script(&r.method, &r.path))
}

fn script(method: &str, path: &str) -> (u16, String) {
    match (method, path) {
        ("GET", "/v1/vms") => (200, "[]".into()),
        ("GET", "/v1/vms/ghost") => (404, error("not_found", "no vm named \"ghost\"", "op-123")),
        ("GET", "/v1/vms/twin") => (
            400,
            error(
                "bad_request",
                "\"twin\" is ambiguous: twin-a, twin-b",
                "op-124",
            ),
        ),
        ("POST", "/v1/vms") => (
            501,
            error(
                "unavailable",
                "vm create is not available yet in this build",
                "op-125",
            ),
        ),
        ("GET", "/v1/images") => (200, "this is not json".into()),
        _ => (404, String::new()),
    }
}

#[test]
fn empty_lists_are_json_arrays_or_a_hint() {
    let env = TestEnv::new().unwrap();
    serve(&env, script);
    env.command("banger")
        .args(["vm", "ls", "--json"])
        .assert()
        .success()
        .stdout("[]\n")
        .stderr("");
    env.command("banger")
        .args(["vm", "ps"])
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::str::contains("no VMs yet"));
    // `banger ps` is `banger vm list`, flags included.
    env.command("banger")
        .args(["ps", "--json"])
        .assert()
        .success()
        .stdout("[]\n")
        .stderr("");
    env.command("banger")
        .arg("ps")
        .assert()
        .success()
        .stderr(predicate::str::contains("no VMs yet"));
    assert!(!env.layout().daemon_log().exists(), "a daemon was started");
}

#[test]
fn daemon_errors_carry_label_op_id_and_exit_code() {
    let env = TestEnv::new().unwrap();
    serve(&env, script);
    env.command("banger")
        .args(["vm", "show", "ghost"])
        .assert()
        .code(3)
        .stderr("banger: not found: no vm named \"ghost\" (op-123)\n");
    env.command("banger")
        .args(["vm", "show", "twin"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "ambiguous: twin-a, twin-b (op-124)",
        ));
}

#[test]
fn create_prints_the_spec_then_the_daemons_answer() {
    let env = TestEnv::new().unwrap();
    serve(&env, script);
    env.command("banger")
        .args([
            "vm", "create", "--name", "web", "--vcpu", "2", "--memory", "2G",
        ])
        .assert()
        .code(7)
        .stderr(predicate::str::starts_with(
            "spec: 2 vcpu | 2048 MiB | 8G disk\n\
             banger: vm create is not available yet in this build (op-125)\n",
        ));
}

#[test]
fn nat_is_sent_with_the_spec() {
    let env = TestEnv::new().unwrap();
    serve(&env, script);
    env.command("banger")
        .args([
            "vm", "create", "--name", "web", "--vcpu", "2", "--memory", "2G", "--nat",
        ])
        .assert()
        .code(7)
        .stderr(predicate::str::starts_with(
            "spec: 2 vcpu | 2048 MiB | 8G disk | nat\n",
        ))
        .stderr(predicate::str::contains("not built yet").not());
}

#[test]
fn unreadable_answers_are_a_mismatch() {
    let env = TestEnv::new().unwrap();
    serve(&env, script);
    env.command("banger")
        .args(["image", "ls"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("unexpected answer from bangerd"));
    env.command("banger")
        .args(["kernel", "ls"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("another build"));
}

/// An operation as JSON: `stages` are `(name, state, duration_ms)`.
fn operation(state: &str, stages: &[(&str, &str, Option<u64>)], took: Option<u64>) -> String {
    let stages: Vec<_> = stages
        .iter()
        .map(|(name, state, ms)| serde_json::json!({"name": name, "state": state, "duration_ms": ms}))
        .collect();
    serde_json::json!({
        "id": "op-7", "kind": "vm.create", "target": "web", "state": state,
        "stages": stages, "started_at": "2026-01-01T00:00:00Z", "duration_ms": took,
    })
    .to_string()
}

#[test]
fn create_times_stages_and_ready_in_in_one_format() {
    let env = TestEnv::new().unwrap();
    let fake = support::serve(&env, |r: &Request| {
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/v1/vms") => (
                202,
                operation("running", &[("auto-pull", "running", None)], None),
            ),
            ("GET", p) if p.starts_with("/v1/operations/op-7") => (
                200,
                operation(
                    "succeeded",
                    &[
                        ("auto-pull", "done", Some(71_200)),
                        ("network", "done", Some(4)),
                        ("wait for SSH", "done", Some(2_345)),
                    ],
                    Some(65_400),
                ),
            ),
            _ => (404, String::new()),
        }
    });
    env.command("banger")
        .args([
            "vm", "create", "--name", "web", "--vcpu", "1", "--memory", "1G",
        ])
        .assert()
        .success()
        .stdout("web\n")
        .stderr(predicate::str::contains(
            "  ✓ auto-pull 1m11s\n  ✓ network 4ms\n  ✓ wait for SSH 2.3s\n\
             ready in 1m05s; connect with `banger vm ssh web`\n",
        ));
    assert!(fake.saw("POST", "/v1/vms"));
}
