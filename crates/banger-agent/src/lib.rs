//! banger-agent: the guest side of banger.
//!
//! One small binary with two jobs, split into a library so the logic can be tested on the host:
//!
//! - **init** (PID 1 in sandbox images, see [`init`]): mounts the API filesystems, applies the
//!   `banger.*` kernel command-line parameters (hostname, network, work disk), supervises `sshd`,
//!   reaps orphans and powers the machine off cleanly on Ctrl-Alt-Del, a signal or an API request;
//! - **API server** (see [`api`], [`http`], [`transport`]): a minimal HTTP/1.1 endpoint
//!   (`GET /healthz`, `GET /ports`, `POST /shutdown`) that the host reaches over vsock
//!   (Firecracker) or a virtio-serial port (QEMU).
//!
//! The agent is deliberately tiny: std, `nix` and `thiserror`, no async runtime, hand-written
//! JSON. What it shares with the host (the `banger.*` kernel parameters, its ports and routes,
//! guest paths) comes from `banger-guest`, which the daemon uses too. Everything that can be a pure function (command-line parsing, the HTTP parser, file
//! rendering, mount and power-off plans) is one, and carries the unit tests; the code that touches
//! the system only sequences those plans.
#![deny(missing_docs)]

pub mod api;
pub mod backoff;
pub mod cli;
pub mod files;
pub mod http;
pub mod init;
pub mod json;
pub mod log;
pub mod ports;
pub mod service;
pub mod transport;

/// The agent's version, reported by `GET /healthz`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
