//! `banger vm workspace …`: copying a repository into a VM and exporting changes.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// What the group is for, the 80% command, and what comes next.
pub const LONG_ABOUT: &str = "\
Copy a repository into a VM and get changes back out.

`banger vm workspace prepare web .` copies the repository containing the current directory \
into /root/repo on VM web (tracked files only unless --include-untracked; ignored files \
never). Work in the VM, then `banger vm workspace export web -o changes.patch` and \
`git apply changes.patch` on the host.";

/// Examples for the group.
pub const AFTER_HELP: &str = "\
Examples:
  banger vm workspace prepare web .
  banger vm workspace prepare web . --dry-run
  banger vm workspace export web -o changes.patch && git apply changes.patch";

/// The `vm workspace` subcommands.
#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Copy a repository into /root/repo in a VM
    #[command(after_help = "\
Examples:
  banger vm workspace prepare web .
  banger vm workspace prepare web ~/src/app --branch feature --from main
  banger vm workspace prepare web . --mode full_copy        includes submodules
  banger vm workspace prepare web . --dry-run               list what would be copied")]
    Prepare(PrepareArgs),
    /// Write everything changed in the VM's repo as a git patch
    #[command(after_help = "\
Examples:
  banger vm workspace export web -o changes.patch
  banger vm workspace export web | git apply")]
    Export(ExportArgs),
}

/// How a workspace is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// The checked-out commit and the selected files; no submodules
    Shallow,
    /// The whole repository including history and submodules
    #[value(name = "full_copy")]
    FullCopy,
}

/// Arguments of `vm workspace prepare`.
#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// VM by id, name or unique prefix
    #[arg(value_name = "VM")]
    pub vm: String,
    /// Repository, or any directory inside one
    #[arg(value_name = "PATH", default_value = ".")]
    pub path: PathBuf,
    /// Create this branch in the guest repo
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Start the branch from this ref
    #[arg(long, value_name = "REF", requires = "branch")]
    pub from: Option<String>,
    /// How to copy the repository
    #[arg(long, value_enum, default_value_t = Mode::Shallow)]
    pub mode: Mode,
    /// Also copy untracked files that are not ignored
    #[arg(long)]
    pub include_untracked: bool,
    /// Print what would be copied and exit
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `vm workspace export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// VM by id, name or unique prefix
    #[arg(value_name = "VM")]
    pub vm: String,
    /// Write the patch to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
