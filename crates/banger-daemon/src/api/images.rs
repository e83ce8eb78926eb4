//! `GET /v1/images` and `GET /v1/images/{image}`.

use axum::Json;
use axum::extract::{Path, State};

use banger_model::ImageRecord;

use super::error::ApiError;
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
