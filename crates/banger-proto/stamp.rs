// The build stamp behind `banger_proto::build_info!()`: the body of the build scripts of the
// binaries (`banger-cli/build.rs` and `bangerd/build.rs` `include!` this file), not of this
// crate, so a new stamp recompiles only those two crates, never the workspace under them.
//
// - `BANGER_VERSION` (e.g. `v9.9.9`, set by `scripts/make-release`) is what `--version`
//   prints; unset, it is `v` + the Cargo version. It must look like a release version.
// - `BANGER_BUILD_COMMIT` overrides the git commit (builds outside a checkout).
// - `SOURCE_DATE_EPOCH` pins the build time (reproducible builds).
// Re-runs only when one of those changes or HEAD moves, so incremental builds stay
// incremental.

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// `v1.2.3` or `v1.2.3-rc.1` (a leading `v` is added when missing); `None` when malformed.
fn release_version(raw: &str) -> Option<String> {
    let text = raw.strip_prefix('v').unwrap_or(raw);
    let (core, pre) = match text.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (text, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    let pre_ok = pre.is_none_or(|p| {
        !p.is_empty()
            && p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    });
    (parts.len() == 3 && parts.iter().all(numeric) && pre_ok).then(|| format!("v{text}"))
}

fn main() {
    println!("cargo:rerun-if-env-changed=BANGER_VERSION");
    println!("cargo:rerun-if-env-changed=BANGER_BUILD_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // HEAD lives in the worktree's git dir, branch refs in the common one (they differ in a
    // `git worktree`). Only existing files are watched: cargo re-runs on a missing one every
    // time.
    let head_dir = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from);
    let common_dir =
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]).map(PathBuf::from);
    let mut watched = Vec::new();
    if let Some(dir) = &head_dir {
        watched.push(dir.join("HEAD"));
    }
    if let Some(dir) = common_dir.as_ref().or(head_dir.as_ref()) {
        watched.push(dir.join("packed-refs"));
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(dir.join(reference));
        }
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let version = match std::env::var("BANGER_VERSION") {
        Ok(raw) if !raw.is_empty() => match release_version(&raw) {
            Some(version) => version,
            None => {
                eprintln!(
                    "BANGER_VERSION={raw:?} is not a release version like v1.2.3 or v1.2.3-rc.1"
                );
                std::process::exit(1);
            }
        },
        _ => format!("v{}", std::env::var("CARGO_PKG_VERSION").unwrap_or_default()),
    };
    let commit = std::env::var("BANGER_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=BANGER_VERSION={version}");
    println!("cargo:rustc-env=BANGER_COMMIT={commit}");
    println!(
        "cargo:rustc-env=BANGER_BUILT_AT={}",
        banger_model::time::rfc3339(epoch)
    );
}
