//! The few styles banger uses, in one place.
//!
//! Styles are written as ANSI codes into [`anstream`] streams, which strip them when the
//! stream is not a terminal or `NO_COLOR` is set; nothing else decides about colour.

use anstyle::{AnsiColor, Style};

/// The `banger:` prefix of an error.
pub const ERROR: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
/// Secondary text: operation ids, notes, hints.
pub const DIM: Style = Style::new().dimmed();
/// Table headers and field names.
pub const HEADER: Style = Style::new().bold();
/// A finished step.
pub const OK: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));

/// `text` wrapped in `style` (the codes vanish on plain streams).
pub fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}
/// A warning.
pub const WARN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
