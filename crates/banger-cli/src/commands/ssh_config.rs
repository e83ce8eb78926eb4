//! `banger ssh-config`: the Include block for `~/.ssh/config` (not in this build yet).

use super::not_available;
use crate::args::ssh_config::SshConfigArgs;
use crate::error::CliError;

/// Refuses until banger writes its ssh_config.
pub fn run(_args: &SshConfigArgs) -> Result<(), CliError> {
    not_available("ssh-config")
}
