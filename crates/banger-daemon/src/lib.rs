//! The banger daemon as a library.
//!
//! `bangerd` (the binary) resolves the layout, reads config, sets up logging and then hands a
//! [`DaemonContext`] to [`server::serve`]. Keeping the daemon a library lets tests run it
//! in-process on a temp layout and lets the binary stay a thin shell.
//!
//! Request flow: a client connects to the Unix socket ([`server`]); the connection's peer
//! credentials are checked ([`access`]); the router built from `banger_proto::routes`
//! ([`api`]) dispatches to one handler per route; handlers call the store and the operation
//! registry ([`operations`]); errors become the `{code, message, op_id}` envelope in one place
//! ([`api::error`]).
#![deny(missing_docs)]

pub mod access;
pub mod agent_binary;
pub mod api;
pub mod connection;
pub mod context;
pub mod dns;
pub mod ids;
pub mod images;
pub mod operations;
pub mod server;
mod service_error;
pub mod shutdown;
pub mod state_dir;
pub mod vms;

pub use context::DaemonContext;
pub use server::{ServeError, SocketOptions};
pub use shutdown::Shutdown;
