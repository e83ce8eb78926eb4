//! The last lines of some output, for error messages.
//!
//! When a tool or a VMM fails, the useful part of what it printed is nearly always at the end,
//! and an error message must stay one readable line. These helpers keep the last non-blank
//! lines; callers choose how to join them. [`file_tail`] reads at most [`WINDOW`] bytes from
//! the end of a file, so a console log of any size costs the same.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How many bytes from the end of a file [`file_tail`] reads at most.
pub const WINDOW: u64 = 64 * 1024;

/// The last `lines` non-blank lines of `text`, oldest first.
pub fn last_lines(text: &str, lines: usize) -> Vec<&str> {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].to_vec()
}

/// The last `lines` non-blank lines of `bytes` (lossy UTF-8), joined with `sep`.
pub fn joined(bytes: &[u8], lines: usize, sep: &str) -> String {
    last_lines(&String::from_utf8_lossy(bytes), lines).join(sep)
}

/// The last `lines` non-blank lines written to the file at `path` after byte offset `from`
/// (0 for the whole file). A missing or unreadable file has no lines: a tail only ever
/// decorates another error.
pub fn file_tail(path: &Path, from: u64, lines: usize) -> Vec<String> {
    read_tail(path, from).map_or_else(
        |_| Vec::new(),
        |text| {
            last_lines(&text, lines)
                .into_iter()
                .map(str::to_owned)
                .collect()
        },
    )
}

fn read_tail(path: &Path, from: u64) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = from.max(len.saturating_sub(WINDOW)).min(len);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(len - start).read_to_end(&mut bytes)?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if start > from {
        // The window starts inside a line: drop that partial line.
        let cut = text.find('\n').map_or(text.len(), |i| i + 1);
        text.drain(..cut);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_non_blank_lines() {
        assert_eq!(last_lines("a\n\nb\n  \nc\n", 2), ["b", "c"]);
        assert_eq!(last_lines("a\nb", 5), ["a", "b"]);
        assert!(last_lines("", 3).is_empty());
        assert_eq!(joined(b"a\n\nb\nc\n", 2, " | "), "b | c");
    }

    #[test]
    fn file_tails_start_at_an_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        std::fs::write(&log, "old run\n").expect("write");
        let start = std::fs::metadata(&log).expect("meta").len();
        let mut text = String::from("old run\n");
        for i in 0..15 {
            text.push_str(&format!("line {i}\n"));
        }
        std::fs::write(&log, text).expect("write");
        let tail = file_tail(&log, start, 10);
        assert_eq!(tail.len(), 10);
        assert_eq!(tail[0], "line 5");
        assert_eq!(tail[9], "line 14");
        assert_eq!(file_tail(&log, 0, 100)[0], "old run");
        assert!(file_tail(&dir.path().join("none"), 0, 10).is_empty());
        assert!(
            file_tail(&log, 1 << 40, 10).is_empty(),
            "offset past the end"
        );
    }

    #[test]
    fn large_files_are_read_from_the_end_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("big");
        let mut text = "x".repeat(usize::try_from(WINDOW).expect("fits") * 2);
        text.push_str("\nsecond to last\nlast\n");
        std::fs::write(&log, text).expect("write");
        assert_eq!(file_tail(&log, 0, 5), ["second to last", "last"]);
    }
}
