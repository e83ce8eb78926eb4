//! The workspace's dependency rules, checked over `cargo metadata`.
//!
//! Dependencies point inward to the model:
//! - `banger-model` depends on no banger crate; `banger-proto` only on the model.
//! - Adapters (store, net, vmm, image, ssh, update) use only model and proto, never each
//!   other; only `banger-daemon` composes them.
//! - `banger-cli` uses only model and proto (so the CLI cannot reach SQLite or a VMM directly).
//! - `banger-helper` (the root helper) uses only model, proto and `banger-net` (whose typed
//!   operations it carries out), never the store, the daemon or another adapter.
//! - `banger-testkit` appears only in `[dev-dependencies]`.
//! - Leaves (`banger-util`, shared helpers; `banger-guest`, the host-guest contract;
//!   `banger-jail`, the jailer's chroot mechanics the VMM backend and the root helper share)
//!   depend on no banger crate, and every crate may use them.
//! - `banger-agent` (the guest agent) uses only the leaves, so it stays small.
//!
//! Build-dependencies follow the same rules as normal ones.

use std::collections::BTreeSet;
use std::fmt;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Crates that sit at the centre and may be used by anyone.
const CORE: [&str; 2] = ["banger-model", "banger-proto"];
/// Adapters: each may use only the core.
const ADAPTERS: [&str; 6] = [
    "banger-store",
    "banger-net",
    "banger-vmm",
    "banger-image",
    "banger-ssh",
    "banger-update",
];
const TESTKIT: &str = "banger-testkit";
/// Leaf crates: they depend on no banger crate, and anyone may use them.
const LEAVES: [&str; 3] = ["banger-util", "banger-guest", "banger-jail"];

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The depending package.
    pub package: String,
    /// The dependency it may not have.
    pub dependency: String,
    /// Which rule.
    pub rule: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must not depend on {}: {}",
            self.package, self.dependency, self.rule
        )
    }
}

/// Runs `cargo metadata` for this workspace.
pub fn cargo_metadata() -> Result<Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
            manifest,
        ])
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("cargo metadata printed invalid JSON")
}

/// Every violation in `metadata` (output of `cargo metadata --no-deps`).
pub fn check(metadata: &Value) -> Vec<Violation> {
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let members: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let mut out = Vec::new();
    for package in &packages {
        let Some(name) = package["name"].as_str() else {
            continue;
        };
        let deps = package["dependencies"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for dep in deps {
            let Some(dep_name) = dep["name"].as_str() else {
                continue;
            };
            if !members.contains(dep_name) {
                continue;
            }
            let is_dev = dep["kind"].as_str() == Some("dev");
            if let Some(rule) = broken_rule(name, dep_name, is_dev) {
                out.push(Violation {
                    package: name.to_owned(),
                    dependency: dep_name.to_owned(),
                    rule,
                });
            }
        }
    }
    out
}

fn broken_rule(package: &str, dep: &str, is_dev: bool) -> Option<&'static str> {
    if dep == TESTKIT {
        return (!is_dev).then_some("the testkit is for [dev-dependencies] only");
    }
    if is_dev {
        return None;
    }
    if LEAVES.contains(&package) {
        return Some("leaf crates depend on no banger crate");
    }
    if LEAVES.contains(&dep) {
        return None;
    }
    match package {
        "banger-model" => Some("the model depends on no banger crate"),
        "banger-proto" => (dep != "banger-model").then_some("proto depends only on the model"),
        "banger-cli" => (!CORE.contains(&dep)).then_some("the CLI uses only model and proto"),
        "banger-helper" => (!CORE.contains(&dep) && dep != "banger-net")
            .then_some("the root helper uses only model, proto and banger-net"),
        p if ADAPTERS.contains(&p) => {
            (!CORE.contains(&dep)).then_some("adapters use only model and proto, never each other")
        }
        "banger-agent" => Some("the guest agent uses only the leaf crates"),
        "banger-testkit" => None,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A dependency: name and kind (`None` = normal, `Some("dev")`, `Some("build")`).
    type Dep<'a> = (&'a str, Option<&'a str>);
    /// A package and its dependencies.
    type Pkg<'a> = (&'a str, &'a [Dep<'a>]);

    fn meta(packages: &[Pkg<'_>]) -> Value {
        let packages: Vec<Value> = packages
            .iter()
            .map(|(name, deps)| {
                let deps: Vec<Value> = deps
                    .iter()
                    .map(|(d, kind)| json!({"name": d, "kind": kind}))
                    .collect();
                json!({"name": name, "dependencies": deps})
            })
            .collect();
        json!({ "packages": packages })
    }

    const ALL: [&str; 6] = [
        "banger-model",
        "banger-proto",
        "banger-store",
        "banger-cli",
        "banger-daemon",
        "banger-testkit",
    ];

    fn with(extra: Pkg<'static>) -> Value {
        let mut pkgs: Vec<Pkg<'_>> = ALL.iter().map(|n| (*n, &[][..])).collect();
        pkgs.retain(|(n, _)| *n != extra.0);
        pkgs.push(extra);
        meta(&pkgs)
    }

    #[test]
    fn cli_cannot_reach_the_store() {
        let v = check(&with(("banger-cli", &[("banger-store", None)])));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].dependency, "banger-store");
    }

    #[test]
    fn the_helper_uses_net_but_never_the_store_or_daemon() {
        let helper_deps: &[Dep<'_>] = &[
            ("banger-net", None),
            ("banger-proto", None),
            ("banger-store", None),
            ("banger-daemon", None),
        ];
        let v = check(&meta(&[
            ("banger-helper", helper_deps),
            ("banger-net", &[]),
            ("banger-proto", &[]),
            ("banger-store", &[]),
            ("banger-daemon", &[]),
        ]));
        let refused: Vec<&str> = v.iter().map(|v| v.dependency.as_str()).collect();
        assert_eq!(refused, ["banger-store", "banger-daemon"], "{v:?}");
    }

    #[test]
    fn model_depends_on_nothing_of_ours() {
        let v = check(&with(("banger-model", &[("banger-proto", None)])));
        assert_eq!(v.len(), 1);
        assert!(check(&with(("banger-model", &[("serde", None)]))).is_empty());
    }

    #[test]
    fn testkit_only_as_dev_dependency() {
        assert!(check(&with(("banger-daemon", &[("banger-testkit", Some("dev"))]))).is_empty());
        assert_eq!(
            check(&with(("banger-daemon", &[("banger-testkit", None)]))).len(),
            1
        );
        assert_eq!(
            check(&with((
                "banger-daemon",
                &[("banger-testkit", Some("build"))]
            )))
            .len(),
            1
        );
    }

    #[test]
    fn adapters_do_not_use_each_other() {
        let v = check(&meta(&[
            ("banger-model", &[]),
            ("banger-vmm", &[]),
            (
                "banger-store",
                &[("banger-vmm", None), ("banger-model", None)],
            ),
        ]));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].package, "banger-store");
    }

    #[test]
    fn the_daemon_composes_adapters() {
        assert!(
            check(&with((
                "banger-daemon",
                &[("banger-store", None), ("banger-proto", None)]
            )))
            .is_empty()
        );
    }

    #[test]
    fn leaves_serve_everyone_and_use_nothing_of_ours() {
        for user in ["banger-model", "banger-proto", "banger-cli", "banger-agent"] {
            let v = check(&meta(&[
                ("banger-util", &[]),
                ("banger-guest", &[]),
                (user, &[("banger-util", None), ("banger-guest", None)]),
            ]));
            assert!(v.is_empty(), "{user}: {v:?}");
        }
        let v = check(&meta(&[
            ("banger-proto", &[]),
            ("banger-agent", &[("banger-proto", None)]),
        ]));
        assert_eq!(v.len(), 1, "the agent uses only leaves");
        let v = check(&meta(&[
            ("banger-model", &[]),
            ("banger-util", &[("banger-model", None)]),
        ]));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].package, "banger-util");
    }

    #[test]
    fn this_workspace_follows_the_rules() {
        let metadata = cargo_metadata().expect("cargo metadata");
        let names: Vec<&str> = metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"banger-cli"), "{names:?}");
        assert!(names.contains(&"banger-store"), "{names:?}");
        let violations = check(&metadata);
        assert!(violations.is_empty(), "{violations:#?}");
    }
}
