//! Typed bodies of Firecracker's HTTP API, field for field as its swagger definition
//! (`src/firecracker/swagger/firecracker.yaml`) names them.
//!
//! Why typed: Firecracker rejects unknown fields (`deny_unknown_fields` on its request
//! structs), so a misspelt key is a boot failure discovered at run time. Keeping every key in
//! one place, as a serde struct, makes the wire format reviewable against the spec and testable
//! against the fake in `banger-testkit`.
//!
//! Invariants:
//! - Optional fields are omitted when `None`, never sent as `null`, so Firecracker applies its
//!   own defaults (for example `smt = false`, logger `level = Info`).
//! - Only the subset banger uses is modelled; each struct says which spec definition it follows.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `MachineConfiguration`: body of `PUT /machine-config`, answer of `GET /machine-config`.
///
/// Firecracker requires `vcpu_count` in 1..=32 (1 or even when `smt` is on) and a non-zero
/// `mem_size_mib`. Unknown fields of the answer (`track_dirty_pages`, `huge_pages`, …) are
/// ignored when reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineConfig {
    /// Number of vCPUs.
    pub vcpu_count: u8,
    /// Guest memory in MiB.
    pub mem_size_mib: u64,
    /// Simultaneous multithreading (x86_64 only); Firecracker's default is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smt: Option<bool>,
}

/// `BootSource`: body of `PUT /boot-source`.
///
/// Firecracker opens `kernel_image_path` (and `initrd_path`) when this request arrives, so the
/// files must exist before the call, not only before `InstanceStart`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootSource {
    /// Host path of the guest kernel (an uncompressed ELF `vmlinux`; bzImage only in releases after 1.16).
    pub kernel_image_path: PathBuf,
    /// Kernel command line. Firecracker's own default is used only when the field is absent,
    /// which banger never does: it always states the command line it boots with.
    pub boot_args: String,
    /// Host path of the initrd, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initrd_path: Option<PathBuf>,
}

/// `Drive` (virtio-block variant): body of `PUT /drives/{drive_id}`.
///
/// `drive_id` must equal the id in the path and contain only ASCII letters, digits and `_`
/// ([`is_valid_resource_id`]). At most one drive may be the root device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drive {
    /// Resource id, also the last path segment.
    pub drive_id: String,
    /// Host path of the backing file or block device.
    pub path_on_host: PathBuf,
    /// Whether this drive is the guest's root device.
    pub is_root_device: bool,
    /// Whether the guest sees the drive read-only.
    pub is_read_only: bool,
}

/// `NetworkInterface`: body of `PUT /network-interfaces/{iface_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInterface {
    /// Resource id, also the last path segment.
    pub iface_id: String,
    /// Name of the host TAP device (at most 15 bytes, the kernel's `IFNAMSIZ - 1`).
    pub host_dev_name: String,
    /// Guest MAC address as `aa:bb:cc:dd:ee:ff`; Firecracker picks none if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_mac: Option<String>,
}

/// `Vsock`: body of `PUT /vsock`.
///
/// Firecracker binds and listens on `uds_path` when this request arrives (it fails if the path
/// exists); host-initiated connections then use the hybrid handshake in
/// [`crate::firecracker::vsock`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vsock {
    /// Guest context id; the spec's minimum is 3 (0–2 are reserved).
    pub guest_cid: u32,
    /// Host path of the Unix socket that proxies vsock connections.
    pub uds_path: PathBuf,
}

/// Logger level, one of the values the `Logger` definition enumerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warning,
    /// Firecracker's default.
    Info,
    /// Debug and above.
    Debug,
    /// Everything.
    Trace,
    /// Nothing.
    Off,
}

impl LogLevel {
    /// The spelling the API and the `--level` flag use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "Error",
            Self::Warning => "Warning",
            Self::Info => "Info",
            Self::Debug => "Debug",
            Self::Trace => "Trace",
            Self::Off => "Off",
        }
    }
}

/// `Logger`: body of `PUT /logger`. Firecracker creates `log_path` if it does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logger {
    /// File or named pipe for the human-readable log.
    pub log_path: PathBuf,
    /// Level filter; Firecracker's default is `Info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
    /// Whether each line carries its level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_level: Option<bool>,
    /// Whether each line carries its source file and line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_log_origin: Option<bool>,
}

/// `Metrics`: body of `PUT /metrics`. Firecracker accepts it once per process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// File or named pipe receiving JSON metrics lines.
    pub metrics_path: PathBuf,
}

/// `action_type` values of `InstanceActionInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionType {
    /// Boot the configured microVM (pre-boot only).
    InstanceStart,
    /// Press Ctrl+Alt+Del on the guest's i8042 keyboard (x86_64, post-boot only).
    SendCtrlAltDel,
    /// Write the metrics now (post-boot only).
    FlushMetrics,
}

/// `InstanceActionInfo`: body of `PUT /actions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// What to do.
    pub action_type: ActionType,
}

/// `state` of `InstanceInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceState {
    /// Configured (or not), `InstanceStart` not yet accepted.
    #[serde(rename = "Not started")]
    NotStarted,
    /// Booted and running.
    Running,
    /// Paused through `PATCH /vm`.
    Paused,
}

/// `InstanceInfo`: answer of `GET /`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// Instance id (the `--id` flag; `anonymous-instance` by default).
    pub id: String,
    /// Lifecycle state.
    pub state: InstanceState,
    /// Firecracker's version.
    pub vmm_version: String,
    /// Application name (`Firecracker`).
    pub app_name: String,
}

/// `state` of the `Vm` definition: what `PATCH /vm` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmRunState {
    /// Pause the vCPUs (post-boot only).
    Paused,
    /// Let them run again (ignored when already running).
    Resumed,
}

/// `Vm`: body of `PATCH /vm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmStateChange {
    /// The state to reach.
    pub state: VmRunState,
}

/// `snapshot_type` of `SnapshotCreateParams`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotType {
    /// All of guest memory (what banger takes).
    Full,
    /// Only pages dirtied since the last snapshot.
    Diff,
}

/// `SnapshotCreateParams`: body of `PUT /snapshot/create` (the VM must be paused).
///
/// Firecracker creates both files (or truncates them) and writes them before answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotCreate {
    /// Full or diff; Firecracker's default is `Full`, banger always says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_type: Option<SnapshotType>,
    /// The device and vCPU state file.
    pub snapshot_path: PathBuf,
    /// The guest memory file.
    pub mem_file_path: PathBuf,
}

/// `backend_type` of `MemoryBackend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemBackendType {
    /// The memory file is mapped; the kernel serves page faults from it (banger's choice).
    File,
    /// A user-space page-fault handler on a Unix socket.
    Uffd,
}

/// `MemoryBackend` of `SnapshotLoadParams`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemBackend {
    /// How memory is served.
    pub backend_type: MemBackendType,
    /// The memory file (`File`) or the handler's socket (`Uffd`).
    pub backend_path: PathBuf,
}

/// `NetworkOverride`: a snapshot's interface backed by another TAP on restore (Firecracker
/// 1.12 and later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkOverride {
    /// The interface as the snapshot names it.
    pub iface_id: String,
    /// The TAP that backs it in the restored VM.
    pub host_dev_name: String,
}

/// `VsockOverride`: the vsock device's socket at another path on restore (Firecracker 1.16
/// and later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsockOverride {
    /// The new socket path.
    pub uds_path: PathBuf,
}

/// `SnapshotLoadParams`: body of `PUT /snapshot/load`, accepted only by a fresh process
/// (nothing configured but the logger and metrics). On failure Firecracker exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotLoad {
    /// The state file written by `PUT /snapshot/create`.
    pub snapshot_path: PathBuf,
    /// Where guest memory comes from (banger never sends the deprecated `mem_file_path`).
    pub mem_backend: MemBackend,
    /// Resume the VM once loaded (otherwise it is `Paused`).
    #[serde(default)]
    pub resume_vm: bool,
    /// TAPs other than the snapshot's; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_overrides: Vec<NetworkOverride>,
    /// Another vsock socket path; omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vsock_override: Option<VsockOverride>,
}

/// Whether Firecracker accepts `id` as a resource id in a path (`/drives/{id}`,
/// `/network-interfaces/{id}`): non-empty, letters, digits and `_`.
///
/// Firecracker itself accepts any Unicode alphanumeric; banger keeps to ASCII so the id is
/// always a valid URI segment.
pub fn is_valid_resource_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn optional_fields_are_omitted_not_null() {
        let mc = MachineConfig {
            vcpu_count: 2,
            mem_size_mib: 512,
            smt: None,
        };
        assert_eq!(
            serde_json::to_value(&mc).unwrap(),
            json!({"vcpu_count": 2, "mem_size_mib": 512})
        );
        let logger = Logger {
            log_path: "/tmp/fc.log".into(),
            level: Some(LogLevel::Warning),
            show_level: None,
            show_log_origin: Some(true),
        };
        assert_eq!(
            serde_json::to_value(&logger).unwrap(),
            json!({"log_path": "/tmp/fc.log", "level": "Warning", "show_log_origin": true})
        );
    }

    #[test]
    fn instance_state_uses_the_spec_spelling() {
        let info: InstanceInfo = serde_json::from_value(json!({
            "id": "anonymous-instance", "state": "Not started",
            "vmm_version": "1.16.0", "app_name": "Firecracker"
        }))
        .unwrap();
        assert_eq!(info.state, InstanceState::NotStarted);
        assert_eq!(
            serde_json::to_value(Action {
                action_type: ActionType::SendCtrlAltDel
            })
            .unwrap(),
            json!({"action_type": "SendCtrlAltDel"})
        );
    }

    #[test]
    fn machine_config_answer_ignores_extra_fields() {
        let mc: MachineConfig = serde_json::from_value(json!({
            "vcpu_count": 1, "mem_size_mib": 128, "smt": false,
            "track_dirty_pages": false, "huge_pages": "None"
        }))
        .unwrap();
        assert_eq!(mc.smt, Some(false));
    }

    #[test]
    fn resource_ids() {
        assert!(is_valid_resource_id("rootfs"));
        assert!(is_valid_resource_id("eth_0"));
        assert!(!is_valid_resource_id(""));
        assert!(!is_valid_resource_id("eth-0"));
        assert!(!is_valid_resource_id("a/b"));
    }
}
