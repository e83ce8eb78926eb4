//! `vm workspace export` says what it wrote: to a file or to stdout, how many files the patch
//! changes and its size, or that nothing changed. The fake daemon's ssh command line prints a
//! canned patch locally in place of the guest-side export script.

mod support;

use assert_cmd::prelude::*;
use banger_testkit::TestEnv;
use predicates::prelude::*;
use support::Request;

const PATCH: &str = "diff --git a/a.txt b/a.txt\nindex 1..2 100644\n--- a/a.txt\n+++ b/a.txt\n\
@@ -1 +1,2 @@\n one\n+two\ndiff --git a/b.txt b/b.txt\nnew file mode 100644\n";

/// A daemon with a prepared VM `web` whose export prints `patch`.
fn daemon(env: &TestEnv, patch: &'static str) -> support::FakeDaemon {
    support::serve(env, move |r: &Request| {
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/v1/vms/web") => (200, support::vm_record_prepared("web")),
            ("POST", "/v1/vms/web-0123456789abcdef/ssh") => {
                (200, support::ssh_line(&format!("printf '%s' '{patch}'")))
            }
            _ => (404, String::new()),
        }
    })
}

#[test]
fn export_to_a_file_names_it_with_files_and_size() {
    let env = TestEnv::new().unwrap();
    daemon(&env, PATCH);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("work.patch");
    env.command("banger")
        .args(["vm", "workspace", "export", "web", "-o"])
        .arg(&file)
        .assert()
        .success()
        .stdout("")
        .stderr(format!(
            "wrote {} (2 files changed, {} B)\n",
            file.display(),
            PATCH.len()
        ));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), PATCH);
}

#[test]
fn export_to_stdout_keeps_the_patch_clean_and_sums_up_on_stderr() {
    let env = TestEnv::new().unwrap();
    daemon(&env, PATCH);
    env.command("banger")
        .args(["vm", "workspace", "export", "web"])
        .assert()
        .success()
        .stdout(PATCH)
        .stderr(format!(
            "patch from web: 2 files changed, {} B\n",
            PATCH.len()
        ));
}

#[test]
fn an_empty_export_says_nothing_changed() {
    let env = TestEnv::new().unwrap();
    daemon(&env, "");
    env.command("banger")
        .args(["vm", "workspace", "export", "web"])
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::eq(
            "no changes in web since the prepared commit\n",
        ));
}
