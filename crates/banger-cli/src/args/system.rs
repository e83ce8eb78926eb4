//! `banger system …`: installing banger as systemd services.

use clap::Subcommand;

/// One line for the group.
pub const ABOUT: &str = "Install banger as system services (not built yet in this build: exits 7)";

/// What the group is for, the 80% command, and what comes next.
pub const LONG_ABOUT: &str = "\
Install banger as system services (root).

NOT BUILT YET in this build: every `banger system` command exits 7. Until then, install with \
`sudo ./install.sh` and run VM commands with sudo. What it will do:

Without this, the CLI starts a per-user daemon on demand. `sudo banger system install` \
instead installs the binaries to /usr/local/bin and two systemd units (the owner's daemon \
and a narrow root helper), so VMs can use bridges, NAT and device-mapper without running \
the daemon as root.

Next: `banger system status`, and `banger doctor` to check the host.";

/// Examples for the group.
pub const AFTER_HELP: &str = "\
Examples:
  sudo banger system install
  banger system status
  sudo banger system restart
  sudo banger system uninstall";

/// The `system` subcommands.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Install binaries and systemd units, then wait until the daemon answers
    #[command(after_help = "\
Examples:
  sudo banger system install")]
    Install,
    /// Show the installed version and the state of the services
    #[command(after_help = "\
Examples:
  banger system status")]
    Status,
    /// Restart the services; running VMs keep running
    #[command(after_help = "\
Examples:
  sudo banger system restart")]
    Restart,
    /// Remove the services and binaries; state stays in /var/lib/banger
    #[command(after_help = "\
Examples:
  sudo banger system uninstall")]
    Uninstall,
}
