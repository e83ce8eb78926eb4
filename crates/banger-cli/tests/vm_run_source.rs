//! What `vm run` copies, decided before anything is created: the repository at PATH (default
//! the current directory), a mise refusal for repos that want tools but get no network, and
//! one line when the current directory is not a repository. Against a fake daemon whose ssh
//! command lines run `sh` locally, so no guest is needed; the request log shows what never
//! reached the daemon.

mod support;

use std::path::Path;
use std::process::Command;

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;
use support::Request;

/// Runs git in `dir`, isolated from the user's configuration.
fn git(env: &TestEnv, dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .env("HOME", env.home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repo with one commit (`a.txt`, plus `extra` files), on branch `main`.
fn repo(env: &TestEnv, extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    git(env, dir.path(), &["init", "-q"]);
    std::fs::write(dir.path().join("a.txt"), "a\n").expect("write");
    for f in extra {
        std::fs::write(dir.path().join(f), "[tools]\n").expect("write");
    }
    git(env, dir.path(), &["add", "."]);
    git(env, dir.path(), &["commit", "-q", "-m", "init"]);
    dir
}

/// A daemon whose VM `web` comes up at once and whose ssh swallows stdin and exits 0.
fn daemon(env: &TestEnv) -> support::FakeDaemon {
    support::serve(env, |r: &Request| {
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/v1/vms") => (202, support::created("web")),
            ("POST", "/v1/vms/web/ssh") => (200, support::ssh_line("cat >/dev/null")),
            ("PUT", "/v1/vms/web/workspace") => (200, support::vm_record("web", false)),
            ("DELETE", "/v1/vms/web") => (200, support::vm_record("web", false)),
            ("GET", "/v1/vms/web/health") => (200, support::vm_health("web", false)),
            _ => (404, String::new()),
        }
    })
}

/// `banger vm run ARGS… --vcpu 1 --memory 1G` with `cwd`, git isolated.
fn vm_run(env: &TestEnv, cwd: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    env.command("banger")
        .args([
            "vm", "run", "--vcpu", "1", "--memory", "1G", "--name", "web",
        ])
        .args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .assert()
}

#[test]
fn a_mise_repo_is_refused_without_path_before_any_create() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env);
    for file in [".mise.toml", ".tool-versions"] {
        let repo = repo(&env, &[file]);
        std::fs::create_dir(repo.path().join("sub")).unwrap();
        for cwd in [repo.path().to_path_buf(), repo.path().join("sub")] {
            vm_run(&env, &cwd, &["--", "true"])
                .code(2)
                .stdout("")
                .stderr(predicate::str::contains(file))
                .stderr(predicate::str::contains("--nat"))
                .stderr(predicate::str::contains("--no-bootstrap"));
        }
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    // Opting out goes ahead: the VM is created and the repo copied.
    let repo = repo(&env, &[".mise.toml"]);
    vm_run(&env, repo.path(), &["--no-bootstrap", "--rm", "--", "true"]).success();
    assert!(fake.saw("POST", "/v1/vms"));
    assert!(fake.saw("PUT", "/v1/vms/web/workspace"));
}

#[test]
fn outside_a_repository_it_says_nothing_is_copied() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env);
    let dir = tempfile::tempdir().unwrap();
    let shown = std::fs::canonicalize(dir.path()).unwrap();
    let note = format!(
        "not a git repository: {}; nothing copied to /root/repo\n",
        shown.display()
    );
    // --dry-run: nothing would be copied, and it says so; no daemon.
    vm_run(&env, dir.path(), &["--dry-run"])
        .success()
        .stdout("")
        .stderr(note.clone());
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    vm_run(&env, dir.path(), &["--rm", "--", "true"])
        .success()
        .stderr(predicate::str::contains(note));
    assert!(fake.saw("POST", "/v1/vms"));
    assert!(!fake.saw("PUT", "/v1/vms/web/workspace"));
}

#[test]
fn an_explicit_path_outside_a_repository_is_refused() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env);
    let dir = tempfile::tempdir().unwrap();
    env.command("banger")
        .args(["vm", "run"])
        .arg(dir.path())
        .args(["--", "true"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not inside a git repository"));
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

/// The remote commands the CLI asked the daemon to build ssh lines for, as JSON text.
fn ssh_bodies(fake: &support::FakeDaemon) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/vms/web/ssh")
        .map(|r| r.body)
        .collect()
}

#[test]
fn branch_and_from_reach_the_guest_checkout() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env);
    let repo = repo(&env, &[]);
    vm_run(
        &env,
        repo.path(),
        &["--branch", "fix", "--from", "main", "--rm", "--", "true"],
    )
    .success();
    let bodies = ssh_bodies(&fake);
    let checkout = bodies
        .iter()
        .find(|b| b.contains("FETCH_HEAD"))
        .unwrap_or_else(|| panic!("no checkout step in {bodies:?}"));
    assert!(
        checkout.contains("checkout -q -f -B 'fix' FETCH_HEAD"),
        "{checkout}"
    );
    assert!(
        checkout.contains("'/tmp/banger-ws.bundle' 'main'"),
        "{checkout}"
    );
    // --from gives the guest that commit as is: no tar of the work tree on top.
    assert!(!checkout.contains("tar -x"), "{checkout}");
}

#[test]
fn branch_and_from_are_checked_before_any_create() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env);
    let repo = repo(&env, &[]);
    vm_run(&env, repo.path(), &["--from", "main", "--", "true"]).code(2);
    vm_run(
        &env,
        repo.path(),
        &["--branch", "fix", "--from", "nope", "--", "true"],
    )
    .code(2)
    .stderr(predicate::str::contains("--from nope is not a commit"));
    let dir = tempfile::tempdir().unwrap();
    vm_run(&env, dir.path(), &["--branch", "fix", "--", "true"])
        .code(2)
        .stderr(predicate::str::contains("--branch needs a git repository"));
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}
