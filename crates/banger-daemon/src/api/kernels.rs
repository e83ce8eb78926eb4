//! `GET /v1/kernels` and `GET /v1/kernels/{kernel}`.

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;

use banger_model::KernelRecord;

use banger_proto::RegisterKernelRequest;

use super::error::ApiError;
use super::requester;
use crate::access::PeerCred;
use crate::context::DaemonContext;

/// Every kernel.
pub async fn list(State(ctx): State<DaemonContext>) -> Result<Json<Vec<KernelRecord>>, ApiError> {
    Ok(Json(ctx.store().kernels().list()?))
}

/// One kernel by id, name or unique prefix.
pub async fn get(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<Json<KernelRecord>, ApiError> {
    Ok(Json(ctx.store().kernels().resolve(&reference)?))
}

/// Registers existing files (copied into banger's state).
pub async fn register(
    State(ctx): State<DaemonContext>,
    ConnectInfo(peer): ConnectInfo<PeerCred>,
    Json(request): Json<RegisterKernelRequest>,
) -> Result<(StatusCode, Json<KernelRecord>), ApiError> {
    let requester = requester(peer)?;
    let record = crate::images::register_kernel(&ctx, request, &requester).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// Starts a pull from the catalog (an operation).
pub async fn pull(
    State(ctx): State<DaemonContext>,
    Json(request): Json<banger_proto::PullRequest>,
) -> Result<(StatusCode, Json<banger_proto::Operation>), ApiError> {
    if request.save_as.is_some() {
        return Err(crate::images::ImageError::invalid(
            "save_as applies to OCI image pulls only; a kernel keeps its catalog name",
        )
        .into());
    }
    let op = crate::images::pull::pull_kernel(&ctx, &request.name).await?;
    Ok((StatusCode::ACCEPTED, Json(op)))
}

/// Deletes one (refused while something uses it).
pub async fn delete(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<Json<KernelRecord>, ApiError> {
    Ok(Json(crate::images::delete_kernel(&ctx, &reference)?))
}
