//! Starting a daemon on demand, with stand-in `bangerd`s that fail: the error must say how
//! it exited, show what it logged, and name the log.
//!
//! The CLI looks for `bangerd` next to its own executable, so each test copies `banger` into
//! a temp dir and puts a shell script there as `bangerd`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use banger_testkit::{TestEnv, bin_path};
use predicates::prelude::*;

fn copy_banger(dir: &Path) -> PathBuf {
    let target = dir.join("banger");
    std::fs::copy(bin_path("banger"), &target).expect("copy banger");
    target
}

/// Runs `cmd`, retrying while the freshly copied executable is still open for writing in a
/// process forked by a concurrent test (`ETXTBSY`).
fn output(cmd: &mut Command) -> std::process::Output {
    for _ in 0..50 {
        match cmd.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.expect("run banger"),
        }
    }
    panic!("{cmd:?} stayed busy")
}

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .expect("make script executable");
}

#[test]
fn a_daemon_that_exits_is_reported_with_its_log() {
    let env = TestEnv::new().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let banger = copy_banger(bin.path());
    write_script(
        &bin.path().join("bangerd"),
        "echo 'opening store' >&2\necho 'cannot open store: disk on fire' >&2\nexit 3",
    );
    let log = env.layout().daemon_log();
    let mut cmd = Command::new(banger);
    env.apply(&mut cmd).args(["vm", "ls"]);
    output(&mut cmd)
        .assert()
        .code(8)
        .stdout("")
        .stderr(predicate::str::contains(
            "banger: bangerd exited before answering (exit status: 3)",
        ))
        .stderr(predicate::str::contains(
            "  cannot open store: disk on fire",
        ))
        .stderr(predicate::str::contains(format!(
            "full log: {}",
            log.display()
        )));
    let mode = std::fs::metadata(&env.layout().state_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn no_daemon_binary_anywhere_is_reported() {
    let env = TestEnv::new().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let banger = copy_banger(bin.path());
    let mut cmd = Command::new(banger);
    env.apply(&mut cmd)
        .env("PATH", bin.path().join("empty"))
        .args(["daemon", "status"]);
    output(&mut cmd)
        .assert()
        .code(8)
        .stderr(predicate::str::contains("cannot find bangerd next to"));
}
