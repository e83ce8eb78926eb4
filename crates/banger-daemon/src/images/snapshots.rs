//! Warm snapshots as the image commands see them: listed with their image's name, dropped
//! with their image, and removed by `image cache prune --snapshots`.
//!
//! A snapshot is only an optimisation of its image's first boot, so every removal here is
//! safe at any time: the next create of the class boots cold and saves a new one. A restore
//! that is reading a snapshot while it is removed keeps the files it has open and any other
//! failure of it falls back to a cold boot.

use std::collections::HashMap;

use banger_proto::SnapshotInfo;

use super::ImageError;
use crate::context::DaemonContext;
use crate::vms::warm::store::SnapshotStore;

/// Every complete warm snapshot, by class key, with its image's name where it still exists.
pub fn list(ctx: &DaemonContext) -> Result<Vec<SnapshotInfo>, ImageError> {
    let names: HashMap<String, String> = ctx
        .store()
        .images()
        .list()?
        .into_iter()
        .map(|i| (i.id, i.name))
        .collect();
    Ok(ctx
        .snapshots()
        .list()
        .into_iter()
        .map(|s| SnapshotInfo {
            bytes: s.bytes(),
            image: names.get(&s.meta.image_id).cloned(),
            key: s.meta.key,
            image_id: s.meta.image_id,
            memory_mib: s.meta.memory_mib,
            vcpu: s.meta.vcpu,
            created_at: s.meta.created_at,
        })
        .collect())
}

/// Removes the snapshots of image `image_id` (its files are gone or replaced). A failure is
/// logged, not returned: the image operation itself succeeded, and the start-up reconcile
/// removes snapshots of images that no longer exist.
pub fn drop_for_image(ctx: &DaemonContext, image_id: &str) {
    match ctx.snapshots().remove_where(|m| m.image_id == image_id) {
        Ok(0) => {}
        Ok(n) => tracing::info!(image_id, removed = n, "removed the image's warm snapshots"),
        Err(e) => {
            tracing::warn!(image_id, error = %e, "could not remove the image's warm snapshots")
        }
    }
}

/// Counts every snapshot and its bytes, and — unless `dry_run` — removes them all.
pub fn prune(store: &SnapshotStore, dry_run: bool) -> std::io::Result<(u64, u64)> {
    let all = store.list();
    let count = all.len() as u64;
    let bytes = all.iter().map(|s| s.bytes()).sum();
    if !dry_run {
        store.remove_where(|_| true)?;
    }
    Ok((count, bytes))
}
