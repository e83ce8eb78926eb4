//! What every VMM backend takes and gives back.
//!
//! The daemon describes a VM once ([`LaunchSpec`]) and gets a [`VmmHandle`] it can persist in
//! the VM's `handles.json`: enough to find the process again after a daemon restart (pid plus
//! an identity check), to reach its control socket and the guest agent, and to point a user at
//! the console log. Backends implement [`Vmm`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which hypervisor runs a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmmKind {
    /// Firecracker.
    Firecracker,
    /// QEMU (`-M microvm`).
    Qemu,
}

impl VmmKind {
    /// The name users see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firecracker => "firecracker",
            Self::Qemu => "qemu",
        }
    }
}

/// One block device; the first is the root disk (`/dev/vda`), the next `/dev/vdb`, …
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpec {
    /// Image file on the host.
    pub path: PathBuf,
    /// Attach read-only.
    pub read_only: bool,
}

/// The VM's network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetSpec {
    /// Host TAP device.
    pub tap: String,
    /// Guest MAC address.
    pub mac: String,
}

/// Everything needed to boot one VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchSpec {
    /// The VM's id; the process is tagged with it so liveness checks can tell it apart.
    pub vm_id: String,
    /// Virtual CPUs.
    pub vcpu: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Kernel image.
    pub kernel: PathBuf,
    /// Initramfs.
    pub initrd: Option<PathBuf>,
    /// Kernel command line (the backend appends what it needs itself).
    pub cmdline: String,
    /// Disks in order.
    pub disks: Vec<DiskSpec>,
    /// Network interface, if any.
    pub net: Option<NetSpec>,
    /// Directory for the VMM's sockets, pid file and logs.
    pub run_dir: PathBuf,
}

/// How the host reaches the guest agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentEndpoint {
    /// A Unix socket that is one end of a virtio-serial port (QEMU).
    Serial {
        /// The socket.
        path: PathBuf,
    },
    /// Firecracker's hybrid vsock: connect, then `CONNECT <port>`.
    Vsock {
        /// The vsock Unix socket.
        path: PathBuf,
        /// The agent's vsock port.
        port: u32,
    },
}

/// A running VMM, as persisted in `handles.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmmHandle {
    /// Which hypervisor.
    pub kind: VmmKind,
    /// Its process id.
    pub pid: u32,
    /// The tag in its command line that proves a pid is still this VM's VMM.
    pub tag: String,
    /// Control socket (QMP or the Firecracker API).
    pub control_socket: PathBuf,
    /// The guest agent.
    pub agent: AgentEndpoint,
    /// Serial console output.
    pub console_log: PathBuf,
}

/// Why a VMM operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// The VMM binary is not there.
    #[error("{binary} not found; install it or set its path in config")]
    MissingBinary {
        /// What was looked for.
        binary: String,
    },
    /// The VMM refused to start.
    #[error("{kind} failed to start ({status}): {stderr}; console log: {}", console_log.display())]
    StartFailed {
        /// Which backend.
        kind: &'static str,
        /// Its exit status.
        status: String,
        /// The end of its stderr.
        stderr: String,
        /// Where the guest console went.
        console_log: PathBuf,
    },
    /// This host has no usable hypervisor; the reason names the fix.
    #[error("{reason}")]
    Unavailable {
        /// Why, and what to install or change.
        reason: String,
    },
    /// The spec cannot be launched.
    #[error("invalid launch spec: {0}")]
    InvalidSpec(String),
    /// A control-socket call failed.
    #[error("{kind} control socket {}: {message}", socket.display())]
    Control {
        /// Which backend.
        kind: &'static str,
        /// The socket.
        socket: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A file-system or process call failed.
    #[error("{action}")]
    Io {
        /// What was being done.
        action: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl VmmError {
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let action = action.into();
        move |source| Self::Io { action, source }
    }
}

/// A boxed, sendable future: what [`Vmm`] methods return, so backends can sit behind
/// `Arc<dyn Vmm>` and be injected.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A hypervisor backend.
pub trait Vmm: Send + Sync {
    /// Which hypervisor this is; `None` when this host has none ([`crate::NoVmm`]).
    fn kind(&self) -> Option<VmmKind>;

    /// Why this backend cannot boot anything, naming the fix; `None` when it can.
    fn unavailable_reason(&self) -> Option<String> {
        None
    }

    /// Boots a VM. The VMM process must outlive the caller (the daemon may restart).
    fn launch<'a>(&'a self, spec: &'a LaunchSpec) -> BoxFuture<'a, Result<VmmHandle, VmmError>>;

    /// Asks the guest to power off (best effort; the caller escalates after a timeout).
    fn request_shutdown<'a>(&'a self, handle: &'a VmmHandle)
    -> BoxFuture<'a, Result<(), VmmError>>;

    /// Whether the handle's process is alive and still this VM's VMM.
    fn is_running(&self, handle: &VmmHandle) -> bool {
        crate::process::is_our_process(handle.pid, &handle.tag)
    }

    /// Kills the VMM at once.
    fn kill(&self, handle: &VmmHandle) -> Result<(), VmmError> {
        crate::process::kill(handle.pid, &handle.tag)
    }

    /// Live VMM processes carrying VM `vm_id`'s tag, found from the OS alone, without handles.
    fn tagged_pids(&self, vm_id: &str) -> Vec<u32> {
        crate::process::find_tagged(&tag_for(vm_id))
    }

    /// Kills process `pid` if it still carries VM `vm_id`'s tag.
    fn kill_tagged(&self, vm_id: &str, pid: u32) -> Result<(), VmmError> {
        crate::process::kill(pid, &tag_for(vm_id))
    }

    /// Removes what the backend keeps for VM `vm_id` beyond its process (the jailer's chroot
    /// under [`crate::firecracker::JailConfig`]). The daemon calls it at every teardown, once
    /// the VMM is gone — stop, delete, a dead VMM found by the monitor or by reconcile after a
    /// crash — so nothing of a stopped VM stays staged. Default: nothing to remove.
    fn release(&self, vm_id: &str) -> Result<(), VmmError> {
        let _ = vm_id;
        Ok(())
    }

    /// Warm snapshots, when this backend has them; `None` boots every VM cold.
    fn warm(&self) -> Option<&dyn crate::warm::WarmSnapshots> {
        None
    }

    /// Waits (bounded) until the VMM process is gone; true if it went.
    fn wait_exit<'a>(&'a self, handle: &'a VmmHandle, timeout: Duration) -> BoxFuture<'a, bool> {
        Box::pin(crate::process::wait_gone(handle.pid, &handle.tag, timeout))
    }
}

/// The file in a VM's run directory that receives its serial console, whatever the backend,
/// so `vm logs` and every error that names the console read the file the VMM writes.
pub const CONSOLE_LOG: &str = "console.log";

/// `<run_dir>/console.log`.
pub fn console_log_path(run_dir: &std::path::Path) -> PathBuf {
    run_dir.join(CONSOLE_LOG)
}

/// The process tag of a VM: `banger-<id>`.
pub fn tag_for(vm_id: &str) -> String {
    format!("banger-{vm_id}")
}
