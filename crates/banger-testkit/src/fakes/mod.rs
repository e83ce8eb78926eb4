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

/// A tiny file that passes banger's kernel check as a `vmlinux` (an x86-64 ELF executable
/// carrying the kernel's `Linux version` banner), for tests that register kernels.
pub fn stand_in_vmlinux() -> Vec<u8> {
    let mut bytes = vec![0u8; 64];
    bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
    bytes[16..20].copy_from_slice(&[2, 0, 62, 0]); // ET_EXEC, EM_X86_64
    bytes.extend_from_slice(b"Linux version 6.1.0-stand-in (banger tests)\n");
    bytes
}
