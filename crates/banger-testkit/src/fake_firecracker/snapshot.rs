//! The fake's snapshot endpoints: `PATCH /vm`, `PUT /snapshot/create`, `PUT /snapshot/load`,
//! with the swagger's bodies and Firecracker's rules (`src/vmm/src/vmm_config/snapshot.rs`,
//! `src/firecracker/src/api_server/request/snapshot.rs`, `src/vmm/src/persist.rs` upstream):
//!
//! - `PATCH /vm` `{state: Paused|Resumed}` post-boot only; resuming a running VM is a no-op;
//!   a paused VM's vsock refuses connections (no guest to answer them);
//! - `PUT /snapshot/create` `{snapshot_path, mem_file_path, snapshot_type?}` post-boot and only
//!   while paused; `Diff` is not implemented by the fake;
//! - `PUT /snapshot/load` only on a fresh process (nothing configured but the logger and
//!   metrics); exactly one of `mem_backend` (`File`; `Uffd` is not implemented) and the
//!   deprecated `mem_file_path`; `network_overrides` must name interfaces of the snapshot and
//!   `vsock_override` needs a vsock in it; the drives recorded in the snapshot are opened again
//!   **at their recorded paths** (relative ones from the working directory), the vsock socket is
//!   bound at its recorded path unless overridden; a failed load answers 400 and reports
//!   [`FakeEvent::SnapshotLoadFailed`] (the real process exits then, and so does the fake's).
//!
//! The files are the fake's own format: the state is JSON ([`SavedVm`]); the memory file has
//! the guest's memory size (sparse) and starts with [`MEMORY_MAGIC`]. A load checks both, so a
//! corrupt or truncated snapshot fails as it would on a real Firecracker.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use tokio::net::UnixListener;

use super::{
    Answer, DriveCfg, FAKE_VMM_VERSION, FakeEvent, FakeState, Inner, Mac, NOT_SUPPORTED_PRE_BOOT,
    NetCfg, Shared, bind_std, fault, no_content, open_like_firecracker, parse, vsock_accept_loop,
};

/// The format tag of the fake's state files.
pub const STATE_FORMAT: &str = "fake-firecracker-snapshot/1";

/// The first bytes of the fake's memory files.
pub const MEMORY_MAGIC: &[u8] = b"fake-firecracker guest memory\n";

const MIB: u64 = 1024 * 1024;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
enum VmState {
    Paused,
    Resumed,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VmBody {
    state: VmState,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Default)]
enum SnapshotType {
    #[default]
    Full,
    Diff,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCfg {
    #[serde(default)]
    snapshot_type: SnapshotType,
    snapshot_path: String,
    mem_file_path: String,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
enum BackendType {
    File,
    Uffd,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemBackendCfg {
    backend_path: String,
    backend_type: BackendType,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetOverride {
    iface_id: String,
    host_dev_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VsockOverride {
    uds_path: String,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
enum LoadHugePages {
    Snapshot,
    None,
    Transparent,
    #[serde(rename = "2M")]
    Huge2M,
}

#[allow(dead_code)] // parsed to validate the request; not every field is used
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadCfg {
    snapshot_path: String,
    mem_file_path: Option<String>,
    mem_backend: Option<MemBackendCfg>,
    #[serde(default)]
    enable_diff_snapshots: bool,
    #[serde(default)]
    track_dirty_pages: bool,
    #[serde(default)]
    resume_vm: bool,
    #[serde(default)]
    network_overrides: Vec<NetOverride>,
    vsock_override: Option<VsockOverride>,
    #[serde(default)]
    clock_realtime: bool,
    huge_pages: Option<LoadHugePages>,
}

/// A drive as the state file records it: the path as it was configured.
#[derive(Serialize, Deserialize)]
pub struct SavedDrive {
    drive_id: String,
    path_on_host: String,
    is_root_device: bool,
    is_read_only: bool,
}

/// An interface as the state file records it.
#[derive(Serialize, Deserialize)]
pub struct SavedNet {
    iface_id: String,
    host_dev_name: String,
    guest_mac: Option<String>,
}

/// The vsock as the state file records it.
#[derive(Serialize, Deserialize)]
pub struct SavedVsock {
    guest_cid: u32,
    uds_path: String,
}

/// The fake's state file.
#[derive(Serialize, Deserialize)]
pub struct SavedVm {
    format: String,
    vmm_version: String,
    vcpu_count: u8,
    mem_size_mib: usize,
    drives: Vec<SavedDrive>,
    nets: Vec<SavedNet>,
    vsock: Option<SavedVsock>,
}

fn load_error(detail: impl std::fmt::Display) -> Answer {
    fault(format!(
        "Load snapshot error: Failed to restore from snapshot: {detail}"
    ))
}

impl Inner {
    pub(super) fn patch_vm(&mut self, shared: &Shared, body: &[u8]) -> Result<Answer, Answer> {
        let vm: VmBody = parse(body)?;
        if self.state == FakeState::NotStarted {
            return Err(fault(NOT_SUPPORTED_PRE_BOOT));
        }
        let (state, open) = match vm.state {
            VmState::Paused => (FakeState::Paused, false),
            VmState::Resumed => (FakeState::Running, true),
        };
        self.state = state;
        shared.vsock_open.store(open, Ordering::SeqCst);
        Ok(no_content())
    }

    pub(super) fn put_snapshot_create(&mut self, body: &[u8]) -> Result<Answer, Answer> {
        let cfg: CreateCfg = parse(body)?;
        match self.state {
            FakeState::NotStarted => return Err(fault(NOT_SUPPORTED_PRE_BOOT)),
            FakeState::Running => {
                return Err(fault(
                    "Create snapshot error: Cannot save the microVM state: Operation not \
                     allowed: save/restore unavailable while running",
                ));
            }
            FakeState::Paused => {}
        }
        if cfg.snapshot_type == SnapshotType::Diff {
            return Err(fault("fake-firecracker does not implement diff snapshots"));
        }
        let saved = SavedVm {
            format: STATE_FORMAT.to_owned(),
            vmm_version: FAKE_VMM_VERSION.to_owned(),
            vcpu_count: self.machine.vcpu_count,
            mem_size_mib: self.machine.mem_size_mib,
            drives: self
                .drives
                .iter()
                .map(|d| SavedDrive {
                    drive_id: d.drive_id.clone(),
                    path_on_host: d.path_on_host.clone().unwrap_or_default(),
                    is_root_device: d.is_root_device,
                    is_read_only: d.is_read_only.unwrap_or(false),
                })
                .collect(),
            nets: self
                .nets
                .iter()
                .map(|n| SavedNet {
                    iface_id: n.iface_id.clone(),
                    host_dev_name: n.host_dev_name.clone(),
                    guest_mac: n.guest_mac.as_ref().map(|m| m.0.clone()),
                })
                .collect(),
            vsock: self
                .vsock_cfg
                .as_ref()
                .map(|(guest_cid, uds_path)| SavedVsock {
                    guest_cid: *guest_cid,
                    uds_path: uds_path.clone(),
                }),
        };
        let state_error = |e: io::Error| {
            fault(format!(
                "Create snapshot error: Cannot perform open on the snapshot backing file: {e}"
            ))
        };
        let text =
            serde_json::to_vec_pretty(&saved).map_err(|e| state_error(io::Error::other(e)))?;
        self.host_path(&cfg.snapshot_path)
            .and_then(|p| std::fs::write(p, text))
            .map_err(state_error)?;
        let bytes = u64::try_from(self.machine.mem_size_mib).unwrap_or(u64::MAX) * MIB;
        self.host_path(&cfg.mem_file_path)
            .and_then(|p| {
                let mut file = OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .write(true)
                    .open(p)?;
                file.write_all(MEMORY_MAGIC)?;
                file.set_len(bytes)
            })
            .map_err(|e| {
                fault(format!(
                    "Create snapshot error: Cannot write memory file: {e}"
                ))
            })?;
        Ok(no_content())
    }

    pub(super) fn put_snapshot_load(
        &mut self,
        shared: &Shared,
        body: &[u8],
    ) -> Result<Answer, Answer> {
        let cfg: LoadCfg = parse(body)?;
        let mem_path = match (&cfg.mem_backend, &cfg.mem_file_path) {
            (Some(_), Some(_)) => {
                return Err(parse_error(
                    "too many fields: either `mem_backend` or `mem_file_path` exclusively is \
                     required",
                ));
            }
            (None, None) => {
                return Err(parse_error(
                    "missing field: either `mem_backend` or `mem_file_path` is required",
                ));
            }
            (Some(backend), None) if backend.backend_type == BackendType::Uffd => {
                return Err(fault(
                    "fake-firecracker implements only the File memory backend",
                ));
            }
            (Some(backend), None) => backend.backend_path.clone(),
            (None, Some(path)) => path.clone(),
        };
        self.pre_boot_only()?;
        let configured = self.boot_source.is_some()
            || self.machine_configured
            || !self.drives.is_empty()
            || !self.nets.is_empty()
            || self.vsock.is_some();
        if configured {
            return Err(fault(
                "Load snapshot error: Loading a microVM snapshot not allowed after configuring \
                 boot-specific resources.",
            ));
        }
        match self.restore(shared, &cfg, &mem_path) {
            Ok(event) => {
                self.events.push(event);
                Ok(no_content())
            }
            Err(answer) => {
                self.events.push(FakeEvent::SnapshotLoadFailed);
                Err(answer)
            }
        }
    }

    fn restore(
        &mut self,
        shared: &Shared,
        cfg: &LoadCfg,
        mem_path: &str,
    ) -> Result<FakeEvent, Answer> {
        if cfg.huge_pages == Some(LoadHugePages::Huge2M) {
            return Err(load_error(
                "explicit 2M hugetlbfs pages require the Uffd memory backend",
            ));
        }
        let text = self
            .host_path(&cfg.snapshot_path)
            .and_then(std::fs::read)
            .map_err(|e| load_error(format!("cannot open the snapshot file: {e}")))?;
        let mut saved: SavedVm = serde_json::from_slice(&text)
            .map_err(|e| load_error(format!("cannot deserialize the microVM state: {e}")))?;
        if saved.format != STATE_FORMAT {
            return Err(load_error(format!(
                "unsupported snapshot format {:?}",
                saved.format
            )));
        }
        let want = u64::try_from(saved.mem_size_mib).unwrap_or(u64::MAX) * MIB;
        let mut magic = vec![0u8; MEMORY_MAGIC.len()];
        let memory = self
            .host_path(mem_path)
            .and_then(std::fs::File::open)
            .and_then(|mut f| {
                let len = f.metadata()?.len();
                f.read_exact(&mut magic)?;
                Ok(len)
            })
            .map_err(|e| load_error(format!("cannot load the guest memory file: {e}")))?;
        if memory != want || magic != MEMORY_MAGIC {
            return Err(load_error(format!(
                "the guest memory file holds {memory} bytes that are not this snapshot's {want}"
            )));
        }
        for o in &cfg.network_overrides {
            let net = saved
                .nets
                .iter_mut()
                .find(|n| n.iface_id == o.iface_id)
                .ok_or_else(|| load_error("Unknown Network Device."))?;
            net.host_dev_name.clone_from(&o.host_dev_name);
        }
        if let Some(o) = &cfg.vsock_override {
            let vsock = saved
                .vsock
                .as_mut()
                .ok_or_else(|| load_error("Unknown Vsock Device."))?;
            vsock.uds_path.clone_from(&o.uds_path);
        }
        let mut opened = Vec::new();
        for d in &saved.drives {
            let host = self
                .host_path(&d.path_on_host)
                .and_then(|p| {
                    OpenOptions::new()
                        .read(true)
                        .write(!d.is_read_only)
                        .open(&p)?;
                    std::fs::canonicalize(p)
                })
                .map_err(|e| {
                    load_error(format!(
                        "cannot restore block device {}: {e} {}",
                        d.drive_id, d.path_on_host
                    ))
                })?;
            opened.push((d.drive_id.clone(), host));
        }
        for n in &saved.nets {
            if n.host_dev_name.is_empty() || n.host_dev_name.len() >= 16 {
                return Err(load_error(format!(
                    "cannot restore network device {}: Open tap device failed: Invalid interface \
                     name",
                    n.iface_id
                )));
            }
        }
        let vsock = match &saved.vsock {
            None => None,
            Some(v) => {
                let host = self
                    .host_path(&v.uds_path)
                    .map_err(|e| load_error(format!("cannot bind the vsock socket: {e}")))?;
                let listener = bind_std(&host)
                    .and_then(UnixListener::from_std)
                    .map_err(|e| load_error(format!("cannot bind the vsock socket: {e}")))?;
                let task = tokio::spawn(vsock_accept_loop(
                    listener,
                    shared.ports.clone(),
                    shared.vsock_open.clone(),
                ));
                self.vsock = Some((host.to_string_lossy().into_owned(), task));
                self.vsock_cfg = Some((v.guest_cid, v.uds_path.clone()));
                Some(host)
            }
        };
        self.machine.vcpu_count = saved.vcpu_count;
        self.machine.mem_size_mib = saved.mem_size_mib;
        self.drives = saved.drives.into_iter().map(drive_cfg).collect();
        self.nets = saved.nets.into_iter().map(net_cfg).collect();
        if let Some(log) = &self.metrics
            && let Err(e) = open_like_firecracker(log)
        {
            return Err(load_error(format!("metrics: {e}")));
        }
        self.state = if cfg.resume_vm {
            FakeState::Running
        } else {
            FakeState::Paused
        };
        shared.vsock_open.store(cfg.resume_vm, Ordering::SeqCst);
        Ok(FakeEvent::SnapshotLoaded {
            resumed: cfg.resume_vm,
            drives: opened,
            vsock,
        })
    }
}

fn parse_error(message: &str) -> Answer {
    fault(format!(
        "An error occurred when deserializing the json body of a request: {message}."
    ))
}

fn drive_cfg(d: SavedDrive) -> DriveCfg {
    DriveCfg {
        drive_id: d.drive_id,
        partuuid: None,
        is_root_device: d.is_root_device,
        cache_type: None,
        is_read_only: Some(d.is_read_only),
        path_on_host: Some(d.path_on_host),
        rate_limiter: None,
        io_engine: None,
        socket: None,
    }
}

fn net_cfg(n: SavedNet) -> NetCfg {
    NetCfg {
        iface_id: n.iface_id,
        host_dev_name: n.host_dev_name,
        guest_mac: n.guest_mac.map(Mac),
        mtu: None,
        rx_rate_limiter: None,
        tx_rate_limiter: None,
    }
}
