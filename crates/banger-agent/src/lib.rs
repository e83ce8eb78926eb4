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
//! JSON. Everything that can be a pure function (command-line parsing, the HTTP parser, file
//! rendering, mount and power-off plans) is one, and carries the unit tests; the code that touches
//! the system only sequences those plans.
#![deny(missing_docs)]

pub mod api;
pub mod backoff;
pub mod cli;
pub mod cmdline;
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

/// The vsock port the agent listens on. Firecracker's hybrid vsock forwards a host
/// `CONNECT 52\n` on the VM's vsock Unix socket to this port.
pub const VSOCK_PORT: u32 = 52;

/// The name of the QEMU virtio-serial port the agent serves (`-device virtserialport,name=…`).
pub const VIRTIO_PORT_NAME: &str = "banger.agent";

/// Where udev (when it runs) links the named virtio-serial port.
pub const VIRTIO_PORT_LINK: &str = "/dev/virtio-ports/banger.agent";
