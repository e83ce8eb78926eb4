//! Changing stopped VMs: `set` (a new spec) and `prune` (delete every VM that is not running).
//!
//! Rules:
//! - `set` works on a stopped VM only (a running VMM keeps the resources it booted with), under
//!   the VM's lock, and checks the whole new spec before changing anything. The work disk only
//!   grows (file extended, `e2fsck`, `resize2fs`); the record changes only once the disk did.
//! - `prune` deletes with [`super::delete`], one VM at a time. A VM busy with another
//!   operation (a create or start in flight, a stop holding its lock) is reported and kept, and
//!   a VM that is running by the time its turn comes is kept too; so a prune never races a
//!   lifecycle command into deleting a VM that is in use.

use std::collections::HashSet;
use std::time::Duration;

use banger_model::{VmRecord, VmState};
use banger_proto::{ErrorCode, PruneFailure, PruneVmsRequest, PruneVmsResponse, SetVmRequest};

use super::VmError;
use super::disks::{self, DiskError};
use super::inspect::live_handles;
use crate::api::error::chain;
use crate::context::DaemonContext;
use crate::ids;

/// Applies `request` to the spec of the stopped VM `reference`; returns the updated record.
pub async fn set(
    ctx: &DaemonContext,
    reference: &str,
    request: SetVmRequest,
) -> Result<VmRecord, VmError> {
    if request.is_empty() {
        return Err(VmError::invalid(
            "nothing to change; give vcpu, memory_mib, disk_size or nat",
        ));
    }
    let found = ctx.store().vms().resolve(reference)?;
    let _lock = ctx.vm_locks().lock(&found.id).await;
    // Re-read under the lock: the VM may have started, changed or gone meanwhile.
    let record = ctx
        .store()
        .vms()
        .get(&found.id)?
        .ok_or_else(|| VmError::not_found(format!("vm {} was deleted", found.name)))?;
    let name = &record.name;
    if record.state == VmState::Running || live_handles(ctx, &record).is_some() {
        return Err(VmError::invalid(format!(
            "vm {name} is running; stop it first with `banger vm stop {name}`"
        )));
    }
    let spec = request.apply(record.spec);
    spec.validate()
        .map_err(|e| VmError::invalid(e.to_string()))?;
    if spec.disk_size < record.spec.disk_size {
        return Err(VmError::invalid(format!(
            "the disk of {name} is {}; disks only grow, so it cannot become {}",
            record.spec.disk_size, spec.disk_size
        )));
    }
    if spec == record.spec {
        return Ok(record);
    }
    let growth = banger_model::Size::from_bytes(
        spec.disk_size
            .bytes()
            .saturating_sub(record.spec.disk_size.bytes()),
    );
    spec.check_capacity(
        &super::capacity::probe(&ctx.layout().state_dir),
        ctx.config().overcommit(),
        growth,
    )
    .map_err(|e| VmError::invalid(e.to_string()))?;
    if spec.disk_size > record.spec.disk_size {
        let work = record.dir.join("work.ext4");
        let size = spec.disk_size;
        tokio::task::spawn_blocking(move || disks::grow_work_disk(&work, size))
            .await
            .map_err(|e| VmError::new(ErrorCode::OperationFailed, e.to_string()))?
            .map_err(|e| match e {
                DiskError::Shrink { .. } => VmError::invalid(chain(&e)),
                other => VmError::new(
                    ErrorCode::OperationFailed,
                    format!("cannot grow the disk of {name}: {}", chain(&other)),
                ),
            })?;
        tracing::info!(vm = %name, size = %spec.disk_size, "work disk grown");
    }
    let updated = VmRecord {
        spec,
        updated_at: ids::now_rfc3339(),
        ..record.clone()
    };
    if !ctx.store().vms().update(&updated)? {
        return Err(VmError::not_found(format!("vm {name} was deleted")));
    }
    tracing::info!(vm = %name, spec = %spec.summary(), "vm spec changed");
    Ok(updated)
}

/// Deletes every VM that is not running (only those in `request.ids`, when given).
pub async fn prune(
    ctx: &DaemonContext,
    request: PruneVmsRequest,
) -> Result<PruneVmsResponse, VmError> {
    let wanted = request
        .ids
        .map(|ids| ids.into_iter().collect::<HashSet<_>>());
    let candidates: Vec<VmRecord> = ctx
        .store()
        .vms()
        .list()?
        .into_iter()
        .filter(|vm| vm.state != VmState::Running)
        .filter(|vm| wanted.as_ref().is_none_or(|ids| ids.contains(&vm.id)))
        .collect();
    let mut out = PruneVmsResponse::default();
    if candidates.is_empty() {
        return Ok(out);
    }
    let in_flight: HashSet<String> = ctx
        .operations()
        .running()
        .into_iter()
        .filter_map(|op| op.target)
        .collect();
    for vm in candidates {
        let busy = || PruneFailure {
            vm: vm.name.to_string(),
            message: "busy with another operation; try again once it is done".to_owned(),
        };
        if in_flight.contains(vm.name.as_str()) {
            out.failed.push(busy());
            continue;
        }
        // Only an idle VM goes: take its lock without waiting, and look again under it.
        let Ok(lock) = tokio::time::timeout(Duration::ZERO, ctx.vm_locks().lock(&vm.id)).await
        else {
            out.failed.push(busy());
            continue;
        };
        let current = ctx.store().vms().get(&vm.id)?;
        let still_stopped = current
            .as_ref()
            .is_some_and(|c| c.state != VmState::Running && live_handles(ctx, c).is_none());
        drop(lock);
        if !still_stopped {
            continue; // gone, or started meanwhile: not ours to delete
        }
        match super::delete(ctx, &vm.id).await {
            Ok(deleted) => {
                tracing::info!(vm = %deleted.name, "pruned");
                out.deleted.push(deleted.name.to_string());
            }
            Err(e) => out.failed.push(PruneFailure {
                vm: vm.name.to_string(),
                message: crate::api::error::chain(&e),
            }),
        }
    }
    Ok(out)
}
