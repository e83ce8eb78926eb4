//! `banger`: the command-line interface of banger.
//!
//! Flow of one run: resolve the [`context::Context`] (layout and config paths) → parse with
//! clap ([`cli`], [`args`]) → validate, request, render ([`commands`]) → turn the outcome into
//! an exit code. The CLI talks to the daemon only through [`client`] over its Unix socket,
//! starting a user-mode daemon on demand.
//!
//! Exit codes are a documented contract, listed in [`exit`] and at the end of
//! `banger --help`: 0 ok, 1 failed, 2 usage/`bad_request`, 3 not found, 4 already exists,
//! 5 unauthorized, 6 client/daemon mismatch, 7 not available yet, 8 daemon unreachable,
//! 9 host problem (also `doctor` with a failing check).
//! Only this file decides the process's exit status, and nothing calls `process::exit`.

mod args;
mod cli;
mod client;
mod commands;
mod context;
mod error;
mod exit;
mod host;
mod output;
mod progress;
mod prompt;
mod render;
mod repo;
mod resume;
mod spec;
mod style;
mod system;
mod update;
mod validate;
mod workspace;

use std::process::ExitCode;

use clap::FromArgMatches;

use crate::cli::Cli;
use crate::context::Context;
use crate::error::CliError;

fn main() -> ExitCode {
    let ctx = Context::from_process();
    let cli = match parse(&ctx) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            what: "cannot start the async runtime".into(),
            source,
        })
        .and_then(|runtime| runtime.block_on(commands::run(cli, &ctx)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`banger vm ls | head`): not a failure.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        // A guest command's own exit code passes through untouched.
        Err(CliError::Exited(code)) => ExitCode::from(code),
        Err(e) => {
            render::error::print(&e);
            e.exit().into()
        }
    }
}

/// Parses the command line; help, version and usage errors end the run here.
fn parse(ctx: &Context) -> Result<Cli, ExitCode> {
    // Best effort: help shows this host's resolved defaults when config and host allow.
    let defaults = spec::resolve(
        banger_model::SpecOverrides::default(),
        &ctx.config_or_default(),
        host::facts(),
    )
    .ok();
    let clap_exit = |e: clap::Error| {
        // Help and version go to stdout; a closed pipe there is not worth reporting.
        let _ = e.print();
        ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit::Exit::Usage.code()))
    };
    let matches = cli::command(defaults.as_ref())
        .try_get_matches()
        .map_err(clap_exit)?;
    Cli::from_arg_matches(&matches).map_err(clap_exit)
}
