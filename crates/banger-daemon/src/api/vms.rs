//! `GET /v1/vms`, `POST /v1/vms`, `GET /v1/vms/{vm}`.
//!
//! and the lifecycle routes under `/v1/vms/{vm}/…`.
//!
//! Create validates everything a client could get wrong — the name rule (again: the CLI checked
//! it too, other clients may not), the spec limits and name uniqueness — before it starts any
//! work, so a bad request never leaves anything behind.
//!
//! Inspection (`health`, `stats`, `ports`) only reads and never waits for the VM's lock;
//! `PATCH /v1/vms/{vm}` (set) and `POST /v1/vms/prune` change stopped VMs only. A VM may be
//! named `prune`: the other methods on that static path are routed to it
//! ([`vm_named_prune`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use banger_model::{VmName, VmRecord, Workspace};
use banger_proto::{
    CreateVmRequest, ErrorCode, LogChunk, Operation, PruneVmsRequest, PruneVmsResponse,
    SetVmRequest, SshCommandLine, SshRequest, VmHealth, VmPorts, VmStats, routes,
};

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

/// VMM, agent and SSH checks of a VM (an unhealthy VM is still a 200).
pub async fn health(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<Json<VmHealth>, ApiError> {
    Ok(Json(vms::health(&ctx, &reference).await?))
}

/// CPU time, memory and disk use of a VM.
pub async fn stats(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<Json<VmStats>, ApiError> {
    Ok(Json(vms::stats(&ctx, &reference).await?))
}

/// The ports a running VM listens on.
pub async fn ports(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<Json<VmPorts>, ApiError> {
    Ok(Json(vms::ports(&ctx, &reference).await?))
}

/// Changes the spec of a stopped VM.
pub async fn set(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
    Json(request): Json<SetVmRequest>,
) -> Result<Json<VmRecord>, ApiError> {
    Ok(Json(vms::set(&ctx, &reference, request).await?))
}

/// Records the workspace prepared into a VM; returns the updated record.
pub async fn set_workspace(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
    Json(workspace): Json<Workspace>,
) -> Result<Json<VmRecord>, ApiError> {
    Ok(Json(
        vms::workspace::set(&ctx, &reference, Some(workspace)).await?,
    ))
}

/// Forgets the workspace recorded on a VM; returns the updated record.
pub async fn clear_workspace(
    State(ctx): State<DaemonContext>,
    Path(reference): Path<String>,
) -> Result<Json<VmRecord>, ApiError> {
    Ok(Json(vms::workspace::set(&ctx, &reference, None).await?))
}

/// Deletes every VM that is not running. An empty body means "all of them".
pub async fn prune(
    State(ctx): State<DaemonContext>,
    body: Bytes,
) -> Result<Json<PruneVmsResponse>, ApiError> {
    let request = parse_or_default::<PruneVmsRequest>(&body)?;
    Ok(Json(vms::prune(&ctx, request).await?))
}

/// The other methods on `/v1/vms/prune`: a VM may be named `prune`, and the static prune path
/// must not hide it from the `/v1/vms/{vm}` routes.
pub async fn vm_named_prune(
    State(ctx): State<DaemonContext>,
    method: Method,
    body: Bytes,
) -> Result<Response, ApiError> {
    const NAME: &str = "prune";
    match method {
        Method::GET => Ok(Json(ctx.store().vms().resolve(NAME)?).into_response()),
        Method::DELETE => Ok(Json(vms::delete(&ctx, NAME).await?).into_response()),
        Method::PATCH => {
            let request = serde_json::from_slice::<SetVmRequest>(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid json body: {e}")))?;
            Ok(Json(vms::set(&ctx, NAME, request).await?).into_response())
        }
        other => Err(ApiError::new(
            ErrorCode::UnknownMethod,
            format!(
                "no route {other} {}; this daemon speaks API {}",
                routes::PRUNE_VMS.path,
                routes::PREFIX
            ),
        )),
    }
}

fn parse_or_default<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid json body: {e}")))
}
