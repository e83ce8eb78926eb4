//! Helpers that more than one banger crate needs, in one place instead of a copy per crate.
//!
//! A leaf crate: it depends on no other banger crate (so the model, the adapters, the daemon,
//! the CLI and the guest agent may all use it) and only on `std`, so using it costs the tiny
//! guest agent nothing.
//!
//! - [`error::chain`]: an error and its causes as one line, the way banger shows errors;
//! - [`hex`]: lowercase hex of digests, for names of cached things;
//! - [`tail`]: the last lines of a tool's output or of a log file, for error messages;
//! - [`path`]: finding an executable on `PATH` (and in extra directories);
//! - `uds_http` (feature `uds-http`, which brings tokio and hyper): one bounded HTTP/1.1
//!   exchange over a Unix socket, what the Firecracker API client and the CLI's daemon client
//!   both speak;
//! - `sparse` (feature `sparse`): copying a file with its holes kept, for disks and guest RAM.
#![deny(missing_docs)]

pub mod error;
pub mod hex;
pub mod path;
#[cfg(feature = "sparse")]
pub mod sparse;
pub mod tail;
#[cfg(feature = "uds-http")]
pub mod uds_http;

pub use error::chain;
pub use path::find_on_path;
