//! Serialisation of work on VMs.
//!
//! One async mutex per VM id: operations on one VM run one at a time, operations on different
//! VMs run in parallel. A separate global reservation lock covers only the short critical
//! section of a create that picks a name, an IP and a TAP and inserts the record, so two
//! creates can never take the same ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Per-VM locks plus the reservation lock.
#[derive(Default)]
pub struct VmLocks {
    per_vm: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    reservation: AsyncMutex<()>,
}

impl VmLocks {
    /// Waits for, then holds, the lock of VM `id`.
    pub async fn lock(&self, id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.per_vm.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(id.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Holds the global reservation lock.
    pub async fn reserve(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.reservation.lock().await
    }

    /// Forgets the lock of a deleted VM.
    pub fn forget(&self, id: &str) {
        let mut map = self.per_vm.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_vm_at_a_time_different_vms_in_parallel() {
        let locks = Arc::new(VmLocks::default());
        let a = locks.lock("a").await;
        let b = tokio::time::timeout(Duration::from_millis(100), locks.lock("b")).await;
        assert!(b.is_ok(), "another VM is not blocked");
        let a2 = tokio::time::timeout(Duration::from_millis(100), locks.lock("a")).await;
        assert!(a2.is_err(), "the same VM waits");
        drop(a);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), locks.lock("a"))
                .await
                .is_ok()
        );
    }
}
