//! The contract between the banger host and its guests, in one place both sides compile.
//!
//! The daemon writes a kernel command line and talks to the guest agent; the agent (PID 1 of
//! every sandbox) parses that command line and serves the host. Whatever one side writes the
//! other must read, so the facts live here once instead of as strings repeated on each side:
//!
//! - [`boot`]: the `banger.*` kernel parameters, as one typed [`GuestBoot`] with a writer
//!   ([`GuestBoot::to_cmdline`]) and a parser ([`GuestBoot::parse`]) tested against each other;
//! - [`agent`]: how the host reaches the agent (vsock port, virtio-serial port name) and the
//!   HTTP routes it serves;
//! - [`identity`]: what a guest restored from a warm snapshot takes on (`POST /identity`);
//! - [`paths`]: fixed places in the guest (the agent binary, the disks, the workspace).
//!
//! The crate is std-only (plus `thiserror`) and depends on no other banger crate, so the tiny
//! guest agent can use it without pulling in the host's dependencies.
#![deny(missing_docs)]

pub mod agent;
pub mod boot;
pub mod identity;
pub mod paths;

pub use boot::{GuestBoot, Ipv4Cidr};
pub use identity::Identity;
