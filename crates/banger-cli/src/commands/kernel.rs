//! `banger kernel …`: list, show, catalog, pull, register and rm (pinned by id, see [`super::pin`]).

use banger_model::KernelRecord;
use banger_proto::{RegisterKernelRequest, routes};

use super::image::DELETE;
use super::pin;
use crate::args::common::JsonFlag;
use crate::args::kernel::{KernelCommand, RegisterArgs, ShowArgs};
use crate::client::connect::connect_or_start;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{self, Stdout};
use crate::render;
use crate::validate;

/// Runs a `kernel` subcommand.
pub async fn run(cmd: KernelCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        KernelCommand::List(json) => list(json, ctx).await,
        KernelCommand::Show(args) => show(args, ctx).await,
        KernelCommand::Catalog(json) => super::image::catalog(false, json, ctx).await,
        KernelCommand::Pull(args) => {
            validate::reference("kernel", &args.kernel)?;
            super::image::pull(routes::PULL_KERNEL, &args.kernel, ctx).await
        }
        KernelCommand::Register(args) => register(args, ctx).await,
        KernelCommand::Rm(args) => {
            validate::reference("kernel", &args.kernel)?;
            let daemon = connect_or_start(ctx).await?;
            let refs = [args.kernel];
            let pinned =
                pin::pin_all(&daemon.client, pin::KERNEL, DELETE, &refs, args.force).await?;
            for kernel in pinned {
                let kernel = kernel?;
                let gone: KernelRecord = daemon
                    .client
                    .send(routes::DELETE_KERNEL, &[&kernel.id], &())
                    .await?;
                output::info(&format!("deleted kernel {}", gone.name));
            }
            Ok(())
        }
    }
}

async fn register(args: RegisterArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("kernel", &args.kernel)?;
    validate::existing_path("kernel", &args.vmlinux)?;
    if let Some(initrd) = &args.initrd {
        validate::existing_path("initrd", initrd)?;
    }
    let request = RegisterKernelRequest {
        name: args.kernel,
        vmlinux: super::image::absolute(&args.vmlinux)?,
        initrd: args
            .initrd
            .as_deref()
            .map(super::image::absolute)
            .transpose()?,
    };
    let daemon = connect_or_start(ctx).await?;
    let kernel: KernelRecord = daemon
        .client
        .send(routes::REGISTER_KERNEL, &[], &request)
        .await?;
    output::info(&format!("registered kernel {}", kernel.name));
    Ok(())
}

async fn list(json: JsonFlag, ctx: &Context) -> Result<(), CliError> {
    let daemon = connect_or_start(ctx).await?;
    let kernels: Vec<KernelRecord> = daemon.client.get(routes::LIST_KERNELS, &[]).await?;
    let mut out = Stdout::lock();
    if json.json {
        out.json(&kernels)?;
    } else if kernels.is_empty() {
        output::note(render::kernel::EMPTY_HINT);
    } else {
        out.text(&render::kernel::table(&kernels).render())?;
    }
    out.finish()
}

async fn show(args: ShowArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("kernel", &args.kernel)?;
    let daemon = connect_or_start(ctx).await?;
    let kernel: KernelRecord = daemon
        .client
        .get(routes::GET_KERNEL, &[&args.kernel])
        .await?;
    let mut out = Stdout::lock();
    if args.json.json {
        out.json(&kernel)?;
    } else {
        out.text(&render::kernel::show(&kernel))?;
    }
    out.finish()
}
