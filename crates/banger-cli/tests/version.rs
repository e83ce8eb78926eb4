//! `banger --version` and `banger version`: the stamped build, in the documented shapes.

use std::process::Command;

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;

fn git_head() -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git runs");
    String::from_utf8(out.stdout)
        .expect("git prints utf-8")
        .trim()
        .to_owned()
}

#[test]
fn version_flag_has_the_documented_shape_and_this_commit() {
    let env = TestEnv::new().unwrap();
    let out = env
        .command("banger")
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::is_match(
            r"^banger v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)? \(commit [0-9a-f]{8}, built \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)\n$",
        )
        .unwrap())
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let head = git_head();
    assert!(
        text.contains(&format!("(commit {},", &head[..8])),
        "{text} vs HEAD {head}"
    );
}

#[test]
fn version_command_prints_one_field_per_line() {
    let env = TestEnv::new().unwrap();
    let out = env.command("banger").arg("version").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("version: "), "{text}");
    assert_eq!(lines[1], format!("commit: {}", git_head()));
    assert!(
        lines[2].starts_with("built: ") && lines[2].ends_with('Z'),
        "{text}"
    );
}

#[test]
fn version_json_has_the_build_fields() {
    let env = TestEnv::new().unwrap();
    let out = env
        .command("banger")
        .args(["version", "--json"])
        .assert()
        .success();
    let value: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(value["commit"], git_head().as_str());
    assert!(value["version"].is_string());
    assert!(value["built_at"].is_string());
    assert!(env.files().is_empty(), "{:?}", env.files());
}
