//! Deleting a VM: stop it hard, release everything, remove its disks, known_hosts entries and
//! record. Irreversible by design.

use banger_model::{VmRecord, VmState};

use super::VmError;
use super::teardown;
use crate::context::DaemonContext;

/// Deletes the VM `reference` and returns the record it had.
pub async fn delete(ctx: &DaemonContext, reference: &str) -> Result<VmRecord, VmError> {
    let backends = ctx.backends();
    let record = ctx.store().vms().resolve(reference)?;
    let lock = ctx.vm_locks().lock(&record.id).await;
    teardown(ctx, &backends, &record, VmState::Stopped, None).await;
    if let Err(e) = std::fs::remove_dir_all(&record.dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(VmError::failed(&e));
    }
    let mut hosts = vec![record.dns_name()];
    hosts.extend(record.guest_ip.clone());
    if let Err(e) = banger_ssh::known_hosts::remove_hosts(&backends.known_hosts, &hosts) {
        tracing::warn!(vm = %record.name, error = %e, "could not clean known_hosts");
    }
    ctx.store().vms().delete(&record.id)?;
    drop(lock);
    ctx.vm_locks().forget(&record.id);
    Ok(record)
}
