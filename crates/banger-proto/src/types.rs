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

/// `POST /v1/vms/{vm}/ssh`: what the session should run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SshRequest {
    /// Remote command and arguments; empty for a login shell. Each is quoted for the remote
    /// shell by the daemon, so exit codes and multi-word arguments survive.
    #[serde(default)]
    pub remote: Vec<String>,
    /// Whether the client has a terminal (forces `-t` for a shell).
    #[serde(default)]
    pub tty: bool,
}

/// The answer to [`SshRequest`]: run `program` with `args`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshCommandLine {
    /// The ssh binary.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// banger's known_hosts, named in host-key errors.
    pub known_hosts: PathBuf,
}

/// `GET /v1/vms/{vm}/logs?offset=N`: a chunk of the console log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
    /// The log file.
    pub path: PathBuf,
    /// Offset this chunk starts at.
    pub offset: u64,
    /// Offset to ask for next.
    pub next_offset: u64,
    /// The text (lossy UTF-8).
    pub text: String,
}

/// `POST /v1/images`: make an existing ext4 root filesystem a managed image. The files are
/// copied into banger's state; the agent is injected into the copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterImageRequest {
    /// Name of the new image.
    pub name: String,
    /// The ext4 root filesystem.
    pub rootfs: PathBuf,
    /// The ext4 seed of each VM's `/root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_seed: Option<PathBuf>,
    /// Name of a registered kernel.
    pub kernel: String,
}

/// `POST /v1/kernels`: make an existing kernel (and initramfs) a managed kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterKernelRequest {
    /// Name of the new kernel.
    pub name: String,
    /// The kernel image (an ELF `vmlinux`, or a bzImage for QEMU).
    pub vmlinux: PathBuf,
    /// The initramfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initrd: Option<PathBuf>,
}

/// `POST /v1/images/pull` and `POST /v1/kernels/pull`: what to pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// Catalog name (`debian-bookworm`, `debian-cloud`).
    pub name: String,
}
