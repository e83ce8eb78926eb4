//! `banger system …`: systemd install (not in this build yet).

use super::not_available;
use crate::args::system::SystemCommand;
use crate::error::CliError;

/// Refuses each subcommand until the installer exists.
pub fn run(cmd: &SystemCommand) -> Result<(), CliError> {
    not_available(match cmd {
        SystemCommand::Install => "system install",
        SystemCommand::Status => "system status",
        SystemCommand::Restart => "system restart",
        SystemCommand::Uninstall => "system uninstall",
    })
}
