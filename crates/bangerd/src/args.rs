//! Command-line arguments of `bangerd`.

use std::sync::LazyLock;

use clap::{Parser, Subcommand};

static VERSION: LazyLock<String> = LazyLock::new(|| {
    let line = banger_proto::build_info!().version_line("bangerd");
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
  sudo bangerd root-helper --owner alice
                                   serve alice's daemon the few steps that need root

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
    /// Serve the root helper: as root, do the few privileged network steps (banger's bridge,
    /// its TAPs, its nftables tables) for one owner's unprivileged daemon, refusing anything else
    #[command(after_help = "\
Examples:
  sudo bangerd root-helper --owner alice
  sudo bangerd root-helper --owner 1000 --socket /run/banger-root/helper.sock
  sudo bangerd root-helper --owner alice --jailer /usr/local/bin/jailer \
      --firecracker /usr/local/bin/firecracker

The owner's daemon finds the helper at /run/banger-root/helper.sock (or at
$BANGER_ROOT_HELPER_SOCKET). Only the owner (and root) may connect; each request is checked
against the policy (banger's bridge, bgr-<id>/tap-pool-<n> TAPs, banger's NAT tables) before
anything happens, and logged as one JSON line on stderr.

With --jailer and --firecracker the helper also stages and starts jailed Firecracker VMs for
the owner's daemon (config: jailer_bin), and only with exactly those two binaries, root-owned
and writable by root only; chroots and the files linked into them must lie under the owner's
--state-dir (or --runtime-dir).")]
    RootHelper {
        /// The user (name or uid) whose daemon the helper serves
        #[arg(long, value_name = "USER_OR_UID")]
        owner: String,
        /// Where to listen
        #[arg(long, value_name = "PATH")]
        socket: Option<std::path::PathBuf>,
        /// The jailer the helper runs for jailed Firecracker VMs (with --firecracker)
        #[arg(long, value_name = "PATH", requires = "firecracker")]
        jailer: Option<std::path::PathBuf>,
        /// The only Firecracker binary the jailer may run (with --jailer)
        #[arg(long, value_name = "PATH", requires = "jailer")]
        firecracker: Option<std::path::PathBuf>,
        /// The owner's state dir: VMs' files and jails (default: a system install's)
        #[arg(long, value_name = "DIR", default_value = "/var/lib/banger")]
        state_dir: std::path::PathBuf,
        /// The owner's runtime dir (default: a system install's)
        #[arg(long, value_name = "DIR", default_value = "/run/banger")]
        runtime_dir: std::path::PathBuf,
    },
}
