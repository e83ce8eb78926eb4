//! Managed images and kernels: registering existing files.
//!
//! Registration copies the files into banger's state (`images/<id>/`, `kernels/<name>/`), so
//! a user may delete the originals, and injects the guest agent into the image's copy (at
//! `/usr/local/bin/banger-agent`, with debugfs: no mount, no root). A failed registration
//! removes what it copied and writes no record.

pub mod bundle;
pub mod pull;

use std::path::{Path, PathBuf};

use banger_guest::paths::AGENT_PATH as AGENT_GUEST_PATH;
use banger_image::ext4;
use banger_model::{ImageRecord, KernelRecord};
use banger_proto::{ErrorCode, RegisterImageRequest, RegisterKernelRequest};

use crate::api::error::{ApiError, chain};
use crate::context::DaemonContext;
use crate::ids;
use crate::vms::disks;

/// Image and kernel names: like VM names, plus `.` and `_` (`debian-bookworm`, `6.1_cloud`).
pub fn check_name(kind: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
        })
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{kind} name {name:?} must be 1-63 characters of lowercase letters, digits, '-', '.' or '_', starting with a letter or digit"
        )))
    }
}

fn absolute_file(what: &str, path: &Path) -> Result<(), ApiError> {
    if !path.is_absolute() {
        return Err(ApiError::bad_request(format!(
            "{what} {} must be an absolute path",
            path.display()
        )));
    }
    if !path.is_file() {
        return Err(ApiError::bad_request(format!(
            "{what} {} is not a readable file",
            path.display()
        )));
    }
    Ok(())
}

fn copy_into(src: &Path, dir: &Path, file: &str) -> Result<PathBuf, ApiError> {
    let dst = dir.join(file);
    disks::sparse_copy(src, &dst).map_err(|e| ApiError::failed(&e))?;
    Ok(dst)
}

/// Runs `fill` on the blocking pool to populate the new managed directory `dir`; if it fails,
/// `dir` is removed, so a failed registration leaves nothing behind.
async fn populate<T: Send + 'static>(
    dir: PathBuf,
    fill: impl FnOnce(&Path) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || {
        let result = std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::failed(&e))
            .and_then(|()| fill(&dir));
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    })
    .await
    .map_err(|e| ApiError::new(ErrorCode::OperationFailed, e.to_string()))?
}

/// Registers a kernel by copying its files.
pub async fn register_kernel(
    ctx: &DaemonContext,
    request: RegisterKernelRequest,
) -> Result<KernelRecord, ApiError> {
    check_name("kernel", &request.name)?;
    absolute_file("kernel", &request.vmlinux)?;
    if let Some(initrd) = &request.initrd {
        absolute_file("initrd", initrd)?;
    }
    if ctx.store().kernels().get_by_name(&request.name)?.is_some() {
        return Err(ApiError::new(
            ErrorCode::AlreadyExists,
            format!("a kernel named {} already exists", request.name),
        ));
    }
    let ctx = ctx.clone();
    populate(ctx.layout().kernels_dir().join(&request.name), move |dir| {
        let vmlinux = copy_into(&request.vmlinux, dir, "vmlinux")?;
        let initrd = request
            .initrd
            .as_deref()
            .map(|i| copy_into(i, dir, "initrd.img"))
            .transpose()?;
        let record = KernelRecord {
            id: ids::record_id(),
            name: request.name.clone(),
            version: None,
            source: format!("registered from {}", request.vmlinux.display()),
            vmlinux_path: vmlinux,
            initrd_path: initrd,
            created_at: ids::now_rfc3339(),
        };
        ctx.store().kernels().insert(&record)?;
        Ok(record)
    })
    .await
}

/// Registers an image by copying its files and injecting the agent.
pub async fn register_image(
    ctx: &DaemonContext,
    request: RegisterImageRequest,
) -> Result<ImageRecord, ApiError> {
    check_name("image", &request.name)?;
    absolute_file("rootfs", &request.rootfs)?;
    if let Some(seed) = &request.work_seed {
        absolute_file("work seed", seed)?;
    }
    if ctx.store().images().get_by_name(&request.name)?.is_some() {
        return Err(ApiError::new(
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
        return Err(ApiError::not_found(format!(
            "kernel {} is not registered; see `banger kernel ls`",
            request.kernel
        )));
    }
    let agent = ctx.agent_binary().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unavailable,
            "banger-agent was not found next to bangerd; reinstall banger",
        )
    })?;
    let id = ids::record_id();
    let ctx = ctx.clone();
    populate(ctx.layout().images_dir().join(&id), move |dir| {
        let rootfs = copy_into(&request.rootfs, dir, "rootfs.ext4")?;
        inject_agent(&rootfs, &agent)?;
        let seed = request
            .work_seed
            .as_deref()
            .map(|s| copy_into(s, dir, "work-seed.ext4"))
            .transpose()?;
        let record = ImageRecord {
            id: id.clone(),
            name: request.name.clone(),
            source: format!("registered from {}", request.rootfs.display()),
            digest: None,
            rootfs_path: rootfs,
            work_seed_path: seed,
            kernel_name: Some(request.kernel.clone()),
            created_at: ids::now_rfc3339(),
        };
        ctx.store().images().insert(&record)?;
        Ok(record)
    })
    .await
}

/// Writes the agent binary into an ext4 image at [`AGENT_GUEST_PATH`] (0755, root-owned).
pub fn inject_agent(rootfs: &Path, agent: &Path) -> Result<(), ApiError> {
    let mut edits = ext4::Edits::new();
    edits
        .mkdir_p("/usr/local/bin")
        .put(agent, AGENT_GUEST_PATH)
        .mode(AGENT_GUEST_PATH, ext4::Kind::File, 0o755)
        .owner(AGENT_GUEST_PATH, 0, 0);
    ext4::apply(rootfs, &edits).map_err(|e| {
        ApiError::new(
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
pub fn delete_image(ctx: &DaemonContext, reference: &str) -> Result<ImageRecord, ApiError> {
    let image = ctx.store().images().resolve(reference)?;
    match ctx.store().images().delete(&image.id) {
        Ok(_) => {}
        Err(banger_store::StoreError::ImageInUse { vms, .. }) => {
            return Err(ApiError::bad_request(format!(
                "image {} is used by {}; delete those vms first",
                image.name,
                vms.join(", ")
            )));
        }
        Err(e) => return Err(e.into()),
    }
    remove_managed_dir(&ctx.layout().images_dir(), &image.rootfs_path);
    Ok(image)
}

/// Deletes a kernel no image uses, with its files.
pub fn delete_kernel(ctx: &DaemonContext, reference: &str) -> Result<KernelRecord, ApiError> {
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
        return Err(ApiError::bad_request(format!(
            "kernel {} is used by image {}; delete those images first",
            kernel.name,
            users.join(", ")
        )));
    }
    ctx.store().kernels().delete(&kernel.id)?;
    remove_managed_dir(&ctx.layout().kernels_dir(), &kernel.vmlinux_path);
    Ok(kernel)
}
