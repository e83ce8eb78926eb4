//! Recording fakes of the daemon's adapters.
//!
//! [`FakeVmm`] stands in for a hypervisor and [`FakeNet`] for netlink. Both keep what they
//! were asked in a call log and hold their state in memory, and both take failures to inject
//! (per call kind), so a test can break any stage of a create and check what was undone.
//! The fake VMM's "guest" is real enough for the daemon's own probes: an agent answering HTTP
//! on a Unix socket and an SSH banner on a loopback address, so the real readiness code runs.

mod net;
mod vmm;

pub use net::{FakeLink, FakeNet, NetCall};
pub use vmm::{FakeGuest, FakeVmm, VmmCall};
