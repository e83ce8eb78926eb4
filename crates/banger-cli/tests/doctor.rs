//! `banger doctor` with the real `bangerd` on temp layouts: a missing VMM fails and is named,
//! `--json` parses, a healthy set-up prints one line, a missing `bangerd` is a failure, and
//! nothing is ever created.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use banger_proto::{Check, CheckStatus};
use banger_testkit::{DaemonGuard, TestEnv, bin_path};

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A `PATH` dir with stand-ins for every tool doctor looks for, each printing a version.
fn stub_tools(dir: &Path) {
    let tools = [
        ("qemu-system-x86_64", "QEMU emulator version 9.9.9 (stub)"),
        ("nft", "nftables v9.9 (stub)"),
        ("mkfs.ext4", "mke2fs stub"),
        ("resize2fs", "resize2fs stub"),
        ("e2fsck", "e2fsck stub"),
        ("debugfs", "debugfs stub"),
        ("debootstrap", "debootstrap stub"),
        ("dpkg-deb", "dpkg-deb stub"),
        ("apt-get", "apt stub"),
        ("banger-agent", "banger-agent stub"),
    ];
    for (name, version) in tools {
        write_script(&dir.join(name), &format!("echo '{version}'"));
    }
}

fn doctor(env: &TestEnv, path: &Path, args: &[&str]) -> Output {
    env.command("banger")
        .arg("doctor")
        .args(args)
        .env("PATH", path)
        .output()
        .expect("banger runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_config(env: &TestEnv, text: &str) {
    let config = env.layout().config_file;
    std::fs::create_dir_all(config.parent().expect("parent")).expect("config dir");
    std::fs::write(&config, text).expect("config");
}

#[test]
fn without_qemu_doctor_fails_and_names_the_vmm() {
    let env = TestEnv::new().expect("env");
    let empty = tempfile::tempdir().expect("empty PATH dir");
    let out = doctor(&env, empty.path(), &[]);
    assert_eq!(out.status.code(), Some(9), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("fail  "), "{stdout}");
    assert!(stdout.contains("qemu-system-x86_64"), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("banger doctor: "), "{stdout}");
    assert!(last.contains("failed"), "{last}");
    // Only rows that need attention without -v.
    assert!(!stdout.contains("ok    "), "{stdout}");
    assert!(env.files().is_empty(), "{:?}", env.files());
}

#[test]
fn json_is_an_array_of_every_check() {
    let env = TestEnv::new().expect("env");
    let tools = tempfile::tempdir().expect("tools");
    stub_tools(tools.path());
    write_config(&env, "vmm = \"qemu\"\n");
    let out = doctor(&env, tools.path(), &["--json"]);
    let checks: Vec<Check> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not json ({e}): {}", text(&out.stdout)));
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    for name in [
        "bangerd",
        "version",
        "daemon",
        "kvm",
        "qemu",
        "vmm",
        "store",
        "guest-agent",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let qemu = checks.iter().find(|c| c.name == "qemu").expect("qemu");
    assert_eq!(qemu.status, CheckStatus::Ok);
    assert!(
        qemu.detail
            .starts_with("QEMU emulator version 9.9.9 (stub)"),
        "{qemu:?}"
    );
    let failed = checks.iter().any(|c| c.status == CheckStatus::Fail);
    assert_eq!(out.status.code(), Some(if failed { 9 } else { 0 }));
    assert_eq!(env.files(), [PathBuf::from("config/banger/config.toml")]);
}

#[test]
fn a_healthy_set_up_prints_one_line() {
    let env = TestEnv::new().expect("env");
    let guard = DaemonGuard::new(&env);
    // A first daemon start creates the store; then no daemon runs.
    let out = env
        .command("banger")
        .args(["daemon", "status"])
        .output()
        .expect("banger runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = env
        .command("banger")
        .args(["daemon", "stop"])
        .output()
        .expect("banger runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(guard.wait_gone(Duration::from_secs(10)));

    let tools = tempfile::tempdir().expect("tools");
    stub_tools(tools.path());
    write_config(&env, "vmm = \"qemu\"\n");
    let before = env.files();
    let out = doctor(&env, tools.path(), &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("banger doctor: all "), "{stdout}");
    assert!(
        stdout.contains(" checks passed (vmm: qemu, kvm: "),
        "{stdout}"
    );
    assert_eq!(env.files(), before, "doctor changed files");

    let out = doctor(&env, tools.path(), &["-v"]);
    let verbose = text(&out.stdout);
    assert!(verbose.lines().count() > 20, "{verbose}");
    assert!(verbose.contains("ok    store"), "{verbose}");
    assert!(verbose.contains("info  dns"), "{verbose}");
}

#[test]
fn a_missing_bangerd_is_a_failure() {
    let env = TestEnv::new().expect("env");
    let bin = tempfile::tempdir().expect("bin");
    let banger = bin.path().join("banger");
    std::fs::copy(bin_path("banger"), &banger).expect("copy banger");
    let mut cmd = Command::new(&banger);
    env.apply(&mut cmd)
        .arg("doctor")
        .env("PATH", bin.path().join("nothing"));
    let out = loop {
        match cmd.output() {
            // A concurrent test's fork may still hold the fresh copy open for writing.
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other.expect("banger runs"),
        }
    };
    assert_eq!(out.status.code(), Some(9));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("fail  bangerd"), "{stdout}");
    assert!(stdout.contains("cannot find bangerd next to"), "{stdout}");
    assert!(env.files().is_empty());
}
