//! `banger update`: self-update (not in this build yet; `--to` is validated).

use super::not_available;
use crate::args::update::UpdateArgs;
use crate::error::CliError;
use crate::validate;

/// Validates the flags, then refuses until the updater exists.
pub fn run(args: &UpdateArgs) -> Result<(), CliError> {
    if let Some(version) = &args.to {
        validate::release_version(version)?;
    }
    not_available("update")
}
