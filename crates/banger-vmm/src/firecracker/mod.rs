//! Firecracker: API client, launch plan, hybrid vsock, API-socket readiness, command line, and
//! the [`FirecrackerVmm`] backend that composes them.
//!
//! The wire format follows Firecracker's swagger definition
//! (`src/firecracker/swagger/firecracker.yaml` upstream). The contract tests in
//! `tests/firecracker_contract.rs` check every call against the fake Firecracker in
//! `banger-testkit`, which enforces the same rules (pre-/post-boot, body validation,
//! `fault_message` errors); `tests/firecracker_backend.rs` runs the whole backend against the
//! fake as a real process (`fake-firecracker`).
//!
//! A typical launch ([`FirecrackerVmm`] does exactly this): [`command_line`] to spawn the
//! process detached ([`spawn`]), [`wait_for_api_socket`], then
//! [`FirecrackerClient::apply_plan`] with [`VmConfig::plan`], then [`vsock::connect`] to reach
//! the guest agent. Socket paths too long for `AF_UNIX` go through a short symlink
//! ([`short_path`]). Under the jailer ([`JailConfig`] via [`FirecrackerVmm::with_jail`]),
//! [`jailed`] launches instead; the privileged step (stage the chroot, spawn the jailer) is a
//! [`JailRunner`] ([`jail_runner`]), whose in-process version runs `banger_jail` (re-exported as
//! [`jail`] and [`jailer`]). Warm snapshots (pause, `snapshot/create`, `snapshot/load` on a
//! fresh process with the restored VM's own TAP, disks and vsock) are in [`snapshot`].

pub mod api;
pub mod backend;
pub mod client;
pub mod command;
pub mod config;
pub mod jail_runner;
pub mod jailed;
/// The jail's staging, pid file and teardown (`banger_jail`).
pub mod jail {
    pub use banger_jail::stage::*;
}
/// The jailer's command line (`banger_jail`).
pub mod jailer {
    pub use banger_jail::args::*;
}
pub mod short_path;
pub mod snapshot;
pub mod socket;
pub mod spawn;
pub mod vsock;

pub use api::{
    Action, ActionType, BootSource, Drive, InstanceInfo, InstanceState, LogLevel, Logger,
    MachineConfig, MemBackend, MemBackendType, Metrics, NetworkInterface, NetworkOverride,
    SnapshotCreate, SnapshotLoad, SnapshotType, VmRunState, VmStateChange, Vsock, VsockOverride,
};
pub use backend::{
    AGENT_VSOCK_PORT, FirecrackerFiles, FirecrackerVmm, GUEST_CID, boot_args, instance_id,
    vm_config,
};
pub use client::{ApplyPlanError, FirecrackerApiError, FirecrackerClient};
pub use command::{FirecrackerArgs, command_line};
pub use config::{ApiCall, VmConfig, VmConfigError};
pub use jail_runner::{InProcessJail, JailRunner};
pub use jailed::JailConfig;
pub use jailer::{JailerArgs, JailerArgsError, jailer_command_line};
pub use short_path::{ShortLink, ShortPathError, SocketPaths, socket_paths};
pub use socket::{WaitForSocketError, wait_for_api_socket};
