//! The real `bangerd doctor --json` on a temp layout: valid JSON with every check, and nothing
//! created or changed.

use std::path::{Path, PathBuf};

use banger_proto::{CheckStatus, DoctorReport};
use banger_testkit::TestEnv;

/// Every check `bangerd doctor` reports, in order.
const CHECKS: &[&str] = &[
    "kvm",
    "qemu",
    "firecracker",
    "vmm",
    "jailer",
    "vhost-vsock",
    "privileges",
    "bridge",
    "nat",
    "dns",
    "guest-dns",
    "resolver-routing",
    "config",
    "store",
    "default-image",
    "default-kernel",
    "image-tools",
    "disk-tools",
    "overlay",
    "vm-defaults",
    "ssh-config",
    "guest-agent",
    "ssh-bundle",
];

/// Every path (files and directories) under `root`, with its contents for files.
fn snapshot(root: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Option<Vec<u8>>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.push((path.clone(), None));
                walk(&path, out);
            } else {
                out.push((path.clone(), std::fs::read(&path).ok()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}

fn doctor(env: &TestEnv) -> (Option<i32>, DoctorReport) {
    let out = env
        .command("bangerd")
        .args(["doctor", "--json"])
        .output()
        .expect("bangerd runs");
    let report: DoctorReport = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a doctor report ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code(), report)
}

#[test]
fn doctor_reports_every_check_as_json_and_creates_nothing() {
    let env = TestEnv::new().expect("env");
    let before = snapshot(env.root());
    let (code, report) = doctor(&env);
    assert_eq!(snapshot(env.root()), before, "doctor changed the layout");
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, CHECKS);
    for check in &report.checks {
        if matches!(check.status, CheckStatus::Warn | CheckStatus::Fail) {
            assert!(check.fix.is_some(), "{check:?} has no fix");
        }
    }
    let store = report
        .checks
        .iter()
        .find(|c| c.name == "store")
        .expect("store check");
    assert_eq!(store.status, CheckStatus::Warn);
    assert!(store.detail.starts_with("no state yet"), "{store:?}");
    let failed = report.checks.iter().any(|c| c.status == CheckStatus::Fail);
    assert_eq!(code, Some(i32::from(failed)));
    assert_eq!(report.build, banger_proto::build_info!());
    assert!(report.summary.starts_with("vmm: "), "{}", report.summary);
}

#[test]
fn a_corrupt_store_fails_and_is_left_untouched() {
    let env = TestEnv::new().expect("env");
    let db = env.layout().db_file();
    std::fs::create_dir_all(db.parent().expect("parent")).expect("state dir");
    std::fs::write(&db, vec![0x42; 4096]).expect("garbage");
    let before = snapshot(env.root());
    let (code, report) = doctor(&env);
    assert_eq!(snapshot(env.root()), before);
    assert_eq!(code, Some(1));
    let store = report
        .checks
        .iter()
        .find(|c| c.name == "store")
        .expect("store check");
    assert_eq!(store.status, CheckStatus::Fail);
    assert!(store.detail.contains("corrupt"), "{store:?}");
}

#[test]
fn an_invalid_config_fails_but_the_other_checks_still_run() {
    let env = TestEnv::new().expect("env");
    let config = env.layout().config_file;
    std::fs::create_dir_all(config.parent().expect("parent")).expect("config dir");
    std::fs::write(&config, "vmm = \"bochs\"\n").expect("config");
    let (code, report) = doctor(&env);
    assert_eq!(code, Some(1));
    assert_eq!(report.checks.len(), CHECKS.len());
    let check = report
        .checks
        .iter()
        .find(|c| c.name == "config")
        .expect("config check");
    assert_eq!(check.status, CheckStatus::Fail);
    assert!(check.detail.contains("config.toml"), "{check:?}");
}

#[test]
fn without_json_each_check_is_one_row() {
    let env = TestEnv::new().expect("env");
    let out = env
        .command("bangerd")
        .arg("doctor")
        .output()
        .expect("bangerd runs");
    let text = String::from_utf8_lossy(&out.stdout);
    for name in CHECKS {
        assert!(
            text.contains(&format!("  {name}: ")),
            "{name} missing:\n{text}"
        );
    }
    assert!(env.files().is_empty());
}
