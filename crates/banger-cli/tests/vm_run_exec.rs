//! `vm run`, `vm exec` and `vm workspace export` refuse bad arguments before any daemon is
//! started or any file is written: right exit code, a message in banger's voice.

use std::path::Path;
use std::process::Command;

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;

fn assert_untouched(env: &TestEnv) {
    let layout = env.layout();
    assert!(!layout.state_dir.exists(), "state dir was created");
    assert!(!layout.runtime_dir.exists(), "runtime dir was created");
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn vm_exec_needs_a_valid_vm_and_a_command() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .args(["vm", "exec", "web"])
        .assert()
        .code(2)
        .stdout("");
    env.command("banger")
        .args(["vm", "exec", "a b", "--", "true"])
        .assert()
        .code(2)
        .stdout("");
    env.command("banger")
        .args([
            "vm",
            "exec",
            "web",
            "--auto-prepare",
            "--bogus",
            "--",
            "true",
        ])
        .assert()
        .code(2);
    assert_untouched(&env);
}

#[test]
fn workspace_export_needs_a_valid_vm() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .args(["vm", "workspace", "export", "a b", "-o", "x.patch"])
        .assert()
        .code(2)
        .stdout("");
    env.command("banger")
        .args(["vm", "workspace", "export"])
        .assert()
        .code(2);
    assert_untouched(&env);
    assert!(!Path::new("x.patch").exists());
}

#[test]
fn vm_run_refuses_bad_paths_and_repos_before_creating_anything() {
    let env = TestEnv::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    env.command("banger")
        .arg("vm")
        .arg("run")
        .arg(dir.path().join("missing"))
        .args(["--", "true"])
        .assert()
        .code(2)
        .stdout("");
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    env.command("banger")
        .arg("vm")
        .arg("run")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a directory"));
    // A repository without commits has nothing to copy: refused before the daemon.
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    env.command("banger")
        .arg("vm")
        .arg("run")
        .arg(&repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no commits yet"));
    assert_untouched(&env);
}
