//! `banger completion SHELL`.

use clap::{Args, ValueEnum};

/// Shells with completion scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash
    Bash,
    /// Zsh
    Zsh,
    /// Fish
    Fish,
    /// PowerShell
    Powershell,
}

/// Arguments of the hidden `banger __complete`, which the completion scripts call:
/// `__complete vms|images|kernels|catalog [PREFIX]` lists names;
/// `__complete line [--cur=WORD] -- WORDS…` completes WORD after the command line WORDS.
#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// What to complete, and the words of the command line
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

/// Arguments of `banger completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to print a completion script for
    #[arg(value_enum)]
    pub shell: Shell,
}
