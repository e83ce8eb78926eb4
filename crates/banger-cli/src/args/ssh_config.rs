//! `banger ssh-config` and the hidden `banger vm ssh-proxy`.

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

/// Arguments of `banger vm ssh-proxy` (ssh's `ProxyCommand`, not for people).
#[derive(Debug, Args)]
pub struct SshProxyArgs {
    /// The host ssh was asked for: `NAME.vm` or `NAME`
    #[arg(value_name = "HOST")]
    pub host: String,
}
