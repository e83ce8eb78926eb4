//! `image cache prune`: the OCI layer blob cache is only there to avoid downloading a layer
//! twice (every image is a self-contained ext4), so it can go at any time.
//!
//! The cache (`<cache>/oci`) is tallied (bytes and blobs under `blobs/`), then — unless a dry
//! run — renamed aside, recreated empty and the aside copy removed, so the cache is never half
//! removed: a reader sees the old complete cache or the new empty one. The prune takes the
//! pull lock, so a pull that is running finishes first (its cache hits are read from their
//! paths later in the pull) and a pull started during the prune waits for it. A missing cache
//! is zero.
//!
//! With `snapshots` the warm snapshots and the spare disks go too (each is rebuilt by the next
//! create of its class); a plain prune keeps them, as they are what makes creates fast.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use banger_proto::PruneCacheResult;

use super::ImageError;
use super::oci_pull::oci_cache_dir;
use crate::context::DaemonContext;

/// Bytes and file count under `dir` (symlinks not followed; missing = zero).
fn tally(dir: &Path) -> std::io::Result<(u64, u64)> {
    let (mut bytes, mut files) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in entries {
            let e = e?;
            let meta = e.path().symlink_metadata()?;
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                bytes += meta.len();
                files += 1;
            }
        }
    }
    Ok((bytes, files))
}

fn prune_blocking(cache: &Path, dry_run: bool) -> std::io::Result<(u64, u64)> {
    let (bytes, blobs) = tally(&cache.join("blobs"))?;
    if dry_run || std::fs::symlink_metadata(cache).is_err() {
        return Ok((bytes, blobs));
    }
    let aside: PathBuf = cache.with_file_name(format!(".oci-prune-{}", crate::ids::random_hex(6)));
    std::fs::rename(cache, &aside)?;
    std::fs::DirBuilder::new().mode(0o700).create(cache)?;
    std::fs::remove_dir_all(&aside)?;
    Ok((bytes, blobs))
}

/// Prunes (or, with `dry_run`, tallies) the OCI blob cache and, with `snapshots`, every warm
/// snapshot.
pub async fn prune(
    ctx: &DaemonContext,
    dry_run: bool,
    snapshots: bool,
) -> Result<PruneCacheResult, ImageError> {
    let _pulls = ctx.pull_lock().lock().await;
    let cache = oci_cache_dir(ctx);
    let dir = cache.clone();
    let store = ctx.snapshots();
    let spares = ctx.spares().clone();
    let ((bytes_freed, blobs_freed), (snapshots_freed, snapshot_bytes_freed)) =
        tokio::task::spawn_blocking(move || {
            let blobs = prune_blocking(&dir, dry_run)?;
            let warm = if snapshots {
                let (count, bytes) = super::snapshots::prune(&store, dry_run)?;
                // Spare disks count with the snapshots: they are the same kind of head start.
                let (_, spare_bytes) = spares.clear(dry_run);
                (count, bytes + spare_bytes)
            } else {
                (0, 0)
            };
            Ok::<_, std::io::Error>((blobs, warm))
        })
        .await
        .map_err(|e| {
            ImageError::new(
                banger_proto::ErrorCode::OperationFailed,
                format!("the prune crashed: {e}"),
            )
        })?
        .map_err(|e| ImageError::failed(&e))?;
    Ok(PruneCacheResult {
        bytes_freed,
        blobs_freed,
        dry_run,
        cache_dir: cache,
        snapshots_freed,
        snapshot_bytes_freed,
    })
}
