//! `banger version`.

use clap::Args;

/// Arguments of `banger version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print JSON (version, commit, built_at)
    #[arg(long)]
    pub json: bool,
}
