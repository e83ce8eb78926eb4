//! Errors as the API shows them: `{code, message, op_id}`.
//!
//! Handlers return [`ApiError`]; it travels to the envelope middleware ([`envelope`]) in the
//! response's extensions, and that one place writes the JSON body with the request's id. Errors
//! axum produces itself (a malformed JSON body, a wrong method) are rewritten there too, so a
//! client only ever sees the envelope.

use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use banger_proto::{ErrorBody, ErrorCode};
use banger_store::{LookupError, StoreError};

use crate::ids;

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The kind of failure.
    pub code: ErrorCode,
    /// For people: lowercase, naming the fix.
    pub message: String,
    /// An operation id to report instead of the request id.
    pub op_id: Option<String>,
}

impl ApiError {
    /// An error of `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            op_id: None,
        }
    }

    /// `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// `unavailable`: the API has the route, this build cannot do the work yet.
    pub fn unavailable(what: &str) -> Self {
        Self::new(
            ErrorCode::Unavailable,
            format!("{what} is not available yet in this build"),
        )
    }

    /// `operation_failed` from any error, keeping its whole chain of causes.
    pub fn failed(err: &(dyn std::error::Error + 'static)) -> Self {
        Self::new(ErrorCode::OperationFailed, chain(err))
    }
}

/// `err: cause: cause…`, the way the CLI shows it.
pub use banger_util::chain;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<crate::vms::VmError> for ApiError {
    fn from(err: crate::vms::VmError) -> Self {
        Self::new(err.code(), chain(&err))
    }
}

impl From<crate::images::ImageError> for ApiError {
    fn from(err: crate::images::ImageError) -> Self {
        Self::new(err.code(), chain(&err))
    }
}

impl From<LookupError> for ApiError {
    fn from(err: LookupError) -> Self {
        match err {
            LookupError::NotFound { .. } => Self::not_found(err.to_string()),
            LookupError::Ambiguous { .. } => Self::bad_request(err.to_string()),
            LookupError::Store { .. } => Self::failed(&err),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::AlreadyExists { .. } => {
                Self::new(ErrorCode::AlreadyExists, err.to_string())
            }
            other => Self::failed(&other),
        }
    }
}

/// The request's id, available to handlers that want to log it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Outermost middleware: gives each request an id, logs it, and writes every error as the
/// envelope.
pub async fn envelope(mut request: Request, next: Next) -> Response {
    let req_id = ids::op_id();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    request.extensions_mut().insert(RequestId(req_id.clone()));
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    tracing::debug!(
        req_id = %req_id,
        method = %method,
        path = %path,
        status = status.as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let error = match response.extensions().get::<ApiError>() {
        Some(e) => e.clone(),
        None => from_framework(status, response).await,
    };
    if error.code == ErrorCode::OperationFailed {
        tracing::warn!(req_id = %req_id, path = %path, error = %error.message, "request failed");
    }
    let body = ErrorBody {
        code: error.code,
        message: error.message,
        op_id: error.op_id.unwrap_or(req_id),
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut out = Response::new(Body::from(json));
    *out.status_mut() = status;
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out
}

/// Turns an error response axum made on its own into an [`ApiError`].
async fn from_framework(status: StatusCode, response: Response) -> ApiError {
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => ErrorCode::UnknownMethod,
        s if s.is_client_error() => ErrorCode::BadRequest,
        _ => ErrorCode::OperationFailed,
    };
    // The framework's own text is kept as it is: it may quote the user's input (a field name,
    // a path), which must reach them as typed.
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase()
    } else {
        text
    };
    ApiError::new(code, message)
}
