//! Writing to stdout and stderr.
//!
//! Data goes to a locked stdout through [`Stdout`], whose writes return errors instead of
//! panicking like `println!`: a reader that goes away (`banger vm ls | head`) surfaces as
//! [`CliError::Output`] with `BrokenPipe`, which `main` turns into a silent exit 0. Messages for
//! people (notes, warnings, the `spec:` line, progress) go to stderr, best effort: if stderr
//! itself is gone there is nobody left to tell.

use std::io::{StdoutLock, Write};

use anstream::AutoStream;
use serde::Serialize;

use crate::error::CliError;
use crate::style;

/// A locked, colour-aware stdout.
pub struct Stdout(AutoStream<StdoutLock<'static>>);

impl Stdout {
    /// Locks stdout for the rest of the command.
    pub fn lock() -> Self {
        Self(anstream::stdout().lock())
    }

    /// Writes `text` as is.
    pub fn text(&mut self, text: &str) -> Result<(), CliError> {
        self.0.write_all(text.as_bytes()).map_err(CliError::Output)
    }

    /// Writes `text` and a newline.
    pub fn line(&mut self, text: &str) -> Result<(), CliError> {
        self.text(text)?;
        self.text("\n")
    }

    /// Writes `value` as pretty JSON and a newline.
    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::Failed(format!("cannot encode json output: {e}")))?;
        self.line(&text)
    }

    /// Flushes; call once at the end so a late write error is not lost.
    pub fn finish(mut self) -> Result<(), CliError> {
        self.0.flush().map_err(CliError::Output)
    }
}

/// One line to stderr, as is.
pub fn info(text: &str) {
    let _ = writeln!(anstream::stderr(), "{text}");
}

/// One dimmed line to stderr: notes that are not the point of the command.
pub fn note(text: &str) {
    let _ = writeln!(anstream::stderr(), "{}", style::paint(style::DIM, text));
}
