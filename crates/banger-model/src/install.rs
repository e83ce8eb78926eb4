//! `/etc/banger/install.toml`: what `banger system install` installed, and for whom.
//!
//! Written by the installer, read by `banger system status` (version drift), by `bangerd
//! --system` (the owner's home, for the owner's config) and by the CLI (its presence means
//! "talk to the system daemon, never start a user one"). Unknown keys are refused so a typo
//! in a hand edit is reported rather than ignored.

use serde::{Deserialize, Serialize};

/// The install metadata file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallMetadata {
    /// banger's version, e.g. `0.1.0`.
    pub version: String,
    /// The commit the installed binaries were built from.
    pub commit: String,
    /// When they were built (RFC 3339).
    pub built_at: String,
    /// The owner user's name: the daemon runs as this user.
    pub owner: String,
    /// The owner's uid.
    pub owner_uid: u32,
    /// The owner's home (the daemon reads `~/.config/banger/config.toml` from it).
    pub owner_home: String,
}

/// The metadata file could not be read as install metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid install metadata: {0}")]
pub struct InstallMetadataError(String);

impl InstallMetadata {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, InstallMetadataError> {
        toml::from_str(text).map_err(|e| InstallMetadataError(e.to_string().trim().to_owned()))
    }

    /// The file's text, with a header saying who wrote it.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# Written by `banger system install`; removed by `banger system uninstall`.\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> InstallMetadata {
        InstallMetadata {
            version: "0.1.0".into(),
            commit: "abc123".into(),
            built_at: "2026-12-02T10:00:00Z".into(),
            owner: "tester".into(),
            owner_uid: 1000,
            owner_home: "/home/tester".into(),
        }
    }

    #[test]
    fn round_trips_and_names_the_owner() {
        let text = sample().to_toml();
        assert!(text.contains("owner = \"tester\""), "{text}");
        assert!(text.contains("owner_home = \"/home/tester\""), "{text}");
        assert_eq!(InstallMetadata::parse(&text).unwrap(), sample());
    }

    #[test]
    fn unknown_or_missing_keys_are_errors() {
        let extra = format!("{}colour = 1\n", sample().to_toml());
        assert!(InstallMetadata::parse(&extra).is_err());
        assert!(InstallMetadata::parse("version = \"0.1.0\"\n").is_err());
    }
}
