//! One line for an error and its causes.
//!
//! banger's errors describe only their own layer and keep the cause in `source()`, so showing
//! an error means walking the chain. Every place that shows one (the CLI's stderr line, the
//! daemon's error envelope, the VMM backends' failure details, the agent's console log) uses
//! [`chain`], so they all read the same: `outer: cause: root cause`.

use std::error::Error;

/// An error and its causes, joined with `: `. A cause whose text the message before it already
/// ends with (an error that also prints its source) is not repeated, and empty causes are
/// skipped.
pub fn chain(err: &dyn Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer {
        text: String,
        source: Option<Box<Layer>>,
    }

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.text)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.source.as_deref().map(|s| s as &(dyn Error + 'static))
        }
    }

    fn layers(texts: &[&str]) -> Layer {
        let mut source = None;
        for text in texts.iter().rev() {
            source = Some(Box::new(Layer {
                text: (*text).to_owned(),
                source,
            }));
        }
        *source.expect("at least one layer")
    }

    #[test]
    fn joins_causes() {
        assert_eq!(
            chain(&layers(&["outer", "inner", "root"])),
            "outer: inner: root"
        );
        assert_eq!(chain(&std::io::Error::other("alone")), "alone");
    }

    #[test]
    fn does_not_repeat_a_cause_already_in_the_message() {
        let err = layers(&["cannot read /x: boom", "boom"]);
        assert_eq!(chain(&err), "cannot read /x: boom");
        let err = layers(&["outer", "", "root"]);
        assert_eq!(chain(&err), "outer: root");
    }
}
