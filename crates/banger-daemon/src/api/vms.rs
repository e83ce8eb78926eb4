//! `GET /v1/vms`, `POST /v1/vms`, `GET /v1/vms/{vm}`.
//!
//! and the lifecycle routes under `/v1/vms/{vm}/…`.
//!
//! Create validates everything a client could get wrong — the name rule (again: the CLI checked
//! it too, other clients may not), the spec limits and name uniqueness — before it starts any
//! work, so a bad request never leaves anything behind.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use banger_model::{VmName, VmRecord};
use banger_proto::{CreateVmRequest, LogChunk, Operation, SshCommandLine, SshRequest};

use super::error::ApiError;
use crate::context::DaemonContext;
use crate::vms;

/// Every VM.
pub async fn list(State(ctx): State<DaemonContext>) -> Result<Json<Vec<VmRecord>>, ApiError> {
    Ok(Json(ctx.store().vms().list()?))
}

/// One VM by id, name or unique prefix.
pub async fn get(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<Json<VmRecord>, ApiError> {
    Ok(Json(ctx.store().vms().resolve(&reference)?))
}

/// Creates a VM: checks the request, reserves name/IP/TAP, and answers 202 with the
/// operation that boots it.
pub async fn create(
    State(ctx): State<DaemonContext>,
    Json(request): Json<CreateVmRequest>,
) -> Result<(StatusCode, Json<Operation>), ApiError> {
    if let Some(raw) = request.name.as_deref() {
        VmName::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(vms::create(&ctx, request).await?),
    ))
}

/// Starts a stopped VM (an operation).
pub async fn start(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<(StatusCode, Json<Operation>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(vms::start(&ctx, &reference).await?),
    ))
}

/// Stops a VM; answers once it is stopped.
pub async fn stop(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<Json<VmRecord>, ApiError> {
    Ok(Json(vms::stop(&ctx, &reference).await?))
}

/// Kills a VM's VMM.
pub async fn kill(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<Json<VmRecord>, ApiError> {
    Ok(Json(vms::kill(&ctx, &reference).await?))
}

/// Deletes a VM and everything it owns.
pub async fn delete(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<Json<VmRecord>, ApiError> {
    Ok(Json(vms::delete(&ctx, &reference).await?))
}

/// The ssh command line for a session or a remote command.
pub async fn ssh(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
    Json(request): Json<SshRequest>,
) -> Result<Json<SshCommandLine>, ApiError> {
    Ok(Json(vms::ssh_command(&ctx, &reference, request)?))
}

/// Query of the logs route.
#[derive(Debug, serde::Deserialize)]
pub struct LogsQuery {
    /// Byte offset to start at; absent means "the last 64 KiB".
    pub offset: Option<u64>,
}

/// A chunk of the console log.
pub async fn logs(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Json<LogChunk>, ApiError> {
    Ok(Json(vms::console_log(&ctx, &reference, query.offset)?))
}
