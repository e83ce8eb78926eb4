//! The VMM of a host that has none.
//!
//! A daemon on a host without QEMU or Firecracker still serves everything that needs no
//! hypervisor, and it must still be able to delete and prune VMs, including ones whose VMM was
//! started before the hypervisor was uninstalled. [`NoVmm`] refuses to launch (naming the fix)
//! but finds and kills VMM processes by pid and tag like every backend does.

use crate::launch::{BoxFuture, LaunchSpec, Vmm, VmmError, VmmHandle, VmmKind};

/// A [`Vmm`] that cannot boot anything; `reason` says why and what to install.
#[derive(Debug, Clone)]
pub struct NoVmm {
    reason: String,
}

impl NoVmm {
    /// A stand-in whose launches fail with `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// Why nothing can boot.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl Vmm for NoVmm {
    fn kind(&self) -> Option<VmmKind> {
        None
    }

    fn unavailable_reason(&self) -> Option<String> {
        Some(self.reason.clone())
    }

    fn launch<'a>(&'a self, _spec: &'a LaunchSpec) -> BoxFuture<'a, Result<VmmHandle, VmmError>> {
        let reason = self.reason.clone();
        Box::pin(async move { Err(VmmError::Unavailable { reason }) })
    }

    fn request_shutdown<'a>(
        &'a self,
        _handle: &'a VmmHandle,
    ) -> BoxFuture<'a, Result<(), VmmError>> {
        let reason = self.reason.clone();
        Box::pin(async move { Err(VmmError::Unavailable { reason }) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_to_launch_with_its_reason() {
        let vmm = NoVmm::new("install qemu-system-x86");
        assert_eq!(vmm.kind(), None);
        assert_eq!(
            vmm.unavailable_reason().as_deref(),
            Some("install qemu-system-x86")
        );
        let spec = LaunchSpec {
            vm_id: "x".into(),
            vcpu: 1,
            memory_mib: 128,
            kernel: "/k".into(),
            initrd: None,
            cmdline: String::new(),
            disks: Vec::new(),
            net: None,
            run_dir: "/tmp".into(),
        };
        let err = vmm.launch(&spec).await.expect_err("cannot launch");
        assert_eq!(err.to_string(), "install qemu-system-x86");
    }
}
