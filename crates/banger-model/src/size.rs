//! Byte sizes as users write them.
//!
//! Accepted forms: `512M`, `4G`, `4GiB`, `512MiB`, `4KiB`, `1T`, `4096B`, and a bare number,
//! which means MiB (the unit users think in for memory). Every unit is binary (K = 1024), with
//! or without the `iB` suffix, because disks and guest memory are sized in powers of two.
//! Formatting picks the largest unit that divides the value exactly, so `parse(format(x)) == x`
//! for every value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const KIB: u64 = 1024;
const MIB: u64 = KIB * 1024;
const GIB: u64 = MIB * 1024;
const TIB: u64 = GIB * 1024;

/// Why a size was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Empty input.
    #[error("size is empty; write it like 512M, 4G or 4GiB")]
    Empty,
    /// The number part is missing or not a whole number.
    #[error("size {0:?} is not a whole number with an optional unit (like 512M, 4G, 4GiB)")]
    BadNumber(String),
    /// The unit is not one we know.
    #[error("size {input:?} has unknown unit {unit:?}; use B, K, KiB, M, MiB, G, GiB, T or TiB")]
    BadUnit {
        /// The whole input.
        input: String,
        /// The unit part.
        unit: String,
    },
    /// The value does not fit in 64 bits.
    #[error("size {0:?} is too large")]
    Overflow(String),
}

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(u64);

impl Size {
    /// A size of `bytes` bytes.
    pub const fn from_bytes(bytes: u64) -> Self {
        Self(bytes)
    }

    /// A size of `mib` MiB (saturating).
    pub const fn from_mib(mib: u64) -> Self {
        Self(mib.saturating_mul(MIB))
    }

    /// A size of `gib` GiB (saturating).
    pub const fn from_gib(gib: u64) -> Self {
        Self(gib.saturating_mul(GIB))
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The size in whole MiB, rounded down.
    pub const fn mib(self) -> u64 {
        self.0 / MIB
    }

    /// Parses a user-written size (see the module docs).
    pub fn parse(input: &str) -> Result<Self, SizeError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(SizeError::Empty);
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        if digits.is_empty() {
            return Err(SizeError::BadNumber(input.to_owned()));
        }
        let number: u64 = digits
            .parse()
            .map_err(|_| SizeError::Overflow(input.to_owned()))?;
        let unit = unit.trim();
        let multiplier = match unit.to_ascii_lowercase().as_str() {
            "" => MIB,
            "b" => 1,
            "k" | "kb" | "kib" => KIB,
            "m" | "mb" | "mib" => MIB,
            "g" | "gb" | "gib" => GIB,
            "t" | "tb" | "tib" => TIB,
            _ if unit.starts_with('.') || unit.starts_with(',') => {
                return Err(SizeError::BadNumber(input.to_owned()));
            }
            _ => {
                return Err(SizeError::BadUnit {
                    input: input.to_owned(),
                    unit: unit.to_owned(),
                });
            }
        };
        number
            .checked_mul(multiplier)
            .map(Self)
            .ok_or_else(|| SizeError::Overflow(input.to_owned()))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        let units = [(TIB, "T"), (GIB, "G"), (MIB, "M"), (KIB, "K")];
        for (unit, suffix) in units {
            if b != 0 && b.is_multiple_of(unit) {
                return write!(f, "{}{suffix}", b / unit);
            }
        }
        if b == 0 {
            return f.write_str("0M");
        }
        write!(f, "{b}B")
    }
}

impl FromStr for Size {
    type Err = SizeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Mib(u64),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Text(s) => Size::parse(&s).map_err(serde::de::Error::custom),
            Raw::Mib(n) => n
                .checked_mul(MIB)
                .map(Size)
                .ok_or_else(|| serde::de::Error::custom(format!("size {n} MiB is too large"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(Size::parse("512M").unwrap().bytes(), 512 * MIB);
        assert_eq!(Size::parse("4G").unwrap().bytes(), 4 * GIB);
        assert_eq!(Size::parse("4GiB").unwrap().bytes(), 4 * GIB);
        assert_eq!(Size::parse("512MiB").unwrap().bytes(), 512 * MIB);
        assert_eq!(Size::parse("4KiB").unwrap().bytes(), 4 * KIB);
        assert_eq!(Size::parse("2048").unwrap().bytes(), 2048 * MIB);
        assert_eq!(Size::parse("1T").unwrap().bytes(), TIB);
        assert_eq!(Size::parse("4096B").unwrap().bytes(), 4096);
        assert_eq!(Size::parse(" 8g ").unwrap().bytes(), 8 * GIB);
    }

    #[test]
    fn rejects_nonsense_clearly() {
        assert_eq!(Size::parse(""), Err(SizeError::Empty));
        assert!(matches!(Size::parse("G"), Err(SizeError::BadNumber(_))));
        assert!(matches!(Size::parse("1.5G"), Err(SizeError::BadNumber(_))));
        assert!(matches!(Size::parse("-1G"), Err(SizeError::BadNumber(_))));
        assert!(matches!(Size::parse("4Q"), Err(SizeError::BadUnit { .. })));
        assert!(matches!(
            Size::parse("99999999999T"),
            Err(SizeError::Overflow(_))
        ));
        assert!(matches!(
            Size::parse("999999999999999999999"),
            Err(SizeError::Overflow(_))
        ));
    }

    #[test]
    fn formats_with_the_largest_exact_unit() {
        assert_eq!(Size::from_gib(8).to_string(), "8G");
        assert_eq!(Size::from_mib(2048).to_string(), "2G");
        assert_eq!(Size::from_mib(1536).to_string(), "1536M");
        assert_eq!(Size::from_bytes(4096).to_string(), "4K");
        assert_eq!(Size::from_bytes(1000).to_string(), "1000B");
        assert_eq!(Size::from_bytes(0).to_string(), "0M");
    }

    #[test]
    fn serde_accepts_text_and_bare_mib() {
        let s: Size = serde_json::from_str("\"4GiB\"").unwrap();
        assert_eq!(s, Size::from_gib(4));
        let s: Size = serde_json::from_str("512").unwrap();
        assert_eq!(s, Size::from_mib(512));
        assert_eq!(serde_json::to_string(&Size::from_gib(4)).unwrap(), "\"4G\"");
    }

    proptest! {
        #[test]
        fn format_round_trips(bytes in any::<u64>()) {
            let size = Size::from_bytes(bytes);
            prop_assert_eq!(Size::parse(&size.to_string()).unwrap(), size);
        }

        #[test]
        fn parse_never_panics(input in ".{0,24}") {
            let _ = Size::parse(&input);
        }
    }
}
