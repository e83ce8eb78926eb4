//! `vm workspace prepare --dry-run`: what would be copied, decided by the host's git alone —
//! no daemon, no VM, nothing written to banger's state.
//!
//! Every git runs isolated from the user's configuration (`HOME` in the test root,
//! `GIT_CONFIG_NOSYSTEM=1`). Exit codes: not a repository, no commits and refused submodules
//! are usage errors (2); a git that cannot run is a failure (1).

use std::path::Path;
use std::process::Command;

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;

/// Runs git in `dir` with the test's isolated environment and a fixed identity.
fn git(env: &TestEnv, dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .env("HOME", env.home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("git runs");
    assert!(
        status.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// A repo with one commit: `tracked.txt` and `.gitignore` tracked, `untracked.txt`
/// untracked, `ignored.log` ignored, and a tracked file in `sub/`.
fn scratch_repo(env: &TestEnv) -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("temp dir");
    let p = repo.path();
    git(env, p, &["init", "-q"]);
    std::fs::create_dir(p.join("sub")).expect("write scratch repo");
    std::fs::write(p.join("tracked.txt"), "t\n").expect("write scratch repo");
    std::fs::write(p.join("sub/inner.txt"), "i\n").expect("write scratch repo");
    std::fs::write(p.join(".gitignore"), "*.log\n").expect("write scratch repo");
    git(env, p, &["add", "."]);
    git(env, p, &["commit", "-q", "-m", "init"]);
    std::fs::write(p.join("untracked.txt"), "u\n").expect("write scratch repo");
    std::fs::write(p.join("ignored.log"), "i\n").expect("write scratch repo");
    repo
}

/// `banger vm workspace prepare web PATH --dry-run ARGS…` in the isolated environment.
fn dry_run(env: &TestEnv, path: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    env.command("banger")
        .args(["vm", "workspace", "prepare", "web"])
        .arg(path)
        .arg("--dry-run")
        .args(extra)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .assert()
}

fn assert_untouched(env: &TestEnv) {
    let layout = env.layout();
    assert!(!layout.state_dir.exists(), "state dir was created");
    assert!(!layout.runtime_dir.exists(), "runtime dir was created");
}

#[test]
fn lists_tracked_files_only_and_counts_untracked() {
    let env = TestEnv::new().unwrap();
    let repo = scratch_repo(&env);
    dry_run(&env, repo.path(), &[])
        .success()
        .stdout(".gitignore\nsub/inner.txt\ntracked.txt\n")
        .stderr(predicate::str::contains("3 files from "))
        .stderr(predicate::str::contains(
            "; 1 untracked file skipped (use --include-untracked)",
        ));
    assert_untouched(&env);
}

#[test]
fn include_untracked_adds_untracked_but_never_ignored() {
    let env = TestEnv::new().unwrap();
    let repo = scratch_repo(&env);
    dry_run(&env, repo.path(), &["--include-untracked"])
        .success()
        .stdout(".gitignore\nsub/inner.txt\ntracked.txt\nuntracked.txt\n")
        .stderr(predicate::str::contains("4 files from "))
        .stderr(predicate::str::contains("skipped").not());
    assert_untouched(&env);
}

#[test]
fn a_subdirectory_resolves_to_the_repo_root() {
    let env = TestEnv::new().unwrap();
    let repo = scratch_repo(&env);
    let root = std::fs::canonicalize(repo.path()).unwrap();
    dry_run(&env, &repo.path().join("sub"), &[])
        .success()
        .stdout(".gitignore\nsub/inner.txt\ntracked.txt\n")
        .stderr(predicate::str::contains(format!(
            "3 files from {} at ",
            root.display()
        )))
        // Untracked files elsewhere in the repo are counted from a subdirectory too.
        .stderr(predicate::str::contains("1 untracked file skipped"));
}

#[test]
fn deleted_files_are_skipped_and_odd_names_and_symlinks_kept() {
    let env = TestEnv::new().unwrap();
    let repo = scratch_repo(&env);
    let p = repo.path();
    std::fs::write(p.join("two\nlines"), "x").unwrap();
    std::os::unix::fs::symlink("tracked.txt", p.join("link")).unwrap();
    git(&env, p, &["add", "two\nlines", "link"]);
    git(&env, p, &["commit", "-q", "-m", "more"]);
    std::fs::remove_file(p.join("sub/inner.txt")).unwrap();
    dry_run(&env, p, &[])
        .success()
        .stdout(".gitignore\nlink\ntracked.txt\ntwo\nlines\n");
}

#[test]
fn submodules_are_refused_unless_full_copy() {
    let env = TestEnv::new().unwrap();
    let inner = scratch_repo(&env);
    let repo = scratch_repo(&env);
    git(
        &env,
        repo.path(),
        &[
            "submodule",
            "add",
            "-q",
            inner.path().to_str().unwrap(),
            "vendored",
        ],
    );
    git(&env, repo.path(), &["commit", "-q", "-m", "submodule"]);
    dry_run(&env, repo.path(), &[])
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("submodules (vendored)"))
        .stderr(predicate::str::contains("--mode full_copy"));
    dry_run(&env, repo.path(), &["--mode", "full_copy"])
        .success()
        .stdout(predicate::str::contains("vendored/tracked.txt\n"))
        .stdout(predicate::str::contains(".gitmodules\n"));
    assert_untouched(&env);
}

#[test]
fn not_a_repository_is_a_usage_error_naming_the_path() {
    let env = TestEnv::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    dry_run(&env, dir.path(), &[])
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "{} is not inside a git repository",
            dir.path().display()
        )));
    assert_untouched(&env);
}

#[test]
fn a_repository_without_commits_is_refused() {
    let env = TestEnv::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    git(&env, dir.path(), &["init", "-q"]);
    dry_run(&env, dir.path(), &[])
        .code(2)
        .stderr(predicate::str::contains("has no commits yet"));
}

#[test]
fn without_dry_run_prepare_checks_everything_before_the_daemon() {
    let env = TestEnv::new().unwrap();
    let repo = scratch_repo(&env);
    // The VM reference is checked by syntax only, with or without --dry-run.
    env.command("banger")
        .args(["vm", "workspace", "prepare", "a b"])
        .arg(repo.path())
        .assert()
        .code(2);
    // Not a repository: refused before any daemon is asked.
    let plain = tempfile::tempdir().unwrap();
    env.command("banger")
        .args(["vm", "workspace", "prepare", "web"])
        .arg(plain.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("is not inside a git repository"));
    // --from needs --branch.
    env.command("banger")
        .args(["vm", "workspace", "prepare", "web", "--from", "main"])
        .arg(repo.path())
        .assert()
        .code(2);
    dry_run(&env, repo.path(), &[]).success();
    assert_untouched(&env);
}

#[test]
fn vm_run_dry_run_lists_the_same_files_and_creates_nothing() {
    let env = TestEnv::new().unwrap();
    let repo = scratch_repo(&env);
    env.command("banger")
        .args(["vm", "run"])
        .arg(repo.path())
        .arg("--dry-run")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .assert()
        .success()
        .stdout(".gitignore\nsub/inner.txt\ntracked.txt\n");
    env.command("banger")
        .args(["vm", "run", "--dry-run", "--include-untracked"])
        .current_dir(repo.path().join("sub"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .assert()
        .success()
        .stdout(".gitignore\nsub/inner.txt\ntracked.txt\nuntracked.txt\n");
    assert_untouched(&env);
}
