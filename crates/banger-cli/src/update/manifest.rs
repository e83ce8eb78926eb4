//! The release manifest (`manifest.json`, written by `scripts/make-release`): the latest
//! stable version and, per version, where its tarball, `SHA256SUMS` and signature are.
//!
//! The manifest itself is not signed; it only says where to look. Trust comes from the
//! signature over `SHA256SUMS` ([`super::verify`]), so a forged manifest can at most point at
//! files that then fail verification, or at an older signed release (which `update` refuses
//! to install unless asked for by `--to`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::version::Version;

/// The platform this build installs.
pub const PLATFORM: &str = "x86_64-linux";

/// `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// Format version; this build reads 1.
    pub schema: u32,
    /// The newest non-pre-release, if any.
    pub latest_stable: Option<String>,
    /// Every published release, by version.
    pub releases: BTreeMap<String, Release>,
}

/// One release's files, as paths relative to the manifest or absolute http(s) URLs.
#[derive(Debug, Clone, Deserialize)]
pub struct Release {
    /// When it was published (RFC 3339), informational: `update` does not read it.
    #[serde(default)]
    #[allow(dead_code)]
    pub published_at: Option<String>,
    /// The tarball per platform.
    pub tarball: BTreeMap<String, String>,
    /// `SHA256SUMS`.
    pub sha256sums: String,
    /// `SHA256SUMS.sig`.
    pub signature: String,
}

/// The release picked for this host, with absolute URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Its version.
    pub version: Version,
    /// The tarball's URL.
    pub tarball_url: String,
    /// The tarball's file name (how `SHA256SUMS` names it).
    pub tarball_name: String,
    /// `SHA256SUMS`'s URL.
    pub sums_url: String,
    /// `SHA256SUMS.sig`'s URL.
    pub signature_url: String,
}

/// Why the manifest gives no release to install.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of the expected shape.
    #[error("the release manifest {url} is invalid: {message}")]
    Invalid {
        /// Where it came from.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// `--to` names a version the manifest does not list.
    #[error("release {wanted} is not published in {url} (published: {known})")]
    UnknownVersion {
        /// The version asked for.
        wanted: String,
        /// The manifest.
        url: String,
        /// What it lists.
        known: String,
    },
    /// No stable release yet and no `--to`.
    #[error("the release manifest {0} names no stable release; pick one with --to VERSION")]
    NoStable(String),
    /// The release has no build for this platform.
    #[error("release {version} has no {PLATFORM} build")]
    NoPlatform {
        /// The release.
        version: String,
    },
}

impl Manifest {
    /// Parses `text`, fetched from `url`.
    pub fn parse(url: &str, text: &str) -> Result<Self, ManifestError> {
        let invalid = |message: String| ManifestError::Invalid {
            url: url.to_owned(),
            message,
        };
        let manifest: Self = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if manifest.schema != 1 {
            return Err(invalid(format!(
                "schema {} is not one this banger reads (1); update banger by hand",
                manifest.schema
            )));
        }
        for version in manifest.releases.keys().chain(&manifest.latest_stable) {
            if Version::parse(version).is_none() {
                return Err(invalid(format!("{version:?} is not a release version")));
            }
        }
        Ok(manifest)
    }

    /// The release to install: `to`, or the latest stable one.
    pub fn select(&self, url: &str, to: Option<&Version>) -> Result<Selected, ManifestError> {
        let wanted = match to {
            Some(v) => v.clone(),
            None => self
                .latest_stable
                .as_deref()
                .and_then(Version::parse)
                .ok_or_else(|| ManifestError::NoStable(url.to_owned()))?,
        };
        let found = self
            .releases
            .iter()
            .find(|(v, _)| Version::parse(v).as_ref() == Some(&wanted));
        let Some((_, release)) = found else {
            return Err(ManifestError::UnknownVersion {
                wanted: wanted.to_string(),
                url: url.to_owned(),
                known: self.releases.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        };
        let tarball = release
            .tarball
            .get(PLATFORM)
            .ok_or_else(|| ManifestError::NoPlatform {
                version: wanted.to_string(),
            })?;
        let resolve = |path: &str| {
            resolve(url, path).ok_or_else(|| ManifestError::Invalid {
                url: url.to_owned(),
                message: format!(
                    "{path:?} is neither a relative path nor an http(s) url (release {wanted})"
                ),
            })
        };
        let tarball_url = resolve(tarball)?;
        let tarball_name = tarball_url
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or(tarball)
            .to_owned();
        Ok(Selected {
            tarball_url,
            tarball_name,
            sums_url: resolve(&release.sha256sums)?,
            signature_url: resolve(&release.signature)?,
            version: wanted,
        })
    }
}

/// `path` against the manifest's `base` URL: absolute http(s) URLs as they are, relative
/// paths (no `..`, no leading `/`) beside the manifest.
pub fn resolve(base: &str, path: &str) -> Option<String> {
    if path.starts_with("http://") || path.starts_with("https://") {
        return Some(path.to_owned());
    }
    if path.is_empty()
        || path.starts_with('/')
        || path.contains("://")
        || path.split('/').any(|s| s == ".." || s.is_empty())
    {
        return None;
    }
    let dir = base.rsplit_once('/').map_or(base, |(dir, _)| dir);
    Some(format!("{dir}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:8000/releases/manifest.json";

    fn manifest() -> Manifest {
        Manifest::parse(
            URL,
            r#"{
              "schema": 1,
              "latest_stable": "v1.2.0",
              "releases": {
                "v1.2.0": {
                  "published_at": "2026-12-01T00:00:00Z",
                  "tarball": {"x86_64-linux": "v1.2.0/banger-v1.2.0-x86_64-linux.tar.gz"},
                  "sha256sums": "v1.2.0/SHA256SUMS",
                  "signature": "https://mirror.example/v1.2.0/SHA256SUMS.sig"
                },
                "v1.3.0-rc.1": {
                  "tarball": {"aarch64-linux": "x.tar.gz"},
                  "sha256sums": "s", "signature": "g"
                }
              }
            }"#,
        )
        .expect("parses")
    }

    #[test]
    fn latest_stable_resolves_beside_the_manifest() {
        let s = manifest().select(URL, None).unwrap();
        assert_eq!(s.version.to_string(), "v1.2.0");
        assert_eq!(
            s.tarball_url,
            "http://127.0.0.1:8000/releases/v1.2.0/banger-v1.2.0-x86_64-linux.tar.gz"
        );
        assert_eq!(s.tarball_name, "banger-v1.2.0-x86_64-linux.tar.gz");
        assert_eq!(
            s.sums_url,
            "http://127.0.0.1:8000/releases/v1.2.0/SHA256SUMS"
        );
        assert_eq!(
            s.signature_url,
            "https://mirror.example/v1.2.0/SHA256SUMS.sig"
        );
    }

    #[test]
    fn unknown_versions_and_platforms_are_refused() {
        let m = manifest();
        let err = m
            .select(URL, Version::parse("v9.9.8").as_ref())
            .unwrap_err();
        assert!(
            matches!(&err, ManifestError::UnknownVersion { known, .. } if known.contains("v1.2.0")),
            "{err}"
        );
        // `1.2.0` and `v1.2.0` are one version.
        assert!(m.select(URL, Version::parse("1.2.0").as_ref()).is_ok());
        let err = m
            .select(URL, Version::parse("v1.3.0-rc.1").as_ref())
            .unwrap_err();
        assert!(matches!(err, ManifestError::NoPlatform { .. }), "{err}");
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        for (text, needle) in [
            ("{", "invalid"),
            (r#"{"schema": 2, "releases": {}}"#, "schema 2"),
            (
                r#"{"schema": 1, "latest_stable": "latest", "releases": {}}"#,
                "\"latest\"",
            ),
        ] {
            let err = Manifest::parse(URL, text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let none = Manifest::parse(URL, r#"{"schema": 1, "releases": {}}"#).unwrap();
        assert!(matches!(
            none.select(URL, None),
            Err(ManifestError::NoStable(_))
        ));
    }

    #[test]
    fn paths_cannot_escape_the_manifest_dir() {
        for bad in ["../x", "/etc/passwd", "a//b", "file:///x", ""] {
            assert_eq!(resolve(URL, bad), None, "{bad}");
        }
        assert_eq!(
            resolve(URL, "a/b").as_deref(),
            Some("http://127.0.0.1:8000/releases/a/b")
        );
    }
}
