//! Booting, stopping and killing a VM whose disks exist, and releasing what a stopped VM held.

use std::time::{Duration, Instant};

use banger_guest::agent::{HEALTHZ, SHUTDOWN};
use banger_model::{KernelRecord, VmRecord, VmState};
use banger_proto::{ErrorCode, Operation};
use banger_vmm::VmmHandle;

use super::{StageError, VmBackends, agent, backends, handles, launch_spec, ssh_addr};
use crate::api::error::ApiError;
use crate::context::DaemonContext;
use crate::ids;
use crate::operations::OperationHandle;

/// Network, boot, agent, SSH: the stages shared by create and start. On error the caller
/// tears down; `launched` tells it whether a VMM is running.
pub(super) async fn boot(
    ctx: &DaemonContext,
    backends: &VmBackends,
    record: &VmRecord,
    kernel: &KernelRecord,
    op: &OperationHandle,
    launched: &mut Option<VmmHandle>,
) -> Result<VmmHandle, StageError> {
    op.stage("network");
    let spec = launch_spec(backends, record, kernel)?;
    let plan = &backends.plan;
    backends
        .net
        .ensure_bridge(&plan.bridge, plan.gateway(), plan.prefix)
        .await
        .map_err(|e| ("network", crate::api::error::chain(&e)))?;
    let tap = spec.net.as_ref().map(|n| n.tap.clone()).unwrap_or_default();
    let pooled = super::tap_pool::claim(backends, &tap)
        .await
        .map_err(|e| ("network", crate::api::error::chain(&e)))?;
    op.detail(if pooled {
        "tap from the pool"
    } else {
        "new tap"
    });
    // Refill after every claim (the first claim creates the pool).
    let refill_ctx = ctx.clone();
    tokio::spawn(async move {
        if let Some(backends) = refill_ctx.backends() {
            super::tap_pool::refill(&backends).await;
        }
    });

    op.stage("boot");
    let handle = backends
        .vmm
        .launch(&spec)
        .await
        .map_err(|e| ("boot", crate::api::error::chain(&e)))?;
    *launched = Some(handle.clone());
    op.detail(&format!(
        "{} pid {}, console {}",
        handle.kind.as_str(),
        handle.pid,
        handle.console_log.display()
    ));
    let saved = handles::VmHandles {
        vmm: handle.clone(),
        tap: Some(tap),
    };
    handles::save(&record.dir, &saved).map_err(|e| ("boot", format!("save handles: {e}")))?;
    ctx.remember_handles(&record.id, saved);
    set_state(ctx, record, VmState::Running, None);

    op.stage("wait for agent");
    wait_for_agent(backends, &handle).await?;

    op.stage("wait for SSH");
    let addr = ssh_addr(record).ok_or(("wait for SSH", "no guest address".to_owned()))?;
    let timeout = backends.timeouts.ssh;
    tokio::task::spawn_blocking(move || banger_ssh::wait_for_ssh(addr, timeout))
        .await
        .map_err(|e| ("wait for SSH", e.to_string()))?
        .map_err(|e| ("wait for SSH", e.to_string()))?;
    Ok(handle)
}

async fn wait_for_agent(backends: &VmBackends, handle: &VmmHandle) -> Result<(), StageError> {
    let deadline = Instant::now() + backends.timeouts.agent;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        if !backends.vmm.is_running(handle) {
            return Err(("wait for agent", "the VM stopped while booting".to_owned()));
        }
        match agent::call(&handle.agent, "GET", HEALTHZ, Duration::from_secs(2)).await {
            Ok((200, _)) => return Ok(()),
            Ok((status, body)) => last = format!("agent answered {status}: {body}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err((
        "wait for agent",
        format!(
            "no healthy agent within {:?} ({last})",
            backends.timeouts.agent
        ),
    ))
}

fn set_state(ctx: &DaemonContext, record: &VmRecord, state: VmState, error: Option<&str>) {
    if let Err(e) = ctx
        .store()
        .vms()
        .set_state(&record.id, state, error, &ids::now_rfc3339())
    {
        tracing::error!(vm = %record.name, error = %e, "could not record vm state");
    }
}

/// Releases what a VM holds while running (VMM, TAP, handles) and records it as `state`.
pub async fn teardown(
    ctx: &DaemonContext,
    backends: &VmBackends,
    record: &VmRecord,
    state: VmState,
    error: Option<&str>,
) {
    let saved = ctx
        .take_handles(&record.id)
        .or_else(|| handles::load(&record.dir));
    if let Some(saved) = &saved
        && backends.vmm.is_running(&saved.vmm)
    {
        let _ = backends.vmm.kill(&saved.vmm);
        backends
            .vmm
            .wait_exit(&saved.vmm, Duration::from_secs(10))
            .await;
    }
    // The durable TAP name is the fallback when the handles are gone.
    let tap = saved
        .as_ref()
        .and_then(|h| h.tap.clone())
        .or_else(|| record.tap_name.clone());
    if let Some(tap) = tap
        && let Err(e) = backends.net.delete_link(&tap).await
    {
        tracing::warn!(vm = %record.name, tap = %tap, error = %e, "could not delete tap");
    }
    if let Err(e) = handles::clear(&record.dir) {
        tracing::warn!(vm = %record.name, error = %e, "could not remove handles.json");
    }
    set_state(ctx, record, state, error);
}

/// Starts a stopped VM as an operation.
pub async fn start(ctx: &DaemonContext, reference: &str) -> Result<Operation, ApiError> {
    let backends = backends(ctx)?;
    let record = ctx.store().vms().resolve(reference)?;
    let image = ctx
        .store()
        .images()
        .get(&record.image_id)?
        .ok_or_else(|| ApiError::not_found(format!("the image of {} is gone", record.name)))?;
    let source = super::boot_source_for(ctx, image)?;
    let op = ctx
        .operations()
        .begin("vm.start", Some(record.name.as_str()));
    let snapshot = ctx
        .operations()
        .get(op.id())
        .ok_or_else(|| ApiError::new(ErrorCode::OperationFailed, "operation vanished"))?;
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let _lock = ctx.vm_locks().lock(&record.id).await;
        let Ok(Some(record)) = ctx.store().vms().get(&record.id) else {
            op.fail(ErrorCode::NotFound, "the vm was deleted");
            return;
        };
        if record.state == VmState::Running && ctx.is_alive(&backends, &record.id) {
            op.skip("boot", "already running");
            op.succeed();
            return;
        }
        let mut launched = None;
        match boot(&ctx, &backends, &record, &source.kernel, &op, &mut launched).await {
            Ok(_) => op.succeed(),
            Err((stage, message)) => {
                let msg = format!("start {} failed at {stage}: {message}", record.name);
                teardown(&ctx, &backends, &record, VmState::Error, Some(&msg)).await;
                op.fail(
                    ErrorCode::OperationFailed,
                    &format!(
                        "{msg}; console log: {}",
                        record.dir.join("console.log").display()
                    ),
                );
            }
        }
    });
    Ok(snapshot)
}

/// Stops a VM: agent power-off, then the VMM's own request, then a kill after the timeout.
pub async fn stop(ctx: &DaemonContext, reference: &str) -> Result<VmRecord, ApiError> {
    let backends = backends(ctx)?;
    let record = ctx.store().vms().resolve(reference)?;
    let _lock = ctx.vm_locks().lock(&record.id).await;
    let saved = ctx
        .handles(&record.id)
        .or_else(|| handles::load(&record.dir));
    if let Some(saved) = &saved
        && backends.vmm.is_running(&saved.vmm)
    {
        let asked = agent::call(&saved.vmm.agent, "POST", SHUTDOWN, Duration::from_secs(5))
            .await
            .is_ok();
        if !asked && let Err(e) = backends.vmm.request_shutdown(&saved.vmm).await {
            tracing::warn!(vm = %record.name, error = %e, "graceful shutdown request failed");
        }
        if !backends
            .vmm
            .wait_exit(&saved.vmm, backends.timeouts.stop)
            .await
        {
            tracing::warn!(vm = %record.name, "guest did not power off in time; killing it");
        }
    }
    teardown(ctx, &backends, &record, VmState::Stopped, None).await;
    Ok(ctx.store().vms().get(&record.id)?.unwrap_or(record))
}

/// Kills a VM's VMM at once and releases what it held.
pub async fn kill(ctx: &DaemonContext, reference: &str) -> Result<VmRecord, ApiError> {
    let backends = backends(ctx)?;
    let record = ctx.store().vms().resolve(reference)?;
    let _lock = ctx.vm_locks().lock(&record.id).await;
    teardown(ctx, &backends, &record, VmState::Stopped, None).await;
    Ok(ctx.store().vms().get(&record.id)?.unwrap_or(record))
}
