//! What `bangerd doctor --json` prints and `banger doctor` reads: the host checks.
//!
//! The checks that need the daemon's adapters (the store opened read-only, the VMM choice, the
//! agent lookup) run in `bangerd`; the CLI runs `bangerd doctor --json`, adds its own checks
//! (is there a `bangerd`, do the two builds match) and renders the result. This type is the
//! contract between the two binaries, so both sides parse it with the same definition.
//!
//! Statuses, from good to bad: `ok`; `info` (nothing to fix on this host, but worth knowing:
//! something banger does not do yet, or an optional convenience that is not set up); `warn`
//! (things may not work as expected); `fail` (VM commands will fail until it is fixed).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::build_info::BuildInfo;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Fine.
    Ok,
    /// Fine, with a note (not built yet, optional and not set up).
    Info,
    /// May cause trouble; the fix says what to do.
    Warn,
    /// VM commands will fail until it is fixed.
    Fail,
}

impl CheckStatus {
    /// The lowercase name used on the wire and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }

    /// Whether a check with this status counts as passed (`ok` or `info`).
    pub fn passed(self) -> bool {
        matches!(self, Self::Ok | Self::Info)
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable, short name (`kvm`, `vmm`, `store`, …).
    pub name: String,
    /// The outcome.
    pub status: CheckStatus,
    /// What was found, one line.
    pub detail: String,
    /// What to do about it; set whenever the status is `warn` or `fail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    /// A check without a fix.
    pub fn new(name: &str, status: CheckStatus, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    /// An `ok` check.
    pub fn ok(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, CheckStatus::Ok, detail)
    }

    /// An `info` check.
    pub fn info(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, CheckStatus::Info, detail)
    }

    /// A `warn` check with its fix.
    pub fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, CheckStatus::Warn, detail).with_fix(fix)
    }

    /// A `fail` check with its fix.
    pub fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, CheckStatus::Fail, detail).with_fix(fix)
    }

    /// The same check with `fix` set.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// Everything `bangerd doctor --json` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// The build of the `bangerd` that ran the checks (for the version-drift check).
    pub build: BuildInfo,
    /// The few facts a healthy host's one-line summary shows: `vmm: qemu, kvm: not usable, tcg`.
    pub summary: String,
    /// The checks, in display order.
    pub checks: Vec<Check>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_lowercase_on_the_wire_and_fix_is_optional() {
        let check = Check::ok("kvm", "usable");
        let json = serde_json::to_string(&check).expect("encode");
        assert_eq!(json, r#"{"name":"kvm","status":"ok","detail":"usable"}"#);
        let back: Check = serde_json::from_str(
            r#"{"name":"vmm","status":"fail","detail":"none","fix":"install"}"#,
        )
        .expect("decode");
        assert_eq!(back, Check::fail("vmm", "none", "install"));
        assert!(CheckStatus::Info.passed() && !CheckStatus::Warn.passed());
        assert!(CheckStatus::Fail > CheckStatus::Warn && CheckStatus::Warn > CheckStatus::Info);
    }
}
