//! banger's VMM adapter: how the daemon drives a hypervisor process.
//!
//! Every backend implements [`Vmm`] over the same [`LaunchSpec`] and returns a [`VmmHandle`]
//! the daemon persists, so a VM can be found again after a daemon restart.
//!
//! - [`firecracker`]: a typed client of Firecracker's HTTP API over its Unix socket, the pure
//!   plan that orders the pre-boot calls, the host side of its hybrid vsock, and the process's
//!   command line. Tested against the spec-following fake in `banger-testkit`.
//! - [`qemu`]: `qemu-system-x86_64 -M microvm`, daemonized so guests outlive the daemon, with
//!   QMP for power-down and a virtio-serial port for the agent. This is what boots guests on
//!   hosts without Firecracker or usable KVM.
//! - [`process`]: liveness and signals by pid *and* command-line tag, so reused pids are never
//!   mistaken for a VM.
#![deny(missing_docs)]

pub mod firecracker;
pub mod launch;
pub mod process;
pub mod qemu;

pub use launch::{
    AgentEndpoint, BoxFuture, DiskSpec, LaunchSpec, NetSpec, Vmm, VmmError, VmmHandle, VmmKind,
};
