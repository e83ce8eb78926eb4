//! The `file sync` stage on the fake host: `[[file_sync]]` entries, the host's git identity
//! and banger's login land in the VM's real work disk (read back with debugfs) at create and
//! again at every start; a bad entry fails the create by its index and leaves nothing behind.

mod fakehost;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use banger_daemon::vms;
use banger_image::ext4;
use banger_model::{FileSync, VmRecord};
use banger_proto::{Operation, OperationState};
use fakehost::*;

fn entry(host: &str, guest: &str, mode: Option<&str>) -> FileSync {
    FileSync {
        host: host.into(),
        guest: guest.into(),
        mode: mode.map(str::to_owned),
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn work(vm: &VmRecord) -> std::path::PathBuf {
    vm.dir.join("work.ext4")
}

fn read(vm: &VmRecord, path: &str) -> String {
    String::from_utf8(ext4::read_file(&work(vm), path).expect("debugfs cat")).expect("utf-8")
}

/// (is_dir, mode, uid, gid) of `path` in the work disk.
fn stat(vm: &VmRecord, path: &str) -> Option<(bool, u32, u32, u32)> {
    ext4::stat(&work(vm), path)
        .expect("debugfs stat")
        .map(|s| (s.is_dir, s.mode, s.uid, s.gid))
}

fn file_sync_detail(op: &Operation) -> String {
    op.stages
        .iter()
        .find(|s| s.name == "file sync")
        .and_then(|s| s.detail.clone())
        .unwrap_or_default()
}

/// `git config --global KEY VALUE` for the user whose home is `home`.
fn git_config(home: &Path, key: &str, value: &str) {
    run(Command::new("git")
        .args(["config", "--global", key, value])
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("GIT_CONFIG_GLOBAL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_land_in_the_work_disk_and_a_missing_one_is_a_visible_warning() {
    let mut host = Host::new();
    let home = host.home.clone();
    std::fs::create_dir_all(home.join(".config")).expect("mkdir");
    std::fs::write(home.join(".config/tool.conf"), "v1\n").expect("write");
    let tree = home.join("dotdir");
    std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
    std::fs::write(tree.join("a.txt"), "alpha").expect("write");
    std::fs::write(tree.join("sub/run.sh"), "#!/bin/sh\n").expect("write");
    chmod(&tree.join("a.txt"), 0o644);
    chmod(&tree.join("sub/run.sh"), 0o755);
    chmod(&tree.join("sub"), 0o700);
    chmod(&tree, 0o750);
    // Never followed out of the directory.
    std::os::unix::fs::symlink("/etc/passwd", tree.join("passwd")).expect("symlink");
    host.config.file_sync = vec![
        entry("~/.config/tool.conf", "~/.config/tool.conf", Some("0640")),
        entry(&tree.display().to_string(), "/root/synced/dir", None),
        entry("~/not-here", "~/not-here", None),
    ];
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");

    let op = create(&ctx, "sync", "base").await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    let names: Vec<_> = op.stages.iter().map(|s| s.name.as_str()).collect();
    let at = names.iter().position(|n| *n == "file sync").expect("stage");
    assert_eq!(
        names[at - 1..=at + 1],
        ["prepare disks", "file sync", "network"]
    );
    let detail = file_sync_detail(&op);
    assert!(detail.contains("2 of 3 file_sync entries"), "{detail}");
    assert!(
        detail.contains("file_sync[2]") && detail.contains("not-here"),
        "the missing entry is named: {detail}"
    );
    let warnings = &op.stages[at].warnings;
    assert!(
        warnings.len() == 1 && warnings[0].starts_with("file_sync[2] skipped"),
        "the stage carries the warning the CLI prints: {warnings:?}"
    );
    assert!(
        detail.contains("1 symlinks or special files skipped"),
        "{detail}"
    );

    let vm = ctx.store().vms().resolve("sync").expect("record");
    assert_eq!(read(&vm, "/.config/tool.conf"), "v1\n");
    assert_eq!(stat(&vm, "/.config/tool.conf"), Some((false, 0o640, 0, 0)));
    assert_eq!(stat(&vm, "/synced/dir"), Some((true, 0o750, 0, 0)));
    assert_eq!(stat(&vm, "/synced/dir/a.txt"), Some((false, 0o644, 0, 0)));
    assert_eq!(read(&vm, "/synced/dir/a.txt"), "alpha");
    assert_eq!(stat(&vm, "/synced/dir/sub"), Some((true, 0o700, 0, 0)));
    assert_eq!(
        stat(&vm, "/synced/dir/sub/run.sh"),
        Some((false, 0o755, 0, 0))
    );
    assert_eq!(
        stat(&vm, "/synced/dir/passwd"),
        None,
        "symlinks are skipped"
    );
    assert_eq!(stat(&vm, "/not-here"), None);

    // An edit on the host reaches the guest at the next start.
    std::fs::write(home.join(".config/tool.conf"), "v2, longer\n").expect("write");
    vms::stop(&ctx, "sync").await.expect("stop");
    let op = finish(&ctx, vms::start(&ctx, "sync").await.expect("start")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    assert_eq!(op.stages[0].name, "file sync", "{op:?}");
    assert_eq!(read(&vm, "/.config/tool.conf"), "v2, longer\n");
    assert_eq!(stat(&vm, "/.config/tool.conf"), Some((false, 0o640, 0, 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_entry_fails_the_create_by_its_index_and_leaves_nothing() {
    let mut host = Host::new();
    let home = host.home.clone();
    std::fs::write(home.join("good"), "fine").expect("write");
    run(Command::new("mkfifo").arg(home.join("pipe")));
    host.config.file_sync = vec![
        entry("~/good", "~/good", None),
        entry("~/pipe", "~/pipe", None),
    ];
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let op = create(&ctx, "bad", "base").await;
    assert_eq!(op.state, OperationState::Failed, "{op:?}");
    assert_eq!(failed_stage(&op).as_deref(), Some("file sync"), "{op:?}");
    let message = op.error.expect("error").message;
    assert!(message.contains("file_sync[1]"), "{message}");
    assert!(
        message.contains("neither a file nor a directory"),
        "{message}"
    );
    assert_nothing_left(&host, &ctx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_entry_at_start_fails_the_start_at_file_sync() {
    let mut host = Host::new();
    let home = host.home.clone();
    std::fs::write(home.join("thing"), "a file today").expect("write");
    host.config.file_sync = vec![entry("~/thing", "~/thing", None)];
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let vm = create_ok(&ctx, "later", "base").await;
    vms::stop(&ctx, "later").await.expect("stop");
    std::fs::remove_file(home.join("thing")).expect("rm");
    run(Command::new("mkfifo").arg(home.join("thing")));
    let op = finish(&ctx, vms::start(&ctx, "later").await.expect("start")).await;
    assert_eq!(failed_stage(&op).as_deref(), Some("file sync"), "{op:?}");
    let message = op.error.expect("error").message;
    assert!(message.contains("file_sync[0]"), "{message}");
    assert!(!host.vmm.is_running_vm(&vm.id), "nothing booted");
    assert!(vm.dir.join("work.ext4").exists(), "the vm's disks are kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_git_identity_lands_in_gitconfig_unless_an_entry_writes_it() {
    // No identity on the host: no .gitconfig.
    let host = Host::new();
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let vm = create_ok(&ctx, "plain", "base").await;
    assert_eq!(stat(&vm, "/.gitconfig"), None);

    // An identity: written as [user], 0644, root's.
    let host = Host::new();
    git_config(&host.home, "user.name", "Ada Lovelace");
    git_config(&host.home, "user.email", "ada@example.org");
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let op = create(&ctx, "ident", "base").await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    assert!(file_sync_detail(&op).contains("git identity"), "{op:?}");
    let vm = ctx.store().vms().resolve("ident").expect("record");
    assert_eq!(
        read(&vm, "/.gitconfig"),
        "[user]\n\tname = Ada Lovelace\n\temail = ada@example.org\n"
    );
    assert_eq!(stat(&vm, "/.gitconfig"), Some((false, 0o644, 0, 0)));

    // An entry for ~/.gitconfig wins over the identity.
    let mut host = Host::new();
    git_config(&host.home, "user.name", "Ada Lovelace");
    std::fs::write(host.home.join("guest.gitconfig"), "[core]\n\teditor = vi\n").expect("write");
    host.config.file_sync = vec![entry("~/guest.gitconfig", "~/.gitconfig", Some("0644"))];
    let ctx = host.daemon();
    host.seed_image(&ctx, "base");
    let vm = create_ok(&ctx, "own", "base").await;
    assert_eq!(read(&vm, "/.gitconfig"), "[core]\n\teditor = vi\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorized_keys_keeps_the_seeds_lines_and_gets_bangers_key_once() {
    let host = Host::new();
    let seed = host.home.join("seed");
    std::fs::create_dir_all(seed.join(".ssh")).expect("mkdir");
    std::fs::write(
        seed.join(".ssh/authorized_keys"),
        "ssh-rsa SEEDKEY user@image\n",
    )
    .expect("write");
    let ctx = host.daemon();
    host.seed_image_with_work(&ctx, "seeded", Some(&seed));
    let vm = create_ok(&ctx, "keys", "seeded").await;
    let key = ctx.backends().ssh_key.public_line.trim().to_owned();
    let expected = format!("ssh-rsa SEEDKEY user@image\n{key}\n");
    assert_eq!(read(&vm, "/.ssh/authorized_keys"), expected);
    assert_eq!(
        stat(&vm, "/.ssh/authorized_keys"),
        Some((false, 0o600, 0, 0))
    );
    assert!(stat(&vm, "/.hushlogin").is_some());
    vms::stop(&ctx, "keys").await.expect("stop");
    let op = finish(&ctx, vms::start(&ctx, "keys").await.expect("start")).await;
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    assert_eq!(read(&vm, "/.ssh/authorized_keys"), expected, "added once");
}
