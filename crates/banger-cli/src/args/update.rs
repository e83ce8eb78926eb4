//! `banger update`.

use clap::Args;

/// Arguments of `banger update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Only say whether a newer release exists
    #[arg(long, conflicts_with_all = ["dry_run", "force"])]
    pub check: bool,
    /// Install this release instead of the latest stable one
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Download and verify, but change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Update even while operations are running
    #[arg(long)]
    pub force: bool,
}
