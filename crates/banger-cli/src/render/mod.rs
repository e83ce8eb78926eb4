//! Turning API answers into text for people.
//!
//! Pure functions from records to strings, so every shape is unit-tested without a daemon;
//! commands decide where the text goes (stdout for data, stderr for notes) and `--json`
//! bypasses these entirely.

pub mod catalog;
pub mod daemon;
pub mod error;
pub mod fields;
pub mod image;
pub mod kernel;
pub mod operation;
pub mod snapshot;
pub mod table;
pub mod vm;
pub mod vm_inspect;

/// The first 8 characters of an id, as shown in tables.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A wall time for people, the one format of stage timings and `ready in`: under a second in
/// milliseconds (`850ms`), under a minute in seconds with one decimal (`4.7s`), otherwise
/// minutes and two-digit seconds (`1m05s`). Digits are truncated, never rounded up, so a
/// value never shows the next unit's boundary (`59.99s` is `59.9s`, not `60.0s`).
pub fn elapsed(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{}.{}s", ms / 1000, (ms % 1000) / 100),
        _ => {
            let secs = ms / 1000;
            format!("{}m{:02}s", secs / 60, secs % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_picks_the_unit_by_size() {
        assert_eq!(elapsed(0), "0ms");
        assert_eq!(elapsed(850), "850ms");
        assert_eq!(elapsed(999), "999ms");
        assert_eq!(elapsed(1_000), "1.0s");
        assert_eq!(elapsed(4_712), "4.7s");
        assert_eq!(elapsed(59_999), "59.9s");
        assert_eq!(elapsed(60_000), "1m00s");
        assert_eq!(elapsed(65_400), "1m05s");
        assert_eq!(elapsed(3_725_000), "62m05s");
    }

    #[test]
    fn short_ids_never_panic() {
        assert_eq!(short_id("0123456789"), "01234567");
        assert_eq!(short_id("abc"), "abc");
    }
}
