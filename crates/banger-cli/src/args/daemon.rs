//! `banger daemon …`: the background service that does the work.

use clap::Subcommand;

use super::common::JsonFlag;

/// One line for the group.
pub const ABOUT: &str = "Inspect and control bangerd, the background daemon";

/// What the group is for, the 80% command, and what comes next.
pub const LONG_ABOUT: &str = "\
Inspect and control bangerd, the background daemon.

bangerd owns VMs, images and networking; the CLI talks to it over a Unix socket and starts it \
on demand, so you rarely need this group. `banger daemon status` says which daemon answers \
(starting one if needed); `banger daemon stop` stops it (running VMs keep running) and the \
next command starts a fresh one, e.g. after an upgrade.";

/// Examples for the group.
pub const AFTER_HELP: &str = "\
Examples:
  banger daemon status
  banger daemon stop
  banger daemon operations
  banger daemon socket";

/// The `daemon` subcommands.
#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Show which daemon answers, starting one if none runs
    #[command(after_help = "\
Examples:
  banger daemon status
  banger daemon status --json")]
    Status(JsonFlag),
    /// Stop the daemon; running VMs keep running
    #[command(after_help = "\
Examples:
  banger daemon stop")]
    Stop,
    /// Print the daemon's socket path
    #[command(after_help = "\
Examples:
  banger daemon socket
  curl --unix-socket \"$(banger daemon socket)\" http://localhost/v1/ping")]
    Socket,
    /// List operations the daemon is running or has finished recently
    #[command(after_help = "\
Examples:
  banger daemon operations
  banger daemon operations --json")]
    Operations(JsonFlag),
}
