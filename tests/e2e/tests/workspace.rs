//! Workspaces on a real guest: `vm run --rm` with a command, `vm run -d`, `vm exec` (exit
//! codes, the moved-HEAD warning, `--auto-prepare`) and `vm workspace export` (a patch that
//! applies at the prepared commit and leaves the guest repo as it was).
//!
//! Needs root, QEMU and (for the host-side pulls) the Debian mirror. One guest at a time.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::Guestbed;

const LONG: Duration = Duration::from_secs(900);

/// git on the host, with a fixed identity and no system or user configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "e2e")
        .env("GIT_AUTHOR_EMAIL", "e2e@example.com")
        .env("GIT_COMMITTER_NAME", "e2e")
        .env("GIT_COMMITTER_EMAIL", "e2e@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(bed: &Guestbed, args: &[&str]) -> (String, String) {
    let out = bed.banger(args, LONG);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "banger {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

fn exec(bed: &Guestbed, cmd: &[&str]) -> String {
    let mut args = vec!["vm", "exec", "ws1", "--"];
    args.extend_from_slice(cmd);
    ok(bed, &args).0
}

/// How many SSH logins the guest's sshd accepted (it logs each to the console).
fn logins(bed: &Guestbed, vm: &str) -> usize {
    let (log, _) = ok(bed, &["vm", "logs", vm]);
    log.matches("Accepted publickey for root").count()
}

fn no_vms(bed: &Guestbed) {
    let (list, _) = ok(bed, &["vm", "list", "--json"]);
    let vms: serde_json::Value = serde_json::from_str(&list).expect("vm list --json");
    assert_eq!(vms, serde_json::json!([]), "{list}");
}

#[test]
#[ignore = "needs root, QEMU and a real guest"]
fn workspaces_on_a_real_guest() {
    let bed = Guestbed::new();
    bed.pull_defaults();

    // A scratch repo the CLI inside the namespace can read: tracked, untracked, ignored.
    let scratch: PathBuf = common::e2e_root().join(format!("ws-scratch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let repo = scratch.join("repo");
    std::fs::create_dir_all(&repo).expect("scratch dir");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "e2e"]);
    git(&repo, &["config", "user.email", "e2e@example.com"]);
    std::fs::write(repo.join("tracked.txt"), "one\n").unwrap();
    std::fs::write(repo.join(".gitignore"), "*.log\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "base"]);
    std::fs::write(repo.join("untracked.txt"), "u\n").unwrap();
    std::fs::write(repo.join("ignored.log"), "i\n").unwrap();
    let repo_s = repo.to_str().unwrap();
    let size = ["--vcpu", "1", "--memory", "512M"];

    // vm run --rm with a command: only the tracked file, CMD's exit code, no VM left.
    let mut args = vec!["vm", "run", "--rm"];
    args.extend_from_slice(&size);
    args.extend_from_slice(&[repo_s, "--", "sh", "-c", "ls /root/repo; exit 7"]);
    let out = bed.banger(&args, LONG);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}\n{stderr}");
    assert_eq!(stdout, "tracked.txt", "{stderr}");
    assert!(stderr.contains("1 untracked file skipped"), "{stderr}");
    assert!(!stderr.contains("still running"), "{stderr}");
    no_vms(&bed);

    // vm run -d, then vm exec sees the host HEAD.
    let mut args = vec!["vm", "run", "-d", "--name", "ws1"];
    args.extend_from_slice(&size);
    args.push(repo_s);
    let (stdout, _) = ok(&bed, &args);
    assert_eq!(stdout, "ws1");
    // The bundle and the checkout shared one SSH connection: the guest's sshd (logging to the
    // console) authenticated once.
    assert_eq!(logins(&bed, "ws1"), 1);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    assert_eq!(exec(&bed, &["git", "log", "-1", "--format=%H"]), first);
    let out = bed.banger(&["vm", "exec", "ws1", "--", "sh", "-c", "exit 3"], LONG);
    assert_eq!(out.status.code(), Some(3));

    // ssh-config: installed twice it is one block; plain `ssh ws1.vm` works through it;
    // uninstall restores the user's file byte for byte.
    let ssh_dir = bed.home().join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let user_config = ssh_dir.join("config");
    let original = "Host elsewhere\n  User nobody\n";
    std::fs::write(&user_config, original).unwrap();
    ok(&bed, &["ssh-config", "--install"]);
    ok(&bed, &["ssh-config", "--install"]);
    let installed = std::fs::read_to_string(&user_config).unwrap();
    assert_eq!(
        installed.matches(">>> banger >>>").count(),
        1,
        "{installed}"
    );
    let config_arg = user_config.to_str().unwrap();
    let out = bed.in_ns(
        "ssh",
        &[
            "-F",
            config_arg,
            "-o",
            "BatchMode=yes",
            "ws1.vm",
            "cat",
            "/etc/hostname",
        ],
        LONG,
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "ssh ws1.vm: {stderr}");
    assert_eq!(stdout, "ws1");
    ok(&bed, &["ssh-config", "--uninstall"]);
    assert_eq!(std::fs::read_to_string(&user_config).unwrap(), original);

    // A host commit: exec warns; --auto-prepare brings it in.
    std::fs::write(repo.join("tracked.txt"), "one\ntwo\n").unwrap();
    git(&repo, &["commit", "-qam", "second"]);
    let prepared = git(&repo, &["rev-parse", "HEAD"]);
    let (_, stderr) = ok(&bed, &["vm", "exec", "ws1", "--", "true"]);
    assert!(
        stderr.contains("the host repo moved since prepare"),
        "{stderr}"
    );
    let (stdout, _) = ok(
        &bed,
        &[
            "vm",
            "exec",
            "ws1",
            "--auto-prepare",
            "--",
            "git",
            "log",
            "-1",
            "--format=%H",
        ],
    );
    assert_eq!(stdout, prepared);
    // The re-sync's two sessions and the command: one more connection, not three.
    let before = logins(&bed, "ws1");
    std::fs::write(repo.join("tracked.txt"), "one\ntwo\nthree\n").unwrap();
    git(&repo, &["commit", "-qam", "third"]);
    let prepared = git(&repo, &["rev-parse", "HEAD"]);
    let (stdout, _) = ok(
        &bed,
        &[
            "vm",
            "exec",
            "ws1",
            "--auto-prepare",
            "--",
            "git",
            "log",
            "-1",
            "--format=%H",
        ],
    );
    assert_eq!(stdout, prepared);
    assert_eq!(logins(&bed, "ws1"), before + 1);
    let (_, stderr) = ok(&bed, &["vm", "exec", "ws1", "--", "true"]);
    assert!(!stderr.contains("moved since prepare"), "{stderr}");

    // Work in the guest: a commit, an edit, an untracked file.
    exec(
        &bed,
        &[
            "sh",
            "-c",
            "echo three >> tracked.txt && git commit -qam guest && echo four >> tracked.txt \
             && echo fresh > fresh.txt",
        ],
    );
    let status = exec(&bed, &["git", "status", "--porcelain"]);
    let head = exec(&bed, &["git", "rev-parse", "HEAD"]);
    assert_ne!(head, prepared);

    // Export: applies at the prepared commit; the guest repo is untouched.
    let patch = scratch.join("p.diff");
    ok(
        &bed,
        &[
            "vm",
            "workspace",
            "export",
            "ws1",
            "-o",
            patch.to_str().unwrap(),
        ],
    );
    let body = std::fs::read_to_string(&patch).expect("patch written");
    assert!(
        body.contains("fresh.txt") && body.contains("+four"),
        "{body}"
    );
    let check = scratch.join("check");
    git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            check.to_str().unwrap(),
            &prepared,
        ],
    );
    git(&check, &["apply", "--check", patch.to_str().unwrap()]);
    assert_eq!(exec(&bed, &["git", "status", "--porcelain"]), status);
    assert_eq!(exec(&bed, &["git", "rev-parse", "HEAD"]), head);

    ok(&bed, &["vm", "delete", "ws1"]);
    no_vms(&bed);
    let _ = std::fs::remove_dir_all(&scratch);
}
