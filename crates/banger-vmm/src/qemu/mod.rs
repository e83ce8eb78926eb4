//! The QEMU backend: `qemu-system-x86_64 -M microvm`, for hosts where Firecracker or KVM is
//! missing (TCG emulation works everywhere, slowly).
//!
//! Launch runs QEMU with `-daemonize`: the first process exits once the VM is set up (its exit
//! status and stderr tell us whether it started), and the VM itself runs in a detached child
//! whose pid QEMU writes to `vmm.pid`. The daemon is therefore never the VM's parent, so a
//! daemon restart or crash never takes a guest down with it.

pub mod argv;
pub mod qmp;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub use argv::{Accel, HostCpu, QemuFiles, detect_accel, host_tsc_khz, qemu_args, qemu_args_with};
pub use snapshot::{Memory, Snapshot, SnapshotError};

use crate::launch::{
    AgentEndpoint, BoxFuture, LaunchSpec, Vmm, VmmError, VmmHandle, VmmKind, tag_for,
};

/// How long QEMU may take to set a VM up before `-daemonize` returns.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The QEMU backend.
#[derive(Debug, Clone)]
pub struct QemuVmm {
    binary: PathBuf,
    host: HostCpu,
}

impl QemuVmm {
    /// A backend using `binary` with the given host facts.
    pub fn new(binary: PathBuf, host: HostCpu) -> Self {
        Self { binary, host }
    }

    /// `qemu-system-x86_64` from `PATH`, with acceleration and TSC read from this host.
    pub fn detect() -> Result<Self, VmmError> {
        let binary = banger_util::find_on_path("qemu-system-x86_64").ok_or_else(|| {
            VmmError::MissingBinary {
                binary: "qemu-system-x86_64".to_owned(),
            }
        })?;
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Ok(Self::new(
            binary,
            HostCpu {
                accel: detect_accel(),
                tsc_khz: host_tsc_khz(&cpuinfo),
            },
        ))
    }

    /// The binary in use.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The host facts in use.
    pub fn host(&self) -> HostCpu {
        self.host
    }
}

impl QemuVmm {
    /// Starts `spec` from `snapshot` instead of booting it: its disks must be copies of the
    /// snapshot's, at the same positions. A VM whose state does not load is killed, so a
    /// failed restore leaves no process (the caller falls back to a cold boot).
    pub async fn restore(
        &self,
        spec: &LaunchSpec,
        snapshot: &Snapshot,
        limit: Duration,
    ) -> Result<VmmHandle, VmmError> {
        let handle = self
            .launch_with(spec, &Memory::Restore(snapshot.clone()))
            .await?;
        match snapshot::load(&handle.control_socket, snapshot, limit).await {
            Ok(_) => Ok(handle),
            Err(e) => {
                let _ = crate::process::kill(handle.pid, &handle.tag);
                crate::process::wait_gone(handle.pid, &handle.tag, Duration::from_secs(5)).await;
                Err(VmmError::Control {
                    kind: "qemu",
                    socket: handle.control_socket.clone(),
                    message: format!("restore from {}: {e}", snapshot.state.display()),
                })
            }
        }
    }
}

/// How long a save or a load may take (the state is a few dozen KiB; the bound is for a
/// wedged QEMU).
const SNAPSHOT_LIMIT: Duration = Duration::from_secs(60);

fn control_error(handle: &VmmHandle, e: SnapshotError) -> VmmError {
    VmmError::Control {
        kind: "qemu",
        socket: handle.control_socket.clone(),
        message: e.to_string(),
    }
}

impl crate::warm::WarmSnapshots for QemuVmm {
    fn binary(&self) -> &Path {
        &self.binary
    }

    fn launch_saveable<'a>(
        &'a self,
        spec: &'a LaunchSpec,
        ram: &'a Path,
    ) -> BoxFuture<'a, Result<VmmHandle, VmmError>> {
        Box::pin(async move {
            let memory = Memory::Snapshottable {
                path: ram.to_owned(),
            };
            self.launch_with(spec, &memory).await
        })
    }

    fn save<'a>(
        &'a self,
        handle: &'a VmmHandle,
        ram: &'a Path,
        into: &'a Snapshot,
    ) -> BoxFuture<'a, Result<Duration, VmmError>> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            snapshot::save(&handle.control_socket, &into.state, SNAPSHOT_LIMIT)
                .await
                .map_err(|e| control_error(handle, e))?;
            // The guest is paused: its RAM file no longer changes, so a copy is the snapshot's.
            let (from, to) = (ram.to_owned(), into.memory.clone());
            tokio::task::spawn_blocking(move || banger_util::sparse::copy(&from, &to))
                .await
                .map_err(|e| VmmError::io("copy guest RAM")(std::io::Error::other(e)))?
                .map_err(|e| VmmError::Io {
                    action: format!("{} {} (copying guest RAM)", e.action, e.path.display()),
                    source: e.source,
                })?;
            Ok(started.elapsed())
        })
    }

    fn resume<'a>(&'a self, handle: &'a VmmHandle) -> BoxFuture<'a, Result<(), VmmError>> {
        Box::pin(async move {
            snapshot::resume(&handle.control_socket)
                .await
                .map_err(|e| control_error(handle, e))
        })
    }

    fn restore<'a>(
        &'a self,
        spec: &'a LaunchSpec,
        snapshot: &'a Snapshot,
    ) -> BoxFuture<'a, Result<VmmHandle, VmmError>> {
        Box::pin(QemuVmm::restore(self, spec, snapshot, SNAPSHOT_LIMIT))
    }
}

fn tail(text: &[u8], lines: usize) -> String {
    banger_util::tail::joined(text, lines, " | ")
}

impl Vmm for QemuVmm {
    fn kind(&self) -> Option<VmmKind> {
        Some(VmmKind::Qemu)
    }

    fn warm(&self) -> Option<&dyn crate::warm::WarmSnapshots> {
        Some(self)
    }

    fn launch<'a>(&'a self, spec: &'a LaunchSpec) -> BoxFuture<'a, Result<VmmHandle, VmmError>> {
        Box::pin(self.launch_qemu(spec))
    }

    fn request_shutdown<'a>(
        &'a self,
        handle: &'a VmmHandle,
    ) -> BoxFuture<'a, Result<(), VmmError>> {
        Box::pin(async move {
            qmp::execute(
                &handle.control_socket,
                "system_powerdown",
                None,
                Duration::from_secs(5),
            )
            .await
            .map(|_| ())
            .map_err(|e| VmmError::Control {
                kind: "qemu",
                socket: handle.control_socket.clone(),
                message: e.to_string(),
            })
        })
    }
}

impl QemuVmm {
    async fn launch_qemu(&self, spec: &LaunchSpec) -> Result<VmmHandle, VmmError> {
        self.launch_with(spec, &Memory::Anonymous).await
    }

    /// Launches `spec` with its RAM from `memory`. With [`Memory::Restore`] the VM waits for
    /// its state: use [`QemuVmm::restore`], which loads it.
    pub async fn launch_with(
        &self,
        spec: &LaunchSpec,
        memory: &Memory,
    ) -> Result<VmmHandle, VmmError> {
        let args = qemu_args_with(spec, self.host, memory)?;
        let files = QemuFiles::in_dir(&spec.run_dir);
        std::fs::create_dir_all(&spec.run_dir)
            .map_err(VmmError::io(format!("create {}", spec.run_dir.display())))?;
        for stale in [&files.qmp, &files.agent, &files.pidfile] {
            match std::fs::remove_file(stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(VmmError::io(format!("remove {}", stale.display()))(e)),
            }
        }
        let child = tokio::process::Command::new(&self.binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(VmmError::io(format!("run {}", self.binary.display())))?;
        let output = tokio::time::timeout(START_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| VmmError::StartFailed {
                kind: "qemu",
                status: format!("no answer within {START_TIMEOUT:?}"),
                stderr: String::new(),
                console_log: files.console_log.clone(),
            })?
            .map_err(VmmError::io("wait for qemu"))?;
        if !output.status.success() {
            return Err(VmmError::StartFailed {
                kind: "qemu",
                status: output.status.to_string(),
                stderr: tail(&output.stderr, 5),
                console_log: files.console_log.clone(),
            });
        }
        let pid_text = std::fs::read_to_string(&files.pidfile)
            .map_err(VmmError::io(format!("read {}", files.pidfile.display())))?;
        let pid: u32 = pid_text.trim().parse().map_err(|_| VmmError::StartFailed {
            kind: "qemu",
            status: format!("pid file holds {:?}", pid_text.trim()),
            stderr: tail(&output.stderr, 5),
            console_log: files.console_log.clone(),
        })?;
        Ok(VmmHandle {
            kind: VmmKind::Qemu,
            pid,
            tag: tag_for(&spec.vm_id),
            control_socket: files.qmp,
            agent: AgentEndpoint::Serial { path: files.agent },
            console_log: files.console_log,
        })
    }
}
