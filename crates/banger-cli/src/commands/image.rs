//! `banger image …`: pull, register, promote, catalog, list, show, rm (pinned by id, see
//! [`super::pin`]), snapshots and cache prune.

use banger_model::ImageRecord;
use banger_proto::{RegisterImageRequest, routes};

use super::pin::{self, Action};
use crate::args::common::JsonFlag;
use crate::args::image::{CacheCommand, ImageCommand, RegisterArgs, ShowArgs};
use crate::client::connect::connect_or_start;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{self, Stdout};
use crate::render;
use crate::validate;

/// Runs an `image` subcommand.
pub async fn run(cmd: ImageCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        ImageCommand::List(json) => list(json, ctx).await,
        ImageCommand::Show(args) => show(args, ctx).await,
        ImageCommand::Pull(args) => {
            validate::reference_text("image reference", &args.reference)?;
            if let Some(name) = &args.name {
                if !looks_like_oci(&args.reference) {
                    return Err(CliError::Usage(
                        "--name applies to OCI references; a catalog image keeps its name"
                            .to_owned(),
                    ));
                }
                validate::reference("image name", name)?;
            }
            pull_as(routes::PULL_IMAGE, &args.reference, args.name, ctx).await
        }
        ImageCommand::Register(args) => register(args, ctx).await,
        ImageCommand::Promote(args) => {
            validate::reference("vm", &args.vm)?;
            validate::reference("image name", &args.name)?;
            let daemon = connect_or_start(ctx).await?;
            let request = banger_proto::PromoteImageRequest {
                vm: args.vm,
                name: args.name.clone(),
            };
            let op: banger_proto::Operation = daemon
                .client
                .send(routes::PROMOTE_IMAGE, &[], &request)
                .await?;
            let done = crate::progress::follow(ctx, &daemon.client, op).await?;
            let took = done.duration_ms.map(render::elapsed).unwrap_or_default();
            output::info(&format!(
                "image {} ready ({took}); boot it with `banger vm create --image {}`",
                args.name, args.name
            ));
            Ok(())
        }
        ImageCommand::Catalog(json) => catalog(true, json, ctx).await,
        ImageCommand::Snapshots(json) => snapshots(json, ctx).await,
        ImageCommand::Delete(args) => {
            for image in &args.images {
                validate::reference("image", image)?;
            }
            let daemon = connect_or_start(ctx).await?;
            let pinned =
                pin::pin_all(&daemon.client, pin::IMAGE, DELETE, &args.images, args.force).await?;
            for image in pinned {
                let image = image?;
                let gone: ImageRecord = daemon
                    .client
                    .send(routes::DELETE_IMAGE, &[&image.id], &())
                    .await?;
                output::info(&format!("deleted image {}", gone.name));
            }
            Ok(())
        }
        ImageCommand::Cache(CacheCommand::Prune(args)) => {
            let daemon = connect_or_start(ctx).await?;
            let request = banger_proto::PruneCacheRequest {
                dry_run: args.dry_run,
                snapshots: args.snapshots,
            };
            let done: banger_proto::PruneCacheResult = daemon
                .client
                .send(routes::PRUNE_IMAGE_CACHE, &[], &request)
                .await?;
            output::info(&render::image::pruned(&done, args.snapshots));
            Ok(())
        }
    }
}

/// `image catalog` (`images`) and `kernel catalog`: what can be pulled by name.
pub(super) async fn catalog(images: bool, json: JsonFlag, ctx: &Context) -> Result<(), CliError> {
    let daemon = connect_or_start(ctx).await?;
    let listing: banger_proto::CatalogListing = daemon.client.get(routes::CATALOG, &[]).await?;
    let entries = if images {
        listing.images
    } else {
        listing.kernels
    };
    let mut out = Stdout::lock();
    if json.json {
        out.json(&entries)?;
    } else {
        out.text(&render::catalog::table(&entries, images).render())?;
    }
    out.finish()
}

/// `image rm` and `kernel rm`.
pub(super) const DELETE: Action = Action {
    verb: "delete",
    done: "deleted",
};

/// Whether `reference` names an OCI image (`docker.io/library/alpine:3.20`, `alpine:3`,
/// `x@sha256:…`) rather than a catalog name, which never has `/`, `:` or `@`.
fn looks_like_oci(reference: &str) -> bool {
    reference.contains(['/', ':', '@'])
}

/// Follows a pull operation to its end (shared with `kernel pull`).
pub(super) async fn pull(
    route: banger_proto::routes::Route,
    name: &str,
    ctx: &Context,
) -> Result<(), CliError> {
    pull_as(route, name, None, ctx).await
}

/// [`pull`], saving an OCI image as `save_as`.
async fn pull_as(
    route: banger_proto::routes::Route,
    name: &str,
    save_as: Option<String>,
    ctx: &Context,
) -> Result<(), CliError> {
    let daemon = connect_or_start(ctx).await?;
    let request = banger_proto::PullRequest {
        name: name.to_owned(),
        save_as: save_as.clone(),
    };
    let op: banger_proto::Operation = daemon.client.send(route, &[], &request).await?;
    let done = crate::progress::follow(ctx, &daemon.client, op).await?;
    let took = done.duration_ms.map(render::elapsed).unwrap_or_default();
    let shown = save_as.unwrap_or_else(|| done.target.clone().unwrap_or_else(|| name.to_owned()));
    output::info(&format!("{shown} ready ({took})"));
    Ok(())
}

async fn register(args: RegisterArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("image name", &args.name)?;
    validate::reference("kernel", &args.kernel)?;
    validate::existing_path("rootfs", &args.rootfs)?;
    if let Some(seed) = &args.work_seed {
        validate::existing_path("work seed", seed)?;
    }
    let request = RegisterImageRequest {
        name: args.name,
        rootfs: absolute(&args.rootfs)?,
        work_seed: args.work_seed.as_deref().map(absolute).transpose()?,
        kernel: args.kernel,
    };
    let daemon = connect_or_start(ctx).await?;
    let image: ImageRecord = daemon
        .client
        .send(routes::REGISTER_IMAGE, &[], &request)
        .await?;
    output::info(&format!("registered image {}", image.name));
    Ok(())
}

/// The path made absolute against the current directory (the daemon has no cwd of ours).
pub(super) fn absolute(path: &std::path::Path) -> Result<std::path::PathBuf, CliError> {
    std::path::absolute(path).map_err(|source| CliError::Io {
        what: format!("cannot resolve {}", path.display()),
        source,
    })
}

async fn list(json: JsonFlag, ctx: &Context) -> Result<(), CliError> {
    let daemon = connect_or_start(ctx).await?;
    let images: Vec<ImageRecord> = daemon.client.get(routes::LIST_IMAGES, &[]).await?;
    let mut out = Stdout::lock();
    if json.json {
        out.json(&images)?;
    } else if images.is_empty() {
        output::note(render::image::EMPTY_HINT);
    } else {
        out.text(&render::image::table(&images).render())?;
    }
    out.finish()
}

async fn snapshots(json: JsonFlag, ctx: &Context) -> Result<(), CliError> {
    let daemon = connect_or_start(ctx).await?;
    let snapshots: Vec<banger_proto::SnapshotInfo> =
        daemon.client.get(routes::LIST_SNAPSHOTS, &[]).await?;
    let mut out = Stdout::lock();
    if json.json {
        out.json(&snapshots)?;
    } else if snapshots.is_empty() {
        output::note(render::snapshot::EMPTY_HINT);
    } else {
        out.text(&render::snapshot::table(&snapshots).render())?;
    }
    out.finish()
}

async fn show(args: ShowArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("image", &args.image)?;
    let daemon = connect_or_start(ctx).await?;
    let image: ImageRecord = daemon.client.get(routes::GET_IMAGE, &[&args.image]).await?;
    let mut out = Stdout::lock();
    if args.json.json {
        out.json(&image)?;
    } else {
        out.text(&render::image::show(&image))?;
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_references_are_told_from_catalog_names() {
        for oci in ["docker.io/library/alpine:3.20", "alpine:3", "x@sha256:00"] {
            assert!(looks_like_oci(oci), "{oci}");
        }
        for name in ["debian-bookworm", "mine"] {
            assert!(!looks_like_oci(name), "{name}");
        }
    }
}
