//! Booting, stopping and killing a VM whose disks exist, and releasing what a stopped VM held.

use std::time::{Duration, Instant};

use banger_guest::agent::{HEALTHZ, SHUTDOWN};
use banger_model::{KernelRecord, VmRecord, VmState};
use banger_proto::{ErrorCode, Operation};
use banger_vmm::VmmHandle;

use super::VmError;
use super::{
    Stage, StageError, VmBackends, agent, bootable_backends, handles, launch_spec, ssh_addr,
};
use crate::context::DaemonContext;
use crate::ids;
use crate::operations::OperationHandle;

/// Tells the host's resolver (where banger manages it) that `*.vm` is answered on the
/// bridge. Done after every `ensure_bridge`, since the resolver forgets a deleted link's
/// settings; a failure costs only host-side names, so it is logged, not fatal.
async fn route_zone(backends: &VmBackends) {
    let plan = &backends.plan;
    match backends
        .net
        .route_zone(&plan.bridge, plan.gateway(), crate::dns::wire::ZONE)
        .await
    {
        Ok(banger_net::ZoneRoute::Routed) => {
            tracing::debug!(bridge = %plan.bridge, "host resolver routes the vm zone to banger");
        }
        Ok(banger_net::ZoneRoute::Unmanaged) => {}
        Err(e) => tracing::warn!(
            error = %banger_util::chain(&e),
            "NAME.vm will not resolve on the host"
        ),
    }
}

/// How [`boot`] starts the VMM.
pub(super) enum Launch {
    /// A plain cold boot.
    Cold,
    /// A cold boot saved as its boot class's warm snapshot once its agent answers.
    Template(super::warm::flow::Template),
}

/// Network, boot, agent, SSH: the stages shared by create and start. On error the caller
/// tears down; `launched` tells it whether a VMM is running.
pub(super) async fn boot(
    ctx: &DaemonContext,
    backends: &VmBackends,
    record: &VmRecord,
    kernel: &KernelRecord,
    op: &OperationHandle,
    launched: &mut Option<VmmHandle>,
    mut launch: Launch,
) -> Result<VmmHandle, StageError> {
    let spec = launch_spec(backends, record, kernel)?;
    let tap = network(ctx, backends, record, &spec, op).await?;

    op.stage(Stage::Boot.name());
    let started = match &mut launch {
        Launch::Cold => backends.vmm.launch(&spec).await,
        Launch::Template(template) => template.launch(backends, &spec, op).await,
    };
    let handle = started.map_err(|e| StageError::new(Stage::Boot, e))?;
    *launched = Some(handle.clone());
    op.detail(&format!(
        "{} pid {}, console {}",
        handle.kind.as_str(),
        handle.pid,
        handle.console_log.display()
    ));
    record_running(ctx, record, &handle, tap, Stage::Boot)?;

    op.stage(Stage::WaitForAgent.name());
    // A template is saved only once its guest is set up and idle, so restores start idle.
    let ready = match launch {
        Launch::Cold => AgentReady::Answers,
        Launch::Template(_) => AgentReady::Settled,
    };
    wait_for_agent(backends, &handle, backends.timeouts.agent, ready).await?;
    if let Launch::Template(template) = launch {
        template.save(ctx, backends, record, &handle, op).await?;
    }

    wait_for_ssh(backends, record, backends.timeouts.ssh, op).await?;
    Ok(handle)
}

/// The network stage: the bridge (and the host resolver's route to it), the VM's TAP from
/// the pool or new, and its NAT rule. Returns the TAP.
pub(super) async fn network(
    ctx: &DaemonContext,
    backends: &VmBackends,
    record: &VmRecord,
    spec: &banger_vmm::LaunchSpec,
    op: &OperationHandle,
) -> Result<String, StageError> {
    op.stage(Stage::Network.name());
    let at_network = |e| StageError::new(Stage::Network, e);
    let plan = &backends.plan;
    backends
        .net
        .ensure_bridge(&plan.bridge, plan.gateway(), plan.prefix)
        .await
        .map_err(at_network)?;
    if let Some(guest_dns) = ctx.guest_dns() {
        guest_dns.ensure_serving(backends.net.as_ref()).await;
    }
    route_zone(backends).await;
    let tap = spec.net.as_ref().map(|n| n.tap.clone()).unwrap_or_default();
    let pooled = super::tap_pool::claim(ctx, backends, &tap)
        .await
        .map_err(at_network)?;
    if record.spec.nat {
        backends
            .net
            .allow_nat(&record.id, &tap, &plan.bridge)
            .await
            .map_err(at_network)?;
    } else {
        // `vm set --nat false` since the last start: no rule may be left.
        backends
            .net
            .revoke_nat(&record.id)
            .await
            .map_err(at_network)?;
    }
    op.detail(match (pooled, record.spec.nat) {
        (true, true) => "tap from the pool, outbound NAT",
        (true, false) => "tap from the pool",
        (false, true) => "new tap, outbound NAT",
        (false, false) => "new tap",
    });
    // Refill after every claim (the first claim creates the pool).
    let refill_ctx = ctx.clone();
    tokio::spawn(async move {
        super::tap_pool::refill(&refill_ctx, &refill_ctx.backends()).await;
    });
    Ok(tap)
}

/// Records a launched VMM as VM `record`'s (memory and `handles.json`), marks the VM running
/// and publishes its name.
pub(super) fn record_running(
    ctx: &DaemonContext,
    record: &VmRecord,
    handle: &VmmHandle,
    tap: String,
    stage: Stage,
) -> Result<(), StageError> {
    let saved = handles::VmHandles {
        vmm: handle.clone(),
        tap: Some(tap),
    };
    handles::save(&record.dir, &saved)
        .map_err(|e| StageError::other(stage, format!("save handles: {e}")))?;
    ctx.remember_handles(&record.id, saved);
    set_state(ctx, record, VmState::Running, None);
    publish_name(ctx, record);
    Ok(())
}

/// The wait-for-SSH stage: until sshd in the guest answers, within `timeout`.
pub(super) async fn wait_for_ssh(
    backends: &VmBackends,
    record: &VmRecord,
    timeout: Duration,
    op: &OperationHandle,
) -> Result<(), StageError> {
    op.stage(Stage::WaitForSsh.name());
    let addr = ssh_addr(backends, record)
        .ok_or_else(|| StageError::other(Stage::WaitForSsh, "no guest address"))?;
    tokio::task::spawn_blocking(move || banger_ssh::wait_for_ssh(addr, timeout))
        .await
        .map_err(|e| StageError::other(Stage::WaitForSsh, format!("the probe crashed: {e}")))?
        .map_err(|e| {
            StageError::guest(
                Stage::WaitForSsh,
                format!(
                    "sshd in the guest never answered: {}",
                    crate::api::error::chain(&e)
                ),
            )
        })?;
    Ok(())
}

/// What [`wait_for_agent`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AgentReady {
    /// Any healthy answer.
    Answers,
    /// A healthy answer that also says boot setup is over (`"settled":true`; an agent that
    /// does not report it counts as settled).
    Settled,
}

/// Whether a 200 `GET /healthz` body satisfies `ready`.
fn health_satisfies(body: &serde_json::Value, ready: AgentReady) -> bool {
    match ready {
        AgentReady::Answers => true,
        AgentReady::Settled => body
            .get("settled")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true),
    }
}

/// Polls the guest agent's health until it answers 200 (and, for [`AgentReady::Settled`],
/// says it is settled), the VM stops, or `timeout` passes.
pub(super) async fn wait_for_agent(
    backends: &VmBackends,
    handle: &VmmHandle,
    timeout: Duration,
    ready: AgentReady,
) -> Result<(), StageError> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        if !backends.vmm.is_running(handle) {
            return Err(StageError::guest(
                Stage::WaitForAgent,
                "the VM stopped while booting",
            ));
        }
        match agent::call(&handle.agent, "GET", HEALTHZ, Duration::from_secs(2)).await {
            Ok((200, body)) if health_satisfies(&body, ready) => return Ok(()),
            Ok((200, _)) => last = "the agent is still setting the guest up".to_owned(),
            Ok((status, body)) => last = format!("agent answered {status}: {body}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(AGENT_POLL).await;
    }
    Err(StageError::guest(
        Stage::WaitForAgent,
        format!("no healthy agent within {timeout:?} ({last})"),
    ))
}

/// How often the agent's health is asked while a guest boots: each miss costs up to this
/// much of the boot, and a health call is a few bytes over a local socket.
const AGENT_POLL: Duration = Duration::from_millis(50);

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
    kill_unrecorded_vmms(backends, record).await;
    // Only once no VMM of it runs: the jail (if any) it ran in goes too.
    if let Err(e) = backends.vmm.release(&record.id) {
        tracing::warn!(vm = %record.name, error = %e, "could not remove the vm's jail");
    }
    ctx.zone().remove(record.name.as_str());
    if let Err(e) = backends.net.revoke_nat(&record.id).await {
        tracing::warn!(vm = %record.name, error = %e, "could not remove the vm's NAT rule");
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

/// Puts VM `record`'s `NAME.vm` record in the zone (its VMM is up).
pub(super) fn publish_name(ctx: &DaemonContext, record: &VmRecord) {
    if let Some(ip) = record.guest_ip.as_deref().and_then(|ip| ip.parse().ok()) {
        ctx.zone().insert(record.name.as_str(), ip);
    }
}

/// Kills VMMs tagged with this VM's id that no handles point at: a daemon that crashed between
/// spawning a VMM and writing `handles.json` leaves one, and it must never outlive its VM.
pub(super) async fn kill_unrecorded_vmms(backends: &VmBackends, record: &VmRecord) {
    let pids = backends.vmm.tagged_pids(&record.id);
    for pid in &pids {
        tracing::warn!(vm = %record.name, vm_pid = pid, "killing a VMM nothing had recorded");
        if let Err(e) = backends.vmm.kill_tagged(&record.id, *pid) {
            tracing::error!(vm = %record.name, vm_pid = pid, error = %e, "cannot kill a VMM");
        }
    }
    if pids.is_empty() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !backends.vmm.tagged_pids(&record.id).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a stopped VM as an operation.
pub async fn start(ctx: &DaemonContext, reference: &str) -> Result<Operation, VmError> {
    let backends = bootable_backends(ctx)?;
    let record = ctx.store().vms().resolve(reference)?;
    if record.state == VmState::Error
        && record.last_error.as_deref() == Some(super::reconcile::INTERRUPTED_CREATE)
    {
        return Err(VmError::invalid(format!(
            "vm {name} was never fully created (a daemon restart interrupted it), so it cannot \
             start; delete it with `banger vm delete {name}` and create it again",
            name = record.name
        )));
    }
    let image = ctx
        .store()
        .images()
        .get(&record.image_id)?
        .ok_or_else(|| VmError::not_found(format!("the image of {} is gone", record.name)))?;
    let source = super::boot_source_for(ctx, image)?;
    let op = ctx
        .operations()
        .begin("vm.start", Some(record.name.as_str()));
    let snapshot = op.snapshot();
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
        // Host files may have changed since the last boot: the guest gets them as they are now.
        let booted = match super::file_sync::run(&ctx, &backends, &record, &op).await {
            Ok(()) => {
                boot(
                    &ctx,
                    &backends,
                    &record,
                    &source.kernel,
                    &op,
                    &mut launched,
                    Launch::Cold,
                )
                .await
            }
            Err(e) => Err(e),
        };
        match booted {
            Ok(_) => op.succeed(),
            Err(err) => {
                let msg = format!("start {} {err}", record.name);
                teardown(&ctx, &backends, &record, VmState::Error, Some(&msg)).await;
                op.fail(
                    err.code(),
                    &format!(
                        "{msg}; console log: {}",
                        banger_vmm::console_log_path(&record.dir).display()
                    ),
                );
            }
        }
    });
    Ok(snapshot)
}

/// Stops a VM: agent power-off, then the VMM's own request, then a kill after the timeout.
pub async fn stop(ctx: &DaemonContext, reference: &str) -> Result<VmRecord, VmError> {
    let backends = ctx.backends();
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
pub async fn kill(ctx: &DaemonContext, reference: &str) -> Result<VmRecord, VmError> {
    let backends = ctx.backends();
    let record = ctx.store().vms().resolve(reference)?;
    let _lock = ctx.vm_locks().lock(&record.id).await;
    teardown(ctx, &backends, &record, VmState::Stopped, None).await;
    Ok(ctx.store().vms().get(&record.id)?.unwrap_or(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_template_waits_for_a_settled_agent() {
        let settling = json!({"status": "ok", "settled": false});
        let settled = json!({"status": "ok", "settled": true});
        let older = json!({"status": "ok"});
        assert!(health_satisfies(&settling, AgentReady::Answers));
        assert!(!health_satisfies(&settling, AgentReady::Settled));
        assert!(health_satisfies(&settled, AgentReady::Settled));
        assert!(health_satisfies(&older, AgentReady::Settled));
    }
}
