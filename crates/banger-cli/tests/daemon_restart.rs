//! The CLI across a daemon crash while it follows `vm create`: it reconnects (starting a
//! daemon the usual way), keeps following when the daemon still knows the operation, and
//! otherwise reports the VM's real state; when no daemon answers again it says the VM may
//! exist and how to check.
//!
//! A "crash" is the fake hanging up on a poll; when the test needs the daemon gone it also
//! takes the fake off its socket. Tests that need a daemon started copy `banger` into a temp
//! dir next to a stand-in `bangerd` script, as `daemon_start.rs` does.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use banger_model::VmState;
use banger_testkit::{TestEnv, bin_path};
use predicates::prelude::*;
use support::{HANG_UP, Request, error};

const CREATE: [&str; 8] = [
    "vm", "create", "--name", "web", "--vcpu", "1", "--memory", "1G",
];

/// The create operation `op-7` of `web`, in `state`.
fn operation(state: &str) -> String {
    let stage = if state == "running" {
        "running"
    } else {
        "done"
    };
    serde_json::json!({
        "id": "op-7", "kind": "vm.create", "target": "web", "state": state,
        "stages": [{"name": "boot", "state": stage, "duration_ms": null}],
        "started_at": "2026-01-01T00:00:00Z", "duration_ms": null,
    })
    .to_string()
}

/// A daemon that accepts the create, answers one poll, then crashes on the next one (taking
/// itself off the socket when `vanish`); later polls get `after`, and `GET /v1/vms/web` gets
/// `vm`.
fn crashing(
    env: &TestEnv,
    vanish: bool,
    after: (u16, String),
    vm: (u16, String),
) -> support::FakeDaemon {
    let polls = Arc::new(AtomicUsize::new(0));
    let socket = env.layout().socket();
    support::serve(env, move |r: &Request| {
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/v1/vms") => (202, operation("running")),
            ("GET", p) if p.starts_with("/v1/operations/op-7") => {
                match polls.fetch_add(1, Ordering::SeqCst) {
                    0 => (200, operation("running")),
                    1 => {
                        if vanish {
                            let _ = std::fs::remove_file(&socket);
                        }
                        (HANG_UP, String::new())
                    }
                    _ => after.clone(),
                }
            }
            ("GET", "/v1/vms/web") => vm.clone(),
            _ => (404, error("not_found", "unexpected request", "op-9")),
        }
    })
}

fn unknown_operation() -> (u16, String) {
    (404, error("not_found", "no operation \"op-7\"", "op-2"))
}

#[test]
fn a_lost_connection_is_followed_again_when_the_daemon_knows_the_operation() {
    let env = TestEnv::new().unwrap();
    let fake = crashing(
        &env,
        false,
        (200, operation("succeeded")),
        (500, String::new()),
    );
    env.command("banger")
        .args(CREATE)
        .assert()
        .success()
        .stdout("web\n")
        .stderr(predicate::str::contains(
            "lost bangerd during the create of web (the connection to bangerd broke",
        ))
        .stderr(predicate::str::contains("reconnecting"))
        .stderr(predicate::str::contains("ready in"));
    assert!(!fake.saw("GET", "/v1/vms/web"));
}

#[test]
fn a_vm_left_in_error_is_reported_with_what_to_do() {
    let env = TestEnv::new().unwrap();
    let vm = support::vm_record_in("web", VmState::Error, Some("create was interrupted"));
    crashing(&env, false, unknown_operation(), (200, vm));
    env.command("banger")
        .args(CREATE)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "the daemon restarted during the create of web, and web is now error \
             (create was interrupted)",
        ))
        .stderr(predicate::str::contains("`banger vm logs web`"))
        .stderr(predicate::str::contains("`banger vm delete web`"));
}

#[test]
fn a_vm_that_is_gone_means_the_create_did_not_complete() {
    let env = TestEnv::new().unwrap();
    let missing = (404, error("not_found", "no vm named \"web\"", "op-3"));
    crashing(&env, false, unknown_operation(), missing);
    env.command("banger")
        .args(CREATE)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "web does not exist: the create did not complete",
        ));
}

/// `banger` copied into `dir` beside a stand-in `bangerd` running `body`.
fn banger_with_daemon(dir: &Path, body: &str) -> PathBuf {
    let banger = dir.join("banger");
    std::fs::copy(bin_path("banger"), &banger).expect("copy banger");
    let daemon = dir.join("bangerd");
    std::fs::write(&daemon, format!("#!/bin/sh\n{body}\n")).expect("write bangerd");
    std::fs::set_permissions(&daemon, std::fs::Permissions::from_mode(0o755))
        .expect("make bangerd executable");
    banger
}

/// Starts `cmd`, retrying while the freshly copied executable is still open for writing in a
/// process forked by a concurrent test (`ETXTBSY`).
fn spawn(cmd: &mut Command) -> std::process::Child {
    for _ in 0..50 {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.expect("start banger"),
        }
    }
    panic!("{cmd:?} stayed busy")
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_restarted_daemon_that_adopted_the_vm_is_a_success() {
    let env = TestEnv::new().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let pid_file = bin.path().join("bangerd.pid");
    // The stand-in daemon records that it was started, then waits to be killed.
    let banger = banger_with_daemon(
        bin.path(),
        &format!("echo $$ > '{}'\nexec sleep 30", pid_file.display()),
    );
    let old = crashing(&env, true, unknown_operation(), (500, String::new()));
    let mut cmd = Command::new(banger);
    env.apply(&mut cmd)
        .args(CREATE)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn(&mut cmd);
    // The CLI found the socket gone and started a daemon: the new one comes up now.
    let started = wait_for(&pid_file, Duration::from_secs(15));
    let new = started.then(|| {
        support::serve(&env, |r: &Request| {
            match (r.method.as_str(), r.path.as_str()) {
                ("GET", p) if p.starts_with("/v1/operations/op-7") => unknown_operation(),
                ("GET", "/v1/vms/web") => (200, support::vm_record("web", false)),
                _ => (404, error("not_found", "unexpected request", "op-9")),
            }
        })
    });
    let out = child.wait_with_output().expect("wait for banger");
    if let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(started, "no daemon was started; stderr: {stderr}");
    out.assert()
        .success()
        .stdout("web\n")
        .stderr(predicate::str::contains(
            "web is running (the daemon restarted during the create; it adopted the VM)",
        ));
    assert!(old.saw("POST", "/v1/vms"));
    let new = new.expect("the new daemon");
    assert!(
        new.saw("GET", "/v1/operations/op-7"),
        "{:?}",
        new.requests()
    );
    assert!(new.saw("GET", "/v1/vms/web"), "{:?}", new.requests());
}

#[test]
fn a_daemon_that_stays_away_leaves_a_way_to_check() {
    let env = TestEnv::new().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let banger = banger_with_daemon(bin.path(), "echo 'cannot start: store on fire' >&2\nexit 1");
    let fake = crashing(&env, true, unknown_operation(), (500, String::new()));
    let mut cmd = Command::new(banger);
    env.apply(&mut cmd)
        .args(CREATE)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let out = spawn(&mut cmd).wait_with_output().expect("wait for banger");
    out.assert()
        .code(8)
        .stdout("")
        .stderr(predicate::str::contains(
            "bangerd went away during the create of web and could not be reached again",
        ))
        .stderr(predicate::str::contains("store on fire"))
        .stderr(predicate::str::contains(
            "\nweb may exist and run all the same: check with `banger vm show web`",
        ));
    // Bounded: a few tries over about 20 s, not forever.
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    assert!(fake.saw("POST", "/v1/vms"));
}
