//! `banger completion`: scripts on stdout, offline, and a closed stdout is not a crash.

use std::process::Stdio;

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;

#[test]
fn scripts_for_each_shell_mention_banger_and_write_nothing() {
    let env = TestEnv::new().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        env.command("banger")
            .args(["completion", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("banger"))
            .stdout(predicate::str::contains("workspace"));
    }
    assert!(env.files().is_empty(), "{:?}", env.files());
    assert!(!env.layout().runtime_dir.exists());
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .args(["completion", "tcsh"])
        .assert()
        .code(2);
}

/// Runs banger with stdout on a pipe whose reader is already gone.
fn run_into_closed_pipe(args: &[&str]) -> std::process::Output {
    let env = TestEnv::new().expect("temp env");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    env.command("banger")
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run banger")
}

#[test]
fn closed_stdout_exits_quietly() {
    for args in [&["completion", "bash"][..], &["version"], &["--help"]] {
        let out = run_into_closed_pipe(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
