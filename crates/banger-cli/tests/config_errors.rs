//! An invalid `config.toml` is exit 2 naming the file and the field for every command that
//! may start a daemon, before any daemon is started or asked anything; commands that never
//! start one (`daemon stop`) still work.

mod support;

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;

const BAD: &str = "[vm_defaults]\nmemory = \"lots\"\n";

fn write_bad_config(env: &TestEnv) -> std::path::PathBuf {
    let config = env.layout().config_file;
    let dir = config.parent().expect("config has a directory");
    std::fs::create_dir_all(dir).expect("create the config dir");
    std::fs::write(&config, BAD).expect("write the config");
    config
}

fn expected(config: &std::path::Path) -> String {
    format!(
        "banger: invalid config: {}: vm_defaults.memory: size \"lots\"",
        config.display()
    )
}

#[test]
fn a_bad_config_stops_every_command_before_a_daemon_starts() {
    let env = TestEnv::new().unwrap();
    let config = write_bad_config(&env);
    let commands: &[&[&str]] = &[
        &["vm", "list"],
        &["ps"],
        &["vm", "show", "web"],
        &["vm", "delete", "web"],
        &["image", "ls"],
        &["kernel", "pull", "debian-cloud"],
        &["daemon", "status"],
    ];
    for args in commands {
        env.command("banger")
            .args(*args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::starts_with(expected(&config)));
    }
    // No daemon was started: nothing but the config file exists.
    assert_eq!(
        env.files(),
        [std::path::PathBuf::from("config/banger/config.toml")]
    );
}

#[test]
fn a_running_daemon_does_not_hide_a_bad_config() {
    let env = TestEnv::new().unwrap();
    let fake = support::serve(&env, |_| (200, "[]".into()));
    let config = write_bad_config(&env);
    env.command("banger")
        .args(["vm", "ls"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(expected(&config)));
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[test]
fn daemon_stop_works_with_a_bad_config() {
    let env = TestEnv::new().unwrap();
    write_bad_config(&env);
    env.command("banger")
        .args(["daemon", "stop"])
        .assert()
        .success()
        .stdout("bangerd is not running\n");
}
