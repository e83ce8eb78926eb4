//! `banger update`: signed, staged, gated on migrations, with automatic rollback.
//!
//! - [`version`], [`manifest`], [`verify`]: pure: release versions, the release manifest, and
//!   the checks that decide whether downloaded files are trusted (signature over
//!   `SHA256SUMS`, then each file's SHA-256).
//! - [`flow`]: the order of the steps and the rollback, over the [`flow::Effects`] trait, so
//!   the sequencing is tested with a fake.
//! - [`download`], [`stage`], [`swap`]: downloads (progress, clean restarts), unpacking a
//!   tarball into the staging dir, and the rename-based binary swap with `.previous`.
//! - [`host`]: the real effects on a system install (systemctl, the daemon, the files).

pub mod download;
pub mod flow;
pub mod host;
pub mod manifest;
#[cfg(test)]
mod release_tests;
pub mod stage;
pub mod swap;
pub mod verify;
pub mod version;
