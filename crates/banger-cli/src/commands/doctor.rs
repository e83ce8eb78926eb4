//! `banger doctor`: host checks (not in this build yet).

use super::not_available;
use crate::args::doctor::DoctorArgs;
use crate::error::CliError;

/// Refuses until the checks exist.
pub fn run(_args: &DoctorArgs) -> Result<(), CliError> {
    not_available("doctor")
}
