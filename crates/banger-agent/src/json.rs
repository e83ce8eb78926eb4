//! Hand-written JSON output.
//!
//! The agent only ever writes a handful of flat objects, so it renders them itself instead of
//! pulling serde into the guest binary. [`Object`] builds one flat object with correctly escaped
//! strings; that is all the wire format needs.

use std::fmt::Write;

/// Appends `s` to `out` as a JSON string literal (with quotes), escaping per RFC 8259.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Builder for one flat JSON object, rendered in insertion order.
#[derive(Debug, Default)]
pub struct Object {
    out: String,
}

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, key: &str) {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        push_str(&mut self.out, key);
        self.out.push(':');
    }

    /// Adds a string member.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_str(&mut self.out, value);
        self
    }

    /// Adds an unsigned number member.
    pub fn num(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    /// Adds a boolean member.
    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// Adds a string member, or `null` when absent.
    pub fn opt_str(mut self, key: &str, value: Option<&str>) -> Self {
        self.key(key);
        match value {
            Some(v) => push_str(&mut self.out, v),
            None => self.out.push_str("null"),
        }
        self
    }

    /// The rendered object.
    pub fn finish(mut self) -> String {
        if self.out.is_empty() {
            self.out.push('{');
        }
        self.out.push('}');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_specials_and_controls() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn object_renders_and_parses() {
        let o = Object::new()
            .str("status", "ok")
            .num("n", 42)
            .opt_str("none", None)
            .opt_str("some", Some("x\ty"))
            .finish();
        assert_eq!(o, r#"{"status":"ok","n":42,"none":null,"some":"x\ty"}"#);
        let v: serde_json::Value = serde_json::from_str(&o).expect("valid json");
        assert_eq!(v["some"], "x\ty");
    }

    #[test]
    fn empty_object() {
        assert_eq!(Object::new().finish(), "{}");
    }
}
