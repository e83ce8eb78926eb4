//! `GET /v1/vms`, `POST /v1/vms`, `GET /v1/vms/{vm}`.
//!
//! Create validates everything a client could get wrong — the name rule (again: the CLI checked
//! it too, other clients may not), the spec limits and name uniqueness — before it would start
//! any work, so a bad request never leaves anything behind.

use axum::Json;
use axum::extract::{Path, State};

use banger_model::{VmName, VmRecord};
use banger_proto::CreateVmRequest;

use super::error::ApiError;
use crate::context::DaemonContext;

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

/// Creates a VM. The request is checked in full; the boot itself is not in this build.
pub async fn create(
    State(ctx): State<DaemonContext>,
    Json(request): Json<CreateVmRequest>,
) -> Result<Json<banger_proto::Operation>, ApiError> {
    if let Some(raw) = request.name.as_deref() {
        let name = VmName::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if ctx.store().vms().get_by_name(name.as_str())?.is_some() {
            return Err(ApiError::new(
                banger_proto::ErrorCode::AlreadyExists,
                format!("a vm named {name:?} already exists; pick another name or delete it"),
            ));
        }
    }
    request
        .spec
        .validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Err(ApiError::unavailable("vm create"))
}
