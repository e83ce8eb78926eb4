//! The "still running" reminder: after an interactive `vm ssh` session, and after `vm run`
//! without `--rm`, one stderr line says how to stop the VM — only while the daemon says the
//! VM is up, never after `vm ssh VM -- CMD`, never when `--rm` deletes the VM. The ssh
//! command line the fake daemon hands out runs `sh` locally, so no guest is needed.

mod support;

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;
use support::Request;

const REMINDER: &str = "vm web is still running; stop it with `banger vm stop web`";

/// A daemon with one VM, `web`, whose health is `up` and whose ssh exits with `code`.
fn daemon(env: &TestEnv, up: bool, code: u8) -> support::FakeDaemon {
    support::serve(env, move |r: &Request| {
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/v1/vms") => (202, support::created("web")),
            ("GET", "/v1/vms/web/health") => (200, support::vm_health("web", up)),
            ("POST", "/v1/vms/web/ssh") => (200, support::ssh_line(&format!("exit {code}"))),
            ("DELETE", "/v1/vms/web") => (200, support::vm_record("web", false)),
            _ => (404, String::new()),
        }
    })
}

#[test]
fn an_interactive_session_ends_with_the_reminder() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env, true, 0);
    env.command("banger")
        .args(["vm", "ssh", "web"])
        .assert()
        .success()
        .stderr(format!("{REMINDER}\n"));
    assert!(fake.saw("GET", "/v1/vms/web/health"));
    // The shell's own exit code still passes through.
    let env = TestEnv::new().unwrap();
    daemon(&env, true, 3);
    env.command("banger")
        .args(["vm", "ssh", "web"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(REMINDER));
}

#[test]
fn no_reminder_for_a_remote_command_or_a_vm_that_went_down() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env, true, 0);
    env.command("banger")
        .args(["vm", "ssh", "web", "--", "true"])
        .assert()
        .success()
        .stderr("");
    assert!(!fake.saw("GET", "/v1/vms/web/health"));
    let env = TestEnv::new().unwrap();
    daemon(&env, false, 0);
    env.command("banger")
        .args(["vm", "ssh", "web"])
        .assert()
        .success()
        .stderr("");
}

#[test]
fn vm_run_reminds_unless_rm_deletes_the_vm() {
    let dir = tempfile::tempdir().unwrap();
    let env = TestEnv::new().unwrap();
    daemon(&env, true, 0);
    env.command("banger")
        .args([
            "vm", "run", "--name", "web", "--vcpu", "1", "--memory", "1G",
        ])
        .current_dir(dir.path())
        .assert()
        .success()
        .stderr(predicate::str::contains(REMINDER));

    let env = TestEnv::new().unwrap();
    let fake = daemon(&env, true, 0);
    env.command("banger")
        .args([
            "vm", "run", "--rm", "--name", "web", "--vcpu", "1", "--memory", "1G",
        ])
        .current_dir(dir.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("web deleted"))
        .stderr(predicate::str::contains("still running").not());
    assert!(fake.saw("DELETE", "/v1/vms/web"));
}
