//! banger's VMM adapter: how the daemon drives a hypervisor process.
//!
//! Every backend implements [`Vmm`] over the same [`LaunchSpec`] and returns a [`VmmHandle`]
//! the daemon persists, so a VM can be found again after a daemon restart.
//!
//! - [`firecracker`]: [`FirecrackerVmm`], the primary backend: one detached `firecracker`
//!   process per VM, configured through a typed client of its HTTP API over its Unix socket
//!   (the pure plan orders the pre-boot calls), the agent reached over its hybrid vsock.
//!   Tested against the spec-following fake in `banger-testkit`, in-process and as a process.
//! - [`qemu`]: `qemu-system-x86_64 -M microvm`, daemonized so guests outlive the daemon, with
//!   QMP for power-down and a virtio-serial port for the agent. This is what boots guests on
//!   hosts without Firecracker or usable KVM.
//! - [`process`]: liveness and signals by pid *and* command-line tag, so reused pids are never
//!   mistaken for a VM.
#![deny(missing_docs)]

pub mod firecracker;
pub mod launch;
mod none;
pub mod process;
pub mod qemu;
pub mod warm;

pub use firecracker::FirecrackerVmm;
pub use launch::{
    AgentEndpoint, BoxFuture, CONSOLE_LOG, DiskSpec, LaunchSpec, NetSpec, Vmm, VmmError, VmmHandle,
    VmmKind, console_log_path, tag_for,
};
pub use none::NoVmm;
