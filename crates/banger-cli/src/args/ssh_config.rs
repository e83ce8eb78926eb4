//! `banger ssh-config`.

use clap::Args;

/// Arguments of `banger ssh-config`.
#[derive(Debug, Args)]
pub struct SshConfigArgs {
    /// Add banger's Include block to ~/.ssh/config (idempotent)
    #[arg(long, conflicts_with = "uninstall")]
    pub install: bool,
    /// Remove banger's Include block from ~/.ssh/config
    #[arg(long)]
    pub uninstall: bool,
}
