//! `banger completion SHELL`: a completion script on stdout.
//!
//! Generated from the same clap tree as the parser, so it cannot go stale. It never contacts
//! or starts the daemon and writes no file. clap_complete panics on write errors, so the
//! script is rendered into memory first and written through [`Stdout`], where a closed pipe
//! is an ordinary error.

use clap_complete::Shell as ClapShell;

use crate::args::completion::{CompletionArgs, Shell};
use crate::error::CliError;
use crate::output::Stdout;

/// Prints the completion script for the requested shell.
pub fn run(args: &CompletionArgs) -> Result<(), CliError> {
    let script = script(args.shell);
    let mut out = Stdout::lock();
    out.text(&script)?;
    out.finish()
}

fn script(shell: Shell) -> String {
    let shell = match shell {
        Shell::Bash => ClapShell::Bash,
        Shell::Zsh => ClapShell::Zsh,
        Shell::Fish => ClapShell::Fish,
    };
    let mut cmd = crate::cli::command(None);
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "banger", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_know_the_groups() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = script(shell);
            assert!(text.contains("banger"), "{shell:?}");
            assert!(text.contains("workspace"), "{shell:?}");
        }
    }
}
