//! What every handler can reach: the store, the operation registry, the layout and the
//! daemon's identity. Built once by the binary (or a test) and shared behind an `Arc`.

use std::sync::Arc;

use banger_model::{Config, Layout};
use banger_proto::DaemonInfo;
use banger_store::Store;

use crate::operations::OperationRegistry;
use crate::shutdown::Shutdown;

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
}

impl DaemonContext {
    /// Bundles the daemon's collaborators.
    pub fn new(
        layout: Layout,
        config: Config,
        store: Store,
        info: DaemonInfo,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                layout,
                config,
                store,
                operations: OperationRegistry::default(),
                info,
                shutdown,
            }),
        }
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
