//! Request and response bodies other than errors and operations.
//!
//! Records (VMs, images, kernels) travel as the model's record types, which already derive
//! serde; this module holds the types that exist only on the wire.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use banger_model::{Mode, Size, VmSpec, VmState};

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
    /// Whether it serves the `vm.` DNS zone, and where (one line); absent from older daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
    /// Whether it serves guests' DNS on the bridge gateway (one line); absent from older
    /// daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_dns: Option<String>,
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
    /// Boot cold even when a warm snapshot of the VM's boot class exists (and save none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cold: bool,
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
    /// Share one connection between this command's sessions through an OpenSSH control
    /// master at this socket (in a directory of the client's own). Absent: a connection of
    /// its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_path: Option<PathBuf>,
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
    /// Catalog name (`debian-bookworm`, `debian-cloud`), or for images an OCI reference
    /// (`docker.io/library/debian:bookworm`, `localhost:5000/app@sha256:…`).
    pub name: String,
    /// The name to save an OCI image as (default: derived from the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_as: Option<String>,
}

/// One check of `GET /v1/vms/{vm}/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Whether the check passed.
    pub ok: bool,
    /// What was seen: the answer on success, the reason on failure.
    pub detail: String,
}

/// `GET /v1/vms/{vm}/health`: is the VM usable right now?
///
/// Always answered (200) for an existing VM; a stopped VM is simply unhealthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmHealth {
    /// The VM's name.
    pub vm: String,
    /// Its recorded state.
    pub state: VmState,
    /// Whether its VMM process is alive (and is this VM's).
    pub vmm_alive: bool,
    /// The guest agent's `GET /healthz`.
    pub agent: HealthCheck,
    /// An SSH banner on the guest's port 22.
    pub ssh: HealthCheck,
}

impl VmHealth {
    /// Whether every check passed.
    pub fn healthy(&self) -> bool {
        self.vmm_alive && self.agent.ok && self.ssh.ok
    }
}

/// The VMM process's share of the host, in [`VmStats`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// The VMM's pid.
    pub pid: u32,
    /// User plus system CPU time of the VMM, in seconds (all vCPUs together).
    pub cpu_seconds: f64,
    /// Resident memory of the VMM process, in bytes (guest RAM it touched plus its own).
    pub rss_bytes: u64,
    /// Seconds since the VMM started, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<f64>,
}

/// One disk file of a VM, in [`VmStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// `rootfs` or `work`.
    pub name: String,
    /// The file on the host.
    pub path: PathBuf,
    /// Bytes actually allocated on the host (sparse files cost only what was written).
    pub allocated_bytes: u64,
    /// The file's size as the guest sees it.
    pub apparent_bytes: u64,
}

/// `GET /v1/vms/{vm}/stats`: what a VM costs the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmStats {
    /// The VM's name.
    pub vm: String,
    /// Its recorded state.
    pub state: VmState,
    /// Configured vCPUs.
    pub vcpu: u32,
    /// Configured guest memory, in MiB.
    pub memory_mib: u64,
    /// The VMM process; `None` when the VM is not running.
    pub process: Option<ProcessStats>,
    /// The VM's disk files that exist.
    pub disks: Vec<DiskUsage>,
    /// Which VMM runs it (`qemu`, `firecracker`), when running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmm: Option<String>,
    /// The guest console log, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_log: Option<PathBuf>,
}

/// Transport protocol of a [`ListeningPort`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    /// A listening TCP socket.
    Tcp,
    /// A bound, unconnected UDP socket.
    Udp,
}

impl PortProtocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A socket waiting for traffic inside the guest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ListeningPort {
    /// TCP or UDP.
    pub protocol: PortProtocol,
    /// The local address (`0.0.0.0` and `::` mean every address).
    pub address: IpAddr,
    /// The local port.
    pub port: u16,
}

/// `GET /v1/vms/{vm}/ports`: the guest's listening sockets, as its agent reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmPorts {
    /// The VM's name.
    pub vm: String,
    /// The guest address the ports are reachable on from the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_ip: Option<String>,
    /// Sorted by port, then protocol, then address.
    pub ports: Vec<ListeningPort>,
}

/// `PATCH /v1/vms/{vm}`: new values for a stopped VM's spec; absent fields stay as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SetVmRequest {
    /// New vCPU count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu: Option<u32>,
    /// New guest memory in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// New work disk size; it may only grow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_size: Option<Size>,
    /// Outbound NAT on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<bool>,
}

impl SetVmRequest {
    /// Whether the request changes nothing.
    pub fn is_empty(&self) -> bool {
        self.vcpu.is_none()
            && self.memory_mib.is_none()
            && self.disk_size.is_none()
            && self.nat.is_none()
    }

    /// `spec` with this request's values applied.
    pub fn apply(&self, spec: VmSpec) -> VmSpec {
        VmSpec {
            vcpu: self.vcpu.unwrap_or(spec.vcpu),
            memory_mib: self.memory_mib.unwrap_or(spec.memory_mib),
            disk_size: self.disk_size.unwrap_or(spec.disk_size),
            nat: self.nat.unwrap_or(spec.nat),
        }
    }
}

/// `POST /v1/images/cache/prune`: what to do.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PruneCacheRequest {
    /// Only tally; remove nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Also remove every warm snapshot (they are rebuilt by the next create of their class).
    #[serde(default)]
    pub snapshots: bool,
}

/// What a cache prune freed (or would free).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneCacheResult {
    /// Bytes of blobs removed (or that would be).
    pub bytes_freed: u64,
    /// Blobs removed (or that would be).
    pub blobs_freed: u64,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The cache directory.
    pub cache_dir: std::path::PathBuf,
    /// Warm snapshots removed (or that would be); zero unless the request asked for them.
    #[serde(default)]
    pub snapshots_freed: u64,
    /// Bytes of warm snapshots removed (or that would be).
    #[serde(default)]
    pub snapshot_bytes_freed: u64,
}

/// `GET /v1/snapshots`: one warm snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Its boot class key (image, kernel, sizes, VMM and agent versions, hashed).
    pub key: String,
    /// The image record it boots.
    pub image_id: String,
    /// That image's name; `None` if the image is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Memory of the saved guest in MiB.
    pub memory_mib: u64,
    /// vCPUs of the saved guest, where recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu: Option<u32>,
    /// Bytes it takes on disk (allocated blocks; its files are sparse).
    pub bytes: u64,
    /// When it was saved (RFC 3339).
    pub created_at: String,
}

/// `POST /v1/vms/prune`: which VMs may go.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PruneVmsRequest {
    /// Only these VM ids (the ones a client showed for confirmation); `None` means every VM
    /// that is not running. A listed VM that is running by now is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
}

/// A VM that prune could not delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneFailure {
    /// The VM's name.
    pub vm: String,
    /// Why.
    pub message: String,
}

/// The answer to [`PruneVmsRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PruneVmsResponse {
    /// Names of the deleted VMs.
    pub deleted: Vec<String>,
    /// VMs that were candidates but could not be deleted (busy, or the delete failed).
    pub failed: Vec<PruneFailure>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_requests_change_only_what_they_name() {
        let spec = VmSpec {
            vcpu: 1,
            memory_mib: 512,
            disk_size: Size::from_gib(8),
            nat: false,
        };
        let empty: SetVmRequest = serde_json::from_str("{}").unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.apply(spec), spec);
        let req: SetVmRequest =
            serde_json::from_str(r#"{"vcpu":2,"disk_size":"10G","nat":true}"#).unwrap();
        assert!(!req.is_empty());
        let new = req.apply(spec);
        assert_eq!(
            (new.vcpu, new.memory_mib, new.disk_size, new.nat),
            (2, 512, Size::from_gib(10), true)
        );
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"vcpu":2,"disk_size":"10G","nat":true}"#
        );
    }

    #[test]
    fn ports_and_health_have_a_stable_shape() {
        let port = ListeningPort {
            protocol: PortProtocol::Tcp,
            address: "::".parse().unwrap(),
            port: 22,
        };
        assert_eq!(
            serde_json::to_value(&port).unwrap(),
            serde_json::json!({"protocol": "tcp", "address": "::", "port": 22})
        );
        let ok = HealthCheck {
            ok: true,
            detail: "fine".into(),
        };
        let mut h = VmHealth {
            vm: "web".into(),
            state: VmState::Running,
            vmm_alive: true,
            agent: ok.clone(),
            ssh: ok,
        };
        assert!(h.healthy());
        h.ssh.ok = false;
        assert!(!h.healthy());
        let prune: PruneVmsRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(prune.ids, None);
    }
}

/// `POST /v1/images/promote`: which stopped VM becomes which new image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoteImageRequest {
    /// The VM (id, name or unique prefix); it must be stopped.
    pub vm: String,
    /// Name of the new image.
    pub name: String,
}

/// `GET /v1/catalog`: what `image pull NAME` and `kernel pull NAME` take.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CatalogListing {
    /// Images by name: built in, then config `[[catalog]]` bundles.
    pub images: Vec<CatalogEntry>,
    /// Kernels by name (built in).
    pub kernels: Vec<CatalogEntry>,
}

/// One name in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// What to pull (`debian-bookworm`).
    pub name: String,
    /// Where it comes from (`debootstrap bookworm`, a bundle's manifest URL, a package).
    pub source: String,
    /// The kernel an image boots with (images only; a bundle brings its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Whether it is pulled already (an image or kernel of that name exists here).
    pub pulled: bool,
}
