//! `banger daemon …`: status, stop, socket path and operations.
//!
//! `status` and `operations` connect (starting a user daemon when none runs); `stop` never
//! starts one, and treats "nothing answers" as success; `socket` only prints a path.

use std::time::{Duration, Instant};

use banger_proto::{Operation, routes};

use crate::args::common::JsonFlag;
use crate::args::daemon::DaemonCommand;
use crate::client::connect::{connect_existing, connect_or_start};
use crate::client::{ApiError, Client};
use crate::context::Context;
use crate::error::CliError;
use crate::output::Stdout;
use crate::render;

/// How long `daemon stop` waits for the socket to go quiet, and then for the process to exit.
const STOP_LIMIT: Duration = Duration::from_secs(30);
const STOP_POLL: Duration = Duration::from_millis(50);

/// Runs a `daemon` subcommand.
pub async fn run(cmd: DaemonCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        DaemonCommand::Status(json) => status(json, ctx).await,
        DaemonCommand::Stop => stop(ctx).await,
        DaemonCommand::Socket => socket(ctx),
        DaemonCommand::Operations(json) => operations(json, ctx).await,
    }
}

async fn status(json: JsonFlag, ctx: &Context) -> Result<(), CliError> {
    let daemon = connect_or_start(ctx).await?;
    let mut out = Stdout::lock();
    if json.json {
        out.json(&daemon.info)?;
    } else {
        out.text(&render::daemon::status(&daemon.info))?;
    }
    out.finish()
}

async fn stop(ctx: &Context) -> Result<(), CliError> {
    let mut out = Stdout::lock();
    let Some(daemon) = connect_existing(ctx).await? else {
        out.line("bangerd is not running")?;
        return out.finish();
    };
    let _: serde_json::Value = daemon
        .client
        .send(routes::SHUTDOWN, &[], &serde_json::json!({}))
        .await?;
    wait_until_gone(&daemon.client, daemon.info.pid).await?;
    wait_until_exited(&ctx.layout()?.lock_file(), daemon.info.pid).await?;
    out.line("bangerd stopped")?;
    out.finish()
}

/// Polls until nothing answers on the socket any more.
async fn wait_until_gone(client: &Client, pid: u32) -> Result<(), CliError> {
    let deadline = Instant::now() + STOP_LIMIT;
    loop {
        match client.ping().await {
            Err(ApiError::NotRunning { .. }) => return Ok(()),
            Err(e @ ApiError::Denied { .. }) => return Err(e.into()),
            // Still answering, or busy closing its connections.
            Ok(_) | Err(_) => {}
        }
        if Instant::now() >= deadline {
            return Err(CliError::Failed(format!(
                "bangerd (pid {pid}) still answers {}s after it was asked to stop; \
                 see {}",
                STOP_LIMIT.as_secs(),
                client.socket().display()
            )));
        }
        tokio::time::sleep(STOP_POLL).await;
    }
}

/// Polls until the daemon's process has exited: it closes its socket first, then finishes
/// the work in flight (a spare disk being made, say), so only then are its files at rest and
/// its binary free to replace. Judged by the pid its lock file names (a lock file naming
/// another process, or none, means there is nothing to wait for).
async fn wait_until_exited(lock_file: &std::path::Path, pid: u32) -> Result<(), CliError> {
    let deadline = Instant::now() + STOP_LIMIT;
    while crate::client::autostart::lock_holder(lock_file) == Some(pid) {
        if Instant::now() >= deadline {
            return Err(CliError::Failed(format!(
                "bangerd (pid {pid}) closed its socket but is still running {}s after it was                  asked to stop",
                STOP_LIMIT.as_secs()
            )));
        }
        tokio::time::sleep(STOP_POLL).await;
    }
    Ok(())
}

fn socket(ctx: &Context) -> Result<(), CliError> {
    let mut out = Stdout::lock();
    out.line(&ctx.layout()?.socket().display().to_string())?;
    out.finish()
}

async fn operations(json: JsonFlag, ctx: &Context) -> Result<(), CliError> {
    let daemon = connect_or_start(ctx).await?;
    let ops: Vec<Operation> = daemon.client.get(routes::LIST_OPERATIONS, &[]).await?;
    let mut out = Stdout::lock();
    if json.json {
        out.json(&ops)?;
    } else if ops.is_empty() {
        crate::output::note(render::operation::EMPTY_HINT);
    } else {
        out.text(&render::operation::table(&ops).render())?;
    }
    out.finish()
}
