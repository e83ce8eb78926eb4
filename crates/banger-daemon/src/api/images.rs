//! `GET /v1/images` and `GET /v1/images/{image}`, the image cache and warm snapshots.

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;

use banger_model::ImageRecord;

use banger_proto::RegisterImageRequest;

use super::error::ApiError;
use super::requester;
use crate::access::PeerCred;
use crate::context::DaemonContext;

/// Every image.
pub async fn list(State(ctx): State<DaemonContext>) -> Result<Json<Vec<ImageRecord>>, ApiError> {
    Ok(Json(ctx.store().images().list()?))
}

/// One image by id, name or unique prefix.
pub async fn get(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<Json<ImageRecord>, ApiError> {
    Ok(Json(ctx.store().images().resolve(&reference)?))
}

/// Registers existing files (copied into banger's state).
pub async fn register(
    State(ctx): State<DaemonContext>,
    ConnectInfo(peer): ConnectInfo<PeerCred>,
    Json(request): Json<RegisterImageRequest>,
) -> Result<(StatusCode, Json<ImageRecord>), ApiError> {
    let requester = requester(peer)?;
    let record = crate::images::register_image(&ctx, request, &requester).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// Starts a pull from the catalog or an OCI registry (an operation).
pub async fn pull(
    State(ctx): State<DaemonContext>,
    Json(request): Json<banger_proto::PullRequest>,
) -> Result<(StatusCode, Json<banger_proto::Operation>), ApiError> {
    let op = crate::images::pull::pull_image(&ctx, &request.name, request.save_as).await?;
    Ok((StatusCode::ACCEPTED, Json(op)))
}

/// Starts turning a stopped VM's disks into a new image (an operation).
pub async fn promote(
    State(ctx): State<DaemonContext>,
    Json(request): Json<banger_proto::PromoteImageRequest>,
) -> Result<(StatusCode, Json<banger_proto::Operation>), ApiError> {
    let op = crate::images::promote::promote(&ctx, &request.vm, &request.name).await?;
    Ok((StatusCode::ACCEPTED, Json(op)))
}

/// Lists what can be pulled by name.
pub async fn catalog(
    State(ctx): State<DaemonContext>,
) -> Result<Json<banger_proto::CatalogListing>, ApiError> {
    Ok(Json(crate::images::pull::listing(&ctx)?))
}

/// Empties the OCI blob cache (waits for a running pull).
pub async fn prune_cache(
    State(ctx): State<DaemonContext>,
    Json(request): Json<banger_proto::PruneCacheRequest>,
) -> Result<Json<banger_proto::PruneCacheResult>, ApiError> {
    Ok(Json(
        crate::images::cache_prune::prune(&ctx, request.dry_run, request.snapshots).await?,
    ))
}

/// Every warm snapshot with its image's name and size.
pub async fn snapshots(
    State(ctx): State<DaemonContext>,
) -> Result<Json<Vec<banger_proto::SnapshotInfo>>, ApiError> {
    Ok(Json(crate::images::snapshots::list(&ctx)?))
}

/// Deletes one (refused while something uses it).
pub async fn delete(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<Json<ImageRecord>, ApiError> {
    Ok(Json(crate::images::delete_image(&ctx, &reference)?))
}
