//! `banger doctor`.

use clap::Args;

/// Arguments of `banger doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Show every check, not only warnings and failures
    #[arg(short, long)]
    pub verbose: bool,
    /// Print every check as JSON: an array of {name, status, detail, fix}
    #[arg(long)]
    pub json: bool,
}
