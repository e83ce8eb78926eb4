//! What every handler can reach: the store, the operation registry, the layout and the
//! daemon's identity. Built once by the binary (or a test) and shared behind an `Arc`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use banger_model::{Config, Layout};
use banger_proto::DaemonInfo;
use banger_store::Store;

use crate::agent_binary::{AgentLocator, AgentMissing};
use crate::operations::OperationRegistry;
use crate::shutdown::Shutdown;
use crate::vms::VmBackends;
use crate::vms::handles::VmHandles;
use crate::vms::locks::VmLocks;

/// Shared daemon state. Cheap to clone.
#[derive(Clone)]
pub struct DaemonContext {
    inner: Arc<Inner>,
}

struct Inner {
    layout: Layout,
    config: Config,
    store: Store,
    operations: OperationRegistry,
    info: DaemonInfo,
    shutdown: Shutdown,
    backends: Arc<VmBackends>,
    agent: AgentLocator,
    vm_locks: VmLocks,
    pull_lock: tokio::sync::Mutex<()>,
    tap_pool_lock: tokio::sync::Mutex<()>,
    registry_lock: Mutex<()>,
    zone: crate::dns::Zone,
    guest_dns: std::sync::OnceLock<Arc<crate::dns::guest::GuestResolver>>,
    docker_config: Mutex<Option<std::path::PathBuf>>,
    handles: Mutex<HashMap<String, VmHandles>>,
    spares: crate::vms::spares::Spares,
}

impl DaemonContext {
    /// Bundles the daemon's collaborators. On a host without a hypervisor `backends` carries
    /// a [`banger_vmm::NoVmm`]: the daemon serves everything else, can still delete VMs, and
    /// says what to install when asked to boot one.
    pub fn new(
        layout: Layout,
        config: Config,
        store: Store,
        info: DaemonInfo,
        shutdown: Shutdown,
        backends: Arc<VmBackends>,
        agent: AgentLocator,
    ) -> Self {
        let layout_spares = layout.state_dir.join("spares");
        Self {
            inner: Arc::new(Inner {
                layout,
                config,
                store,
                operations: OperationRegistry::default(),
                info,
                shutdown,
                backends,
                agent,
                vm_locks: VmLocks::default(),
                pull_lock: tokio::sync::Mutex::new(()),
                tap_pool_lock: tokio::sync::Mutex::new(()),
                registry_lock: Mutex::new(()),
                zone: crate::dns::Zone::default(),
                guest_dns: std::sync::OnceLock::new(),
                docker_config: Mutex::new(banger_image::oci::auth::default_config_path(
                    std::env::var("DOCKER_CONFIG").ok().as_deref(),
                    std::env::var("HOME").ok().as_deref(),
                )),
                handles: Mutex::new(HashMap::new()),
                spares: crate::vms::spares::Spares::new(layout_spares),
            }),
        }
    }

    /// The spare disks creates take instead of copying (see [`crate::vms::spares`]).
    pub fn spares(&self) -> &crate::vms::spares::Spares {
        &self.inner.spares
    }

    /// The VM backends.
    pub fn backends(&self) -> Arc<VmBackends> {
        self.inner.backends.clone()
    }

    /// The guest agent binary written into images and VMs, looked up now.
    pub fn agent_binary(&self) -> Result<std::path::PathBuf, AgentMissing> {
        self.inner.agent.find()
    }

    /// Serialises pulls: one build at a time, and a second pull of the same thing finds the
    /// first one's result.
    pub fn pull_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.pull_lock
    }

    /// Serialises TAP pool claims and refills: a rename works on an interface index, so two
    /// claims (or a claim and a refill) must never act on the same pooled TAP at once.
    pub fn tap_pool_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.tap_pool_lock
    }

    /// Held (on the blocking pool) while a registration moves its staged files into place and
    /// writes its record, so a name is claimed on disk and in the store as one step.
    pub fn registry_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .registry_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The Docker `config.json` registry credentials are read from (`$DOCKER_CONFIG` or
    /// `~/.docker` of the daemon's environment, unless set otherwise).
    pub fn docker_config(&self) -> Option<std::path::PathBuf> {
        self.inner
            .docker_config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads registry credentials from `path` instead (`None`: pull anonymously).
    pub fn set_docker_config(&self, path: Option<std::path::PathBuf>) {
        *self
            .inner
            .docker_config
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = path;
    }

    /// The `vm.` DNS zone: running VMs by name.
    pub fn zone(&self) -> &crate::dns::Zone {
        &self.inner.zone
    }

    /// Gives guests a resolver: from now on every network stage makes sure `resolver`
    /// serves (the binary does this; tests of the lifecycle leave it off so nothing binds a
    /// guest-subnet address outside a namespace). A second call is ignored.
    pub fn enable_guest_dns(&self, resolver: crate::dns::guest::GuestResolver) {
        let _ = self.inner.guest_dns.set(Arc::new(resolver));
    }

    /// The guests' resolver, when enabled.
    pub fn guest_dns(&self) -> Option<&crate::dns::guest::GuestResolver> {
        self.inner.guest_dns.get().map(|g| g.as_ref())
    }

    /// Who this daemon is now: [`Self::info`] with the guests' resolver's current state.
    pub fn current_info(&self) -> DaemonInfo {
        let mut info = self.inner.info.clone();
        if let Some(guest) = self.guest_dns() {
            info.guest_dns = Some(guest.listener().describe());
        }
        info
    }

    /// Per-VM and reservation locks.
    pub fn vm_locks(&self) -> &VmLocks {
        &self.inner.vm_locks
    }

    fn handle_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, VmHandles>> {
        self.inner.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a running VM's handles.
    pub fn remember_handles(&self, id: &str, handles: VmHandles) {
        self.handle_map().insert(id.to_owned(), handles);
    }

    /// A running VM's handles.
    pub fn handles(&self, id: &str) -> Option<VmHandles> {
        self.handle_map().get(id).cloned()
    }

    /// Removes and returns a VM's handles.
    pub fn take_handles(&self, id: &str) -> Option<VmHandles> {
        self.handle_map().remove(id)
    }

    /// Drops a VM's handles.
    pub fn forget_handles(&self, id: &str) {
        self.handle_map().remove(id);
    }

    /// Every running VM's handles.
    pub fn all_handles(&self) -> Vec<(String, VmHandles)> {
        self.handle_map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Whether VM `id` has a live VMM.
    pub fn is_alive(&self, backends: &VmBackends, id: &str) -> bool {
        self.handles(id)
            .is_some_and(|h| backends.vmm.is_running(&h.vmm))
    }

    /// The warm snapshots (`<state>/snapshots`).
    pub fn snapshots(&self) -> crate::vms::warm::store::SnapshotStore {
        crate::vms::warm::store::SnapshotStore::new(self.layout().snapshots_dir())
    }

    /// Where things live.
    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// The user's settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Long operations.
    pub fn operations(&self) -> &OperationRegistry {
        &self.inner.operations
    }

    /// Who this daemon is (answered on ping).
    pub fn info(&self) -> &DaemonInfo {
        &self.inner.info
    }

    /// The shutdown signal.
    pub fn shutdown(&self) -> &Shutdown {
        &self.inner.shutdown
    }
}
