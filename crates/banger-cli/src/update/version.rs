//! Release versions (`v1.2.3`, `v1.2.3-rc.1`) and their order, for "is there a newer release".

use std::cmp::Ordering;
use std::fmt;

/// A parsed release version; displays with a leading `v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    core: [u64; 3],
    pre: Option<String>,
}

impl Version {
    /// Parses `v1.2.3`, `1.2.3` or `v1.2.3-rc.1`; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        let text = raw.strip_prefix('v').unwrap_or(raw);
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let mut parts = [0u64; 3];
        let mut count = 0;
        for part in core.split('.') {
            if count == 3 || part.is_empty() || !part.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            parts[count] = part.parse().ok()?;
            count += 1;
        }
        if count != 3 {
            return None;
        }
        if let Some(pre) = pre
            && (pre.is_empty()
                || !pre
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        {
            return None;
        }
        Some(Self {
            core: parts,
            pre: pre.map(str::to_owned),
        })
    }

    /// Whether this is a pre-release (`-rc.1`…), never picked as the latest stable.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some()
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        // A pre-release sorts before its release; pre-releases compare as text.
        self.core
            .cmp(&other.core)
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.core;
        write!(f, "v{a}.{b}.{c}")?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(v("1.2.3").to_string(), "v1.2.3");
        assert_eq!(v("v1.10.3-rc.1").to_string(), "v1.10.3-rc.1");
        for bad in [
            "",
            "1.2",
            "v1.2.x",
            "1.2.3-",
            "latest",
            "1.2.3-rc 1",
            "1.2.3.4",
            "v.1.2",
        ] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn orders_numerically_with_prereleases_first() {
        assert!(v("v1.10.0") > v("v1.9.9"));
        assert!(v("v1.0.0") > v("v1.0.0-rc.2"));
        assert!(v("v1.0.0-rc.2") > v("v1.0.0-rc.1"));
        assert_eq!(v("1.0.0"), v("v1.0.0"));
        assert!(v("v1.0.0-rc.1").is_prerelease() && !v("v1.0.0").is_prerelease());
    }
}
