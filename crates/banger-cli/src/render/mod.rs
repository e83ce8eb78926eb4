//! Turning API answers into text for people.
//!
//! Pure functions from records to strings, so every shape is unit-tested without a daemon;
//! commands decide where the text goes (stdout for data, stderr for notes) and `--json`
//! bypasses these entirely.

pub mod daemon;
pub mod error;
pub mod fields;
pub mod image;
pub mod kernel;
pub mod operation;
pub mod table;
pub mod vm;
pub mod vm_inspect;

/// The first 8 characters of an id, as shown in tables.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Milliseconds as seconds with one decimal: `4.7s`.
pub fn seconds(ms: u64) -> String {
    format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_have_one_decimal() {
        assert_eq!(seconds(4_712), "4.7s");
        assert_eq!(seconds(80), "0.0s");
        assert_eq!(seconds(61_000), "61.0s");
    }

    #[test]
    fn short_ids_never_panic() {
        assert_eq!(short_id("0123456789"), "01234567");
        assert_eq!(short_id("abc"), "abc");
    }
}
