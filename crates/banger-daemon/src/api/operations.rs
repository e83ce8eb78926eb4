//! `GET /v1/operations` and `GET /v1/operations/{id}`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};

use banger_proto::Operation;

use super::error::ApiError;
use crate::context::DaemonContext;

/// Every remembered operation, oldest first.
pub async fn list(State(ctx): State<DaemonContext>) -> Json<Vec<Operation>> {
    Json(ctx.operations().list())
}

/// Query of the one-operation route.
#[derive(Debug, serde::Deserialize)]
pub struct GetQuery {
    /// Answer once the operation changes, or after this many milliseconds (at most
    /// [`MAX_WAIT`]), instead of at once: a follower learns of each stage, and of the end,
    /// as it happens rather than at its next poll.
    pub wait_ms: Option<u64>,
}

/// The longest `wait_ms` honoured.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// One operation (with `wait_ms`, once it changes).
pub async fn get(
    State(ctx): State<DaemonContext>,
    Path(id): Path<String>,
    Query(query): Query<GetQuery>,
) -> Result<Json<Operation>, ApiError> {
    let missing = || ApiError::not_found(format!("no operation {id:?}"));
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    if !wait.is_zero() {
        let mut rx = ctx.operations().subscribe(&id).ok_or_else(missing)?;
        rx.mark_unchanged();
        if rx.borrow().state == banger_proto::OperationState::Running {
            // A change, a timeout or a dropped sender all end the wait the same way.
            let _ = tokio::time::timeout(wait, rx.changed()).await;
        }
    }
    ctx.operations().get(&id).map(Json).ok_or_else(missing)
}
