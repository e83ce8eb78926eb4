//! `banger vm start|stop|restart|kill|delete`: each takes one or more VMs and reports per VM.
//!
//! Start is a daemon operation whose stages are shown live; the others answer when done. With
//! several VMs, every one is attempted and the first failure decides the exit code.
//!
//! Stop, kill and delete pin each VM first ([`super::pin`]): a VM matched only by a prefix
//! needs `-f` or a yes on a terminal, and the request names the VM by id. Restart and start
//! undo nothing, so they take references as typed.

use banger_model::VmRecord;
use banger_proto::Operation;
use banger_proto::routes::{self, Route};

use super::pin::{self, Action};
use crate::args::vm::{ForceRefsArgs, RefsArgs};
use crate::client::connect::connect_or_start;
use crate::context::Context;
use crate::error::CliError;
use crate::{output, progress, render, validate};

fn check(vms: &[String]) -> Result<(), CliError> {
    for vm in vms {
        validate::reference("vm", vm)?;
    }
    Ok(())
}

/// `vm stop`.
pub const STOP: (Route, Action) = (
    routes::STOP_VM,
    Action {
        verb: "stop",
        done: "stopped",
    },
);
/// `vm kill`.
pub const KILL: (Route, Action) = (
    routes::KILL_VM,
    Action {
        verb: "kill",
        done: "killed",
    },
);
/// `vm delete`.
pub const DELETE: (Route, Action) = (
    routes::DELETE_VM,
    Action {
        verb: "delete",
        done: "deleted",
    },
);

/// Stop, kill or delete: pin every VM, then one call per VM by id, `<name> <done>` per
/// success.
pub async fn destroy(
    args: &ForceRefsArgs,
    ctx: &Context,
    (route, action): (Route, Action),
) -> Result<(), CliError> {
    check(&args.vms)?;
    let daemon = connect_or_start(ctx).await?;
    let pinned = pin::pin_all(&daemon.client, pin::VM, action, &args.vms, args.force).await?;
    let many = args.vms.len() > 1;
    let mut first_error = None;
    for vm in pinned {
        let result = match vm {
            Ok(vm) => daemon
                .client
                .send::<_, VmRecord>(route, &[&vm.id], &())
                .await
                .map_err(CliError::from),
            Err(e) => Err(e),
        };
        match result {
            Ok(record) => output::info(&format!("{} {}", record.name, action.done)),
            Err(e) => {
                if many {
                    render::error::print(&e);
                }
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Stop by reference as typed (for restart): one call per VM.
async fn stop_as_typed(args: &RefsArgs, ctx: &Context) -> Result<(), CliError> {
    check(&args.vms)?;
    let daemon = connect_or_start(ctx).await?;
    let mut first_error = None;
    for vm in &args.vms {
        match daemon
            .client
            .send::<_, VmRecord>(routes::STOP_VM, &[vm], &())
            .await
        {
            Ok(record) => output::info(&format!("{} stopped", record.name)),
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
    check(&args.vms)?;
    let daemon = connect_or_start(ctx).await?;
    for vm in &args.vms {
        let op: Operation = daemon.client.send(routes::START_VM, &[vm], &()).await?;
        let done = progress::follow(ctx, &daemon.client, op).await?;
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
    stop_as_typed(args, ctx).await?;
    start(args, ctx).await
}
