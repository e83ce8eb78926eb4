//! The VM lifecycle: create, start, stop, kill, delete, and reconciling after restarts.
//!
//! The service composes the adapters the binary injects ([`VmBackends`]: a VMM, host
//! networking, banger's SSH key) with the store. Rules it keeps:
//! - Everything a request can get wrong is checked before anything is created.
//! - A create is an operation with stages; a failure at any stage tears down what that stage
//!   and earlier ones made (VMM, TAP, disks, record), keeps only the console log for the user,
//!   and reports the stage and the log's path.
//! - Operations on one VM are serialised ([`locks`]); a global reservation makes name, IP and
//!   TAP unique across concurrent creates.
//! - A running VM's handles are in memory and in `handles.json`; liveness is "the process is
//!   alive and is this VM's VMM". A monitor demotes VMs whose VMM died and releases their TAP.

pub mod agent;
pub mod capacity;
mod delete;
pub mod disks;
pub mod error;
pub mod file_sync;
pub mod handles;
pub mod inspect;
pub mod locks;
mod power;
mod reconcile;
mod set;
pub mod spares;
pub mod tap_pool;
pub mod warm;
pub mod workspace;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use banger_model::{ImageRecord, KernelRecord, VmName, VmRecord, VmState};
use banger_net::{NetOps, NetPlan};
use banger_proto::{CreateVmRequest, ErrorCode, Operation};
use banger_vmm::{DiskSpec, LaunchSpec, NetSpec, Vmm};

use crate::api::error::chain;
use crate::context::DaemonContext;
use crate::ids;
use crate::operations::OperationHandle;

pub use delete::delete;
pub use error::{Stage, StageError, StageFailure, VmError};
pub use inspect::{health, ports, stats};
pub use power::{kill, start, stop, teardown};
pub use reconcile::{monitor, reconcile_at_start};
pub use set::{prune, set};

/// Bounds on the slow parts of a boot and a stop.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Boot until the agent answers.
    pub agent: Duration,
    /// Agent until sshd answers.
    pub ssh: Duration,
    /// Graceful stop before the VMM is killed.
    pub stop: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            agent: Duration::from_secs(180),
            ssh: Duration::from_secs(90),
            stop: Duration::from_secs(20),
        }
    }
}

/// What the daemon needs to run VMs, injected by the binary (or a test).
pub struct VmBackends {
    /// The hypervisor.
    pub vmm: Arc<dyn Vmm>,
    /// Host networking.
    pub net: Arc<dyn NetOps>,
    /// Bridge and subnet.
    pub plan: NetPlan,
    /// banger's SSH key pair.
    pub ssh_key: banger_ssh::KeyPair,
    /// banger's known_hosts.
    pub known_hosts: PathBuf,
    /// Owner of TAPs (so an unprivileged VMM could attach).
    pub owner_uid: u32,
    /// The daemon owner's home: `~/` of `[[file_sync]]` host paths, and where the host's
    /// global git identity is read from.
    pub home: PathBuf,
    /// The port sshd listens on in guests (22; tests that stand in for guests use another).
    pub ssh_port: u16,
    /// Bounds.
    pub timeouts: Timeouts,
}

/// The directory of VM `id`.
pub fn vm_dir(ctx: &DaemonContext, id: &str) -> PathBuf {
    ctx.layout().vms_dir().join(id)
}

/// The backends, when they can boot VMs; otherwise a host problem naming the fix.
fn bootable_backends(ctx: &DaemonContext) -> Result<Arc<VmBackends>, VmError> {
    let backends = ctx.backends();
    match backends.vmm.unavailable_reason() {
        None => Ok(backends),
        Some(reason) => Err(VmError::new(
            ErrorCode::HostProblem,
            format!(
                "no VMM can boot VMs on this host: {reason}; then restart the daemon (`banger daemon stop`)"
            ),
        )),
    }
}

/// The guest agent binary, or a host problem listing where it was looked for.
fn agent_binary(ctx: &DaemonContext) -> Result<PathBuf, VmError> {
    ctx.agent_binary()
        .map_err(|e| VmError::new(ErrorCode::HostProblem, e.to_string()))
}

/// The image and kernel a VM boots.
struct BootSource {
    image: ImageRecord,
    kernel: KernelRecord,
}

fn resolve_boot_source(ctx: &DaemonContext, image_ref: &str) -> Result<BootSource, VmError> {
    let image = ctx.store().images().resolve(image_ref).map_err(|e| {
        let err = VmError::from(e);
        if err.code() == ErrorCode::NotFound {
            VmError::not_found(format!(
                "{err}; pull it first with `banger image pull {image_ref}`"
            ))
        } else {
            err
        }
    })?;
    boot_source_for(ctx, image)
}

fn boot_source_for(ctx: &DaemonContext, image: ImageRecord) -> Result<BootSource, VmError> {
    let kernel_name = image
        .kernel_name
        .clone()
        .ok_or_else(|| VmError::invalid(format!("image {} names no kernel", image.name)))?;
    let kernel = ctx
        .store()
        .kernels()
        .get_by_name(&kernel_name)?
        .ok_or_else(|| {
            VmError::not_found(format!(
                "kernel {kernel_name} of image {} is missing; run `banger kernel pull {kernel_name}`",
                image.name
            ))
        })?;
    Ok(BootSource { image, kernel })
}

/// Where a create's image comes from.
enum ImagePlan {
    /// Already here.
    Ready(Box<BootSource>),
    /// A catalog recipe to build first.
    Build(banger_image::ImageRecipe),
    /// A config bundle to download first.
    Bundle(banger_model::CatalogBundle),
}

fn plan_image(ctx: &DaemonContext, image_ref: &str) -> Result<ImagePlan, VmError> {
    match resolve_boot_source(ctx, image_ref) {
        Ok(source) => Ok(ImagePlan::Ready(Box::new(source))),
        Err(e) if e.code() == ErrorCode::NotFound => {
            if let Some(bundle) = ctx.config().catalog.iter().find(|b| b.name == image_ref) {
                return Ok(ImagePlan::Bundle(bundle.clone()));
            }
            let catalog = crate::images::pull::catalog()?;
            match crate::images::pull::image_recipe(&catalog, image_ref) {
                Some(recipe) => Ok(ImagePlan::Build(recipe)),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Checks the request and starts the create operation: (auto-pull), reserve name/IP/TAP by
/// inserting the record, then the boot stages. Returns the operation's first snapshot.
pub async fn create(ctx: &DaemonContext, request: CreateVmRequest) -> Result<Operation, VmError> {
    let name = request
        .name
        .as_deref()
        .map(VmName::parse)
        .transpose()
        .map_err(|e| VmError::invalid(e.to_string()))?;
    request
        .spec
        .validate()
        .map_err(|e| VmError::invalid(e.to_string()))?;
    request
        .spec
        .check_capacity(
            &capacity::probe(&ctx.layout().state_dir),
            ctx.config().overcommit(),
            request.spec.disk_size,
        )
        .map_err(|e| VmError::invalid(e.to_string()))?;
    if let Some(n) = &name
        && ctx.store().vms().get_by_name(n.as_str())?.is_some()
    {
        return Err(taken(n));
    }
    let backends = bootable_backends(ctx)?;
    agent_binary(ctx)?;
    let image_ref = request
        .image
        .clone()
        .unwrap_or_else(|| ctx.config().default_image().to_owned());
    let plan = plan_image(ctx, &image_ref)?;
    let op = ctx.operations().begin(
        "vm.create",
        Some(name.as_ref().map_or("(unnamed)", VmName::as_str)),
    );
    let snapshot = op.snapshot();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let (op, source) = match plan {
            ImagePlan::Ready(source) => {
                op.skip(Stage::AutoPull.name(), "image and kernel are here");
                (op, Ok(*source))
            }
            ImagePlan::Build(recipe) => {
                op.stage(Stage::AutoPull.name());
                let _pull = ctx.pull_lock().lock().await;
                let (op, result) = crate::images::pull::ensure_image(&ctx, &recipe, op).await;
                let source = result
                    .map_err(|(code, message)| VmError::new(code, message))
                    .and_then(|image| boot_source_for(&ctx, image));
                (op, source)
            }
            ImagePlan::Bundle(bundle) => {
                op.stage(Stage::AutoPull.name());
                let _pull = ctx.pull_lock().lock().await;
                let source = match ctx.store().images().get_by_name(&bundle.name) {
                    Ok(Some(image)) => Ok(image),
                    _ => crate::images::bundle::fetch_bundle(&ctx, &bundle, &op)
                        .await
                        .map_err(VmError::from),
                }
                .and_then(|image| boot_source_for(&ctx, image));
                (op, source)
            }
        };
        let source = match source {
            Ok(s) => s,
            Err(e) => {
                op.fail(
                    e.code(),
                    &format!("auto-pull {image_ref} failed: {}", chain(&e)),
                );
                return;
            }
        };
        let record = match reserve(&ctx, &backends, name, &source, request.spec).await {
            Ok(r) => r,
            Err(e) => {
                op.fail(e.code(), &chain(&e));
                return;
            }
        };
        op.retarget(record.name.as_str());
        let lock = ctx.vm_locks().lock(&record.id).await;
        run_create(&ctx, &backends, record, source, request.cold, op).await;
        drop(lock);
    });
    Ok(snapshot)
}

/// Picks the name (or generates one), an IP and a TAP, and inserts the record, all under the
/// reservation lock, so concurrent creates never share them.
async fn reserve(
    ctx: &DaemonContext,
    backends: &VmBackends,
    name: Option<VmName>,
    source: &BootSource,
    spec: banger_model::VmSpec,
) -> Result<VmRecord, VmError> {
    let _reservation = ctx.vm_locks().reserve().await;
    let vms = ctx.store().vms().list()?;
    let name = match name {
        Some(n) => {
            if vms.iter().any(|v| v.name == n) {
                return Err(taken(&n));
            }
            n
        }
        None => generate_name(&vms),
    };
    let used: BTreeSet<Ipv4Addr> = vms
        .iter()
        .filter_map(|v| v.guest_ip.as_deref()?.parse().ok())
        .collect();
    let ip = backends
        .plan
        .allocate(&used)
        .map_err(|e| VmError::new(ErrorCode::OperationFailed, e.to_string()))?;
    let id = ids::record_id();
    let now = ids::now_rfc3339();
    let record = VmRecord {
        id: id.clone(),
        name,
        image_id: source.image.id.clone(),
        spec,
        state: VmState::Created,
        guest_ip: Some(ip.to_string()),
        tap_name: Some(banger_net::plan::tap_name_for(&id)),
        dir: vm_dir(ctx, &id),
        last_error: None,
        created_at: now.clone(),
        updated_at: now,
        workspace: None,
    };
    ctx.store().vms().insert(&record)?;
    Ok(record)
}

fn taken(name: &VmName) -> VmError {
    VmError::new(
        ErrorCode::AlreadyExists,
        format!("a vm named {name} already exists; pick another name or delete it"),
    )
}

fn generate_name(existing: &[VmRecord]) -> VmName {
    const ADJECTIVES: [&str; 8] = [
        "brisk", "calm", "eager", "fuzzy", "jolly", "lucky", "quiet", "swift",
    ];
    const NOUNS: [&str; 8] = [
        "otter", "falcon", "badger", "heron", "lynx", "marten", "puffin", "wombat",
    ];
    loop {
        let hex = ids::random_hex(3);
        let n = usize::from_str_radix(&hex, 16).unwrap_or(0);
        let candidate = format!("{}-{}-{}", ADJECTIVES[n % 8], NOUNS[(n / 8) % 8], &hex[..4]);
        if let Ok(name) = VmName::parse(&candidate)
            && !existing.iter().any(|v| v.name == name)
        {
            return name;
        }
    }
}

async fn run_create(
    ctx: &DaemonContext,
    backends: &VmBackends,
    record: VmRecord,
    source: BootSource,
    cold: bool,
    op: OperationHandle,
) {
    let mut launched = None;
    let result = create_stages(ctx, backends, &record, &source, cold, &op, &mut launched).await;
    warm::flow::forget_ram(&record);
    // The disks this create took or made get their spares now, off its critical path.
    drop(ctx.spares().refill());
    let Err(err) = result else {
        op.succeed();
        return;
    };
    tracing::warn!(vm = %record.name, stage = %err.stage, error = %err, "create failed");
    let console = banger_vmm::console_log_path(&record.dir);
    if err.stage == Stage::WaitForSsh {
        // The guest booted but sshd never answered: keep the VM (disks, record, console log)
        // in `error` so `vm logs` shows why; only what it held while running is released.
        let message = format!("create {} {err}", record.name);
        power::teardown(ctx, backends, &record, VmState::Error, Some(&message)).await;
        op.fail(
            err.code(),
            &format!(
                "{message}; the vm is kept in state error: see `banger vm logs {}` (console log {}), then `banger vm delete {}`",
                record.name,
                console.display(),
                record.name
            ),
        );
        return;
    }
    let kept_log = teardown_failed_create(ctx, backends, &record, launched.as_ref()).await;
    // One console-log path per error, the one that exists: the log moved to state/failed/.
    let mut message = format!("create {} {err}", record.name);
    if let Some(kept) = kept_log {
        let old = console.display().to_string();
        let new = kept.display().to_string();
        if message.contains(&old) {
            message = message.replace(&old, &new);
        } else {
            message.push_str(&format!("; console log: {new}"));
        }
    }
    op.fail(err.code(), &message);
}

async fn create_stages(
    ctx: &DaemonContext,
    backends: &VmBackends,
    record: &VmRecord,
    source: &BootSource,
    cold: bool,
    op: &OperationHandle,
    launched: &mut Option<banger_vmm::VmmHandle>,
) -> Result<(), StageError> {
    let launch = match warm::flow::plan(ctx, backends, record, source, cold) {
        warm::flow::Plan::Restore(restore) => {
            match warm::flow::restore(ctx, backends, record, source, op, launched, &restore).await {
                Ok(handle) => {
                    tracing::info!(vm = %record.name, vm_pid = handle.pid, class = %restore.key(), "vm restored and ready");
                    op.skip(Stage::PostStartHooks.name(), "none configured");
                    return Ok(());
                }
                Err(err) => {
                    let key = restore.key().to_owned();
                    tracing::warn!(vm = %record.name, class = %key, error = %err, "restore failed: booting cold");
                    op.warn(&format!(
                        "the warm snapshot did not restore ({err}); booting cold and saving a new one"
                    ));
                    warm::flow::undo_restore(ctx, backends, record, launched).await;
                    if let Err(e) = ctx.snapshots().remove_where(|m| m.key == key) {
                        tracing::warn!(class = %key, error = %e, "cannot remove a failed snapshot");
                    }
                    power::Launch::Template(restore.into_template())
                }
            }
        }
        warm::flow::Plan::Template(template) => power::Launch::Template(template),
        warm::flow::Plan::Cold(why) => {
            tracing::debug!(vm = %record.name, why, "booting cold");
            power::Launch::Cold
        }
    };
    op.stage(Stage::PrepareDisks.name());
    let at_disks = |f: StageFailure| StageError::new(Stage::PrepareDisks, f);
    let agent = ctx.agent_binary().map_err(|e| at_disks(e.into()))?;
    let dir = record.dir.clone();
    let rootfs = source.image.rootfs_path.clone();
    let seed = source.image.work_seed_path.clone();
    let disk_size = record.spec.disk_size;
    let spares = ctx.spares().clone();
    let name = record.name.as_str().to_owned();
    let got = tokio::task::spawn_blocking(move || {
        let got = prepare_disks(&spares, &dir, &rootfs, seed.as_deref(), disk_size, &agent)?;
        let key = host_key(&dir, &name).map_err(StageFailure::Other)?;
        disks::write_host_key(&dir.join("rootfs.ext4"), &dir, &key.private, &key.public)?;
        Ok::<_, StageFailure>(got)
    })
    .await
    .map_err(|e| StageError::other(Stage::PrepareDisks, format!("the disk task crashed: {e}")))?
    .map_err(at_disks)?;
    op.detail(&format!("{} ({got})", disks::OVERLAY_STRATEGY));
    file_sync::run(ctx, backends, record, op).await?;

    let handle = power::boot(ctx, backends, record, &source.kernel, op, launched, launch).await?;
    tracing::info!(vm = %record.name, vm_pid = handle.pid, "vm ready");
    op.skip(Stage::PostStartHooks.name(), "none configured");
    Ok(())
}

/// A new SSH host key for VM `name`, made on the host in its directory `dir` (only for the
/// moment its files exist): a guest under emulation takes hundreds of milliseconds for one.
fn host_key(dir: &Path, name: &str) -> Result<banger_ssh::NewHostKey, String> {
    banger_ssh::generate_host_key(dir, &format!("root@{name}"))
        .map_err(|e| format!("cannot make the vm's ssh host key: {}", chain(&e)))
}

/// The system disk (the image's rootfs with this daemon's agent: every VM runs it, whatever
/// agent its image was built with; the caller adds the VM's own host key) and the work disk, each a spare when one is ready (see
/// [`spares`]). Returns how, for the stage detail.
fn prepare_disks(
    spares: &spares::Spares,
    dir: &Path,
    rootfs: &Path,
    seed: Option<&Path>,
    size: banger_model::Size,
    agent: &Path,
) -> Result<&'static str, StageFailure> {
    std::fs::create_dir_all(dir).map_err(|source| disks::DiskError::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    if let Some(seed) = seed {
        // A seed larger than the disk is the user's error, said before anything is made.
        disks::check_work_size(seed, size)?;
    }
    let key_error = |e: std::io::Error, what: &Path| disks::DiskError::Io {
        action: "stat",
        path: what.to_path_buf(),
        source: e,
    };
    let system_key =
        spares::SpareKey::of(&[rootfs, agent], "system").map_err(|e| key_error(e, rootfs))?;
    let (image, agent_path) = (rootfs.to_path_buf(), agent.to_path_buf());
    let system = spares.take_or_make(&system_key, &dir.join("rootfs.ext4"), move |dst| {
        disks::sparse_copy(&image, dst).map_err(StageFailure::from)?;
        crate::images::inject_agent(dst, &agent_path).map_err(StageFailure::from)
    })?;
    let sources: Vec<&Path> = seed.into_iter().collect();
    let work_key = spares::SpareKey::of(&sources, &format!("work {}", size.bytes()))
        .map_err(|e| key_error(e, seed.unwrap_or(dir)))?;
    let seed = seed.map(Path::to_path_buf);
    let work = spares.take_or_make(&work_key, &dir.join("work.ext4"), move |dst| {
        disks::make_work_disk(seed.as_deref(), dst, size).map_err(StageFailure::from)
    })?;
    Ok(spares::describe(&[system, work]))
}

/// What VM `record`'s guest is told at boot (and, after a restore, through its agent).
fn launch_spec_boot(
    backends: &VmBackends,
    record: &VmRecord,
) -> Result<banger_guest::GuestBoot, StageError> {
    let ip: Ipv4Addr = record
        .guest_ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| StageError::other(Stage::Network, "the vm has no guest address"))?;
    Ok(banger_guest::GuestBoot {
        hostname: Some(record.name.as_str().to_owned()),
        ip: Some(banger_guest::Ipv4Cidr {
            addr: ip,
            prefix: backends.plan.prefix,
        }),
        gw: Some(backends.plan.gateway()),
        // The guests' resolver (`dns::guest`) listens on the gateway.
        dns: Some(backends.plan.gateway()),
        work: Some(banger_guest::paths::WORK_DEVICE.to_owned()),
    })
}

/// The launch spec of a VM whose disks exist.
fn launch_spec(
    backends: &VmBackends,
    record: &VmRecord,
    kernel: &KernelRecord,
) -> Result<LaunchSpec, StageError> {
    let boot = launch_spec_boot(backends, record)?;
    let ip = boot
        .ip
        .map(|c| c.addr)
        .ok_or_else(|| StageError::other(Stage::Network, "the vm has no guest address"))?;
    let tap = record
        .tap_name
        .clone()
        .ok_or_else(|| StageError::other(Stage::Network, "the vm has no tap name"))?;
    let line = boot
        .to_cmdline()
        .map_err(|e| StageError::other(Stage::Boot, e.to_string()))?;
    Ok(LaunchSpec {
        vm_id: record.id.clone(),
        vcpu: record.spec.vcpu,
        memory_mib: record.spec.memory_mib,
        kernel: kernel.vmlinux_path.clone(),
        initrd: kernel.initrd_path.clone(),
        cmdline: line,
        disks: vec![
            DiskSpec {
                path: record.dir.join("rootfs.ext4"),
                read_only: false,
            },
            DiskSpec {
                path: record.dir.join("work.ext4"),
                read_only: false,
            },
        ],
        net: Some(NetSpec {
            tap,
            mac: NetPlan::mac_for(ip),
        }),
        run_dir: record.dir.clone(),
    })
}

/// Where SSH listens for a VM.
fn ssh_addr(backends: &VmBackends, record: &VmRecord) -> Option<SocketAddr> {
    let ip: Ipv4Addr = record.guest_ip.as_deref()?.parse().ok()?;
    Some(SocketAddr::from((ip, backends.ssh_port)))
}

/// Undoes a failed create: VMM, TAP, disks, record. Keeps the console log, moved out of the
/// VM directory, and returns where it went.
async fn teardown_failed_create(
    ctx: &DaemonContext,
    backends: &VmBackends,
    record: &VmRecord,
    launched: Option<&banger_vmm::VmmHandle>,
) -> Option<PathBuf> {
    if let Some(handle) = launched {
        let _ = backends.vmm.kill(handle);
        backends
            .vmm
            .wait_exit(handle, Duration::from_secs(10))
            .await;
    }
    power::kill_unrecorded_vmms(backends, record).await;
    ctx.zone().remove(record.name.as_str());
    if let Err(e) = backends.net.revoke_nat(&record.id).await {
        tracing::warn!(vm = %record.name, error = %e, "could not remove the vm's NAT rule");
    }
    if let Some(tap) = &record.tap_name
        && let Err(e) = backends.net.delete_link(tap).await
    {
        tracing::warn!(vm = %record.name, tap = %tap, error = %e, "could not delete tap");
    }
    let console = banger_vmm::console_log_path(&record.dir);
    let kept = if console.exists() {
        let failed_dir = ctx.layout().state_dir.join("failed");
        let dst = failed_dir.join(format!("{}-{}.console.log", record.name, record.id));
        let kept = std::fs::create_dir_all(&failed_dir)
            .and_then(|()| std::fs::rename(&console, &dst))
            .ok()
            .map(|()| dst);
        prune_failed_logs(&failed_dir, FAILED_LOGS_KEPT);
        kept
    } else {
        None
    };
    if let Err(e) = std::fs::remove_dir_all(&record.dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(vm = %record.name, error = %e, "could not remove vm dir");
    }
    if let Err(e) = ctx.store().vms().delete(&record.id) {
        tracing::warn!(vm = %record.name, error = %e, "could not delete vm record");
    }
    ctx.forget_handles(&record.id);
    ctx.vm_locks().forget(&record.id);
    kept
}

/// How many console logs of failed creates `state/failed/` keeps (the newest).
pub const FAILED_LOGS_KEPT: usize = 20;

/// Removes all but the newest `keep` files of `dir`.
fn prune_failed_logs(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut logs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((modified, e.path()))
        })
        .collect();
    logs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    for (_, old) in logs.into_iter().skip(keep) {
        if let Err(e) = std::fs::remove_file(&old) {
            tracing::warn!(log = %old.display(), error = %e, "could not remove an old failed-create log");
        }
    }
}

/// How long a client's shared SSH connection outlives its last session: the client ends it
/// when its command is done, so this only bounds a master whose client was killed.
const SHARED_SSH_PERSIST: std::time::Duration = std::time::Duration::from_secs(30);

/// The ssh command line that reaches VM `reference`, for the CLI to run.
pub fn ssh_command(
    ctx: &DaemonContext,
    reference: &str,
    request: banger_proto::SshRequest,
) -> Result<banger_proto::SshCommandLine, VmError> {
    let backends = ctx.backends();
    let record = ctx.store().vms().resolve(reference)?;
    if record.state != VmState::Running {
        return Err(VmError::invalid(format!(
            "vm {} is {}; start it with `banger vm start {}`",
            record.name, record.state, record.name
        )));
    }
    let ip = record
        .guest_ip
        .clone()
        .ok_or_else(|| VmError::invalid(format!("vm {} has no address", record.name)))?;
    let mut cmd = banger_ssh::SshCommand::new(ip, &backends.ssh_key.private, &backends.known_hosts);
    cmd.batch = false;
    cmd.tty = if request.remote.is_empty() && request.tty {
        banger_ssh::TtyMode::Request
    } else {
        banger_ssh::TtyMode::Auto
    };
    cmd.remote = request.remote;
    if let Some(path) = request.control_path {
        if !path.is_absolute() {
            return Err(VmError::invalid(format!(
                "the ssh control socket {} must be an absolute path",
                path.display()
            )));
        }
        cmd.control = Some(banger_ssh::ControlMaster {
            path,
            persist: SHARED_SSH_PERSIST,
        });
    }
    let args = cmd
        .args()
        .map_err(|e| VmError::invalid(e.to_string()))?
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    Ok(banger_proto::SshCommandLine {
        program: "ssh".to_owned(),
        args,
        known_hosts: backends.known_hosts.clone(),
    })
}

/// Up to 64 KiB of VM `reference`'s console log from `offset` (default: the last 64 KiB).
pub fn console_log(
    ctx: &DaemonContext,
    reference: &str,
    offset: Option<u64>,
) -> Result<banger_proto::LogChunk, VmError> {
    use std::io::{Read, Seek, SeekFrom};
    const CHUNK: u64 = 64 * 1024;
    let record = ctx.store().vms().resolve(reference)?;
    let path = banger_vmm::console_log_path(&record.dir);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(banger_proto::LogChunk {
                path,
                offset: 0,
                next_offset: 0,
                text: String::new(),
            });
        }
        Err(e) => return Err(VmError::failed(&e)),
    };
    let len = file.metadata().map_err(|e| VmError::failed(&e))?.len();
    let start = offset.unwrap_or(len.saturating_sub(CHUNK)).min(len);
    file.seek(SeekFrom::Start(start))
        .map_err(|e| VmError::failed(&e))?;
    let mut buf = Vec::new();
    file.take(CHUNK)
        .read_to_end(&mut buf)
        .map_err(|e| VmError::failed(&e))?;
    Ok(banger_proto::LogChunk {
        path,
        offset: start,
        next_offset: start + buf.len() as u64,
        text: String::from_utf8_lossy(&buf).into_owned(),
    })
}
