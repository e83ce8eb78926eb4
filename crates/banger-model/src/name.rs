//! VM names.
//!
//! A name is 1–63 characters of `[a-z0-9-]` with no leading or trailing `-`, so it is a valid
//! DNS label (`NAME.vm`) and a valid hostname. Names are never normalised: `Web` is rejected,
//! not lowercased, so what the user typed is what the user gets. The CLI checks names before it
//! talks to the daemon and the daemon checks them again, so both share this one rule.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest allowed name: one DNS label.
pub const MAX_NAME_LEN: usize = 63;

/// The rule, in words, for error messages and `--help`.
pub const NAME_RULE: &str =
    "1-63 characters of lowercase letters, digits and '-', not starting or ending with '-'";

/// Why a VM name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("vm name is empty; use {NAME_RULE}")]
    Empty,
    /// The name is longer than one DNS label.
    #[error("vm name {name:?} is {len} characters long; the limit is {MAX_NAME_LEN}")]
    TooLong {
        /// The offending name.
        name: String,
        /// Its length in characters.
        len: usize,
    },
    /// The name holds a character outside `[a-z0-9-]`.
    #[error("vm name {name:?} contains {found:?}; use {NAME_RULE}")]
    BadChar {
        /// The offending name.
        name: String,
        /// The first character that is not allowed.
        found: char,
    },
    /// The name starts or ends with `-`.
    #[error("vm name {name:?} starts or ends with '-'; use {NAME_RULE}")]
    EdgeHyphen {
        /// The offending name.
        name: String,
    },
}

/// A validated VM name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VmName(String);

impl VmName {
    /// Validates `raw` against the name rule.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        let len = raw.chars().count();
        if len > MAX_NAME_LEN {
            return Err(NameError::TooLong {
                name: raw.to_owned(),
                len,
            });
        }
        if let Some(found) = raw
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(NameError::BadChar {
                name: raw.to_owned(),
                found,
            });
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return Err(NameError::EdgeHyphen {
                name: raw.to_owned(),
            });
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for VmName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<VmName> for String {
    fn from(value: VmName) -> Self {
        value.0
    }
}

impl std::str::FromStr for VmName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for ok in ["a", "web", "e2e-a", "0", "a-b-c", &"x".repeat(63)] {
            assert_eq!(VmName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_and_names_the_rule() {
        let cases = [
            ("", "empty"),
            ("Bad Name", "contains 'B'"),
            ("web_1", "contains '_'"),
            ("-web", "starts or ends"),
            ("web-", "starts or ends"),
            ("wéb", "contains 'é'"),
        ];
        for (bad, needle) in cases {
            let err = VmName::parse(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad:?}: {err}");
            if !bad.is_empty() {
                assert!(err.contains(NAME_RULE), "{err}");
            }
        }
        let long = "a".repeat(64);
        assert!(matches!(
            VmName::parse(&long),
            Err(NameError::TooLong { len: 64, .. })
        ));
    }

    #[test]
    fn never_normalises() {
        assert!(VmName::parse("Web").is_err());
        assert!(VmName::parse(" web").is_err());
    }

    #[test]
    fn serde_validates() {
        let ok: VmName = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(ok.as_str(), "abc");
        assert!(serde_json::from_str::<VmName>("\"A\"").is_err());
    }
}
