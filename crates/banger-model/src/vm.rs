//! The durable VM record: intent and identity.
//!
//! Only what must survive a crash lives here. Transient handles (VMM pid, loop devices, ...)
//! belong to the daemon's runtime view, not to this record. The TAP name is kept here on
//! purpose: it is what lets cleanup find a VM's network device after any crash.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::name::VmName;
use crate::spec::VmSpec;

/// Lifecycle state of a VM as recorded in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmState {
    /// Record exists, never booted (or a create is in progress).
    Created,
    /// The VMM is running.
    Running,
    /// Cleanly stopped; disks kept.
    Stopped,
    /// A lifecycle step failed; see `last_error`.
    Error,
}

impl VmState {
    /// The state as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Error => "error",
        }
    }

    /// Parses a stored state.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => Self::Created,
            "running" => Self::Running,
            "stopped" => Self::Stopped,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

impl fmt::Display for VmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A VM as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRecord {
    /// Stable random id (hex).
    pub id: String,
    /// Unique name.
    pub name: VmName,
    /// Id of the image the VM was created from.
    pub image_id: String,
    /// Resources.
    pub spec: VmSpec,
    /// Lifecycle state.
    pub state: VmState,
    /// Guest IPv4 address, once allocated.
    pub guest_ip: Option<String>,
    /// TAP device name, once allocated; durable so cleanup never loses it.
    pub tap_name: Option<String>,
    /// The VM's directory (disks, logs, handles).
    pub dir: PathBuf,
    /// Last lifecycle error, if any.
    pub last_error: Option<String>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Last change, RFC 3339 UTC.
    pub updated_at: String,
    /// The host repository prepared into the guest, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<Workspace>,
}

/// A host git repository copied into a VM (`vm workspace prepare`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// Where the repository lives in the guest (absolute, under `/root`).
    pub guest_path: PathBuf,
    /// The host repository root it was prepared from (absolute).
    pub host_path: PathBuf,
    /// The host commit it was prepared at (40 hex characters).
    pub head: String,
    /// When it was prepared, RFC 3339 UTC.
    pub prepared_at: String,
}

impl Workspace {
    /// The first 7 characters of [`Workspace::head`] (git's short form), for display.
    pub fn short_head(&self) -> &str {
        self.head.get(..7).unwrap_or(&self.head)
    }
}

impl VmRecord {
    /// The DNS name served for this VM (`NAME.vm`).
    pub fn dns_name(&self) -> String {
        format!("{}.vm", self.name)
    }
}
