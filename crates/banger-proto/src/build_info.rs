//! What build is running: version, commit and build time.
//!
//! Both binaries print the same line, and the daemon reports it on `/v1/ping`, so the CLI can
//! tell when it is talking to a daemon from another build. The stamp is made by the build
//! scripts of the binaries (`stamp.rs` beside this crate's `src/`) and read by
//! [`build_info!`](crate::build_info) in the crate that calls it, so a new version or commit
//! recompiles only the binaries, not this crate and everything above it.

use serde::{Deserialize, Serialize};

/// Version, commit and build time of a binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// Release version, `v1.2.3` (`BANGER_VERSION` at build time, else `v` + Cargo's).
    pub version: String,
    /// Full git commit hash, or `unknown` outside a git checkout.
    pub commit: String,
    /// Build time, RFC 3339 UTC.
    pub built_at: String,
}

/// The [`BuildInfo`] of the calling crate's build: only in crates whose build script is
/// `stamp.rs` (`banger-cli`, `bangerd`), which set the environment it reads.
#[macro_export]
macro_rules! build_info {
    () => {
        $crate::BuildInfo {
            version: env!("BANGER_VERSION").to_owned(),
            commit: env!("BANGER_COMMIT").to_owned(),
            built_at: env!("BANGER_BUILT_AT").to_owned(),
        }
    };
}

impl BuildInfo {
    /// The commit shortened to 8 characters.
    pub fn short_commit(&self) -> &str {
        self.commit.get(..8).unwrap_or(&self.commit)
    }

    /// `NAME v0.1.0 (commit 1a2b3c4d, built 2026-11-22T10:00:00Z)`.
    pub fn version_line(&self, program: &str) -> String {
        format!(
            "{program} {} (commit {}, built {})",
            self.version,
            self.short_commit(),
            self.built_at
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line_has_the_documented_shape() {
        let info = BuildInfo {
            version: "v0.1.0".into(),
            commit: "1a2b3c4d5e6f".into(),
            built_at: "2026-11-22T10:00:00Z".into(),
        };
        assert_eq!(
            info.version_line("banger"),
            "banger v0.1.0 (commit 1a2b3c4d, built 2026-11-22T10:00:00Z)"
        );
    }
}
