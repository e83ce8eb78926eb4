//! Making the state dir agree with the store at start.
//!
//! Every file banger manages belongs to a record: `images/<dir>/` to an image, `kernels/<dir>/`
//! to a kernel, `vms/<id>/` to a VM. A crash can leave a directory without its record (an
//! interrupted pull or registration) or a record without its files (a disk removed by hand).
//! Before serving, [`reconcile`] walks the state dir once:
//! - `staging/` holds only unfinished registrations: emptied;
//! - image and kernel directories no record points at are removed (they are rebuilt or
//!   re-registered on demand);
//! - half-written warm snapshots, and warm snapshots of images that are gone, are removed;
//! - VM directories without a record are only reported: they may hold disks someone wants;
//! - records whose files are gone are reported.
//!
//! It logs one line per finding and returns them all, for `doctor`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::context::DaemonContext;

/// What the start-up reconcile found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateReport {
    /// Directories removed (no record owned them).
    pub removed: Vec<PathBuf>,
    /// VM directories without a record, left in place.
    pub unowned_vm_dirs: Vec<PathBuf>,
    /// Records whose files are missing: `image NAME: PATH`, …
    pub missing_files: Vec<String>,
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

fn remove(report: &mut StateReport, dir: PathBuf, why: &str) {
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {
            tracing::warn!(dir = %dir.display(), why, "removed leftover files");
            report.removed.push(dir);
        }
        Err(e) => tracing::error!(dir = %dir.display(), error = %e, "cannot remove leftover files"),
    }
}

/// Walks `images/`, `kernels/`, `vms/` and `staging/` against the store. Run before serving.
pub fn reconcile(ctx: &DaemonContext) -> StateReport {
    let mut report = StateReport::default();
    let layout = ctx.layout();
    let store = ctx.store();
    let (images, kernels, vms) = match (
        store.images().list(),
        store.kernels().list(),
        store.vms().list(),
    ) {
        (Ok(i), Ok(k), Ok(v)) => (i, k, v),
        _ => {
            tracing::error!("cannot list records; the state dir is not reconciled");
            return report;
        }
    };

    for dir in subdirs(&crate::images::staging::staging_root(&layout.state_dir)) {
        remove(&mut report, dir, "an interrupted registration");
    }

    let owned = |paths: &mut dyn Iterator<Item = &Path>| -> BTreeSet<PathBuf> {
        paths
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect()
    };
    let image_dirs =
        owned(&mut images.iter().flat_map(|i| {
            std::iter::once(i.rootfs_path.as_path()).chain(i.work_seed_path.as_deref())
        }));
    for dir in subdirs(&layout.images_dir()) {
        if !image_dirs.contains(&dir) {
            remove(&mut report, dir, "no image record owns it");
        }
    }
    let kernel_dirs =
        owned(&mut kernels.iter().flat_map(|k| {
            std::iter::once(k.vmlinux_path.as_path()).chain(k.initrd_path.as_deref())
        }));
    for dir in subdirs(&layout.kernels_dir()) {
        if !kernel_dirs.contains(&dir) {
            remove(&mut report, dir, "no kernel record owns it");
        }
    }
    // Warm snapshots: half-written ones from a crash, and those of images gone since.
    let snapshots = ctx.snapshots();
    snapshots.clean_staging();
    let image_ids: BTreeSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
    for orphan in snapshots.list() {
        if !image_ids.contains(orphan.meta.image_id.as_str()) {
            remove(
                &mut report,
                orphan.dir,
                "a warm snapshot of an image that is gone",
            );
        }
    }
    let vm_dirs: BTreeSet<&Path> = vms.iter().map(|v| v.dir.as_path()).collect();
    for dir in subdirs(&layout.vms_dir()) {
        if !vm_dirs.contains(dir.as_path()) {
            tracing::warn!(dir = %dir.display(), "a vm directory without a record; left in place");
            report.unowned_vm_dirs.push(dir);
        }
    }

    let mut missing = |what: String, path: &Path| {
        if !path.exists() {
            tracing::warn!(record = %what, path = %path.display(), "a record's file is missing");
            report
                .missing_files
                .push(format!("{what}: {}", path.display()));
        }
    };
    for i in &images {
        missing(format!("image {}", i.name), &i.rootfs_path);
    }
    for k in &kernels {
        missing(format!("kernel {}", k.name), &k.vmlinux_path);
    }
    for v in &vms {
        if v.state != banger_model::VmState::Created {
            missing(format!("vm {}", v.name), &v.dir);
        }
    }
    report
}
