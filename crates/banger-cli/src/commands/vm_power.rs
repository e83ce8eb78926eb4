//! `banger vm start|stop|restart|kill|delete`: each takes one or more VMs and reports per VM.
//!
//! Start is a daemon operation whose stages are shown live; the others answer when done. With
//! several VMs, every one is attempted and the first failure decides the exit code.

use banger_model::VmRecord;
use banger_proto::Operation;
use banger_proto::routes::{self, Route};

use crate::args::vm::RefsArgs;
use crate::client::connect::connect_or_start;
use crate::context::Context;
use crate::error::CliError;
use crate::{output, progress, render, validate};

fn check(args: &RefsArgs) -> Result<(), CliError> {
    for vm in &args.vms {
        validate::reference("vm", vm)?;
    }
    Ok(())
}

/// Stop, kill or delete: one call per VM, `<name> <done>` per success.
pub async fn simple(
    args: &RefsArgs,
    ctx: &Context,
    route: Route,
    done: &str,
) -> Result<(), CliError> {
    check(args)?;
    let daemon = connect_or_start(ctx).await?;
    let mut first_error = None;
    for vm in &args.vms {
        match daemon.client.send::<_, VmRecord>(route, &[vm], &()).await {
            Ok(record) => output::info(&format!("{} {done}", record.name)),
            Err(e) => {
                let e = CliError::from(e);
                if args.vms.len() > 1 {
                    render::error::print(&e);
                }
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Start: follow each VM's start operation.
pub async fn start(args: &RefsArgs, ctx: &Context) -> Result<(), CliError> {
    check(args)?;
    let daemon = connect_or_start(ctx).await?;
    for vm in &args.vms {
        let op: Operation = daemon.client.send(routes::START_VM, &[vm], &()).await?;
        let done = progress::follow(&daemon.client, op).await?;
        let took = done.duration_ms.map(render::elapsed).unwrap_or_default();
        output::info(&format!(
            "{} running (ready in {took})",
            done.target.unwrap_or_default()
        ));
    }
    Ok(())
}

/// Restart: stop, then start.
pub async fn restart(args: &RefsArgs, ctx: &Context) -> Result<(), CliError> {
    simple(args, ctx, routes::STOP_VM, "stopped").await?;
    start(args, ctx).await
}
