//! `banger system …`: installing banger as systemd services.

use clap::{Args, Subcommand};

use super::common::JsonFlag;

/// One line for the group.
pub const ABOUT: &str = "Install banger as system services: a daemon for you, a narrow root helper";

/// What the group is for, the 80% command, and what comes next.
pub const LONG_ABOUT: &str = "\
Install banger as system services (install, restart and uninstall need root).

Without this, the CLI starts a per-user daemon on demand and VM commands need root. \
`sudo banger system install` instead installs the binaries (/usr/local/bin/banger, \
/usr/local/bin/bangerd, /usr/local/libexec/banger/banger-agent) and two systemd units: \
bangerd.service, the daemon running as you (the owner) with no privileges, and \
bangerd-root.service, a root helper that does only the privileged steps (bridge, TAPs, NAT \
rules) for that daemon. After that you run every banger command without sudo; the \
CLI finds the system daemon by itself and never starts a user daemon. State lives in \
/var/lib/banger, downloads in /var/cache/banger, sockets in /run/banger.

Running VMs keep running across `system restart`, `systemctl restart bangerd bangerd-root` \
and re-installs (upgrades in place).

Next: `banger system status`, and `banger doctor` to check the host.";

/// Examples for the group.
pub const AFTER_HELP: &str = "\
Examples:
  sudo banger system install              install for the user behind sudo
  sudo banger system install --owner ana  install for ana
  banger system status                    units, versions, sockets, drift
  sudo banger system restart              restart helper and daemon; VMs keep running
  sudo banger system uninstall            remove units and binaries; keep VMs and images
  sudo banger system uninstall --purge    also remove /var/lib/banger, /var/cache/banger, /etc/banger";

/// The `system` subcommands.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Install binaries and systemd units, then wait until the daemon answers
    #[command(after_help = "\
Examples:
  sudo banger system install
  sudo banger system install --owner ana

Installs this banger's binaries (banger, bangerd and banger-agent found beside it or in
../libexec/banger/), writes /etc/systemd/system/bangerd.service and bangerd-root.service and
/etc/banger/install.toml, enables and (re)starts both, and returns once the daemon answers
on /run/banger/bangerd.sock. Running it again upgrades in place; running VMs keep running.
Needs root and systemd as PID 1 (elsewhere, start the daemon by hand: run banger as root).")]
    Install(InstallArgs),
    /// Show the services, installed versions, sockets and drift
    #[command(after_help = "\
Examples:
  banger system status
  banger system status --json")]
    Status(JsonFlag),
    /// Restart the root helper, then the daemon; running VMs keep running
    #[command(after_help = "\
Examples:
  sudo banger system restart")]
    Restart,
    /// Remove the services and binaries; state stays in /var/lib/banger unless --purge
    #[command(after_help = "\
Examples:
  sudo banger system uninstall
  sudo banger system uninstall --purge

VMs that are still running keep running (the units stop only the daemon and the helper);
delete them first with `banger vm delete` if you do not want them.")]
    Uninstall(UninstallArgs),
}

/// Arguments of `system install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The user who runs VMs (the daemon runs as this user); default: the user behind sudo
    #[arg(long, value_name = "USER")]
    pub owner: Option<String>,
}

/// Arguments of `system uninstall`.
#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Also remove the state (VMs, images, kernels, keys), the cache and /etc/banger
    #[arg(long)]
    pub purge: bool,
}
