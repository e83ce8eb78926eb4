//! The durable kernel record.
//!
//! A kernel is an uncompressed `vmlinux` (what Firecracker boots) with an optional initrd,
//! stored under `kernels/<name>/` in the state dir.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A kernel as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelRecord {
    /// Stable random id (hex).
    pub id: String,
    /// Unique name (`debian-cloud`).
    pub name: String,
    /// Kernel release, e.g. `6.1.0-27-cloud-amd64`.
    pub version: Option<String>,
    /// Where it came from.
    pub source: String,
    /// The uncompressed kernel.
    pub vmlinux_path: PathBuf,
    /// Optional initramfs.
    pub initrd_path: Option<PathBuf>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
}
