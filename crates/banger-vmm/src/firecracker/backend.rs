//! The Firecracker backend: [`FirecrackerVmm`] implements [`Vmm`] by spawning one detached
//! `firecracker` process per VM and configuring it over its API.
//!
//! Why this shape: everything that can be decided without I/O is a pure function here
//! ([`instance_id`], [`boot_args`], [`vm_config`]) or in the modules it composes
//! ([`VmConfig::plan`], [`command_line`], [`socket_paths`]), so a bad spec fails before any
//! process exists, and the launch itself only replays decisions:
//!
//! 1. create the VM directory, link a short socket directory if the paths are too long
//!    ([`super::short_path`]), remove stale sockets and the old pid file;
//! 2. spawn `firecracker --api-sock <sock> --id banger-<vm id>` detached
//!    ([`super::spawn`]), stdout+stderr (the guest's serial console) to `console.log`, pid
//!    to `vmm.pid`;
//! 3. wait for the API socket (failing fast if the process exits), apply the plan
//!    (logger, metrics, machine, boot source, drives, eth0, vsock, `InstanceStart` last);
//! 4. on any failure, kill the process (by pid *and* tag) and report
//!    [`VmmError::StartFailed`] with the failing call, Firecracker's `fault_message` and the
//!    tail of its logs.
//!
//! With a [`super::JailConfig`] ([`FirecrackerVmm::with_jail`]) the launch runs under the
//! jailer instead ([`super::jailed`]). A VM that can be saved, or is restored from a snapshot,
//! runs the same steps with its run directory as working directory and a different plan
//! ([`super::snapshot`]). A bare jailer binary without one ([`FirecrackerVmm::with_jailer`])
//! is refused rather than ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use banger_util::chain;

use super::api::{BootSource, Drive, LogLevel, Logger, MachineConfig, Metrics, NetworkInterface};
use super::client::FirecrackerClient;
use super::command::{FirecrackerArgs, MAX_INSTANCE_ID, command_line, is_valid_instance_id};
use super::config::{ApiCall, MIN_GUEST_CID, VmConfig};
use super::short_path::{
    API_SOCKET, ShortLink, ShortPathError, SocketPaths, VSOCK_SOCKET, ensure_link,
    link_base_from_env, remove_link, socket_paths,
};
use super::socket::wait_for_api_socket;
use super::spawn::spawn_detached_in;
use crate::launch::{
    AgentEndpoint, BoxFuture, LaunchSpec, Vmm, VmmError, VmmHandle, VmmKind, tag_for,
};

/// The guest agent's vsock port.
pub use banger_guest::agent::VSOCK_PORT as AGENT_VSOCK_PORT;

/// The guest's vsock context id (the smallest the spec allows; each VM has its own device).
pub const GUEST_CID: u32 = MIN_GUEST_CID;

/// Firecracker's stdout and stderr: its start-up messages and the guest's serial console.
pub const CONSOLE_LOG: &str = crate::launch::CONSOLE_LOG;

/// Firecracker's own log (`PUT /logger`).
pub const VMM_LOG: &str = "firecracker-vmm.log";

/// Firecracker's metrics (`PUT /metrics`).
pub const METRICS_FILE: &str = "firecracker-metrics.json";

/// The pid file.
pub const PID_FILE: &str = "vmm.pid";

/// Boot arguments Firecracker guests want, added when the command line lacks the key:
/// `reboot=k` (a guest reboot makes Firecracker exit), `panic=1` (reboot, hence exit, on a
/// panic), `pci=off` (devices are virtio-mmio).
pub const DEFAULT_BOOT_ARGS: [(&str, &str); 3] = [("reboot", "k"), ("panic", "1"), ("pci", "off")];

/// How long Firecracker may take to create its API socket.
pub const API_SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on each API call during launch and shutdown.
pub const API_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on the calls that write or map a whole guest's memory (`PUT /snapshot/create` and
/// `/snapshot/load`): a full snapshot of a few GiB takes seconds to write.
pub const SNAPSHOT_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a failed launch waits for the killed process to go.
pub(super) const KILL_WAIT: Duration = Duration::from_secs(5);

pub(super) const KIND: &str = "firecracker";

/// The files of one VM's Firecracker, in its run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirecrackerFiles {
    /// The API socket, in the run directory (may be bound through a short link).
    pub api_socket: PathBuf,
    /// The hybrid vsock socket, in the run directory (likewise).
    pub vsock_socket: PathBuf,
    /// Firecracker's stdout+stderr, including the guest's serial console.
    pub console_log: PathBuf,
    /// Firecracker's own log.
    pub vmm_log: PathBuf,
    /// Firecracker's metrics.
    pub metrics: PathBuf,
    /// The pid file.
    pub pidfile: PathBuf,
}

impl FirecrackerFiles {
    /// The files in `run_dir`.
    pub fn in_dir(run_dir: &Path) -> Self {
        Self {
            api_socket: run_dir.join(API_SOCKET),
            vsock_socket: run_dir.join(VSOCK_SOCKET),
            console_log: run_dir.join(CONSOLE_LOG),
            vmm_log: run_dir.join(VMM_LOG),
            metrics: run_dir.join(METRICS_FILE),
            pidfile: run_dir.join(PID_FILE),
        }
    }
}

/// Firecracker's `--id` for a VM: its liveness tag `banger-<vm id>`, which must therefore be a
/// valid instance id (1..=64 alphanumerics or `-`). Daemon ids are 16 hex digits, so this only
/// refuses hand-made ids; refusing beats sanitising, because a sanitised id would no longer
/// carry the tag that proves the process is this VM's.
pub fn instance_id(vm_id: &str) -> Result<String, VmmError> {
    let id = tag_for(vm_id);
    if is_valid_instance_id(&id) {
        Ok(id)
    } else {
        Err(VmmError::InvalidSpec(format!(
            "vm id {vm_id:?} cannot tag a firecracker process: `banger-<id>` must be 1..={MAX_INSTANCE_ID} \
             alphanumerics or '-'"
        )))
    }
}

/// `cmdline` plus whichever of [`DEFAULT_BOOT_ARGS`] it lacks (by key), inserted before a
/// `--` that starts init's arguments.
pub fn boot_args(cmdline: &str) -> String {
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    let split = words.iter().position(|w| *w == "--").unwrap_or(words.len());
    let (kernel, init) = words.split_at(split);
    let has = |key: &str| {
        kernel.iter().any(|w| {
            *w == key
                || w.strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with('='))
        })
    };
    let mut out: Vec<String> = kernel.iter().map(|w| (*w).to_owned()).collect();
    for (key, value) in DEFAULT_BOOT_ARGS {
        if !has(key) {
            out.push(format!("{key}={value}"));
        }
    }
    out.extend(init.iter().map(|w| (*w).to_owned()));
    out.join(" ")
}

/// The drive id of disk `index`: `rootfs` for the first, `disk<n>` after it.
pub fn drive_id(index: usize) -> String {
    if index == 0 {
        "rootfs".to_owned()
    } else {
        format!("disk{index}")
    }
}

/// Translates a launch spec into Firecracker's configuration: machine from vCPUs and memory,
/// boot source with [`boot_args`], drives in order with the first as root, the TAP as `eth0`,
/// vsock (CID [`GUEST_CID`]) on `vsock_uds`, logger and metrics in the run directory.
pub fn vm_config(
    spec: &LaunchSpec,
    files: &FirecrackerFiles,
    vsock_uds: &Path,
) -> Result<VmConfig, VmmError> {
    let vcpu_count = u8::try_from(spec.vcpu).map_err(|_| {
        VmmError::InvalidSpec(format!(
            "vcpu count {} is too large for firecracker",
            spec.vcpu
        ))
    })?;
    let config = VmConfig {
        logger: Some(Logger {
            log_path: files.vmm_log.clone(),
            level: Some(LogLevel::Info),
            show_level: Some(true),
            show_log_origin: None,
        }),
        metrics: Some(Metrics {
            metrics_path: files.metrics.clone(),
        }),
        machine: MachineConfig {
            vcpu_count,
            mem_size_mib: spec.memory_mib,
            smt: None,
        },
        boot_source: BootSource {
            kernel_image_path: spec.kernel.clone(),
            boot_args: boot_args(&spec.cmdline),
            initrd_path: spec.initrd.clone(),
        },
        drives: spec
            .disks
            .iter()
            .enumerate()
            .map(|(i, disk)| Drive {
                drive_id: drive_id(i),
                path_on_host: disk.path.clone(),
                is_root_device: i == 0,
                is_read_only: disk.read_only,
            })
            .collect(),
        network_interfaces: spec
            .net
            .iter()
            .map(|net| NetworkInterface {
                iface_id: "eth0".to_owned(),
                host_dev_name: net.tap.clone(),
                guest_mac: Some(net.mac.clone()),
            })
            .collect(),
        vsock: Some(super::api::Vsock {
            guest_cid: GUEST_CID,
            uds_path: vsock_uds.to_path_buf(),
        }),
    };
    config
        .validate()
        .map_err(|e| VmmError::InvalidSpec(e.to_string()))?;
    Ok(config)
}

/// The Firecracker backend.
#[derive(Debug, Clone)]
pub struct FirecrackerVmm {
    firecracker_bin: PathBuf,
    jailer_bin: Option<PathBuf>,
    jail: Option<super::jailed::JailConfig>,
    jail_runner: std::sync::Arc<dyn super::jail_runner::JailRunner>,
    link_base: Option<PathBuf>,
}

impl FirecrackerVmm {
    /// A backend running `firecracker_bin` directly (no jailer), linking over-long socket paths
    /// through `/run/banger/fc` (root) or `$XDG_RUNTIME_DIR/banger/fc`.
    pub fn new(firecracker_bin: impl Into<PathBuf>) -> Self {
        Self {
            firecracker_bin: firecracker_bin.into(),
            jailer_bin: None,
            jail: None,
            jail_runner: std::sync::Arc::new(super::jail_runner::InProcessJail),
            link_base: link_base_from_env(),
        }
    }

    /// `firecracker` from `PATH`.
    pub fn detect() -> Result<Self, VmmError> {
        banger_util::find_on_path("firecracker")
            .map(Self::new)
            .ok_or_else(|| VmmError::MissingBinary {
                binary: "firecracker".to_owned(),
            })
    }

    /// The same backend with a bare jailer binary. Without a [`super::JailConfig`] (uid, gid,
    /// chroot base: [`FirecrackerVmm::with_jail`]) such a backend refuses to launch rather
    /// than run Firecracker unjailed.
    #[must_use]
    pub fn with_jailer(mut self, jailer_bin: Option<PathBuf>) -> Self {
        self.jailer_bin = jailer_bin;
        self
    }

    /// The same backend launching every VM under the jailer as `jail` says (see
    /// [`super::jailed`]); `None` runs Firecracker directly.
    #[must_use]
    pub fn with_jail(mut self, jail: Option<super::jailed::JailConfig>) -> Self {
        self.jail = jail;
        self
    }

    /// The same backend with `runner` doing the privileged step of a jailed launch (staging
    /// and spawning, and removing jails) instead of this process ([`super::InProcessJail`],
    /// the default).
    #[must_use]
    pub fn with_jail_runner(
        mut self,
        runner: std::sync::Arc<dyn super::jail_runner::JailRunner>,
    ) -> Self {
        self.jail_runner = runner;
        self
    }

    /// Who does the privileged step of a jailed launch.
    pub fn jail_runner(&self) -> &std::sync::Arc<dyn super::jail_runner::JailRunner> {
        &self.jail_runner
    }

    /// The jail configuration, if VMs run under the jailer.
    pub fn jail(&self) -> Option<&super::jailed::JailConfig> {
        self.jail.as_ref()
    }

    /// The same backend with another base directory for short socket links (`None`: over-long
    /// socket paths are an error).
    #[must_use]
    pub fn with_socket_link_base(mut self, base: Option<PathBuf>) -> Self {
        self.link_base = base;
        self
    }

    /// The Firecracker binary.
    pub fn firecracker_bin(&self) -> &Path {
        &self.firecracker_bin
    }

    /// The jailer binary, if configured.
    pub fn jailer_bin(&self) -> Option<&Path> {
        self.jailer_bin.as_deref()
    }

    /// The base directory of short socket links.
    pub fn socket_link_base(&self) -> Option<&Path> {
        self.link_base.as_deref()
    }
}

impl Vmm for FirecrackerVmm {
    fn kind(&self) -> Option<VmmKind> {
        Some(VmmKind::Firecracker)
    }

    fn launch<'a>(&'a self, spec: &'a LaunchSpec) -> BoxFuture<'a, Result<VmmHandle, VmmError>> {
        Box::pin(self.launch_firecracker(spec))
    }

    fn release(&self, vm_id: &str) -> Result<(), VmmError> {
        self.remove_jail(vm_id)
    }

    /// Unjailed only: see [`super::snapshot`] for why jailed VMs boot cold.
    fn warm(&self) -> Option<&dyn crate::warm::WarmSnapshots> {
        if self.jail.is_some() || self.jailer_bin.is_some() {
            None
        } else {
            Some(self)
        }
    }

    fn request_shutdown<'a>(
        &'a self,
        handle: &'a VmmHandle,
    ) -> BoxFuture<'a, Result<(), VmmError>> {
        Box::pin(async move {
            FirecrackerClient::new(&handle.control_socket)
                .with_timeout(API_CALL_TIMEOUT)
                .send_ctrl_alt_del()
                .await
                .map_err(|e| VmmError::Control {
                    kind: KIND,
                    socket: handle.control_socket.clone(),
                    message: chain(&e),
                })
        })
    }
}

/// Why a started process did not become a running VM.
pub(super) struct Failure(pub(super) String);

/// How a new Firecracker process gets its VM.
#[derive(Debug, Clone, Copy)]
pub(super) enum Start<'a> {
    /// Boot with host paths: an ordinary launch.
    Boot,
    /// Boot with disks and vsock relative to the run directory, so the VM can be saved
    /// ([`super::snapshot`]).
    Saveable,
    /// Load `snapshot` instead of booting ([`super::snapshot`]).
    Restore(&'a crate::warm::Snapshot),
}

impl FirecrackerVmm {
    async fn launch_firecracker(&self, spec: &LaunchSpec) -> Result<VmmHandle, VmmError> {
        if let Some(jail) = &self.jail {
            return self.launch_jailed(jail, spec).await;
        }
        if let Some(jailer) = &self.jailer_bin {
            return Err(VmmError::InvalidSpec(format!(
                "a jailer ({}) without a jail configuration (uid, gid, chroot base) cannot \
                 launch; unset jailer_bin to run firecracker directly",
                jailer.display()
            )));
        }
        self.start(spec, Start::Boot).await
    }

    /// Starts one unjailed Firecracker for `spec` the way `how` says (see the module docs
    /// for the steps).
    pub(super) async fn start(
        &self,
        spec: &LaunchSpec,
        how: Start<'_>,
    ) -> Result<VmmHandle, VmmError> {
        let id = instance_id(&spec.vm_id)?;
        let run_dir = std::path::absolute(&spec.run_dir)
            .map_err(VmmError::io(format!("resolve {}", spec.run_dir.display())))?;
        let files = FirecrackerFiles::in_dir(&run_dir);
        let sockets = socket_paths(&run_dir, &id, self.link_base.as_deref())
            .map_err(|e| VmmError::InvalidSpec(e.to_string()))?;
        let plan = match how {
            Start::Boot => vm_config(spec, &files, &sockets.vsock)?
                .plan()
                .map_err(|e| VmmError::InvalidSpec(e.to_string()))?,
            Start::Saveable => super::snapshot::saveable_plan(spec, &files)?,
            Start::Restore(snapshot) => super::snapshot::restore_plan(spec, &files, snapshot)?,
        };

        std::fs::create_dir_all(&run_dir)
            .map_err(VmmError::io(format!("create {}", run_dir.display())))?;
        if !matches!(how, Start::Boot) {
            super::snapshot::link_disks(&run_dir, spec)?;
        }
        if let Some(link) = &sockets.link {
            ensure_link(link).map_err(link_error)?;
        }
        for stale in [&files.api_socket, &files.vsock_socket, &files.pidfile] {
            remove_if_present(stale)?;
        }
        for fresh in [&files.vmm_log, &files.metrics] {
            std::fs::File::create(fresh)
                .map_err(VmmError::io(format!("create {}", fresh.display())))?;
        }
        let cwd = match how {
            Start::Boot => Path::new("/"),
            Start::Saveable | Start::Restore(_) => run_dir.as_path(),
        };

        let args = FirecrackerArgs {
            id: Some(id.clone()),
            ..FirecrackerArgs::new(&sockets.api)
        };
        let argv = command_line(&self.firecracker_bin, &args);
        let child = match spawn_detached_in(&argv, &files.console_log, cwd) {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                drop_link(sockets.link.as_ref());
                return Err(VmmError::MissingBinary {
                    binary: self.firecracker_bin.display().to_string(),
                });
            }
            Err(e) => {
                drop_link(sockets.link.as_ref());
                return Err(VmmError::io(format!(
                    "run {}",
                    self.firecracker_bin.display()
                ))(e));
            }
        };
        let tag = tag_for(&spec.vm_id);
        let pid = child.pid;

        let started = match std::fs::write(&files.pidfile, format!("{pid}\n")) {
            Ok(()) => configure(&sockets, &plan, child.exited, pid, &tag).await,
            Err(e) => Err(Failure(format!(
                "cannot write {}: {e}",
                files.pidfile.display()
            ))),
        };
        if let Err(Failure(status)) = started {
            let _ = crate::process::kill(pid, &tag);
            crate::process::wait_gone(pid, &tag, KILL_WAIT).await;
            let _ = std::fs::remove_file(&files.pidfile);
            drop_link(sockets.link.as_ref());
            return Err(VmmError::StartFailed {
                kind: KIND,
                status,
                stderr: log_tails(&files),
                console_log: files.console_log,
            });
        }
        Ok(VmmHandle {
            kind: VmmKind::Firecracker,
            pid,
            tag,
            control_socket: sockets.api,
            agent: AgentEndpoint::Vsock {
                path: sockets.vsock,
                port: AGENT_VSOCK_PORT,
            },
            console_log: files.console_log,
        })
    }
}

fn last_call(plan: &[ApiCall]) -> &'static str {
    match plan.last() {
        Some(ApiCall::LoadSnapshot(_)) => "the snapshot load",
        _ => "InstanceStart",
    }
}

/// Waits for the API socket (or the process's early exit), applies the plan, and checks the
/// process survived its last call (`InstanceStart`, or the snapshot load).
pub(super) async fn configure(
    sockets: &SocketPaths,
    plan: &[ApiCall],
    mut exited: tokio::sync::oneshot::Receiver<std::io::Result<std::process::ExitStatus>>,
    pid: u32,
    tag: &str,
) -> Result<(), Failure> {
    let exit_text = |status: Result<std::io::Result<std::process::ExitStatus>, _>| match status {
        Ok(Ok(status)) => status.to_string(),
        Ok(Err(e)) => format!("unknown status ({e})"),
        Err(_) => "unknown status".to_owned(),
    };
    tokio::select! {
        biased;
        status = &mut exited => {
            return Err(Failure(format!(
                "exited ({}) before serving its API socket",
                exit_text(status)
            )));
        }
        ready = wait_for_api_socket(&sockets.api, API_SOCKET_TIMEOUT) => {
            ready.map_err(|e| Failure(chain(&e)))?;
        }
    }
    let client = FirecrackerClient::new(&sockets.api);
    for (step, call) in plan.iter().enumerate() {
        let bound = match call {
            ApiCall::LoadSnapshot(_) => SNAPSHOT_CALL_TIMEOUT,
            _ => API_CALL_TIMEOUT,
        };
        if let Err(e) = client.clone().with_timeout(bound).apply(call).await {
            return Err(Failure(format!(
                "{} {} (step {} of {}) failed: {}",
                call.method(),
                call.path(),
                step + 1,
                plan.len(),
                chain(&e)
            )));
        }
    }
    if let Ok(status) = exited.try_recv() {
        return Err(Failure(format!(
            "exited ({}) right after {}",
            exit_text(Ok(status)),
            last_call(plan)
        )));
    }
    if !crate::process::is_our_process(pid, tag) {
        return Err(Failure(format!("exited right after {}", last_call(plan))));
    }
    Ok(())
}

pub(super) fn remove_if_present(path: &Path) -> Result<(), VmmError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(VmmError::io(format!("remove {}", path.display()))(e)),
    }
}

fn link_error(error: ShortPathError) -> VmmError {
    match error {
        ShortPathError::Io {
            action,
            path,
            source,
        } => VmmError::Io {
            action: format!("{action} the short socket link {}", path.display()),
            source,
        },
        other => VmmError::InvalidSpec(other.to_string()),
    }
}

fn drop_link(link: Option<&ShortLink>) {
    if let Some(link) = link {
        remove_link(link);
    }
}

/// The last lines of the console log and of Firecracker's own log.
pub(super) fn log_tails(files: &FirecrackerFiles) -> String {
    let mut parts = Vec::new();
    for (label, path, lines) in [
        ("console", &files.console_log, 10),
        ("vmm log", &files.vmm_log, 5),
    ] {
        let tail = banger_util::tail::file_tail(path, 0, lines).join(" | ");
        if !tail.is_empty() {
            parts.push(format!("{label}: {tail}"));
        }
    }
    if parts.is_empty() {
        "no output".to_owned()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::{DiskSpec, NetSpec};
    use serde_json::json;

    fn spec() -> LaunchSpec {
        LaunchSpec {
            vm_id: "0123456789abcdef".to_owned(),
            vcpu: 2,
            memory_mib: 1024,
            kernel: "/k/vmlinux".into(),
            initrd: Some("/k/initrd.img".into()),
            cmdline: "console=ttyS0 root=/dev/vda rw".to_owned(),
            disks: vec![
                DiskSpec {
                    path: "/vm/rootfs.ext4".into(),
                    read_only: false,
                },
                DiskSpec {
                    path: "/vm/work.ext4".into(),
                    read_only: true,
                },
            ],
            net: Some(NetSpec {
                tap: "bgr-0123".to_owned(),
                mac: "06:00:0a:00:00:02".to_owned(),
            }),
            run_dir: "/vm".into(),
        }
    }

    #[test]
    fn boot_args_add_only_missing_defaults() {
        assert_eq!(
            boot_args("console=ttyS0 root=/dev/vda"),
            "console=ttyS0 root=/dev/vda reboot=k panic=1 pci=off"
        );
        assert_eq!(
            boot_args("console=ttyS0 reboot=k panic=1 rw"),
            "console=ttyS0 reboot=k panic=1 rw pci=off"
        );
        assert_eq!(
            boot_args("panic=30 pci=off reboot=t"),
            "panic=30 pci=off reboot=t"
        );
        // `panicky=1` is not `panic=`; init's arguments stay after `--`.
        assert_eq!(
            boot_args("panicky=1 -- reboot=x"),
            "panicky=1 reboot=k panic=1 pci=off -- reboot=x"
        );
        assert_eq!(boot_args(""), "reboot=k panic=1 pci=off");
    }

    #[test]
    fn instance_ids_are_the_tag_or_refused() {
        assert_eq!(
            instance_id("0123456789abcdef").expect("valid"),
            "banger-0123456789abcdef"
        );
        assert!(matches!(instance_id("a_b"), Err(VmmError::InvalidSpec(_))));
        assert!(instance_id(&"a".repeat(57)).is_ok());
        assert!(instance_id(&"a".repeat(58)).is_err());
    }

    #[test]
    fn spec_translates_into_the_full_plan() {
        let files = FirecrackerFiles::in_dir(Path::new("/vm"));
        let config =
            vm_config(&spec(), &files, Path::new("/run/banger/fc/x/vsock.sock")).expect("config");
        let plan = config.plan().expect("plan");
        let bodies: Vec<(String, serde_json::Value)> = plan
            .iter()
            .map(|c| (c.path(), serde_json::to_value(c).expect("json")))
            .collect();
        assert_eq!(
            bodies,
            vec![
                (
                    "/logger".to_owned(),
                    json!({"log_path": "/vm/firecracker-vmm.log", "level": "Info", "show_level": true})
                ),
                (
                    "/metrics".to_owned(),
                    json!({"metrics_path": "/vm/firecracker-metrics.json"})
                ),
                (
                    "/machine-config".to_owned(),
                    json!({"vcpu_count": 2, "mem_size_mib": 1024})
                ),
                (
                    "/boot-source".to_owned(),
                    json!({"kernel_image_path": "/k/vmlinux", "initrd_path": "/k/initrd.img",
                           "boot_args": "console=ttyS0 root=/dev/vda rw reboot=k panic=1 pci=off"})
                ),
                (
                    "/drives/rootfs".to_owned(),
                    json!({"drive_id": "rootfs", "path_on_host": "/vm/rootfs.ext4",
                           "is_root_device": true, "is_read_only": false})
                ),
                (
                    "/drives/disk1".to_owned(),
                    json!({"drive_id": "disk1", "path_on_host": "/vm/work.ext4",
                           "is_root_device": false, "is_read_only": true})
                ),
                (
                    "/network-interfaces/eth0".to_owned(),
                    json!({"iface_id": "eth0", "host_dev_name": "bgr-0123",
                           "guest_mac": "06:00:0a:00:00:02"})
                ),
                (
                    "/vsock".to_owned(),
                    json!({"guest_cid": 3, "uds_path": "/run/banger/fc/x/vsock.sock"})
                ),
                (
                    "/actions".to_owned(),
                    json!({"action_type": "InstanceStart"})
                ),
            ]
        );
    }

    #[test]
    fn invalid_specs_fail_before_any_process() {
        let files = FirecrackerFiles::in_dir(Path::new("/vm"));
        let v = Path::new("/vm/vsock.sock");
        let mut s = spec();
        s.vcpu = 300;
        assert!(matches!(
            vm_config(&s, &files, v),
            Err(VmmError::InvalidSpec(_))
        ));
        s.vcpu = 0;
        assert!(matches!(
            vm_config(&s, &files, v),
            Err(VmmError::InvalidSpec(_))
        ));
        let mut s = spec();
        if let Some(net) = s.net.as_mut() {
            net.mac = "nope".to_owned();
        }
        assert!(matches!(
            vm_config(&s, &files, v),
            Err(VmmError::InvalidSpec(_))
        ));
        let mut s = spec();
        s.disks.clear();
        s.net = None;
        let config = vm_config(&s, &files, v).expect("no disks, no net is fine");
        assert!(config.drives.is_empty() && config.network_interfaces.is_empty());
    }

    #[tokio::test]
    async fn a_configured_jailer_is_refused_before_spawning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = spec();
        s.run_dir = dir.path().join("vm");
        let vmm = FirecrackerVmm::new("/nonexistent/firecracker")
            .with_jailer(Some("/usr/bin/jailer".into()));
        let err = vmm.launch(&s).await.expect_err("refused");
        assert!(err.to_string().contains("jailer"), "{err}");
        assert!(!s.run_dir.exists());
    }

    #[tokio::test]
    async fn a_missing_binary_is_reported_as_such() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = spec();
        s.run_dir = dir.path().join("vm");
        let vmm = FirecrackerVmm::new("/nonexistent/firecracker");
        let err = vmm.launch(&s).await.expect_err("missing");
        assert!(
            matches!(err, VmmError::MissingBinary { ref binary } if binary == "/nonexistent/firecracker"),
            "{err}"
        );
    }

    #[test]
    fn failures_read_as_chains() {
        let e = std::io::Error::other("inner");
        let outer = VmmError::io("outer")(e);
        assert_eq!(chain(&outer), "outer: inner");
    }
}
