//! Every group's and command's `--help` works offline and ends with runnable examples.

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;

/// Every group and command, as argument lists.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["vm"],
    &["vm", "run"],
    &["vm", "create"],
    &["vm", "start"],
    &["vm", "stop"],
    &["vm", "restart"],
    &["vm", "kill"],
    &["vm", "delete"],
    &["vm", "rm"],
    &["vm", "prune"],
    &["vm", "list"],
    &["vm", "ls"],
    &["vm", "ps"],
    &["ps"],
    &["vm", "show"],
    &["vm", "logs"],
    &["vm", "stats"],
    &["vm", "ports"],
    &["vm", "set"],
    &["vm", "health"],
    &["vm", "ssh"],
    &["vm", "exec"],
    &["vm", "workspace"],
    &["vm", "workspace", "prepare"],
    &["vm", "workspace", "export"],
    &["image"],
    &["image", "pull"],
    &["image", "register"],
    &["image", "promote"],
    &["image", "catalog"],
    &["image", "list"],
    &["image", "ls"],
    &["image", "show"],
    &["image", "delete"],
    &["image", "rm"],
    &["image", "snapshots"],
    &["image", "cache"],
    &["image", "cache", "prune"],
    &["kernel"],
    &["kernel", "list"],
    &["kernel", "ls"],
    &["kernel", "show"],
    &["kernel", "pull"],
    &["kernel", "catalog"],
    &["kernel", "rm"],
    &["daemon"],
    &["daemon", "status"],
    &["daemon", "stop"],
    &["daemon", "socket"],
    &["daemon", "operations"],
    &["doctor"],
    &["ssh-config"],
    &["system"],
    &["system", "install"],
    &["system", "status"],
    &["system", "restart"],
    &["system", "uninstall"],
    &["update"],
    &["completion"],
    &["version"],
];

#[test]
fn every_help_has_examples_and_touches_nothing() {
    let env = TestEnv::new().unwrap();
    for path in COMMANDS {
        for flag in ["--help", "-h"] {
            env.command("banger")
                .args(*path)
                .arg(flag)
                .assert()
                .success()
                .stdout(predicate::str::contains("Examples:"));
        }
    }
    assert!(env.files().is_empty(), "{:?}", env.files());
}

#[test]
fn top_level_help_has_the_quick_start_and_exit_codes() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("banger vm run -- echo hi"))
        .stdout(predicate::str::contains("banger vm create --name web"))
        .stdout(predicate::str::contains("banger vm ssh web"))
        .stdout(predicate::str::contains("Exit codes:"))
        .stdout(predicate::str::is_match(r"(?m)^  ps +List VMs").unwrap())
        .stdout(predicate::str::contains(
            "8  could not reach or start the daemon",
        ));
}

#[test]
fn group_help_says_what_comes_next() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .args(["vm", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Most of the time you want `banger vm run",
        ))
        .stdout(predicate::str::contains("Next:"));
}

#[test]
fn create_help_shows_resolved_defaults() {
    let env = TestEnv::new().unwrap();
    std::fs::create_dir_all(env.root().join("config/banger")).unwrap();
    std::fs::write(
        env.root().join("config/banger/config.toml"),
        "[vm_defaults]\nvcpu = 3\n",
    )
    .unwrap();
    env.command("banger")
        .args(["vm", "create", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("[here: 3 (config)]"))
        .stdout(predicate::str::contains("[here: 8G (builtin)]"));
}

#[test]
fn no_arguments_prints_help_and_exits_2() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Usage: banger <COMMAND>"));
    env.command("banger")
        .arg("vm")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Usage: banger vm <COMMAND>"));
}

#[test]
fn nat_help_says_what_it_does() {
    let env = TestEnv::new().unwrap();
    for cmd in ["create", "run", "set"] {
        let out = env
            .command("banger")
            .args(["vm", cmd, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success());
        // Help wraps at the terminal width; compare words, not line breaks.
        let help = String::from_utf8_lossy(&out.stdout);
        let words = help.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("--nat"), "vm {cmd}: {help}");
        assert!(
            !words.contains("not built yet: recorded"),
            "vm {cmd}: {help}"
        );
    }
}

#[test]
fn no_help_promises_what_is_not_built() {
    let env = TestEnv::new().unwrap();
    for path in COMMANDS {
        let out = env
            .command("banger")
            .args(*path)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout).to_lowercase();
        for promise in ["internet access", "file_sync"] {
            assert!(
                !help.contains(promise),
                "{path:?} promises {promise:?}:\n{help}"
            );
        }
    }
    env.command("banger")
        .args(["image", "pull", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "banger image pull debian-bookworm",
        ))
        .stdout(predicate::str::contains(
            "banger image pull docker.io/library/debian:bookworm",
        ))
        .stdout(predicate::str::contains("--name"));
}
