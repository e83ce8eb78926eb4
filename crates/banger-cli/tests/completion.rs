//! `banger completion`: scripts on stdout, offline, and a closed stdout is not a crash; the
//! bash script, sourced in a real bash, completes live names from a (fake) daemon and never
//! starts one.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;

#[test]
fn scripts_for_each_shell_mention_banger_and_write_nothing() {
    let env = TestEnv::new().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell"] {
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

/// A daemon with VMs `web` and `db`, image `debian-bookworm` and kernel `debian-cloud`.
fn daemon(env: &TestEnv) -> support::FakeDaemon {
    support::serve(env, |r: &support::Request| {
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/v1/vms") => (
                200,
                format!(
                    "[{},{}]",
                    support::vm_record("web", false),
                    support::vm_record("db", false)
                ),
            ),
            ("GET", "/v1/images") => (
                200,
                serde_json::json!([{
                    "id": "i1", "name": "mine", "source": "register", "digest": null,
                    "rootfs_path": "/x/rootfs.ext4", "work_seed_path": null,
                    "kernel_name": "debian-cloud", "created_at": "2026-01-01T00:00:00Z",
                }])
                .to_string(),
            ),
            ("GET", "/v1/kernels") => (
                200,
                serde_json::json!([{
                    "id": "k1", "name": "debian-cloud", "version": null, "source": "catalog",
                    "vmlinux_path": "/x/vmlinux", "initrd_path": null,
                    "created_at": "2026-01-01T00:00:00Z",
                }])
                .to_string(),
            ),
            _ => (404, String::new()),
        }
    })
}

/// Sources banger's bash script in a real bash and completes the last of `words` (the words
/// after `banger`) the way readline would; returns COMPREPLY.
fn bash_complete(env: &TestEnv, script: &Path, words: &[&str]) -> Vec<String> {
    const DRIVER: &str = r#"
source "$1"
shift
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
_banger_live "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let mut cmd = Command::new("bash");
    env.apply(&mut cmd);
    let out = cmd
        .args(["--norc", "--noprofile", "-c", DRIVER, "bash"])
        .arg(script)
        .arg(banger_testkit::bin_path("banger"))
        .args(words)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn bash_script(env: &TestEnv, dir: &Path) -> std::path::PathBuf {
    let out = env
        .command("banger")
        .args(["completion", "bash"])
        .output()
        .expect("run banger");
    let path = dir.join("banger.bash");
    std::fs::write(&path, out.stdout).expect("write the script");
    path
}

#[test]
fn bash_completes_live_names_from_a_running_daemon() {
    let env = TestEnv::new().unwrap();
    let fake = daemon(&env);
    let dir = tempfile::tempdir().unwrap();
    let script = bash_script(&env, dir.path());
    assert_eq!(
        bash_complete(&env, &script, &["vm", "ssh", ""]),
        ["db", "web"]
    );
    assert_eq!(bash_complete(&env, &script, &["vm", "stop", "w"]), ["web"]);
    assert_eq!(
        bash_complete(&env, &script, &["vm", "rm", "web", ""]),
        ["db"]
    );
    assert_eq!(
        bash_complete(&env, &script, &["kernel", "show", ""]),
        ["debian-cloud"]
    );
    assert_eq!(
        bash_complete(&env, &script, &["vm", "run", "--image", ""]),
        ["debian-bookworm", "mine"]
    );
    assert_eq!(
        bash_complete(&env, &script, &["image", "pull", ""]),
        ["debian-bookworm"]
    );
    // Elsewhere the static completion answers: subcommands, flags.
    let subcommands = bash_complete(&env, &script, &["vm", "ss"]);
    assert!(subcommands.contains(&"ssh".to_owned()), "{subcommands:?}");
    assert!(!subcommands.contains(&"web".to_owned()), "{subcommands:?}");
    let flags = bash_complete(&env, &script, &["vm", "ssh", "--"]);
    assert!(flags.contains(&"--help".to_owned()), "{flags:?}");
    assert!(fake.saw("GET", "/v1/vms"));
}

#[test]
fn completion_never_starts_a_daemon() {
    let env = TestEnv::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = bash_script(&env, dir.path());
    // No daemon: no names, only what the static completion offers there.
    let offered = bash_complete(&env, &script, &["vm", "ssh", ""]);
    assert!(offered.iter().all(|o| o.starts_with('-')), "{offered:?}");
    for args in [
        &["__complete", "vms"][..],
        &["__complete", "line", "--cur=", "--", "vm", "ssh"],
    ] {
        env.command("banger")
            .args(args)
            .assert()
            .success()
            .stdout("")
            .stderr("");
    }
    // Catalog names need no daemon.
    env.command("banger")
        .args(["__complete", "catalog"])
        .assert()
        .success()
        .stdout("debian-bookworm\n");
    assert!(!env.layout().runtime_dir.exists(), "runtime dir created");
    assert!(!env.layout().state_dir.exists(), "state dir created");
    assert!(env.files().is_empty(), "{:?}", env.files());
}

#[test]
fn the_hidden_subcommand_lists_names_from_a_running_daemon() {
    let env = TestEnv::new().unwrap();
    daemon(&env);
    env.command("banger")
        .args(["__complete", "vms"])
        .assert()
        .success()
        .stdout("db\nweb\n")
        .stderr("");
    env.command("banger")
        .args(["__complete", "images", "m"])
        .assert()
        .success()
        .stdout("mine\n");
}

#[test]
fn a_daemon_that_does_not_answer_costs_under_a_few_seconds() {
    let env = TestEnv::new().unwrap();
    let socket = env.layout().socket();
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    // Bound but never served: connections queue and nothing ever answers.
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let started = std::time::Instant::now();
    env.command("banger")
        .args(["__complete", "vms"])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");
}
