//! Guest SSH for banger, built on the system's OpenSSH.
//!
//! banger reaches its guests with the real OpenSSH client (`ssh`) rather than an SSH library:
//! users get the client they know (agent forwarding, escape sequences, terminal handling), and
//! `ssh NAME.vm` behaves exactly like `banger vm ssh NAME`. What banger adds is isolation from the
//! user's own SSH setup, so a VM never touches `~/.ssh/known_hosts` or picks up a stray
//! `~/.ssh/config` rule:
//!
//! - [`keys`]: banger's own ed25519 key pair (`ssh/id_ed25519`, 0600 in a 0700 directory),
//!   generated on first use by `ssh-keygen`.
//! - [`known_hosts`]: banger's own `ssh/known_hosts` (trust on first use); `vm delete` drops a
//!   VM's entries with `ssh-keygen -R`.
//! - [`command`]: a pure builder of the `ssh` argv, with every remote argument shell-quoted by
//!   [`quote`] so `-- sh -c 'exit 42'` exits 42.
//! - [`probe`]: bounded waiting for a guest's sshd banner (blocking; the daemon calls it through
//!   `spawn_blocking`).
//! - [`errors`]: turns an `ssh` exit status and its stderr into an actionable error
//!   (possible man-in-the-middle, unreachable guest, rejected key).
//!
//! banger's own `ssh_config` and the `Include` block in `~/.ssh/config` are pure text in
//! `banger_model::ssh_config`; only `banger ssh-config` writes those files.
//!
//! Every external program runs from a fixed argv through [`std::process::Command`]; nothing here
//! ever goes through a local shell. The OpenSSH binaries (`ssh`, `ssh-keygen`, and `sshd` in the
//! tests) are system tools found on `PATH`.
#![deny(missing_docs)]

pub mod command;
pub mod errors;
pub mod host_key;
pub mod keys;
pub mod known_hosts;
pub mod probe;
pub mod quote;

mod fsutil;

pub use command::{CommandError, ControlMaster, ControlOp, SshCommand, TtyMode};
pub use errors::{SshError, classify};
pub use host_key::{NewHostKey, generate_host_key};
pub use keys::{KeyError, KeyPair, ensure_keypair, load_keypair};
pub use known_hosts::KnownHostsError;
pub use probe::{ProbeError, SshWaitError, wait_for_ssh};
