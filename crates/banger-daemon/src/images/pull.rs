//! Pulling catalog images and kernels: built from Debian packages on this host.
//!
//! A pull is an operation. The kernel comes first (an image names its kernel), then the image;
//! both are cached under the state dir, so a second pull is a no-op and says so. The builders
//! are blocking (debootstrap, dpkg, mkfs), so they run on the blocking pool and report progress
//! lines into the operation's current stage.

use std::path::Path;

use banger_guest::paths::AGENT_PATH as AGENT_GUEST_PATH;
use banger_image::{Catalog, ImageRecipe, KernelRecipe, Progress};
use banger_model::{ImageRecord, KernelRecord};
use banger_proto::{ErrorCode, Operation};

use crate::context::DaemonContext;
use crate::ids;
use crate::images::ImageError;
use crate::operations::OperationHandle;

/// The catalog: built in (config may extend it later).
pub fn catalog() -> Result<Catalog, ImageError> {
    Catalog::builtin().map_err(|e| ImageError::failed(&e))
}

fn kernel_recipe(catalog: &Catalog, name: &str) -> Result<KernelRecipe, ImageError> {
    catalog
        .kernels
        .iter()
        .find(|k| k.name == name)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<_> = catalog.kernels.iter().map(|k| k.name.as_str()).collect();
            ImageError::not_found(format!(
                "kernel {name:?} is not in the catalog (known: {})",
                known.join(", ")
            ))
        })
}

/// `GET /v1/catalog`: every name `image pull` and `kernel pull` take, and whether it is here.
pub fn listing(ctx: &DaemonContext) -> Result<banger_proto::CatalogListing, ImageError> {
    let catalog = catalog()?;
    let images = ctx.store().images();
    let kernels = ctx.store().kernels();
    let mut listing = banger_proto::CatalogListing::default();
    for recipe in &catalog.images {
        listing.images.push(banger_proto::CatalogEntry {
            name: recipe.name.clone(),
            source: format!("debootstrap {} ({})", recipe.suite, recipe.arch),
            kernel: Some(recipe.kernel.clone()),
            pulled: images.get_by_name(&recipe.name)?.is_some(),
        });
    }
    for bundle in &ctx.config().catalog {
        listing.images.push(banger_proto::CatalogEntry {
            name: bundle.name.clone(),
            source: bundle.source.clone(),
            kernel: None,
            pulled: images.get_by_name(&bundle.name)?.is_some(),
        });
    }
    for recipe in &catalog.kernels {
        listing.kernels.push(banger_proto::CatalogEntry {
            name: recipe.name.clone(),
            source: format!("{} from debian {}", recipe.package, recipe.suite),
            kernel: None,
            pulled: kernels.get_by_name(&recipe.name)?.is_some(),
        });
    }
    Ok(listing)
}

/// The image recipe called `name`, if the catalog has one.
pub fn image_recipe(catalog: &Catalog, name: &str) -> Option<ImageRecipe> {
    catalog.images.iter().find(|i| i.name == name).cloned()
}

type StepResult<T> = Result<T, (ErrorCode, String)>;

fn failed<E: std::error::Error + 'static>(e: &E) -> (ErrorCode, String) {
    (ErrorCode::OperationFailed, crate::api::error::chain(e))
}

fn mirror(ctx: &DaemonContext, suite: &str) -> StepResult<banger_image::mirror::Mirror> {
    banger_image::mirror::resolve(
        ctx.config().debian_mirror.as_deref(),
        Path::new("/etc/apt"),
        suite,
    )
    .map_err(|e| failed(&e))
}

/// Ensures kernel `recipe` is built and recorded. Runs inside an operation.
pub async fn ensure_kernel(
    ctx: &DaemonContext,
    recipe: &KernelRecipe,
    op: OperationHandle,
) -> (OperationHandle, StepResult<KernelRecord>) {
    match ctx.store().kernels().get_by_name(&recipe.name) {
        Ok(Some(k)) if k.vmlinux_path.exists() => {
            op.skip(&format!("kernel {}", recipe.name), "already pulled");
            return (op, Ok(k));
        }
        Ok(Some(stale)) => {
            let _ = ctx.store().kernels().delete(&stale.id);
        }
        Ok(None) => {}
        Err(e) => return (op, Err(failed(&e))),
    }
    op.stage(&format!("kernel {}", recipe.name));
    let mirror = match mirror(ctx, &recipe.suite) {
        Ok(m) => m,
        Err(e) => return (op, Err(e)),
    };
    let dest = ctx.layout().kernels_dir().join(&recipe.name);
    let recipe2 = recipe.clone();
    let worker = op.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let mut progress = |p: Progress<'_>| match p {
            Progress::Stage(s) | Progress::Line(s) => worker.detail(s),
        };
        banger_image::kernel::build_kernel(&recipe2, &mirror, &dest, &mut progress)
    })
    .await;
    let built = match joined {
        Ok(built) => built,
        Err(e) => {
            tracing::error!(error = %e, "kernel build task panicked");
            return (
                op,
                Err((
                    ErrorCode::OperationFailed,
                    "the kernel build crashed; see the daemon log".to_owned(),
                )),
            );
        }
    };
    let artifact = match built {
        Ok(a) => a,
        Err(e) => return (op, Err(failed(&e))),
    };
    let record = KernelRecord {
        id: ids::record_id(),
        name: recipe.name.clone(),
        version: Some(artifact.version.clone()),
        source: format!("catalog:{} ({})", recipe.name, recipe.package),
        // QEMU microvm and Firecracker both boot the uncompressed ELF.
        vmlinux_path: artifact.vmlinux.clone(),
        initrd_path: Some(artifact.initrd.clone()),
        created_at: ids::now_rfc3339(),
    };
    let result = ctx
        .store()
        .kernels()
        .insert(&record)
        .map(|()| record)
        .map_err(|e| failed(&e));
    (op, result)
}

/// Ensures image `recipe` (and its kernel) is built and recorded. Runs inside an operation.
pub async fn ensure_image(
    ctx: &DaemonContext,
    recipe: &ImageRecipe,
    op: OperationHandle,
) -> (OperationHandle, StepResult<ImageRecord>) {
    let catalog = match catalog() {
        Ok(c) => c,
        Err(e) => return (op, Err((e.code(), crate::api::error::chain(&e)))),
    };
    let kernel = match kernel_recipe(&catalog, &recipe.kernel) {
        Ok(k) => k,
        Err(e) => return (op, Err((e.code(), crate::api::error::chain(&e)))),
    };
    let (op, kernel) = ensure_kernel(ctx, &kernel, op).await;
    if let Err(e) = kernel {
        return (op, Err(e));
    }
    match ctx.store().images().get_by_name(&recipe.name) {
        Ok(Some(i)) if i.rootfs_path.exists() => {
            op.skip(&format!("image {}", recipe.name), "already pulled");
            return (op, Ok(i));
        }
        Ok(Some(stale)) => {
            let _ = ctx.store().images().delete(&stale.id);
            super::snapshots::drop_for_image(ctx, &stale.id);
        }
        Ok(None) => {}
        Err(e) => return (op, Err(failed(&e))),
    }
    op.stage(&format!("image {}", recipe.name));
    let agent = match ctx.agent_binary() {
        Ok(agent) => agent,
        Err(e) => return (op, Err((ErrorCode::HostProblem, e.to_string()))),
    };
    let mirror = match mirror(ctx, &recipe.suite) {
        Ok(m) => m,
        Err(e) => return (op, Err(e)),
    };
    let dest = ctx.layout().images_dir().join(&recipe.name);
    let recipe2 = recipe.clone();
    let worker = op.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let extra = [banger_image::image::ExtraFile {
            guest_path: AGENT_GUEST_PATH.into(),
            host_path: agent,
            mode: 0o755,
        }];
        let mut progress = |p: Progress<'_>| match p {
            Progress::Stage(s) | Progress::Line(s) => worker.detail(s),
        };
        banger_image::image::build_image(&recipe2, &mirror, &dest, &extra, &mut progress)
    })
    .await;
    let built = match joined {
        Ok(built) => built,
        Err(e) => {
            tracing::error!(error = %e, "image build task panicked");
            return (
                op,
                Err((
                    ErrorCode::OperationFailed,
                    "the image build crashed; see the daemon log".to_owned(),
                )),
            );
        }
    };
    let artifact = match built {
        Ok(a) => a,
        Err(e) => return (op, Err(failed(&e))),
    };
    let record = ImageRecord {
        id: ids::record_id(),
        name: recipe.name.clone(),
        source: format!("catalog:{} (debootstrap {})", recipe.name, recipe.suite),
        digest: None,
        rootfs_path: artifact.rootfs_ext4.clone(),
        work_seed_path: Some(artifact.work_seed_ext4.clone()),
        kernel_name: Some(recipe.kernel.clone()),
        created_at: ids::now_rfc3339(),
        oci_config: None,
    };
    let result = ctx
        .store()
        .images()
        .insert(&record)
        .map(|()| record)
        .map_err(|e| failed(&e));
    (op, result)
}

fn finish<T>(op: OperationHandle, result: StepResult<T>) {
    match result {
        Ok(_) => op.succeed(),
        Err((code, message)) => op.fail(code, &message),
    }
}

/// `POST /v1/images/pull`: starts pulling catalog image `name`, or the OCI image `name`
/// names when it is a registry reference (it has `/`, `:` or `@`; catalog names never do),
/// saved as `save_as` (default: derived from the reference).
pub async fn pull_image(
    ctx: &DaemonContext,
    name: &str,
    save_as: Option<String>,
) -> Result<Operation, ImageError> {
    let catalog = catalog()?;
    if name.contains(['/', ':', '@']) {
        return super::oci_pull::pull_oci(ctx, name, save_as).await;
    }
    if save_as.is_some() {
        return Err(ImageError::invalid(
            "--name applies to OCI references only; a catalog image keeps its catalog name",
        ));
    }
    if let Some(bundle) = ctx.config().catalog.iter().find(|b| b.name == name) {
        return Ok(pull_bundle(ctx, bundle.clone()));
    }
    let recipe = image_recipe(&catalog, name).ok_or_else(|| {
        let known: Vec<_> = catalog
            .images
            .iter()
            .map(|i| i.name.as_str())
            .chain(ctx.config().catalog.iter().map(|b| b.name.as_str()))
            .collect();
        ImageError::not_found(format!(
            "image {name:?} is not in the catalog (known: {}); use `banger image register` for your own files",
            known.join(", ")
        ))
    })?;
    ctx.agent_binary()
        .map_err(|e| ImageError::new(ErrorCode::HostProblem, e.to_string()))?;
    let op = ctx.operations().begin("image.pull", Some(name));
    let snapshot = op.snapshot();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let _lock = ctx.pull_lock().lock().await;
        let (op, result) = ensure_image(&ctx, &recipe, op).await;
        finish(op, result);
    });
    Ok(snapshot)
}

/// Starts pulling config `[[catalog]]` bundle `bundle` (its image and kernel), as auto-pull
/// does; a second pull finds it and says so.
fn pull_bundle(ctx: &DaemonContext, bundle: banger_model::CatalogBundle) -> Operation {
    let op = ctx.operations().begin("image.pull", Some(&bundle.name));
    let snapshot = op.snapshot();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let _lock = ctx.pull_lock().lock().await;
        let stage = format!("image {}", bundle.name);
        let result = match ctx.store().images().get_by_name(&bundle.name) {
            Ok(Some(image)) if image.rootfs_path.exists() => {
                op.skip(&stage, "already pulled");
                Ok(())
            }
            Ok(_) => {
                op.stage(&stage);
                super::bundle::fetch_bundle(&ctx, &bundle, &op)
                    .await
                    .map(|_| ())
                    .map_err(|e| (e.code(), crate::api::error::chain(&e)))
            }
            Err(e) => Err(failed(&e)),
        };
        finish(op, result);
    });
    snapshot
}

/// `POST /v1/kernels/pull`: starts pulling catalog kernel `name`.
pub async fn pull_kernel(ctx: &DaemonContext, name: &str) -> Result<Operation, ImageError> {
    let recipe = kernel_recipe(&catalog()?, name)?;
    let op = ctx.operations().begin("kernel.pull", Some(name));
    let snapshot = op.snapshot();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let _lock = ctx.pull_lock().lock().await;
        let (op, result) = ensure_kernel(&ctx, &recipe, op).await;
        finish(op, result);
    });
    Ok(snapshot)
}
