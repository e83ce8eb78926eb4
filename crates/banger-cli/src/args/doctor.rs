//! `banger doctor`.

use clap::Args;

/// Arguments of `banger doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Show every check, not only warnings and failures
    #[arg(short, long)]
    pub verbose: bool,
}
