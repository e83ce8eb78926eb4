//! banger's root helper: the few privileged steps of an unprivileged daemon, as a closed set of
//! typed requests.
//!
//! The owner's daemon runs without privileges and sends each step it cannot do itself — make
//! the bridge, make or rename or delete a TAP, add or remove a VM's NAT rule, bind the guests' DNS
//! port, stage and spawn a jailed Firecracker ([`jail`]) — as one
//! [`Request`] over the helper's Unix socket ([`client::HelperNet`], which implements
//! [`banger_net::NetOps`], so the daemon cannot tell it from the in-process backend). The
//! helper ([`server`]) runs as root, answers only its owner (and root) by `SO_PEERCRED`, checks
//! every request against a [`Policy`] before anything happens, carries it out with the same
//! `NetOps` code a root daemon runs in-process, and logs one line per request.
//!
//! There is no generic request ("run this", "write that file"): a step the policy cannot name
//! precisely does not exist. Adding a privileged step is one [`Request`] variant, one arm in
//! [`Policy::check`], one method in the client and one in the server's dispatch.
//!
//! This crate knows nothing of the store or the daemon's logic.
#![deny(missing_docs)]

pub mod client;
pub mod fds;
pub mod jail;
pub mod jail_client;
pub mod policy;
pub mod server;
pub mod socket;
pub mod wire;

pub use client::HelperNet;
pub use jail::JailPolicy;
pub use jail_client::{HelperJail, JailCallError};
pub use policy::{Policy, Refusal};
pub use wire::{Request, Response};

/// Where the helper listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/banger-root/helper.sock";

/// The environment variable that points a daemon at another helper socket.
pub const SOCKET_ENV: &str = "BANGER_ROOT_HELPER_SOCKET";
