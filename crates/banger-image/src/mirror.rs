//! Which Debian mirror to build from.
//!
//! SPEC §8 says the default image comes from "the host's configured Debian mirror". The host's
//! apt sources say which that is: deb822 files (`/etc/apt/sources.list.d/*.sources`) and the
//! one-line format (`/etc/apt/sources.list`, `*.list`). The parsers here are pure and only
//! extract what a [`Mirror`] needs; a caller-supplied override (from banger's config) replaces
//! the archive URI. The host's suite does not matter: any Debian mirror serves every suite, so a
//! trixie host can still build the bookworm image. Non-Debian entries (Ubuntu, third-party
//! repositories) are ignored by recognising Debian suite names.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Debian codenames and aliases recognised in apt sources.
const DEBIAN_SUITES: &[&str] = &[
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "duke",
    "sid",
    "stable",
    "testing",
    "unstable",
    "oldstable",
    "oldoldstable",
    "experimental",
];

/// The Debian archive (and security archive) URIs to fetch packages from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirror {
    /// Main archive, e.g. `http://deb.debian.org/debian`.
    pub archive: String,
    /// Security archive, e.g. `http://deb.debian.org/debian-security`, when known.
    pub security: Option<String>,
}

/// One source entry (a deb822 stanza or a one-line entry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AptSource {
    /// `deb`, `deb-src`.
    pub types: Vec<String>,
    /// Archive URIs.
    pub uris: Vec<String>,
    /// Suites (`bookworm`, `bookworm-updates`).
    pub suites: Vec<String>,
    /// Components (`main`).
    pub components: Vec<String>,
    /// `Enabled: no` turns a deb822 stanza off.
    pub enabled: bool,
}

/// No usable mirror.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// A mirror URI is not an `http`, `https` or `file` URL or holds unsafe characters.
    #[error("invalid mirror url `{0}` (want http://, https:// or file:/ without spaces)")]
    InvalidUrl(String),
    /// The host's apt sources list no Debian archive.
    #[error("no Debian mirror found in the host's apt sources; set the mirror in banger's config")]
    NotFound,
    /// A sources file could not be read.
    #[error("cannot read apt sources {path}")]
    Read {
        /// File path.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Parses deb822 sources (`*.sources`).
pub fn parse_deb822(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let flush = |fields: &mut Vec<(String, String)>, out: &mut Vec<AptSource>| {
        if fields.is_empty() {
            return;
        }
        let get = |key: &str| -> Vec<String> {
            fields
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(key))
                .flat_map(|(_, v)| v.split_whitespace().map(str::to_owned))
                .collect()
        };
        let enabled = fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Enabled"))
            .is_none_or(|(_, v)| !v.trim().eq_ignore_ascii_case("no"));
        out.push(AptSource {
            types: get("Types"),
            uris: get("URIs"),
            suites: get("Suites"),
            components: get("Components"),
            enabled,
        });
        fields.clear();
    };
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut fields, &mut out);
        } else if line.starts_with([' ', '\t']) {
            // Continuation of a folded field (e.g. an inline Signed-By key).
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    flush(&mut fields, &mut out);
    out
}

/// Parses one-line sources (`sources.list`, `*.list`).
pub fn parse_one_line(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut rest = line;
        let Some((kind, after)) = rest.split_once(char::is_whitespace) else {
            continue;
        };
        rest = after.trim_start();
        if rest.starts_with('[') {
            match rest.find(']') {
                Some(end) => rest = rest[end + 1..].trim_start(),
                None => continue,
            }
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(AptSource {
            types: vec![kind.to_owned()],
            uris: vec![uri.to_owned()],
            suites: vec![suite.to_owned()],
            components: words.map(str::to_owned).collect(),
            enabled: true,
        });
    }
    out
}

/// Strips `-updates`, `-security`, `/updates`, … to the codename.
fn base_suite(suite: &str) -> &str {
    suite.split(['-', '/']).next().unwrap_or(suite)
}

fn is_security_suite(suite: &str) -> bool {
    suite.ends_with("-security") || suite.ends_with("/updates")
}

/// Picks the Debian archive and security URIs out of parsed sources.
///
/// Prefers entries that list `suite` itself; otherwise takes the first entry with any Debian
/// suite. Only `deb` entries that are enabled and have an http(s)/file URI count.
pub fn select(sources: &[AptSource], suite: &str) -> Option<Mirror> {
    let usable = |s: &&AptSource| s.enabled && s.types.iter().any(|t| t == "deb");
    let mut archive_exact = None;
    let mut archive_any = None;
    let mut security = None;
    for source in sources.iter().filter(usable) {
        for uri in &source.uris {
            let Ok(uri) = validate_url(uri) else { continue };
            for s in &source.suites {
                if !DEBIAN_SUITES.contains(&base_suite(s)) {
                    continue;
                }
                if is_security_suite(s) {
                    security.get_or_insert_with(|| uri.clone());
                } else if s == suite {
                    archive_exact.get_or_insert_with(|| uri.clone());
                } else {
                    archive_any.get_or_insert_with(|| uri.clone());
                }
            }
        }
    }
    archive_exact
        .or(archive_any)
        .map(|archive| Mirror { archive, security })
}

/// Checks a mirror URL and strips trailing slashes.
pub fn validate_url(url: &str) -> Result<String, MirrorError> {
    let ok_scheme = ["http://", "https://", "file:/"]
        .iter()
        .any(|p| url.starts_with(p));
    let ok_chars = url
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '[' | ']' | '"' | '\'' | '\\' | '#'));
    if !ok_scheme || !ok_chars || url.len() > 512 {
        return Err(MirrorError::InvalidUrl(url.to_owned()));
    }
    let trimmed = url.trim_end_matches('/');
    if trimmed.ends_with(':') || trimmed.len() < "file:/".len() {
        return Err(MirrorError::InvalidUrl(url.to_owned()));
    }
    Ok(trimmed.to_owned())
}

/// Reads every sources file under `apt_etc` (normally `/etc/apt`), in apt's order.
pub fn read_host_sources(apt_etc: &Path) -> Result<Vec<AptSource>, MirrorError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| MirrorError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let mut sources = Vec::new();
    let main = apt_etc.join("sources.list");
    if main.is_file() {
        sources.extend(parse_one_line(&read(&main)?));
    }
    let dir = apt_etc.join("sources.list.d");
    let mut parts: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    };
    parts.sort();
    for path in parts {
        match path.extension().and_then(|e| e.to_str()) {
            Some("sources") => sources.extend(parse_deb822(&read(&path)?)),
            Some("list") => sources.extend(parse_one_line(&read(&path)?)),
            _ => {}
        }
    }
    Ok(sources)
}

/// Resolves the mirror: `override_archive` (from config) wins for the archive; the security
/// archive and, without an override, the archive come from the host's apt sources.
pub fn resolve(
    override_archive: Option<&str>,
    apt_etc: &Path,
    suite: &str,
) -> Result<Mirror, MirrorError> {
    let override_archive = override_archive.map(validate_url).transpose()?;
    let host = select(&read_host_sources(apt_etc)?, suite);
    match (override_archive, host) {
        (Some(archive), host) => Ok(Mirror {
            archive,
            security: host.and_then(|h| h.security),
        }),
        (None, Some(host)) => Ok(host),
        (None, None) => Err(MirrorError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    #[test]
    fn deb822_this_hosts_sources() {
        let s = parse_deb822(DEB822);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            select(&s, "bookworm"),
            Some(Mirror {
                archive: "http://deb.debian.org/debian".into(),
                security: Some("http://deb.debian.org/debian-security".into()),
            })
        );
    }

    #[test]
    fn deb822_folded_fields_disabled_and_src() {
        let text = "\
Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://off.example/debian
Suites: bookworm
Enabled: no

Types: deb deb-src
URIs: https://mirror.example/debian/
Suites: trixie
Components: main contrib
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 abc
 -----END PGP PUBLIC KEY BLOCK-----
";
        let s = parse_deb822(text);
        assert_eq!(s.len(), 3);
        assert!(!s[1].enabled);
        assert_eq!(s[2].components, ["main", "contrib"]);
        let m = select(&s, "bookworm").expect("trixie host still gives a mirror");
        assert_eq!(m.archive, "https://mirror.example/debian");
        assert_eq!(m.security, None);
    }

    #[test]
    fn one_line_with_options_and_comments() {
        let text = "\
# comment
deb [arch=amd64 signed-by=/k.gpg] http://ftp.de.debian.org/debian bookworm main contrib
deb-src http://ftp.de.debian.org/debian bookworm main
deb http://security.debian.org/debian-security bookworm-security main # trailing
deb http://archive.ubuntu.com/ubuntu jammy main
deb cdrom:[Debian]/ bookworm main
";
        let s = parse_one_line(text);
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].components, ["main", "contrib"]);
        let m = select(&s, "bookworm").expect("mirror");
        assert_eq!(m.archive, "http://ftp.de.debian.org/debian");
        assert_eq!(
            m.security.as_deref(),
            Some("http://security.debian.org/debian-security")
        );
    }

    #[test]
    fn ubuntu_only_host_has_no_debian_mirror() {
        let s = parse_one_line("deb http://archive.ubuntu.com/ubuntu noble main\n");
        assert_eq!(select(&s, "bookworm"), None);
    }

    #[test]
    fn prefers_exact_suite() {
        let s = parse_one_line(
            "deb http://a.example/debian trixie main\ndeb http://b.example/debian bookworm main\n",
        );
        assert_eq!(
            select(&s, "bookworm").map(|m| m.archive),
            Some("http://b.example/debian".into())
        );
    }

    #[test]
    fn url_validation() {
        assert_eq!(
            validate_url("http://deb.debian.org/debian/")
                .ok()
                .as_deref(),
            Some("http://deb.debian.org/debian")
        );
        assert!(validate_url("file:///srv/mirror").is_ok());
        for bad in [
            "ftp://x/debian",
            "http://x/ debian",
            "-ohttp://x",
            "http://",
            "http://x/[y]",
        ] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolve_reads_a_tree_and_applies_override() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sources.list.d")).expect("mkdir");
        std::fs::write(dir.path().join("sources.list.d/debian.sources"), DEB822).expect("write");
        std::fs::write(dir.path().join("sources.list.d/ignored.txt"), "junk").expect("write");
        let m = resolve(None, dir.path(), "bookworm").expect("host mirror");
        assert_eq!(m.archive, "http://deb.debian.org/debian");
        let m =
            resolve(Some("http://local.example/debian"), dir.path(), "bookworm").expect("override");
        assert_eq!(m.archive, "http://local.example/debian");
        assert!(m.security.is_some());
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            resolve(None, empty.path(), "bookworm"),
            Err(MirrorError::NotFound)
        ));
        assert!(matches!(
            resolve(Some("bogus"), empty.path(), "bookworm"),
            Err(MirrorError::InvalidUrl(_))
        ));
    }
}
