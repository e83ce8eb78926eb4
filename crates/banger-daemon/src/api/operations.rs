//! `GET /v1/operations` and `GET /v1/operations/{id}`.

use axum::Json;
use axum::extract::{Path, State};

use banger_proto::Operation;

use super::error::ApiError;
use crate::context::DaemonContext;

/// Every remembered operation, oldest first.
pub async fn list(State(ctx): State<DaemonContext>) -> Json<Vec<Operation>> {
    Json(ctx.operations().list())
}

/// One operation.
pub async fn get(
    State(ctx): State<DaemonContext>,
    Path(id): Path<String>,
) -> Result<Json<Operation>, ApiError> {
    ctx.operations()
        .get(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no operation {id:?}")))
}
