//! `banger vm health|stats|ports|set|prune`: looking at a VM, and changing stopped ones.
//!
//! - health prints one line per check and exits 1 unless every check passed, so scripts can
//!   wait on it (`until banger vm health web; do sleep 1; done`).
//! - set sends only the fields given; the daemon refuses a running VM and shrinking disks.
//! - prune asks before deleting, which needs a terminal: without `-f` and without a TTY on
//!   stdin it refuses before contacting the daemon. It sends the ids it showed, so a VM that
//!   appeared or stopped while the question was open is never deleted unseen.

use banger_model::{VmRecord, VmState};
use banger_proto::{
    PruneVmsRequest, PruneVmsResponse, SetVmRequest, VmHealth, VmPorts, VmStats, routes,
};

use crate::args::vm::{PruneArgs, SetArgs, ShowArgs};
use crate::client::connect::connect_or_start;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{self, Stdout};
use crate::{prompt, render, validate};

/// `vm health`: exit 0 only when the VMM, the agent and SSH all answer.
pub async fn health(args: &ShowArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("vm", &args.vm)?;
    let daemon = connect_or_start(ctx).await?;
    let report: VmHealth = daemon.client.get(routes::VM_HEALTH, &[&args.vm]).await?;
    let mut out = Stdout::lock();
    if args.json.json {
        out.json(&report)?;
    } else {
        out.text(&render::vm_inspect::health(&report))?;
    }
    out.finish()?;
    if report.healthy() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} is not healthy ({} failed)",
            report.vm,
            render::vm_inspect::failed_checks(&report)
        )))
    }
}

/// `vm stats`.
pub async fn stats(args: &ShowArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("vm", &args.vm)?;
    let daemon = connect_or_start(ctx).await?;
    let stats: VmStats = daemon.client.get(routes::VM_STATS, &[&args.vm]).await?;
    let mut out = Stdout::lock();
    if args.json.json {
        out.json(&stats)?;
    } else {
        out.text(&render::vm_inspect::stats(&stats))?;
    }
    out.finish()
}

/// `vm ports`.
pub async fn ports(args: &ShowArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("vm", &args.vm)?;
    let daemon = connect_or_start(ctx).await?;
    let ports: VmPorts = daemon.client.get(routes::VM_PORTS, &[&args.vm]).await?;
    let mut out = Stdout::lock();
    if args.json.json {
        out.json(&ports)?;
    } else if ports.ports.is_empty() {
        output::note(render::vm_inspect::NO_PORTS);
    } else {
        out.text(&render::vm_inspect::ports(&ports).render())?;
    }
    out.finish()
}

/// The request `vm set` sends: only what was given.
pub fn set_request(args: &SetArgs) -> SetVmRequest {
    SetVmRequest {
        vcpu: args.vcpu,
        memory_mib: args.memory.map(|m| m.mib()),
        disk_size: args.disk_size,
        nat: match (args.nat, args.no_nat) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
    }
}

/// `vm set` (arguments already checked by the caller).
pub async fn set(args: &SetArgs, ctx: &Context) -> Result<(), CliError> {
    let daemon = connect_or_start(ctx).await?;
    let vm: VmRecord = daemon
        .client
        .send(routes::SET_VM, &[&args.vm], &set_request(args))
        .await?;
    output::info(&format!("{}: {}", vm.name, vm.spec.summary()));
    Ok(())
}

/// `vm prune`.
pub async fn prune(args: &PruneArgs, ctx: &Context) -> Result<(), CliError> {
    let interactive = prompt::interactive();
    if !args.force && !interactive {
        return Err(CliError::Usage(
            "vm prune asks before deleting, but stdin is not a terminal; \
             pass -f to delete every VM that is not running without asking"
                .to_owned(),
        ));
    }
    let daemon = connect_or_start(ctx).await?;
    let request = if args.force {
        PruneVmsRequest { ids: None }
    } else {
        let vms: Vec<VmRecord> = daemon.client.get(routes::LIST_VMS, &[]).await?;
        let candidates: Vec<&VmRecord> = vms
            .iter()
            .filter(|vm| vm.state != VmState::Running)
            .collect();
        if candidates.is_empty() {
            output::note("nothing to prune: every VM is running");
            return Ok(());
        }
        output::info(
            render::vm_inspect::prune_candidates(&candidates)
                .render()
                .trim_end(),
        );
        let question = format!(
            "delete {} VM{} and their disks? [y/N] ",
            candidates.len(),
            if candidates.len() == 1 { "" } else { "s" }
        );
        if !prompt::confirm(&question).await? {
            output::note("nothing deleted");
            return Ok(());
        }
        PruneVmsRequest {
            ids: Some(candidates.iter().map(|vm| vm.id.clone()).collect()),
        }
    };
    let answer: PruneVmsResponse = daemon.client.send(routes::PRUNE_VMS, &[], &request).await?;
    report_prune(&answer)
}

fn report_prune(answer: &PruneVmsResponse) -> Result<(), CliError> {
    for name in &answer.deleted {
        output::info(&format!("{name} deleted"));
    }
    for failure in &answer.failed {
        render::error::print(&CliError::Failed(format!(
            "could not delete {}: {}",
            failure.vm, failure.message
        )));
    }
    if answer.deleted.is_empty() && answer.failed.is_empty() {
        output::note("nothing to prune: every VM is running");
    }
    if answer.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} of {} VMs could not be deleted",
            answer.failed.len(),
            answer.failed.len() + answer.deleted.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_model::Size;
    use banger_proto::PruneFailure;

    fn set_args(nat: bool, no_nat: bool) -> SetArgs {
        SetArgs {
            vm: "web".into(),
            vcpu: Some(2),
            memory: Some(Size::from_gib(4)),
            disk_size: None,
            nat,
            no_nat,
        }
    }

    #[test]
    fn set_sends_only_what_was_given() {
        let r = set_request(&set_args(false, false));
        assert_eq!(
            r,
            SetVmRequest {
                vcpu: Some(2),
                memory_mib: Some(4096),
                disk_size: None,
                nat: None,
            }
        );
        assert_eq!(set_request(&set_args(true, false)).nat, Some(true));
        assert_eq!(set_request(&set_args(false, true)).nat, Some(false));
    }

    #[test]
    fn partial_prunes_fail() {
        let ok = PruneVmsResponse {
            deleted: vec!["a".into()],
            failed: vec![],
        };
        assert!(report_prune(&ok).is_ok());
        let partial = PruneVmsResponse {
            deleted: vec!["a".into()],
            failed: vec![PruneFailure {
                vm: "b".into(),
                message: "busy".into(),
            }],
        };
        let err = report_prune(&partial).unwrap_err();
        assert_eq!(err.to_string(), "1 of 2 VMs could not be deleted");
        assert_eq!(err.exit().code(), 1);
    }
}
