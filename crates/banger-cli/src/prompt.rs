//! Yes/no questions on the terminal.
//!
//! A question is only ever asked when stdin is a terminal ([`interactive`]); commands that
//! would ask refuse off a terminal instead, naming the flag that skips the question, so a
//! script never hangs on a prompt nobody sees. The question goes to stderr, the answer is one
//! line of stdin, and only `y` or `yes` (any case) is a yes.

use std::io::{IsTerminal, Write};

use crate::error::CliError;

/// Whether a question can be asked: stdin is a terminal.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Asks `question` on stderr and reads one line from stdin: `y` or `yes` is a yes.
pub async fn confirm(question: &str) -> Result<bool, CliError> {
    let mut err = anstream::stderr();
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|e| CliError::Failed(format!("cannot read the answer: {e}")))?
    .map_err(|source| CliError::Io {
        what: "cannot read the answer from stdin".to_owned(),
        source,
    })?;
    Ok(is_yes(&line))
}

/// Whether an answer means yes.
fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_y_and_yes_confirm() {
        for yes in ["y\n", "Y", " yes \n", "YES"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yep", "sure"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
