//! What build is running: version, commit and build time, stamped by `build.rs`.
//!
//! Both binaries print the same line, and the daemon reports it on `/v1/ping`, so the CLI can
//! tell when it is talking to a daemon from another build.

use serde::{Deserialize, Serialize};

/// Version, commit and build time of a binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// Semantic version from Cargo.
    pub version: String,
    /// Full git commit hash, or `unknown` outside a git checkout.
    pub commit: String,
    /// Build time, RFC 3339 UTC.
    pub built_at: String,
}

impl BuildInfo {
    /// The build this binary came from.
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            commit: env!("BANGER_COMMIT").to_owned(),
            built_at: env!("BANGER_BUILT_AT").to_owned(),
        }
    }

    /// The commit shortened to 8 characters.
    pub fn short_commit(&self) -> &str {
        self.commit.get(..8).unwrap_or(&self.commit)
    }

    /// `NAME 0.1.0 (commit 1a2b3c4d, built 2026-11-22T10:00:00Z)`.
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
            version: "0.1.0".into(),
            commit: "1a2b3c4d5e6f".into(),
            built_at: "2026-11-22T10:00:00Z".into(),
        };
        assert_eq!(
            info.version_line("banger"),
            "banger 0.1.0 (commit 1a2b3c4d, built 2026-11-22T10:00:00Z)"
        );
    }

    #[test]
    fn current_build_is_stamped() {
        let info = BuildInfo::current();
        assert!(!info.commit.is_empty());
        assert_eq!(info.built_at.len(), 20, "{}", info.built_at);
        assert!(info.built_at.ends_with('Z'));
    }
}
