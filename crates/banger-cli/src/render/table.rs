//! Aligned text tables for list commands.
//!
//! Columns are padded to their widest cell (counted in characters) and separated by two
//! spaces; the last column is never padded, so no line has trailing spaces. The header line
//! is bold on a terminal and plain elsewhere.

use crate::style;

/// A table being filled row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

const GAP: &str = "  ";

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells print empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The lines without styling: header first.
    pub fn lines(&self) -> Vec<String> {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        std::iter::once(&header)
            .chain(&self.rows)
            .map(|row| {
                let mut line = String::new();
                for (i, width) in widths.iter().enumerate() {
                    let cell = row.get(i).map_or("", String::as_str);
                    if i + 1 == columns {
                        line.push_str(cell);
                    } else {
                        line.push_str(cell);
                        let pad = width.saturating_sub(cell.chars().count());
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(GAP);
                    }
                }
                line.trim_end().to_owned()
            })
            .collect()
    }

    /// The whole table, header styled, each line ending in a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, line) in self.lines().into_iter().enumerate() {
            if i == 0 {
                out.push_str(&style::paint(style::HEADER, &line));
            } else {
                out.push_str(&line);
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let mut t = Table::new(&["NAME", "STATE", "IP"]);
        t.row(vec!["web".into(), "running".into(), "172.16.0.2".into()]);
        t.row(vec!["a-longer-name".into(), "stopped".into(), "-".into()]);
        assert_eq!(
            t.lines(),
            [
                "NAME           STATE    IP",
                "web            running  172.16.0.2",
                "a-longer-name  stopped  -",
            ]
        );
    }

    #[test]
    fn no_trailing_spaces_and_short_rows_are_fine() {
        let mut t = Table::new(&["A", "B", "C"]);
        t.row(vec!["x".into()]);
        t.row(vec!["y".into(), "".into(), "".into()]);
        for line in t.lines() {
            assert_eq!(line, line.trim_end());
        }
        assert_eq!(t.lines()[1], "x");
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        let mut t = Table::new(&["K", "V"]);
        t.row(vec!["é".into(), "1".into()]);
        t.row(vec!["ab".into(), "2".into()]);
        assert_eq!(t.lines(), ["K   V", "é   1", "ab  2"]);
    }

    #[test]
    fn render_ends_every_line() {
        let t = Table::new(&["ONLY"]);
        let out = t.render();
        assert!(out.ends_with('\n'));
        assert!(out.contains("ONLY"));
    }
}
