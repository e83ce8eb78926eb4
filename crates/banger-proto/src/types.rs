//! Request and response bodies other than errors and operations.
//!
//! Records (VMs, images, kernels) travel as the model's record types, which already derive
//! serde; this module holds the types that exist only on the wire.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use banger_model::{Mode, VmSpec};

use crate::build_info::BuildInfo;

/// `GET /v1/ping`: who answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// The daemon's build.
    pub build: BuildInfo,
    /// The daemon's process id.
    pub pid: u32,
    /// User or system install.
    pub mode: Mode,
    /// The uid the daemon serves (its owner).
    pub owner_uid: u32,
    /// The socket it listens on.
    pub socket: PathBuf,
    /// Its state directory.
    pub state_dir: PathBuf,
    /// When it started, RFC 3339 UTC.
    pub started_at: String,
}

/// `POST /v1/vms`: create a VM.
///
/// The name travels as text and is validated by the daemon again, so clients other than the
/// CLI get the same rule. The spec is explicit: the CLI resolves defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateVmRequest {
    /// Requested name; `None` lets the daemon pick one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Image name or id; `None` means the configured default image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Resources.
    pub spec: VmSpec,
}
