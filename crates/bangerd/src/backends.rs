//! Choosing and building the VM backends for this host.
//!
//! QEMU is the backend that boots guests on hosts without Firecracker or usable KVM (the only
//! one wired here so far). When no VMM is found the daemon still serves everything else and
//! VM operations answer with an error that says what to install.

use std::sync::Arc;

use banger_daemon::vms::{Timeouts, VmBackends};
use banger_model::Layout;
use banger_net::{LinuxNet, NetPlan};
use banger_vmm::qemu::QemuVmm;

/// The backends, or `None` (logged) when this host cannot run VMs.
pub fn detect(layout: &Layout, owner_uid: u32) -> Option<Arc<VmBackends>> {
    let vmm = match QemuVmm::detect() {
        Ok(vmm) => vmm,
        Err(e) => {
            tracing::warn!(error = %e, "no VMM found; VM operations are unavailable");
            return None;
        }
    };
    let ssh_dir = layout.ssh_dir();
    let ssh_key = match banger_ssh::ensure_keypair(&ssh_dir) {
        Ok(key) => key,
        Err(e) => {
            tracing::error!(error = %e, "cannot prepare banger's ssh key; VM operations are unavailable");
            return None;
        }
    };
    tracing::info!(
        vmm = "qemu",
        binary = %vmm.binary().display(),
        accel = ?vmm.host().accel,
        "vm backend ready"
    );
    Some(Arc::new(VmBackends {
        vmm: Arc::new(vmm),
        net: Arc::new(LinuxNet),
        plan: NetPlan::default(),
        ssh_key,
        known_hosts: banger_ssh::known_hosts::path(&ssh_dir),
        owner_uid,
        timeouts: Timeouts::default(),
    }))
}

/// `banger-agent` next to this binary, if it is there.
pub fn agent_binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let agent = exe.parent()?.join("banger-agent");
    agent.is_file().then_some(agent)
}
