//! `banger update`.

use std::path::PathBuf;

use clap::Args;

/// Arguments of `banger update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Only say whether a newer release exists (one line; no root needed)
    #[arg(long, conflicts_with_all = ["dry_run", "force"])]
    pub check: bool,
    /// Install this release instead of the latest stable one
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Download, verify and stage, check the new daemon against this install's state, then
    /// stop: nothing is changed
    #[arg(long)]
    pub dry_run: bool,
    /// Update even while daemon operations are running (or reinstall the installed version)
    #[arg(long)]
    pub force: bool,
    /// Read releases from this manifest instead of the built-in one (root only; tests and
    /// private mirrors)
    #[arg(long, value_name = "URL", hide = true)]
    pub manifest_url: Option<String>,
    /// Trust this release public key (PEM) instead of the embedded one (root only)
    #[arg(long, value_name = "PEM", hide = true)]
    pub pubkey_file: Option<PathBuf>,
}
