//! `bangerd --check-migrations`: the pre-upgrade schema check.
//!
//! Prints one line and exits 0/1/2 (see `--help`). It opens nothing for writing: a missing
//! database counts as "all migrations pending" and is not created. A database that cannot be
//! read at all exits 2, because the only safe reaction for an upgrade is to stop.

use std::process::ExitCode;

use crate::args::Args;
use crate::setup;

/// Runs the check and returns its exit code.
pub fn main(args: &Args) -> ExitCode {
    let layout = match setup::layout(args.system) {
        Ok(layout) => layout,
        Err(err) => {
            println!("incompatible: {err:#}");
            return ExitCode::from(2);
        }
    };
    let db = layout.db_file();
    match banger_store::inspect_schema(&db) {
        Ok(status) => {
            println!("{status}");
            ExitCode::from(u8::try_from(status.exit_code()).unwrap_or(2))
        }
        Err(err) => {
            println!("incompatible: cannot read {}: {err}", db.display());
            ExitCode::from(2)
        }
    }
}
