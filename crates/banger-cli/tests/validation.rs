//! Bad input and not-yet-available commands fail early: right exit code, a message in
//! banger's voice, no file written anywhere and no daemon started.

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;

fn assert_untouched(env: &TestEnv) {
    assert!(env.files().is_empty(), "files written: {:?}", env.files());
    let layout = env.layout();
    assert!(!layout.state_dir.exists(), "state dir was created");
    assert!(!layout.runtime_dir.exists(), "runtime dir was created");
}

#[test]
fn bad_vm_name_is_a_usage_error_that_names_the_rule() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .args(["vm", "create", "--name", "Bad Name"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "banger: vm name \"Bad Name\" contains 'B'; use 1-63 characters",
        ));
    assert_untouched(&env);
}

#[test]
fn invalid_spec_is_refused_before_anything() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .args(["vm", "create", "--name", "web", "--vcpu", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "banger: vcpu must be between 1 and 32, got 0",
        ));
    env.command("banger")
        .args(["vm", "create", "--memory", "64M"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("memory must be at least"));
    env.command("banger")
        .args(["vm", "create", "--disk-size", "4Q"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown unit"));
    assert_untouched(&env);
}

#[test]
fn vm_run_checks_its_arguments_first() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .args(["vm", "run", "--name", "-web"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("starts or ends with '-'"));
    env.command("banger")
        .args(["vm", "run", "-d", "--rm"])
        .assert()
        .code(2);
    env.command("banger")
        .args(["vm", "run", "-d", "--", "echo", "hi"])
        .assert()
        .code(2);
    assert_untouched(&env);
}

#[test]
fn vm_run_refuses_bootstrap_without_network() {
    let env = TestEnv::new().unwrap();
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir(repo.path().join(".git")).unwrap();
    std::fs::write(repo.path().join(".mise.toml"), "[tools]\n").unwrap();
    env.command("banger")
        .arg("vm")
        .arg("run")
        .arg(repo.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--nat"))
        .stderr(predicate::str::contains("--no-bootstrap"));
    assert_untouched(&env);
}

#[test]
fn invalid_config_names_the_file() {
    let env = TestEnv::new().unwrap();
    let config = env.layout().config_file;
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "vcpus = 2\n").unwrap();
    env.command("banger")
        .args(["vm", "create", "--name", "web"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(format!(
            "banger: invalid config: {}: vcpus: unknown field `vcpus`",
            config.display()
        )));
    assert_eq!(
        env.files(),
        [std::path::PathBuf::from("config/banger/config.toml")]
    );
}

/// A build without `BANGER_RELEASE_MANIFEST_URL` (every build from this tree) has nowhere to
/// look for releases: `update --check` says so, exits 1 and touches nothing.
#[test]
fn update_without_a_release_channel_says_so_and_touches_nothing() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .args(["update", "--check"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("names no release manifest"));
    assert_untouched(&env);
}

/// The `system` commands that change the host refuse a non-root caller before anything
/// (as root, the test drops to `nobody` with `setpriv`).
#[test]
fn system_changes_need_root_and_touch_nothing() {
    let env = TestEnv::new().unwrap();
    let root = nix::unistd::geteuid().is_root();
    for (args, hint) in [
        (
            &["system", "install", "--owner", "nobody"][..],
            "sudo banger system install",
        ),
        (&["system", "restart"][..], "sudo banger system restart"),
        (
            &["system", "uninstall", "--purge"][..],
            "sudo banger system uninstall",
        ),
    ] {
        let mut cmd = if root {
            let mut cmd = std::process::Command::new("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(banger_testkit::bin_path("banger"))
                .envs(env.vars());
            cmd
        } else {
            env.command("banger")
        };
        cmd.args(args)
            .assert()
            .code(5)
            .stdout("")
            .stderr(predicate::str::contains(format!(
                "banger: this needs root: run `{hint}`"
            )));
    }
    assert_untouched(&env);
}

#[test]
fn not_available_still_validates_first() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .args(["vm", "set", "web"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nothing to change"));
    env.command("banger")
        .args(["vm", "set", "web", "--vcpu", "99"])
        .assert()
        .code(2);
    env.command("banger")
        .args(["update", "--to", "latest"])
        .assert()
        .code(2);
    env.command("banger")
        .args(["vm", "start", "a b"])
        .assert()
        .code(2);
    assert_untouched(&env);
}

#[test]
fn prune_without_a_terminal_needs_force_and_touches_nothing() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .args(["vm", "prune"])
        .stdin(std::process::Stdio::null())
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "banger: vm prune asks before deleting, but stdin is not a terminal; pass -f",
        ));
    assert_untouched(&env);
}

#[test]
fn inspection_commands_check_the_vm_reference_first() {
    let env = TestEnv::new().unwrap();
    for command in ["health", "stats", "ports"] {
        env.command("banger")
            .args(["vm", command, "a b"])
            .assert()
            .code(2)
            .stdout("");
        env.command("banger").args(["vm", command]).assert().code(2);
    }
    env.command("banger")
        .args(["vm", "set", "web", "--memory", "64M"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("memory must be at least"));
    env.command("banger")
        .args(["vm", "set", "web", "--nat", "--no-nat"])
        .assert()
        .code(2);
    assert_untouched(&env);
}

#[test]
fn daemon_socket_prints_the_path_without_contacting_anything() {
    let env = TestEnv::new().unwrap();
    let expected = env.root().join("run/banger/bangerd.sock");
    env.command("banger")
        .args(["daemon", "socket"])
        .assert()
        .success()
        .stdout(format!("{}\n", expected.display()));
    assert_untouched(&env);
}

#[test]
fn daemon_stop_with_nothing_running_is_fine() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .args(["daemon", "stop"])
        .assert()
        .success()
        .stdout("bangerd is not running\n");
    assert_untouched(&env);
}
