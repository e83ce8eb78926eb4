//! When a create saves a warm snapshot, when it restores one, and how a restored guest
//! becomes its own VM.
//!
//! - [`plan`] decides per create: a VM of a boot class that has a snapshot restores from it;
//!   the first VM of a class is a [`Template`] (it boots cold, and once its agent answers it
//!   is paused, saved and resumed); `--cold`, a backend without snapshots, or `[[file_sync]]`
//!   entries (their host files may have changed since the save) boot cold.
//! - [`restore`] copies the snapshot's disks as the VM's, takes its TAP down, starts the VMM
//!   from the snapshot, gives the guest its own hostname, address, MAC, clock, entropy and SSH
//!   host key through the agent, and only then brings the TAP up: until the guest has its own
//!   MAC and address it is cut off, so two clones never answer for one address.
//! - Any failure of a restore is undone ([`undo_restore`]) and the create boots cold instead;
//!   the snapshot that failed is dropped, so that cold boot saves a new one.

use std::path::PathBuf;
use std::time::Duration;

use banger_guest::GuestBoot;
use banger_guest::agent::IDENTITY;
use banger_guest::identity::{HostKey, Identity, WallClock};
use banger_model::VmRecord;
use banger_vmm::{LaunchSpec, VmmHandle};

use super::class::BootClass;
use super::store::{SnapshotMeta, StoredSnapshot};
use crate::context::DaemonContext;
use crate::operations::OperationHandle;
use crate::vms::spares::{self, SpareKey};
use crate::vms::{BootSource, Stage, StageError, VmBackends, power};

/// How long a restored guest's agent may take to answer: a restore is quick or broken.
const RESTORED_AGENT: Duration = Duration::from_secs(30);
/// How long sshd in a restored guest may take once its identity is applied.
const RESTORED_SSH: Duration = Duration::from_secs(30);

/// What a create does about warm snapshots.
pub enum Plan {
    /// Boot cold, and save nothing (why, for the stage detail).
    Cold(&'static str),
    /// Boot cold and save the class's snapshot.
    Template(Template),
    /// Restore from the class's snapshot.
    Restore(Restore),
}

/// The first VM of a boot class: booted so that it can be saved.
pub struct Template {
    key: String,
    ram: PathBuf,
    meta: SnapshotMeta,
    /// Whether the VMM was started saveably (a failed saveable launch boots plainly).
    saveable: bool,
}

/// A VM to restore from its class's snapshot.
pub struct Restore {
    snapshot: StoredSnapshot,
    template: Template,
}

impl Restore {
    /// The class's key.
    pub fn key(&self) -> &str {
        &self.template.key
    }

    /// What to do when the restore failed: boot cold as the class's new template.
    pub fn into_template(self) -> Template {
        self.template
    }
}

/// Decides how VM `record` of `source` starts.
pub(in crate::vms) fn plan(
    ctx: &DaemonContext,
    backends: &VmBackends,
    record: &VmRecord,
    source: &BootSource,
    cold: bool,
) -> Plan {
    if cold {
        return Plan::Cold("--cold: booting without a warm snapshot");
    }
    let Some(warm) = backends.vmm.warm() else {
        return Plan::Cold("this VMM has no warm snapshots");
    };
    if !ctx.config().file_sync.is_empty() {
        return Plan::Cold("[[file_sync]] is configured: VMs boot cold to copy its files");
    }
    let Ok(agent) = ctx.agent_binary() else {
        return Plan::Cold("no guest agent");
    };
    let vmm_kind = backends.vmm.kind().map_or("none", |k| k.as_str());
    let git = crate::vms::file_sync::GitIdentity::read(&backends.home).to_gitconfig();
    let class = BootClass {
        image: (source.image.id.clone(), source.image.digest.clone()),
        image_files: std::iter::once(source.image.rootfs_path.clone())
            .chain(source.image.work_seed_path.clone())
            .collect(),
        kernel: source.kernel.id.clone(),
        kernel_files: std::iter::once(source.kernel.vmlinux_path.clone())
            .chain(source.kernel.initrd_path.clone())
            .collect(),
        vcpu: record.spec.vcpu,
        memory_mib: record.spec.memory_mib,
        disk_bytes: record.spec.disk_size.bytes(),
        vmm: (vmm_kind.to_owned(), warm.binary().to_owned()),
        agent,
        login: format!(
            "{}\n{}",
            backends.ssh_key.public_line,
            git.unwrap_or_default()
        ),
    };
    let key = match class.key() {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!(vm = %record.name, error = %e, "no boot class: booting cold");
            return Plan::Cold("the boot class could not be computed");
        }
    };
    let template = Template {
        ram: ram_path(record),
        meta: SnapshotMeta {
            key: key.clone(),
            image_id: source.image.id.clone(),
            memory_mib: record.spec.memory_mib,
            disks: 2,
            created_at: String::new(),
            vcpu: Some(record.spec.vcpu),
            kernel_id: Some(source.kernel.id.clone()),
            disk_bytes: Some(record.spec.disk_size.bytes()),
        },
        key,
        saveable: false,
    };
    match ctx.snapshots().find(&template.key) {
        Some(snapshot) => Plan::Restore(Restore { snapshot, template }),
        None => Plan::Template(template),
    }
}

/// Where a template keeps its guest's RAM while it runs: on a tmpfs (`/dev/shm`), so the
/// shared mapping costs what anonymous memory would, never disk writes. Removed once saved.
pub fn ram_path(record: &VmRecord) -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let name = format!("banger-warm-{}.ram", record.id);
    if shm.is_dir() {
        shm.join(name)
    } else {
        record.dir.join(name)
    }
}

/// Removes VM `record`'s template RAM file, if one is left (a template that failed or a
/// daemon that crashed before the save).
pub fn forget_ram(record: &VmRecord) {
    let ram = ram_path(record);
    if let Err(e) = std::fs::remove_file(&ram)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(vm = %record.name, ram = %ram.display(), error = %e, "cannot remove a template's RAM file");
    }
}

impl Template {
    /// Boots `spec` saveably; a backend that cannot (no room on the tmpfs, say) boots it
    /// plainly, and the VM simply is no template.
    pub async fn launch(
        &mut self,
        backends: &VmBackends,
        spec: &LaunchSpec,
        op: &OperationHandle,
    ) -> Result<VmmHandle, banger_vmm::VmmError> {
        let Some(warm) = backends.vmm.warm() else {
            return backends.vmm.launch(spec).await;
        };
        match warm.launch_saveable(spec, &self.ram).await {
            Ok(handle) => {
                self.saveable = true;
                Ok(handle)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&self.ram);
                tracing::warn!(vm = %spec.vm_id, error = %banger_util::chain(&e), "cannot boot saveably: booting plainly");
                op.warn(&format!(
                    "cannot boot so as to save a warm snapshot ({}); booting without one",
                    banger_util::chain(&e)
                ));
                backends.vmm.launch(spec).await
            }
        }
    }

    /// Saves the running template as its class's snapshot: pause, memory and device state,
    /// disks copied while paused, resume. A save that fails only costs the snapshot (with a
    /// warning); a guest that cannot be resumed fails the stage.
    pub async fn save(
        self,
        ctx: &DaemonContext,
        backends: &VmBackends,
        record: &VmRecord,
        handle: &VmmHandle,
        op: &OperationHandle,
    ) -> Result<(), StageError> {
        let Some(warm) = backends.vmm.warm() else {
            return Ok(());
        };
        if !self.saveable {
            // Booted plainly (see `launch`): nothing to save.
            return Ok(());
        }
        op.stage(Stage::SaveSnapshot.name());
        let saved = self.write(ctx, warm, record, handle).await;
        let resumed = warm.resume(handle).await;
        // The guest's RAM is in the snapshot (or the save failed); the VM keeps its mapping.
        forget_ram(record);
        resumed.map_err(|e| StageError::new(Stage::SaveSnapshot, e))?;
        match saved {
            Ok((paused, snapshot)) => {
                op.detail(&format!(
                    "class {} saved (guest paused {} ms, {} MiB on disk)",
                    self.key,
                    paused.as_millis(),
                    snapshot.bytes() >> 20
                ));
                tracing::info!(vm = %record.name, class = %self.key, paused_ms = paused.as_millis() as u64, "warm snapshot saved");
                // Spare copies of its disks are made once this create is over, so even the
                // first restore takes them instead of copying.
                for i in 0..2 {
                    let disk = snapshot.disk(i);
                    match snapshot_disk_key(&disk) {
                        Ok(key) => ctx.spares().want(&key, copy_of(disk)),
                        Err(e) => tracing::warn!(class = %self.key, error = %e, "no spare disk"),
                    }
                }
            }
            Err(why) => {
                tracing::warn!(vm = %record.name, class = %self.key, error = %why, "no warm snapshot");
                op.warn(&format!(
                    "no warm snapshot was saved ({why}); the next VM boots cold"
                ));
            }
        }
        Ok(())
    }

    async fn write(
        &self,
        ctx: &DaemonContext,
        warm: &dyn banger_vmm::warm::WarmSnapshots,
        record: &VmRecord,
        handle: &VmmHandle,
    ) -> Result<(Duration, StoredSnapshot), String> {
        let store = ctx.snapshots();
        let staging = store
            .begin(&self.key)
            .map_err(|e| format!("cannot stage it: {e}"))?;
        let into = banger_vmm::warm::Snapshot {
            memory: staging.ram(),
            state: staging.state(),
        };
        let started = std::time::Instant::now();
        warm.save(handle, &self.ram, &into)
            .await
            .map_err(|e| banger_util::chain(&e))?;
        let disks = [record.dir.join("rootfs.ext4"), record.dir.join("work.ext4")];
        let targets: Vec<PathBuf> = (0..disks.len()).map(|i| staging.disk(i)).collect();
        tokio::task::spawn_blocking(move || {
            for (from, to) in disks.iter().zip(&targets) {
                crate::vms::disks::sparse_copy(from, to).map_err(|e| banger_util::chain(&e))?;
            }
            Ok::<(), String>(())
        })
        .await
        .map_err(|e| format!("the disk copy crashed: {e}"))??;
        let paused = started.elapsed();
        let meta = SnapshotMeta {
            created_at: crate::ids::now_rfc3339(),
            ..self.meta.clone()
        };
        match staging.commit(&meta) {
            Ok(Some(snapshot)) => {
                // This image's older snapshots of the same sizes can never restore again.
                match store.remove_stale(&meta.key, |m| m.same_slot(&meta)) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(class = %meta.key, removed = n, "stale warm snapshots removed")
                    }
                    Err(e) => {
                        tracing::warn!(class = %meta.key, error = %e, "cannot remove stale warm snapshots")
                    }
                }
                Ok((paused, snapshot))
            }
            Ok(None) => store
                .find(&self.key)
                .map(|s| (paused, s))
                .ok_or_else(|| "another VM's save won, and it is gone".to_owned()),
            Err(e) => Err(format!("cannot move it into place: {e}")),
        }
    }
}

/// The spare key of a snapshot's disk.
fn snapshot_disk_key(disk: &std::path::Path) -> Result<SpareKey, String> {
    SpareKey::of(&[disk], "snapshot disk").map_err(|e| format!("stat {}: {e}", disk.display()))
}

/// Makes a copy of `disk` (a snapshot's) wherever it is asked to.
fn copy_of(
    disk: PathBuf,
) -> impl Fn(&std::path::Path) -> Result<(), crate::vms::disks::DiskError> + Send + Sync + 'static {
    move |dst| crate::vms::disks::sparse_copy(&disk, dst)
}

/// Starts VM `record` from `restore`'s snapshot: the disk copies, the network (TAP down),
/// the VMM, the agent, the identity, the TAP up, SSH. On error the caller runs
/// [`undo_restore`] and boots cold.
pub(in crate::vms) async fn restore(
    ctx: &DaemonContext,
    backends: &VmBackends,
    record: &VmRecord,
    source: &BootSource,
    op: &OperationHandle,
    launched: &mut Option<VmmHandle>,
    restore: &Restore,
) -> Result<VmmHandle, StageError> {
    let Some(warm) = backends.vmm.warm() else {
        return Err(StageError::other(
            Stage::Restore,
            "this VMM has no warm snapshots",
        ));
    };
    op.stage(Stage::PrepareDisks.name());
    let snapshot = restore.snapshot.clone();
    let dir = record.dir.clone();
    let spares = ctx.spares().clone();
    let got = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut got = Vec::new();
        for (i, name) in ["rootfs.ext4", "work.ext4"].iter().enumerate() {
            let disk = snapshot.disk(i);
            let key = snapshot_disk_key(&disk)?;
            got.push(
                spares
                    .take_or_make(&key, &dir.join(name), copy_of(disk))
                    .map_err(|e| banger_util::chain(&e))?,
            );
        }
        Ok::<_, String>(got)
    })
    .await
    .map_err(|e| StageError::other(Stage::PrepareDisks, format!("the disk task crashed: {e}")))?
    .map_err(|e| StageError::other(Stage::PrepareDisks, e))?;
    op.detail(&format!(
        "copies of warm snapshot {} ({})",
        restore.key(),
        spares::describe(&got)
    ));
    op.skip(
        Stage::FileSync.name(),
        "restored: the saved guest has banger's login and git identity",
    );

    // Made while the network and the VMM come up: it is only needed with the identity.
    let host_key = tokio::spawn(new_host_key(
        record.dir.clone(),
        record.name.as_str().to_owned(),
    ));
    let spec = crate::vms::launch_spec(backends, record, &source.kernel)?;
    let tap = power::network(ctx, backends, record, &spec, op).await?;
    // Cut off until the guest has taken its own MAC and address.
    backends
        .net
        .isolate_link(&tap)
        .await
        .map_err(|e| StageError::new(Stage::Network, e))?;

    op.stage(Stage::Restore.name());
    let mut steps = StepTimes::start();
    let handle = warm
        .restore(&spec, &restore.snapshot.vmm_snapshot())
        .await
        .map_err(|e| StageError::new(Stage::Restore, e))?;
    steps.mark("vmm");
    *launched = Some(handle.clone());
    power::record_running(ctx, record, &handle, tap.clone(), Stage::Restore)?;
    power::wait_for_agent(
        backends,
        &handle,
        RESTORED_AGENT,
        power::AgentReady::Answers,
    )
    .await
    .map_err(|e| StageError::other(Stage::Restore, e.to_string()))?;
    steps.mark("agent");
    let host_key = host_key
        .await
        .map_err(|e| StageError::other(Stage::Restore, format!("the key task crashed: {e}")))??;
    apply_identity(backends, record, &handle, host_key).await?;
    steps.mark("identity");
    backends
        .net
        .ensure_tap(&tap, &backends.plan.bridge, backends.owner_uid)
        .await
        .map_err(|e| StageError::new(Stage::Restore, e))?;
    steps.mark("tap up");
    op.detail(&format!(
        "{} pid {} from warm snapshot {} ({})",
        handle.kind.as_str(),
        handle.pid,
        restore.key(),
        steps.summary()
    ));
    tracing::debug!(vm = %record.name, steps = %steps.summary(), "restore steps");

    power::wait_for_ssh(backends, record, RESTORED_SSH, op).await?;
    Ok(handle)
}

/// How long each step of a stage took, for its detail line: where a restore spends its time
/// is what a user tuning a slow host (or we, tuning the restore) needs to see.
struct StepTimes {
    last: std::time::Instant,
    steps: Vec<(&'static str, Duration)>,
}

impl StepTimes {
    fn start() -> Self {
        Self {
            last: std::time::Instant::now(),
            steps: Vec::new(),
        }
    }

    fn mark(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        self.steps.push((step, now - self.last));
        self.last = now;
    }

    fn summary(&self) -> String {
        self.steps
            .iter()
            .map(|(name, d)| format!("{name} {}ms", d.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Gives the restored guest VM `record`'s identity (and the host's clock and fresh entropy).
async fn apply_identity(
    backends: &VmBackends,
    record: &VmRecord,
    handle: &VmmHandle,
    host_key: HostKey,
) -> Result<(), StageError> {
    let at_restore = |m: String| StageError::other(Stage::Restore, m);
    let spec = crate::vms::launch_spec_boot(backends, record)?;
    let ip = spec
        .ip
        .map(|c| c.addr)
        .ok_or_else(|| at_restore("the vm has no guest address".into()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| at_restore(format!("the host clock is before 1970: {e}")))?;
    let identity = Identity {
        boot: GuestBoot { work: None, ..spec },
        mac: Some(banger_net::NetPlan::mac_bytes_for(ip)),
        clock: Some(WallClock {
            secs: now.as_secs(),
            nanos: now.subsec_nanos(),
        }),
        seed: Some(host_entropy().map_err(|e| at_restore(format!("no host entropy: {e}")))?),
        host_key: Some(host_key),
    };
    let body = identity
        .to_body()
        .map_err(|e| at_restore(format!("bad identity: {e}")))?;
    let (status, answer) = crate::vms::agent::call_with_body(
        &handle.agent,
        "POST",
        IDENTITY,
        body.as_bytes(),
        RESTORED_AGENT,
    )
    .await
    .map_err(|e| at_restore(format!("the agent did not take the identity: {e}")))?;
    if status != 200 {
        return Err(at_restore(format!(
            "the agent refused the identity ({status}: {answer})"
        )));
    }
    Ok(())
}

/// [`crate::vms::host_key`] off the async runtime, as the identity's [`HostKey`].
async fn new_host_key(dir: PathBuf, name: String) -> Result<HostKey, StageError> {
    let key = tokio::task::spawn_blocking(move || crate::vms::host_key(&dir, &name))
        .await
        .map_err(|e| StageError::other(Stage::Restore, format!("the key task crashed: {e}")))?
        .map_err(|e| StageError::other(Stage::Restore, e))?;
    Ok(HostKey {
        private: key.private,
        public: key.public,
    })
}

/// 32 bytes from the host's CSPRNG for the guest's entropy pool: without them, clones of one
/// snapshot would draw the same random numbers, so a restore without them fails.
fn host_entropy() -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut seed = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(seed)
}

/// Undoes a failed restore so the create can boot cold: the VMM, what records it, the
/// copied disks. The TAP and the record stay for the cold boot.
pub async fn undo_restore(
    ctx: &DaemonContext,
    backends: &VmBackends,
    record: &VmRecord,
    launched: &mut Option<VmmHandle>,
) {
    if let Some(handle) = launched.take() {
        let _ = backends.vmm.kill(&handle);
        backends
            .vmm
            .wait_exit(&handle, Duration::from_secs(10))
            .await;
    }
    power::kill_unrecorded_vmms(backends, record).await;
    ctx.forget_handles(&record.id);
    ctx.zone().remove(record.name.as_str());
    let _ = crate::vms::handles::clear(&record.dir);
    for name in ["rootfs.ext4", "work.ext4"] {
        let path = record.dir.join(name);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(vm = %record.name, disk = %path.display(), error = %e, "cannot remove a restored disk");
        }
    }
}
