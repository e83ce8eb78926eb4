//! `banger vm workspace …`: validates and refuses (not in this build yet).

use super::not_available;
use crate::args::workspace::WorkspaceCommand;
use crate::error::CliError;
use crate::validate;

/// Runs a `vm workspace` subcommand.
pub fn run(cmd: &WorkspaceCommand) -> Result<(), CliError> {
    match cmd {
        WorkspaceCommand::Prepare(args) => {
            validate::reference("vm", &args.vm)?;
            let path = validate::existing_path("path", &args.path)?;
            if !path.is_dir() {
                return Err(CliError::Usage(format!(
                    "path {} is not a directory",
                    args.path.display()
                )));
            }
            if crate::repo::root(&path).is_none() {
                return Err(CliError::Usage(format!(
                    "{} is not inside a git repository",
                    args.path.display()
                )));
            }
            for (what, value) in [("branch", &args.branch), ("ref", &args.from)] {
                if let Some(value) = value {
                    validate::reference_text(what, value)?;
                }
            }
            not_available("vm workspace prepare")
        }
        WorkspaceCommand::Export(args) => {
            validate::reference("vm", &args.vm)?;
            not_available("vm workspace export")
        }
    }
}
