//! `banger vm …`: create, list and show; power, session and inspection commands live in
//! `vm_power`, `vm_session` and `vm_inspect`; commands not in this build validate their
//! arguments and refuse.
//!
//! Order inside `create` is the contract: check the name, resolve and validate the spec,
//! print the `spec:` line, and only then connect (starting the daemon if needed), so bad
//! input never writes a file or starts a process.

use std::collections::HashMap;

use banger_model::spec::{MIN_DISK, MIN_MEMORY_MIB, VCPU_RANGE};
use banger_model::{ImageRecord, ResolvedSpec, VmRecord};
use banger_proto::{CreateVmRequest, Operation, routes};

use super::{
    vm_exec, vm_inspect as inspect, vm_power as power, vm_run, vm_session as session, workspace,
};
use crate::args::common::JsonFlag;
use crate::args::vm::{CreateArgs, RunArgs, SetArgs, ShowArgs, VmCommand};
use crate::client::Client;
use crate::client::connect::connect_or_start;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{self, Stdout};
use crate::{host, progress, render, repo, spec, validate};

/// Runs a `vm` subcommand.
pub async fn run(cmd: VmCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        VmCommand::Create(args) => create(args, ctx).await,
        VmCommand::List(json) => list(json, ctx).await,
        VmCommand::Show(args) => show(args, ctx).await,
        VmCommand::Run(args) => {
            let resolved = check_run(&args, ctx)?;
            if args.dry_run {
                // Exactly what would be copied; no VM, no daemon.
                return match vm_run::source(&args)? {
                    Some(selection) => workspace::print_dry_run(&selection),
                    None => Ok(()),
                };
            }
            vm_run::run(args, resolved, ctx).await
        }
        VmCommand::Start(args) => power::start(&args, ctx).await,
        VmCommand::Stop(args) => power::destroy(&args, ctx, power::STOP).await,
        VmCommand::Restart(args) => power::restart(&args, ctx).await,
        VmCommand::Kill(args) => power::destroy(&args, ctx, power::KILL).await,
        VmCommand::Delete(args) => power::destroy(&args, ctx, power::DELETE).await,
        VmCommand::Prune(args) => inspect::prune(&args, ctx).await,
        VmCommand::Logs(args) => session::logs(&args, ctx).await,
        VmCommand::Stats(args) => inspect::stats(&args, ctx).await,
        VmCommand::Ports(args) => inspect::ports(&args, ctx).await,
        VmCommand::Set(args) => {
            check_set(&args)?;
            inspect::set(&args, ctx).await
        }
        VmCommand::Health(args) => inspect::health(&args, ctx).await,
        VmCommand::Ssh(args) => session::ssh(&args, ctx).await,
        VmCommand::SshProxy(args) => super::ssh_proxy::run(&args, ctx).await,
        VmCommand::Exec(args) => vm_exec::exec(&args, ctx).await,
        VmCommand::Workspace(cmd) => workspace::run(&cmd, ctx).await,
    }
}

async fn create(args: CreateArgs, ctx: &Context) -> Result<(), CliError> {
    let name = args.name.as_deref().map(validate::vm_name).transpose()?;
    if let Some(image) = &args.image {
        validate::reference("image", image)?;
    }
    let config = ctx.config()?;
    let resolved = spec::resolve(args.spec.overrides(), &config, host::facts())?;
    output::info(&spec::line(&resolved));

    let daemon = connect_or_start(ctx).await?;
    let request = CreateVmRequest {
        name: name.map(String::from),
        image: args.image,
        spec: resolved.spec,
        cold: args.cold,
    };
    let done = launch(ctx, &daemon.client, &request).await?;
    let took = done.duration_ms.map(render::elapsed).unwrap_or_default();
    let target = done.target.unwrap_or_default();
    output::info(&format!(
        "ready in {took}; connect with `banger vm ssh {target}`"
    ));
    let mut out = Stdout::lock();
    out.line(&target)?;
    out.finish()
}

/// A create that failed, with the VM it was creating when the daemon named one.
pub struct LaunchError {
    /// Why it failed.
    pub error: CliError,
    /// The VM's name or id, when known.
    pub vm: Option<String>,
}

impl From<LaunchError> for CliError {
    fn from(e: LaunchError) -> Self {
        e.error
    }
}

/// Creates a VM and follows the operation (stage lines on stderr) until it ends. Shared by
/// `vm create` and `vm run`.
pub async fn launch(
    ctx: &Context,
    client: &Client,
    request: &CreateVmRequest,
) -> Result<Operation, LaunchError> {
    let op: Operation = client
        .send(routes::CREATE_VM, &[], request)
        .await
        .map_err(|e| LaunchError {
            error: e.into(),
            vm: request.name.clone(),
        })?;
    let vm = op.target.clone().or_else(|| request.name.clone());
    progress::follow(ctx, client, op)
        .await
        .map_err(|error| LaunchError { error, vm })
}

/// Image id → name, best effort: a failure only costs names in the output.
async fn image_names(client: &Client) -> HashMap<String, String> {
    client
        .get::<Vec<ImageRecord>>(routes::LIST_IMAGES, &[])
        .await
        .map(|images| images.into_iter().map(|i| (i.id, i.name)).collect())
        .unwrap_or_default()
}

async fn list(json: JsonFlag, ctx: &Context) -> Result<(), CliError> {
    let daemon = connect_or_start(ctx).await?;
    let vms: Vec<VmRecord> = daemon.client.get(routes::LIST_VMS, &[]).await?;
    let mut out = Stdout::lock();
    if json.json {
        out.json(&vms)?;
    } else if vms.is_empty() {
        output::note(render::vm::EMPTY_HINT);
    } else {
        let images = image_names(&daemon.client).await;
        out.text(&render::vm::table(&vms, &images).render())?;
    }
    out.finish()
}

async fn show(args: ShowArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("vm", &args.vm)?;
    let daemon = connect_or_start(ctx).await?;
    let vm: VmRecord = daemon.client.get(routes::GET_VM, &[&args.vm]).await?;
    let mut out = Stdout::lock();
    if args.json.json {
        out.json(&vm)?;
    } else {
        let images = image_names(&daemon.client).await;
        out.text(&render::vm::show(&vm, &images))?;
        // Which VMM runs it and where its console goes: best effort, from the runtime view.
        if let Ok(stats) = daemon
            .client
            .get::<banger_proto::VmStats>(routes::VM_STATS, &[&vm.id])
            .await
        {
            if let Some(vmm) = stats.vmm {
                out.line(&format!("vmm:        {vmm}"))?;
            }
            if let Some(log) = stats.console_log {
                out.line(&format!("console:    {}", log.display()))?;
            }
        }
    }
    out.finish()
}

/// Everything `vm run` can check before creating anything; returns the resolved spec.
fn check_run(args: &RunArgs, ctx: &Context) -> Result<ResolvedSpec, CliError> {
    if let Some(name) = &args.name {
        validate::vm_name(name)?;
    }
    if let Some(image) = &args.image {
        validate::reference("image", image)?;
    }
    for (what, value) in [("branch", &args.branch), ("ref", &args.from)] {
        if let Some(value) = value {
            validate::reference_text(what, value)?;
        }
    }
    let config = ctx.config()?;
    let resolved = spec::resolve(args.spec.overrides(), &config, host::facts())?;
    // PATH defaults to the current directory; the checks are the same either way.
    let path = args.path.clone().unwrap_or_else(|| ".".into());
    let dir = validate::existing_path("path", &path)?;
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "path {} is not a directory",
            path.display()
        )));
    }
    // Only a repository is copied, so only a repository's mise files ask for a bootstrap.
    if repo::root(&dir).is_some()
        && !resolved.spec.nat
        && !args.no_bootstrap
        && let Some(file) = repo::mise_file(&dir)
    {
        return Err(CliError::Usage(format!(
            "{} asks for tools to be installed with mise, which needs network \
             access: pass --nat, or --no-bootstrap to skip it",
            file.display()
        )));
    }
    Ok(resolved)
}

/// `vm set` needs at least one change, and each value within limits.
fn check_set(args: &SetArgs) -> Result<(), CliError> {
    validate::reference("vm", &args.vm)?;
    if args.vcpu.is_none()
        && args.memory.is_none()
        && args.disk_size.is_none()
        && !args.nat
        && !args.no_nat
    {
        return Err(CliError::Usage(
            "nothing to change; pass --vcpu, --memory, --disk-size, --nat or --no-nat".into(),
        ));
    }
    let (lo, hi) = VCPU_RANGE;
    if let Some(v) = args.vcpu.filter(|v| *v < lo || *v > hi) {
        return Err(CliError::Usage(format!(
            "vcpu must be between {lo} and {hi}, got {v}"
        )));
    }
    if let Some(m) = args.memory.filter(|m| m.mib() < MIN_MEMORY_MIB) {
        return Err(CliError::Usage(format!(
            "memory must be at least {MIN_MEMORY_MIB} MiB, got {m}"
        )));
    }
    if let Some(d) = args.disk_size.filter(|d| *d < MIN_DISK) {
        return Err(CliError::Usage(format!(
            "disk size must be at least {MIN_DISK}, got {d}"
        )));
    }
    Ok(())
}
