//! The durable image record.
//!
//! An image is a read-only root filesystem plus the kernel it boots with and the seed of the
//! work disk (`/root`). Files live under the image's directory in the state dir.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// An image as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Stable random id (hex).
    pub id: String,
    /// Unique name (`debian-bookworm`).
    pub name: String,
    /// Where it came from (catalog name, OCI reference, or a registered path).
    pub source: String,
    /// Content digest of the source, when known.
    pub digest: Option<String>,
    /// Read-only root filesystem image.
    pub rootfs_path: PathBuf,
    /// Seed of the work disk, if built.
    pub work_seed_path: Option<PathBuf>,
    /// Name of the kernel this image boots with.
    pub kernel_name: Option<String>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// The run settings an OCI image came with (`None` for other images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_config: Option<OciRunConfig>,
}

/// The parts of an OCI image config that say how the image expects to run: recorded at pull
/// time and shown by `image show`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OciRunConfig {
    /// `Env`: `NAME=value` entries.
    #[serde(default)]
    pub env: Vec<String>,
    /// `WorkingDir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `User` (`name`, `uid`, `uid:gid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `Entrypoint`.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    #[serde(default)]
    pub cmd: Vec<String>,
}
