//! banger's VMM adapter: how the daemon drives a hypervisor process.
//!
//! Today this is Firecracker's side only ([`firecracker`]): a typed client of its HTTP API over
//! the API Unix socket, the pure launch plan that orders the pre-boot calls, the host side of
//! its hybrid vsock, and the command line of the process. Spawning and supervising the process,
//! the jailer and the QEMU fallback live elsewhere (later modules of this crate); nothing here
//! needs root or KVM, so all of it is tested against the fake in `banger-testkit`.
#![deny(missing_docs)]

pub mod firecracker;
