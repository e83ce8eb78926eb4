//! `key: value` blocks for `show` commands.
//!
//! Keys are padded so values line up; a missing value prints `-` rather than vanishing, so
//! the shape of the output does not depend on the record.

/// A block of named values, in insertion order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    rows: Vec<(&'static str, String)>,
}

impl Fields {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value.
    pub fn add(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.rows.push((key, value.into()));
        self
    }

    /// Adds an optional value, shown as `-` when absent.
    pub fn opt(&mut self, key: &'static str, value: Option<impl Into<String>>) -> &mut Self {
        let value = value.map_or_else(|| "-".to_owned(), Into::into);
        self.add(key, value)
    }

    /// The block, one `key: value` line each, newline-terminated.
    pub fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|(k, _)| k.chars().count() + 1)
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (key, value) in &self.rows {
            let label = format!("{key}:");
            out.push_str(format!("{label:<width$} {value}").trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_line_up() {
        let mut f = Fields::new();
        f.add("name", "web")
            .opt("ip", None::<String>)
            .add("state dir", "/s");
        assert_eq!(f.render(), "name:      web\nip:        -\nstate dir: /s\n");
    }

    #[test]
    fn empty_block_is_empty() {
        assert_eq!(Fields::new().render(), "");
    }
}
