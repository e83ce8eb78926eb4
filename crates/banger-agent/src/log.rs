//! Console logging.
//!
//! As PID 1 the agent's stderr is `/dev/console`, which the VMM captures as the VM's console log;
//! that is the only log a sandbox has before sshd is up, so every step is one line there with a
//! `banger-agent:` prefix. Logging must never fail the caller (a panic in PID 1 would end in a
//! kernel panic), so write errors are ignored instead of using `eprintln!`.

use std::fmt;
use std::io::Write;

/// The prefix of every log line.
pub const PREFIX: &str = "banger-agent:";

/// Writes one `banger-agent: …` line to stderr, ignoring write errors.
pub fn line(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{PREFIX} {args}");
}

/// Logs one line to the console: `log!("mounted {}", target)`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::line(format_args!($($arg)*))
    };
}

/// Renders an error and its `source()` chain as `outer: inner: innermost`.
pub use banger_util::chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_joins_sources() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&e), "outer: inner");
    }
}
