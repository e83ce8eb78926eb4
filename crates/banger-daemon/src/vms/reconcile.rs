//! Making the store agree with the host after a daemon start, and keeping it agreeing.
//!
//! At start: every VM recorded as running whose VMM is still alive (pid alive *and* tagged with
//! the VM's id) is adopted again from its `handles.json`; one whose VMM is gone has its TAP
//! released (from the handles, else the durable TAP name) and is recorded as stopped. A VM
//! still `created` was mid-create when the daemon died: it is torn down and marked `error`.
//! VMMs are found by their tag as well as by their handles, so one spawned just before a crash
//! (before `handles.json` existed) is killed instead of running on, orphaned.
//! While running, [`monitor`] repeats the liveness check every second, so a VMM killed behind
//! the daemon's back ends with the VM stopped and its resources released.

use std::sync::Arc;
use std::time::Duration;

use banger_model::VmState;

use super::{VmBackends, handles, teardown};

/// `last_error` of a VM whose create a daemon restart cut short; `vm start` refuses such VMs.
pub const INTERRUPTED_CREATE: &str =
    "create was interrupted by a daemon restart; delete this vm and create it again";
use crate::context::DaemonContext;

/// Adopts live VMs and demotes dead ones. Run once before serving. It creates no network
/// objects: the bridge and the TAP pool appear only when a VM first needs them.
pub async fn reconcile_at_start(ctx: &DaemonContext, backends: &VmBackends) {
    let vms = match ctx.store().vms().list() {
        Ok(vms) => vms,
        Err(e) => {
            tracing::error!(error = %e, "cannot list vms to reconcile");
            return;
        }
    };
    for vm in vms {
        // A template whose save a crash cut short leaves its RAM file on the tmpfs.
        super::warm::flow::forget_ram(&vm);
        match vm.state {
            VmState::Running => match handles::load(&vm.dir) {
                Some(saved) if backends.vmm.is_running(&saved.vmm) => {
                    tracing::info!(vm = %vm.name, vm_pid = saved.vmm.pid, "adopted running vm");
                    // A daemon that died while saving a template left the guest paused.
                    if let Some(warm) = backends.vmm.warm() {
                        let resumed =
                            tokio::time::timeout(Duration::from_secs(5), warm.resume(&saved.vmm));
                        if let Ok(Err(e)) = resumed.await {
                            tracing::debug!(vm = %vm.name, error = %e, "resume on adoption");
                        }
                    }
                    ctx.remember_handles(&vm.id, saved);
                    super::power::publish_name(ctx, &vm);
                    // Its bridge exists and its resolv.conf names the gateway.
                    if let Some(guest_dns) = ctx.guest_dns() {
                        guest_dns.ensure_serving(backends.net.as_ref()).await;
                    }
                }
                _ => {
                    tracing::info!(vm = %vm.name, "vmm gone while the daemon was down; stopping");
                    teardown(ctx, backends, &vm, VmState::Stopped, None).await;
                }
            },
            VmState::Created => {
                teardown(ctx, backends, &vm, VmState::Error, Some(INTERRUPTED_CREATE)).await;
            }
            VmState::Stopped | VmState::Error => {
                // A start that crashed between spawning the VMM and recording it.
                super::power::kill_unrecorded_vmms(backends, &vm).await;
            }
        }
    }
}

/// Every second, demotes running VMs whose VMM died. Runs until the daemon shuts down.
pub async fn monitor(ctx: DaemonContext, backends: Arc<VmBackends>) {
    let shutdown = ctx.shutdown().clone();
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        for (id, saved) in ctx.all_handles() {
            if backends.vmm.is_running(&saved.vmm) {
                continue;
            }
            let _lock = ctx.vm_locks().lock(&id).await;
            // Re-check under the lock: a stop may have finished meanwhile.
            let Some(saved) = ctx.handles(&id) else {
                continue;
            };
            if backends.vmm.is_running(&saved.vmm) {
                continue;
            }
            let Ok(Some(vm)) = ctx.store().vms().get(&id) else {
                ctx.take_handles(&id);
                continue;
            };
            tracing::warn!(vm = %vm.name, vm_pid = saved.vmm.pid, "vmm exited; releasing its resources");
            teardown(
                &ctx,
                &backends,
                &vm,
                VmState::Stopped,
                Some("the VMM exited unexpectedly"),
            )
            .await;
        }
    }
}
