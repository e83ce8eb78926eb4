//! Command-line arguments of `bangerd`.

use std::sync::LazyLock;

use clap::{Parser, Subcommand};

static VERSION: LazyLock<String> = LazyLock::new(|| {
    let line = banger_proto::BuildInfo::current().version_line("bangerd");
    // clap prefixes the command name itself.
    line.strip_prefix("bangerd ").unwrap_or(&line).to_owned()
});

/// The banger daemon: owns VM state and serves the API that `banger` talks to.
#[derive(Debug, Parser)]
#[command(
    name = "bangerd",
    version = VERSION.as_str(),
    after_help = "\
Examples:
  bangerd                          serve for the current user (the CLI starts this on demand)
  bangerd --check-migrations       is the store compatible with this binary? (exit 0/1/2)
  bangerd --check-migrations --system
  bangerd doctor --json            the host checks behind `banger doctor`; creates and changes nothing

Exit codes of --check-migrations:
  0  compatible: the store is at this binary's schema
  1  migrations needed: this binary is newer and will migrate on start (safe to upgrade)
  2  incompatible: the store comes from a newer banger, or cannot be read (abort an upgrade)

Exit codes of doctor: 0 no check failed, 1 a check failed"
)]
pub struct Args {
    /// Use the system-install layout (/var/lib/banger, /run/banger) instead of the user's XDG dirs.
    #[arg(long, global = true)]
    pub system: bool,

    /// Classify the store's schema against this binary and exit; never creates or changes it.
    #[arg(long)]
    pub check_migrations: bool,

    /// Log level: error, warn, info, debug or trace (overrides config `log_level`).
    #[arg(long, env = "BANGER_LOG", value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// A one-shot mode instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// One-shot modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check this host the way the daemon would use it, without creating or changing anything
    /// (`banger doctor` runs this and renders the result)
    Doctor {
        /// Print the report as JSON (what `banger doctor` reads)
        #[arg(long)]
        json: bool,
    },
}
