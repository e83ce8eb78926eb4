//! `image promote`: a stopped VM's disks become a new managed image.
//!
//! Why: a developer sets a VM up once (packages, dotfiles, a checkout under `/root`) and wants
//! later VMs to start from there. The VM's system disk becomes the image's root filesystem and
//! its work disk the image's work seed, both as sparse copies, so the source VM is untouched and
//! keeps working. The image boots with the source image's kernel and keeps its OCI run config.
//!
//! What is per VM is scrubbed from the copy, never from the VM: the SSH host keys (every VM
//! generates its own at first boot, so trust-on-first-use stays per VM and no two VMs share a
//! key) and `/etc/machine-id`.
//!
//! Order and safety: the name and the VM are checked first; the copy runs under the VM's lock
//! (no start, set or delete can race it) into a staging dir, and only then, under the registry
//! lock, is the dir moved into place with the record: the all-or-nothing path of a
//! registration, so a failed promote leaves no image and no file.

use std::path::Path;

use banger_image::ext4;
use banger_model::{ImageRecord, VmState};
use banger_proto::{ErrorCode, Operation};

use super::{ImageError, check_name, register_staged};
use crate::context::DaemonContext;
use crate::ids;
use crate::operations::OperationHandle;
use crate::vms::disks;

/// Where the guest keeps its SSH host keys.
const SSH_DIR: &str = "/etc/ssh";
/// The guest's machine id: emptied so each VM gets its own.
const MACHINE_ID: &str = "/etc/machine-id";

/// `POST /v1/images/promote`: checks the request, then starts copying VM `vm`'s disks into a
/// new image `name` (an operation).
pub async fn promote(ctx: &DaemonContext, vm: &str, name: &str) -> Result<Operation, ImageError> {
    check_name("image", name)?;
    let found = ctx.store().vms().resolve(vm)?;
    if ctx.store().images().get_by_name(name)?.is_some() {
        return Err(taken(name));
    }
    refuse_unless_stopped(ctx, &found)?;
    let op = ctx.operations().begin("image.promote", Some(name));
    let snapshot = op.snapshot();
    let (ctx, name) = (ctx.clone(), name.to_owned());
    tokio::spawn(async move {
        let lock = ctx.vm_locks().lock(&found.id).await;
        let result = promote_locked(&ctx, &found.id, &name, &op).await;
        drop(lock);
        match result {
            Ok(image) => {
                tracing::info!(image = %image.name, vm = %found.name, "promoted");
                op.succeed();
            }
            Err(e) => op.fail(e.code(), &crate::api::error::chain(&e)),
        }
    });
    Ok(snapshot)
}

fn taken(name: &str) -> ImageError {
    ImageError::new(
        ErrorCode::AlreadyExists,
        format!("an image named {name} already exists"),
    )
}

fn refuse_unless_stopped(
    ctx: &DaemonContext,
    record: &banger_model::VmRecord,
) -> Result<(), ImageError> {
    let name = &record.name;
    let live = crate::vms::inspect::live_handles(ctx, record).is_some();
    match record.state {
        VmState::Stopped if !live => Ok(()),
        VmState::Running | VmState::Stopped => Err(ImageError::invalid(format!(
            "vm {name} is running; stop it first with `banger vm stop {name}` so its disks are consistent"
        ))),
        other => Err(ImageError::invalid(format!(
            "vm {name} is {}; only a stopped vm can be promoted (`banger vm start {name}` then `banger vm stop {name}`)",
            other.as_str()
        ))),
    }
}

/// The copy, under the VM's lock: re-reads the VM (it may have started or gone meanwhile).
async fn promote_locked(
    ctx: &DaemonContext,
    vm_id: &str,
    name: &str,
    op: &OperationHandle,
) -> Result<ImageRecord, ImageError> {
    let record = ctx
        .store()
        .vms()
        .get(vm_id)?
        .ok_or_else(|| ImageError::not_found(format!("vm {vm_id} was deleted")))?;
    refuse_unless_stopped(ctx, &record)?;
    let source = ctx.store().images().get(&record.image_id)?.ok_or_else(|| {
        ImageError::not_found(format!(
            "the image vm {} was created from is gone",
            record.name
        ))
    })?;
    let id = ids::record_id();
    let dest = ctx.layout().images_dir().join(&id);
    let (vm_dir, vm_name, worker) = (record.dir.clone(), record.name.to_string(), op.clone());
    let name = name.to_owned();
    register_staged(
        ctx,
        "image",
        name.clone(),
        dest,
        move |dir| {
            worker.stage("copy disks");
            copy(&vm_dir.join("rootfs.ext4"), &dir.join("rootfs.ext4"))?;
            copy(&vm_dir.join("work.ext4"), &dir.join("work-seed.ext4"))?;
            worker.stage("scrub per-vm identity");
            scrub(&dir.join("rootfs.ext4"))?;
            worker.stage("register");
            Ok(())
        },
        move |ctx, dir| {
            let image = ImageRecord {
                id,
                name,
                source: format!("promoted from vm {vm_name} (image {})", source.name),
                digest: None,
                rootfs_path: dir.join("rootfs.ext4"),
                work_seed_path: Some(dir.join("work-seed.ext4")),
                kernel_name: source.kernel_name.clone(),
                created_at: ids::now_rfc3339(),
                oci_config: source.oci_config.clone(),
            };
            ctx.store().images().insert(&image)?;
            Ok(image)
        },
    )
    .await
}

fn copy(src: &Path, dst: &Path) -> Result<(), ImageError> {
    disks::sparse_copy(src, dst).map_err(|e| ImageError::failed(&e))
}

/// Removes the SSH host keys and empties the machine id of root filesystem `rootfs`.
fn scrub(rootfs: &Path) -> Result<(), ImageError> {
    let failed = |e: ext4::Ext4Error| ImageError::failed(&e);
    let mut edits = ext4::Edits::new();
    for key in ext4::list_dir(rootfs, SSH_DIR).map_err(failed)? {
        if key.starts_with("ssh_host_") {
            edits.remove(&format!("{SSH_DIR}/{key}"));
        }
    }
    // Kept until the edits are applied: debugfs reads the empty file from here.
    let mut empty = None;
    if ext4::stat(rootfs, MACHINE_ID)
        .map_err(failed)?
        .is_some_and(|s| s.size > 0)
    {
        let file =
            empty.insert(tempfile::NamedTempFile::new().map_err(|e| ImageError::failed(&e))?);
        edits
            .put(file.path(), MACHINE_ID)
            .mode(MACHINE_ID, ext4::Kind::File, 0o444)
            .owner(MACHINE_ID, 0, 0);
    }
    ext4::apply(rootfs, &edits).map_err(failed)
}
