//! Managed images and kernels: registering existing files.
//!
//! Registration first checks what it is handed ([`validate`]: readable by the requester, and
//! really a kernel, an initrd, an ext4 image), then copies the files into a private staging
//! dir ([`staging`]) and injects the guest agent into the image's copy (at
//! `/usr/local/bin/banger-agent`, with debugfs: no mount, no root). Only then, under the
//! registry lock, is the staged dir renamed to `images/<id>/` or `kernels/<name>/` and the
//! record written. So a failed, raced or interrupted registration removes only what it made:
//! the loser of two same-name registrations gets `already_exists` and the winner's files stay.

pub mod bundle;
pub mod cache_prune;
mod error;
pub mod oci_pull;
pub mod promote;
pub mod pull;
pub mod snapshots;
pub mod ssh_inject;
pub mod staging;
pub mod validate;

pub use error::ImageError;

use std::path::{Path, PathBuf};

use banger_guest::paths::AGENT_PATH as AGENT_GUEST_PATH;
use banger_image::ext4;
use banger_model::{ImageRecord, KernelRecord};
use banger_proto::{ErrorCode, RegisterImageRequest, RegisterKernelRequest};

use crate::api::error::chain;
use crate::context::DaemonContext;
use crate::ids;
use crate::vms::disks;
use validate::{FileKind, Requester};

/// Image and kernel names: like VM names, plus `.` and `_` (`debian-bookworm`, `6.1_cloud`).
pub fn check_name(kind: &str, name: &str) -> Result<(), ImageError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
        })
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ImageError::invalid(format!(
            "{kind} name {name:?} must be 1-63 characters of lowercase letters, digits, '-', '.' or '_', starting with a letter or digit"
        )))
    }
}

fn check_input(
    what: &'static str,
    path: &Path,
    kind: FileKind,
    requester: &Requester,
) -> Result<(), ImageError> {
    validate::check_file(what, path, kind, requester)
        .map_err(|e| ImageError::invalid(e.to_string()))
}

fn copy_into(src: &Path, dir: &Path, file: &str) -> Result<(), ImageError> {
    disks::sparse_copy(src, &dir.join(file)).map_err(|e| ImageError::failed(&e))
}

/// Copies into a fresh staging dir with `fill`, then — under the registry lock — moves it to
/// `dest` and writes the record with `record(dest)`. On any failure nothing of this
/// registration is left: the staging dir goes, and a moved dir is removed if its record could
/// not be written.
async fn register_staged<T: Send + 'static>(
    ctx: &DaemonContext,
    kind: &'static str,
    name: String,
    dest: PathBuf,
    fill: impl FnOnce(&Path) -> Result<(), ImageError> + Send + 'static,
    record: impl FnOnce(&DaemonContext, &Path) -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let staged =
            staging::Staging::new(&ctx.layout().state_dir).map_err(|e| ImageError::failed(&e))?;
        fill(staged.path())?;
        let _registry = ctx.registry_lock();
        let taken = || {
            ImageError::new(
                ErrorCode::AlreadyExists,
                format!("a {kind} named {name} already exists"),
            )
        };
        staged.commit(&dest).map_err(|e| match e {
            staging::CommitError::Exists(_) => taken(),
            other => ImageError::failed(&other),
        })?;
        record(&ctx, &dest).inspect_err(|_| {
            if let Err(e) = std::fs::remove_dir_all(&dest) {
                tracing::warn!(dir = %dest.display(), error = %e, "could not remove registered files");
            }
        })
    })
    .await
    .map_err(|e| ImageError::new(ErrorCode::OperationFailed, format!("the registration crashed: {e}")))?
}

/// Registers a kernel by copying its files.
pub async fn register_kernel(
    ctx: &DaemonContext,
    request: RegisterKernelRequest,
    requester: &Requester,
) -> Result<KernelRecord, ImageError> {
    check_name("kernel", &request.name)?;
    check_input("kernel", &request.vmlinux, FileKind::Kernel, requester)?;
    if let Some(initrd) = &request.initrd {
        check_input("initrd", initrd, FileKind::Initrd, requester)?;
    }
    let taken = || {
        ImageError::new(
            ErrorCode::AlreadyExists,
            format!("a kernel named {} already exists", request.name),
        )
    };
    if ctx.store().kernels().get_by_name(&request.name)?.is_some() {
        return Err(taken());
    }
    let dest = ctx.layout().kernels_dir().join(&request.name);
    let (vmlinux, initrd) = (request.vmlinux.clone(), request.initrd.clone());
    register_staged(
        ctx,
        "kernel",
        request.name.clone(),
        dest,
        move |dir| {
            copy_into(&vmlinux, dir, "vmlinux")?;
            if let Some(initrd) = &initrd {
                copy_into(initrd, dir, "initrd.img")?;
            }
            Ok(())
        },
        move |ctx, dir| {
            let record = KernelRecord {
                id: ids::record_id(),
                name: request.name.clone(),
                version: None,
                source: format!("registered from {}", request.vmlinux.display()),
                vmlinux_path: dir.join("vmlinux"),
                initrd_path: request.initrd.as_ref().map(|_| dir.join("initrd.img")),
                created_at: ids::now_rfc3339(),
            };
            ctx.store().kernels().insert(&record)?;
            Ok(record)
        },
    )
    .await
}

/// Registers an image by copying its files and injecting the agent.
pub async fn register_image(
    ctx: &DaemonContext,
    request: RegisterImageRequest,
    requester: &Requester,
) -> Result<ImageRecord, ImageError> {
    check_name("image", &request.name)?;
    check_input("rootfs", &request.rootfs, FileKind::Ext4, requester)?;
    if let Some(seed) = &request.work_seed {
        check_input("work seed", seed, FileKind::Ext4, requester)?;
    }
    if ctx.store().images().get_by_name(&request.name)?.is_some() {
        return Err(ImageError::new(
            ErrorCode::AlreadyExists,
            format!("an image named {} already exists", request.name),
        ));
    }
    if ctx
        .store()
        .kernels()
        .get_by_name(&request.kernel)?
        .is_none()
    {
        return Err(ImageError::not_found(format!(
            "kernel {} is not registered; see `banger kernel ls`",
            request.kernel
        )));
    }
    let agent = ctx
        .agent_binary()
        .map_err(|e| ImageError::new(ErrorCode::HostProblem, e.to_string()))?;
    let id = ids::record_id();
    let dest = ctx.layout().images_dir().join(&id);
    let (rootfs, seed) = (request.rootfs.clone(), request.work_seed.clone());
    let ssh_cache = ssh_inject::cache_dir(ctx);
    register_staged(
        ctx,
        "image",
        request.name.clone(),
        dest,
        move |dir| {
            copy_into(&rootfs, dir, "rootfs.ext4")?;
            inject_agent(&dir.join("rootfs.ext4"), &agent)?;
            ssh_inject::ensure_ssh(&dir.join("rootfs.ext4"), &ssh_cache, &agent)?;
            if let Some(seed) = &seed {
                copy_into(seed, dir, "work-seed.ext4")?;
            }
            Ok(())
        },
        move |ctx, dir| {
            let record = ImageRecord {
                id,
                name: request.name.clone(),
                source: format!("registered from {}", request.rootfs.display()),
                digest: None,
                rootfs_path: dir.join("rootfs.ext4"),
                work_seed_path: request
                    .work_seed
                    .as_ref()
                    .map(|_| dir.join("work-seed.ext4")),
                kernel_name: Some(request.kernel.clone()),
                created_at: ids::now_rfc3339(),
                oci_config: None,
            };
            ctx.store().images().insert(&record)?;
            Ok(record)
        },
    )
    .await
}

/// Writes the agent binary into an ext4 image at [`AGENT_GUEST_PATH`] (0755, root-owned).
pub fn inject_agent(rootfs: &Path, agent: &Path) -> Result<(), ImageError> {
    let mut edits = ext4::Edits::new();
    edits
        .mkdir_p("/usr/local/bin")
        .put(agent, AGENT_GUEST_PATH)
        .mode(AGENT_GUEST_PATH, ext4::Kind::File, 0o755)
        .owner(AGENT_GUEST_PATH, 0, 0);
    ext4::apply(rootfs, &edits).map_err(|e| {
        ImageError::new(
            ErrorCode::OperationFailed,
            format!(
                "cannot inject the agent into {}: {}",
                rootfs.display(),
                chain(&e)
            ),
        )
    })
}

/// Removes the directory that holds a managed file, if it is inside `root`.
fn remove_managed_dir(root: &Path, file: &Path) {
    if let Some(dir) = file.parent()
        && dir.starts_with(root)
        && dir != root
        && let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove image files");
    }
}

/// Deletes an image no VM uses, with its files.
pub fn delete_image(ctx: &DaemonContext, reference: &str) -> Result<ImageRecord, ImageError> {
    let image = ctx.store().images().resolve(reference)?;
    match ctx.store().images().delete(&image.id) {
        Ok(_) => {}
        Err(banger_store::StoreError::ImageInUse { vms, .. }) => {
            return Err(ImageError::invalid(format!(
                "image {} is used by {}; delete those vms first",
                image.name,
                vms.join(", ")
            )));
        }
        Err(e) => return Err(e.into()),
    }
    remove_managed_dir(&ctx.layout().images_dir(), &image.rootfs_path);
    snapshots::drop_for_image(ctx, &image.id);
    Ok(image)
}

/// Deletes a kernel no image uses, with its files.
pub fn delete_kernel(ctx: &DaemonContext, reference: &str) -> Result<KernelRecord, ImageError> {
    let kernel = ctx.store().kernels().resolve(reference)?;
    let users: Vec<String> = ctx
        .store()
        .images()
        .list()?
        .into_iter()
        .filter(|i| i.kernel_name.as_deref() == Some(kernel.name.as_str()))
        .map(|i| i.name)
        .collect();
    if !users.is_empty() {
        return Err(ImageError::invalid(format!(
            "kernel {} is used by image {}; delete those images first",
            kernel.name,
            users.join(", ")
        )));
    }
    ctx.store().kernels().delete(&kernel.id)?;
    remove_managed_dir(&ctx.layout().kernels_dir(), &kernel.vmlinux_path);
    Ok(kernel)
}
