//! HTTP/1.1 client of one Firecracker process's API socket.
//!
//! Why its own client: the API is a dozen JSON calls over a Unix socket, and the existing SDK
//! crates are young or stale (see CRATES.md). The exchange itself (hyper's low-level
//! `client::conn::http1` over a tokio `UnixStream`, bounded in time and size) is
//! `banger_util::uds_http`, shared with the CLI's daemon client; this module adds the API's
//! calls, its success rule and its errors.
//!
//! Invariants:
//! - Every call opens its own connection and is bounded as a whole (connect, send, read) by the
//!   client's timeout, so a wedged Firecracker can never hang the daemon.
//! - Success is any 2xx (the spec answers 204 to every `PUT`); anything else becomes
//!   [`FirecrackerApiError::Fault`] carrying the status and Firecracker's `fault_message`.
//! - Answers are read up to [`MAX_RESPONSE_BODY`] bytes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use banger_util::uds_http::{self, Answer, Call, ExchangeError};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::api::{
    Action, ActionType, BootSource, Drive, InstanceInfo, Logger, MachineConfig, Metrics,
    NetworkInterface, SnapshotCreate, SnapshotLoad, VmRunState, VmStateChange, Vsock,
    is_valid_resource_id,
};
use super::config::ApiCall;

/// Default bound on one API call, connect to last byte. Firecracker answers configuration calls
/// in microseconds; `InstanceStart` loads the kernel and initrd first, hence the headroom.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest answer body read from Firecracker.
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// Longest `fault_message` kept in an error, in bytes; longer ones are cut.
const MAX_FAULT_MESSAGE: usize = 4096;

/// Errors of one Firecracker API call.
#[derive(Debug, thiserror::Error)]
pub enum FirecrackerApiError {
    /// The API socket refused or does not exist (Firecracker not started, or gone).
    #[error("cannot connect to the firecracker api socket {} for {method} {path}", socket.display())]
    Connect {
        /// Socket path.
        socket: PathBuf,
        /// HTTP method of the call.
        method: &'static str,
        /// Request path of the call.
        path: String,
        /// Why the connection failed.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange broke (connection reset, malformed answer).
    #[error("http exchange with firecracker failed for {method} {path}")]
    Http {
        /// HTTP method of the call.
        method: &'static str,
        /// Request path of the call.
        path: String,
        /// The transport error.
        #[source]
        source: hyper::Error,
    },
    /// Firecracker did not answer within the client's timeout.
    #[error("firecracker did not answer {method} {path} within {} ms", timeout.as_millis())]
    Timeout {
        /// HTTP method of the call.
        method: &'static str,
        /// Request path of the call.
        path: String,
        /// The bound that expired.
        timeout: Duration,
    },
    /// Firecracker answered with a non-2xx status; `fault_message` is its explanation (or the
    /// raw body when the body was not the spec's `Error` object).
    #[error("firecracker rejected {method} {path} with status {status}: {fault_message}")]
    Fault {
        /// HTTP method of the call.
        method: &'static str,
        /// Request path of the call.
        path: String,
        /// HTTP status code.
        status: u16,
        /// Firecracker's `fault_message`.
        fault_message: String,
    },
    /// A resource id Firecracker would reject (see [`is_valid_resource_id`]).
    #[error(
        "invalid firecracker resource id {id:?}: only ascii letters, digits and '_' are allowed"
    )]
    InvalidId {
        /// The offending id.
        id: String,
    },
    /// The request body could not be serialised (a path that is not UTF-8).
    #[error("cannot encode the body of {method} {path}")]
    Encode {
        /// HTTP method of the call.
        method: &'static str,
        /// Request path of the call.
        path: String,
        /// The serialisation error.
        #[source]
        source: serde_json::Error,
    },
    /// The request could not be assembled.
    #[error("cannot build the request {method} {path}")]
    Request {
        /// HTTP method of the call.
        method: &'static str,
        /// Request path of the call.
        path: String,
        /// The builder's error.
        #[source]
        source: hyper::http::Error,
    },
    /// The answer body could not be read (broken stream or over [`MAX_RESPONSE_BODY`]).
    #[error("cannot read firecracker's answer to {method} {path}")]
    ReadBody {
        /// HTTP method of the call.
        method: &'static str,
        /// Request path of the call.
        path: String,
        /// The body error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A 2xx answer whose JSON did not match the spec's definition.
    #[error("cannot decode firecracker's answer to {method} {path}")]
    Decode {
        /// HTTP method of the call.
        method: &'static str,
        /// Request path of the call.
        path: String,
        /// The deserialisation error.
        #[source]
        source: serde_json::Error,
    },
}

impl FirecrackerApiError {
    /// The HTTP status Firecracker answered, for [`FirecrackerApiError::Fault`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Fault { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Firecracker's `fault_message`, for [`FirecrackerApiError::Fault`].
    pub fn fault_message(&self) -> Option<&str> {
        match self {
            Self::Fault { fault_message, .. } => Some(fault_message),
            _ => None,
        }
    }
}

/// A step of a plan failed; earlier steps were applied.
#[derive(Debug, thiserror::Error)]
#[error("step {step} of the firecracker launch plan failed")]
pub struct ApplyPlanError {
    /// Zero-based index of the failed call in the plan.
    pub step: usize,
    /// The call's failure.
    #[source]
    pub source: FirecrackerApiError,
}

/// Client of one Firecracker API socket. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct FirecrackerClient {
    socket: PathBuf,
    timeout: Duration,
}

#[derive(Deserialize)]
struct FaultBody {
    fault_message: String,
}

impl FirecrackerClient {
    /// A client of the API socket at `api_socket_path`, with [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn new(api_socket_path: impl Into<PathBuf>) -> Self {
        Self {
            socket: api_socket_path.into(),
            timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// The same client with another per-call bound.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The API socket this client talks to.
    pub fn api_socket_path(&self) -> &Path {
        &self.socket
    }

    /// The per-call bound.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `PUT /machine-config` (pre-boot only).
    pub async fn put_machine_config(
        &self,
        config: &MachineConfig,
    ) -> Result<(), FirecrackerApiError> {
        self.apply(&ApiCall::PutMachineConfig(config.clone())).await
    }

    /// `PUT /boot-source` (pre-boot only).
    pub async fn put_boot_source(&self, boot: &BootSource) -> Result<(), FirecrackerApiError> {
        self.apply(&ApiCall::PutBootSource(boot.clone())).await
    }

    /// `PUT /drives/{drive_id}` (pre-boot only).
    pub async fn put_drive(&self, drive: &Drive) -> Result<(), FirecrackerApiError> {
        self.apply(&ApiCall::PutDrive(drive.clone())).await
    }

    /// `PUT /network-interfaces/{iface_id}` (pre-boot only).
    pub async fn put_network_interface(
        &self,
        iface: &NetworkInterface,
    ) -> Result<(), FirecrackerApiError> {
        self.apply(&ApiCall::PutNetworkInterface(iface.clone()))
            .await
    }

    /// `PUT /vsock` (pre-boot only).
    pub async fn put_vsock(&self, vsock: &Vsock) -> Result<(), FirecrackerApiError> {
        self.apply(&ApiCall::PutVsock(vsock.clone())).await
    }

    /// `PUT /logger` (pre-boot only).
    pub async fn put_logger(&self, logger: &Logger) -> Result<(), FirecrackerApiError> {
        self.apply(&ApiCall::PutLogger(logger.clone())).await
    }

    /// `PUT /metrics` (pre-boot only, once per process).
    pub async fn put_metrics(&self, metrics: &Metrics) -> Result<(), FirecrackerApiError> {
        self.apply(&ApiCall::PutMetrics(metrics.clone())).await
    }

    /// `PUT /actions` `InstanceStart`: boots the configured microVM.
    pub async fn instance_start(&self) -> Result<(), FirecrackerApiError> {
        self.action(ActionType::InstanceStart).await
    }

    /// `PUT /actions` `SendCtrlAltDel`: asks the guest to reboot, which with `reboot=k` on the
    /// kernel command line makes Firecracker exit (x86_64, post-boot only).
    pub async fn send_ctrl_alt_del(&self) -> Result<(), FirecrackerApiError> {
        self.action(ActionType::SendCtrlAltDel).await
    }

    /// `PUT /actions` `FlushMetrics` (post-boot only).
    pub async fn flush_metrics(&self) -> Result<(), FirecrackerApiError> {
        self.action(ActionType::FlushMetrics).await
    }

    /// `GET /`: instance id, state and Firecracker's version.
    pub async fn describe_instance(&self) -> Result<InstanceInfo, FirecrackerApiError> {
        self.get("/").await
    }

    /// `GET /machine-config`: the effective machine configuration (defaults before any PUT).
    pub async fn get_machine_config(&self) -> Result<MachineConfig, FirecrackerApiError> {
        self.get("/machine-config").await
    }

    /// `PATCH /vm` `Paused`: stops the vCPUs (post-boot only).
    pub async fn pause(&self) -> Result<(), FirecrackerApiError> {
        self.patch_vm(VmRunState::Paused).await
    }

    /// `PATCH /vm` `Resumed`: lets the vCPUs run again (ignored by a running VM).
    pub async fn resume(&self) -> Result<(), FirecrackerApiError> {
        self.patch_vm(VmRunState::Resumed).await
    }

    async fn patch_vm(&self, state: VmRunState) -> Result<(), FirecrackerApiError> {
        self.send("PATCH", "/vm".to_owned(), &VmStateChange { state })
            .await
    }

    /// `PUT /snapshot/create` (post-boot, while paused).
    pub async fn create_snapshot(
        &self,
        params: &SnapshotCreate,
    ) -> Result<(), FirecrackerApiError> {
        self.send("PUT", "/snapshot/create".to_owned(), params)
            .await
    }

    /// `PUT /snapshot/load` (a fresh process only).
    pub async fn load_snapshot(&self, params: &SnapshotLoad) -> Result<(), FirecrackerApiError> {
        self.apply(&ApiCall::LoadSnapshot(params.clone())).await
    }

    async fn action(&self, action_type: ActionType) -> Result<(), FirecrackerApiError> {
        self.apply(&ApiCall::Action(Action { action_type })).await
    }

    /// Sends one planned call.
    pub async fn apply(&self, call: &ApiCall) -> Result<(), FirecrackerApiError> {
        if let Some(id) = call.resource_id()
            && !is_valid_resource_id(id)
        {
            return Err(FirecrackerApiError::InvalidId { id: id.to_owned() });
        }
        self.send(call.method(), call.path(), call).await
    }

    async fn send(
        &self,
        method: &'static str,
        path: String,
        body: &impl serde::Serialize,
    ) -> Result<(), FirecrackerApiError> {
        let body = serde_json::to_vec(body).map_err(|source| FirecrackerApiError::Encode {
            method,
            path: path.clone(),
            source,
        })?;
        let answer = self.exchange(method, &path, Some(body)).await?;
        expect_success(method, &path, &answer)
    }

    /// Sends a plan's calls in order, stopping at the first failure.
    pub async fn apply_plan(&self, plan: &[ApiCall]) -> Result<(), ApplyPlanError> {
        for (step, call) in plan.iter().enumerate() {
            self.apply(call)
                .await
                .map_err(|source| ApplyPlanError { step, source })?;
        }
        Ok(())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, FirecrackerApiError> {
        let answer = self.exchange("GET", path, None).await?;
        expect_success("GET", path, &answer)?;
        serde_json::from_slice(&answer.body).map_err(|source| FirecrackerApiError::Decode {
            method: "GET",
            path: path.to_owned(),
            source,
        })
    }

    async fn exchange(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, FirecrackerApiError> {
        let call = Call {
            method,
            path,
            body: body.as_deref(),
        };
        uds_http::exchange(&self.socket, call, MAX_RESPONSE_BODY, self.timeout)
            .await
            .map_err(|e| {
                let path = path.to_owned();
                match e {
                    ExchangeError::Connect { socket, source } => FirecrackerApiError::Connect {
                        socket,
                        method,
                        path,
                        source,
                    },
                    ExchangeError::Request(source) => FirecrackerApiError::Request {
                        method,
                        path,
                        source,
                    },
                    ExchangeError::Http(source) => FirecrackerApiError::Http {
                        method,
                        path,
                        source,
                    },
                    ExchangeError::ReadBody(source) => FirecrackerApiError::ReadBody {
                        method,
                        path,
                        source,
                    },
                    ExchangeError::Timeout(timeout) => FirecrackerApiError::Timeout {
                        method,
                        path,
                        timeout,
                    },
                }
            })
    }
}

fn expect_success(
    method: &'static str,
    path: &str,
    answer: &Answer,
) -> Result<(), FirecrackerApiError> {
    if (200..300).contains(&answer.status) {
        return Ok(());
    }
    Err(FirecrackerApiError::Fault {
        method,
        path: path.to_owned(),
        status: answer.status,
        fault_message: fault_message(&answer.body),
    })
}

/// The spec's `Error.fault_message`, or the raw body when it is not that object.
fn fault_message(body: &[u8]) -> String {
    let mut message = match serde_json::from_slice::<FaultBody>(body) {
        Ok(fault) => fault.fault_message,
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    if message.is_empty() {
        message = "no fault_message in the answer".to_owned();
    }
    if message.len() > MAX_FAULT_MESSAGE {
        let mut cut = MAX_FAULT_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_message_prefers_the_spec_object() {
        assert_eq!(
            fault_message(br#"{"fault_message": "The kernel file cannot be opened"}"#),
            "The kernel file cannot be opened"
        );
        assert_eq!(fault_message(b"  plain text\n"), "plain text");
        assert_eq!(fault_message(b""), "no fault_message in the answer");
    }

    #[test]
    fn long_fault_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_FAULT_MESSAGE);
        let cut = fault_message(long.as_bytes());
        assert!(cut.len() <= MAX_FAULT_MESSAGE + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
