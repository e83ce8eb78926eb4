//! Warm snapshots as a backend capability: boot a guest that can be saved, save it while
//! paused, and start new guests from it instead of booting.
//!
//! The daemon decides *when* (the first VM of a boot class is saved once its agent is ready;
//! later ones restore); a backend that can do it returns itself from [`crate::Vmm::warm`], one
//! that cannot returns `None` and the daemon boots cold. QEMU implements it with VM templating
//! ([`crate::qemu::snapshot`]); Firecracker with its snapshot API
//! ([`crate::firecracker::snapshot`]; unjailed only).

use std::path::Path;
use std::time::Duration;

use crate::launch::{BoxFuture, LaunchSpec, VmmError, VmmHandle};
pub use crate::qemu::snapshot::Snapshot;

/// What a backend with warm snapshots can do.
pub trait WarmSnapshots: Send + Sync {
    /// The VMM binary: a snapshot is only restored by the build that saved it, so its identity
    /// is part of the boot class.
    fn binary(&self) -> &Path;

    /// Boots `spec` so it can be [saved](WarmSnapshots::save). `ram` is a path the backend
    /// may keep the guest's RAM in while it runs (QEMU maps it shared; put it on a tmpfs); it
    /// belongs to the VM and is removed by the caller once the VM is gone or saved.
    fn launch_saveable<'a>(
        &'a self,
        spec: &'a LaunchSpec,
        ram: &'a Path,
    ) -> BoxFuture<'a, Result<VmmHandle, VmmError>>;

    /// Pauses a VM started by [`launch_saveable`](WarmSnapshots::launch_saveable) with the
    /// same `ram`, and writes a complete snapshot of it to `into` (its memory and device
    /// state; both files must not exist). The VM stays paused: copy its disks, then
    /// [resume](WarmSnapshots::resume) it. Returns how long the VM has been paused so far.
    fn save<'a>(
        &'a self,
        handle: &'a VmmHandle,
        ram: &'a Path,
        into: &'a Snapshot,
    ) -> BoxFuture<'a, Result<Duration, VmmError>>;

    /// Lets a paused VM run again.
    fn resume<'a>(&'a self, handle: &'a VmmHandle) -> BoxFuture<'a, Result<(), VmmError>>;

    /// Starts `spec` from `snapshot` (its disks must be copies of the snapshot's, at the same
    /// positions). A restore that fails leaves no process.
    fn restore<'a>(
        &'a self,
        spec: &'a LaunchSpec,
        snapshot: &'a Snapshot,
    ) -> BoxFuture<'a, Result<VmmHandle, VmmError>>;
}
