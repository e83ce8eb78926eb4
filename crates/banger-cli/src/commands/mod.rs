//! One module per group: parse (done by clap) → validate → request → render.

mod complete;
mod completion;
mod daemon;
mod doctor;
mod image;
mod kernel;
mod pin;
mod shared_ssh;
mod ssh_config;
mod ssh_proxy;
pub(crate) mod system;
mod update;
mod version;
mod vm;
mod vm_exec;
mod vm_inspect;
mod vm_power;
mod vm_run;
mod vm_session;
mod workspace;

use crate::cli::{Cli, Group};
use crate::context::Context;
use crate::error::CliError;

/// Runs the parsed command line.
pub async fn run(cli: Cli, ctx: &Context) -> Result<(), CliError> {
    match cli.command {
        Group::Vm(cmd) => vm::run(cmd, ctx).await,
        Group::Ps(json) => vm::run(crate::args::vm::VmCommand::List(json), ctx).await,
        Group::Image(cmd) => image::run(cmd, ctx).await,
        Group::Kernel(cmd) => kernel::run(cmd, ctx).await,
        Group::Daemon(cmd) => daemon::run(cmd, ctx).await,
        Group::Doctor(args) => doctor::run(&args, ctx).await,
        Group::SshConfig(args) => ssh_config::run(&args, ctx),
        Group::System(cmd) => system::run(&cmd).await,
        Group::Update(args) => update::run(&args).await,
        Group::Completion(args) => completion::run(&args),
        Group::Complete(args) => {
            complete::run(&args, ctx).await;
            Ok(())
        }
        Group::Version(args) => version::run(&args),
    }
}
