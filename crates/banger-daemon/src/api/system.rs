//! `GET /v1/ping` and `POST /v1/shutdown`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use banger_proto::DaemonInfo;

use crate::context::DaemonContext;

/// Who answered: build, pid, mode, socket.
pub async fn ping(State(ctx): State<DaemonContext>) -> Json<DaemonInfo> {
    Json(ctx.current_info())
}

/// Stops the daemon after this response. Guests are not touched.
pub async fn shutdown(State(ctx): State<DaemonContext>) -> (StatusCode, Json<serde_json::Value>) {
    tracing::info!("shutdown requested over the API");
    ctx.shutdown().trigger();
    (StatusCode::ACCEPTED, Json(serde_json::json!({})))
}
