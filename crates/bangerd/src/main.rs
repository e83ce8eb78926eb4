//! `bangerd`: the banger daemon.
//!
//! Modes:
//! - `bangerd` serves the API for the current user (started on demand by the CLI);
//! - `bangerd --system` serves a system install (systemd, `/var/lib/banger`);
//! - `bangerd --check-migrations [--system]` classifies the store's schema for an upgrade and
//!   exits 0 (compatible), 1 (migrations needed) or 2 (incompatible), touching nothing;
//! - `bangerd doctor [--json]` checks the host for `banger doctor`, creating nothing;
//! - `bangerd root-helper --owner USER` serves the root helper for USER's daemon.
//!
//! This file only parses arguments and maps results to exit codes; each mode lives in its own
//! module.

mod args;
mod backends;
mod check_migrations;
mod doctor;
mod jail_runner;
mod logging;
mod notify;
mod private;
mod privilege;
mod root_helper;
mod run;
mod setup;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Args::parse();
    match &args.command {
        Some(args::Command::Doctor { json }) => return doctor::main(args.system, *json),
        Some(args::Command::RootHelper { .. }) if args.system || args.check_migrations => {
            eprintln!(
                "bangerd root-helper: --system and --check-migrations do not apply to the helper; \
                 drop them (the helper has no layout: it serves the owner's daemon wherever it runs)"
            );
            return ExitCode::from(2);
        }
        Some(args::Command::RootHelper {
            owner,
            socket,
            jailer,
            firecracker,
            state_dir,
            runtime_dir,
        }) => {
            let level = args.log_level.as_deref().unwrap_or("info");
            let jail = root_helper::JailFlags {
                binaries: jailer.clone().zip(firecracker.clone()),
                state_dir: state_dir.clone(),
                runtime_dir: runtime_dir.clone(),
            };
            return match root_helper::main(owner, socket.clone(), &jail, level) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("bangerd root-helper: {err:#}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    if args.check_migrations {
        return check_migrations::main(&args);
    }
    match run::main(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bangerd: {err:#}");
            ExitCode::FAILURE
        }
    }
}
