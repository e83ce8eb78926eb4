//! Launching Firecracker under the jailer ([`JailConfig`] on a [`FirecrackerVmm`]).
//!
//! Why: in a system install the VMM must not run as root in the host's root file system. The
//! jailer (run as root) builds `<chroot-base>/<exec-file-name>/banger-<vm id>/root`, copies
//! Firecracker in, drops to the owner's uid/gid and execs it there. This module is the launch
//! that follows the jailer's contract (Firecracker's `docs/jailer.md`):
//!
//! 1. remove a stale jail of the same VM, then [`jail::stage`] the kernel, initrd and disks
//!    into the jail's root (fixed names; the plan names them by their in-jail paths);
//! 2. create the log and metrics files in the jail, owned by the VMM's uid/gid;
//! 3. spawn `jailer --id banger-<vm id> --exec-file <firecracker> --uid --gid
//!    --chroot-base-dir <base> -- --api-sock /firecracker.socket` detached, its stdout and
//!    stderr (the guest's console) in the run directory. No `--daemonize` (the spawn already
//!    detaches, and the jailer refuses `setsid` as a process-group leader) and no
//!    `--new-pid-ns` (the pid stays the jailer's through the exec, so it is Firecracker's);
//! 4. wait for the API socket at its host path `<root>/firecracker.socket` and apply the plan;
//! 5. check the jailer's pid file `<root>/<exec-file-name>.pid` names the process we started
//!    and carries the VM's tag (the jailer passes `--id=banger-<vm id>` to Firecracker), and
//!    write it to the run directory's `vmm.pid` as unjailed launches do.
//!
//! Any failure kills the process and removes the jail. [`FirecrackerVmm::remove_jail`] removes
//! it after the VM stopped (delete, reconcile after a crash).

use std::path::{Path, PathBuf};

use super::backend::{
    CONSOLE_LOG, Failure, FirecrackerFiles, FirecrackerVmm, KILL_WAIT, KIND, METRICS_FILE,
    PID_FILE, VMM_LOG, configure, instance_id, log_tails, vm_config,
};
use super::jail::{self, JailError};
use super::jailer::{JailerArgs, jailer_command_line};
use super::short_path::SocketPaths;
use super::spawn::spawn_detached;
use crate::launch::{AgentEndpoint, LaunchSpec, VmmError, VmmHandle, VmmKind, tag_for};

/// The API socket inside the jail.
pub const JAIL_API_SOCKET: &str = "/firecracker.socket";
/// The hybrid vsock socket inside the jail.
pub const JAIL_VSOCK_SOCKET: &str = "/vsock.sock";
/// Longest Unix socket path (`sun_path` less its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// How VMs run under the jailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailConfig {
    /// The `jailer` binary.
    pub jailer_bin: PathBuf,
    /// `--chroot-base-dir`; must be on the same file system as the VMs' disks.
    pub chroot_base: PathBuf,
    /// The uid Firecracker runs as (the owner).
    pub uid: u32,
    /// The gid Firecracker runs as.
    pub gid: u32,
}

impl JailConfig {
    /// The jailer's arguments for `vm_id` with `firecracker_bin`.
    pub fn args(&self, firecracker_bin: &Path, vm_id: &str) -> Result<JailerArgs, VmmError> {
        Ok(JailerArgs {
            id: instance_id(vm_id)?,
            exec_file: firecracker_bin.to_path_buf(),
            uid: self.uid,
            gid: self.gid,
            chroot_base_dir: self.chroot_base.clone(),
            netns: None,
            daemonize: false,
            new_pid_ns: false,
        })
    }
}

fn jail_error(error: JailError) -> VmmError {
    match error {
        JailError::Io {
            action,
            path,
            source,
        } => VmmError::Io {
            action: format!("{action} {} (jail)", path.display()),
            source,
        },
        other => VmmError::InvalidSpec(other.to_string()),
    }
}

impl FirecrackerVmm {
    /// Removes VM `vm_id`'s jail, if this backend jails VMs; a missing jail is fine. Call it
    /// only once the VMM is gone.
    pub fn remove_jail(&self, vm_id: &str) -> Result<(), VmmError> {
        let Some(jail) = self.jail() else {
            return Ok(());
        };
        let args = jail.args(self.firecracker_bin(), vm_id)?;
        jail::teardown(&args).map_err(jail_error)
    }

    pub(super) async fn launch_jailed(
        &self,
        config: &JailConfig,
        spec: &LaunchSpec,
    ) -> Result<VmmHandle, VmmError> {
        let args = config.args(self.firecracker_bin(), &spec.vm_id)?;
        let root = args
            .chroot_dir()
            .map_err(|e| VmmError::InvalidSpec(e.to_string()))?;
        let host = |inside: &str| root.join(inside.trim_start_matches('/'));
        let sockets = SocketPaths {
            api: host(JAIL_API_SOCKET),
            vsock: host(JAIL_VSOCK_SOCKET),
            link: None,
        };
        if sockets.api.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(VmmError::InvalidSpec(format!(
                "the jail's API socket {} is longer than {MAX_SOCKET_PATH} bytes; choose a \
                 shorter chroot base",
                sockets.api.display()
            )));
        }
        let jail_files = FirecrackerFiles {
            api_socket: JAIL_API_SOCKET.into(),
            vsock_socket: JAIL_VSOCK_SOCKET.into(),
            console_log: CONSOLE_LOG.into(),
            vmm_log: Path::new("/").join(VMM_LOG),
            metrics: Path::new("/").join(METRICS_FILE),
            pidfile: PID_FILE.into(),
        };
        let run_dir = std::path::absolute(&spec.run_dir)
            .map_err(VmmError::io(format!("resolve {}", spec.run_dir.display())))?;
        let console_log = run_dir.join(CONSOLE_LOG);
        let run_pidfile = run_dir.join(PID_FILE);

        // Everything decidable is decided before the jail exists.
        let mut probe = spec.clone();
        probe.kernel = "/vmlinux".into();
        let _ = vm_config(&probe, &jail_files, Path::new(JAIL_VSOCK_SOCKET))?;

        jail::teardown(&args).map_err(jail_error)?;
        let jailed = jail::stage(&args, spec).map_err(jail_error)?;
        let prepared = prepare(&jailed, &jail_files, &host, config, &run_dir, &run_pidfile);
        let plan = match prepared {
            Ok(plan) => plan,
            Err(e) => {
                let _ = jail::teardown(&args);
                return Err(e);
            }
        };

        let argv = jailer_command_line(
            config.jailer_bin.clone(),
            &args,
            &["--api-sock".into(), JAIL_API_SOCKET.into()],
        )
        .map_err(|e| VmmError::InvalidSpec(e.to_string()))?;
        let child = match spawn_detached(&argv, &console_log) {
            Ok(child) => child,
            Err(e) => {
                let _ = jail::teardown(&args);
                return Err(if e.kind() == std::io::ErrorKind::NotFound {
                    VmmError::MissingBinary {
                        binary: config.jailer_bin.display().to_string(),
                    }
                } else {
                    VmmError::io(format!("run {}", config.jailer_bin.display()))(e)
                });
            }
        };
        let tag = tag_for(&spec.vm_id);
        let pid = child.pid;
        let started = match configure(&sockets, &plan, child.exited, pid, &tag).await {
            Ok(()) => check_pid_file(&args, pid, &run_pidfile),
            Err(failure) => Err(failure),
        };
        if let Err(Failure(status)) = started {
            let _ = crate::process::kill(pid, &tag);
            crate::process::wait_gone(pid, &tag, KILL_WAIT).await;
            let _ = std::fs::remove_file(&run_pidfile);
            let files = FirecrackerFiles {
                console_log: console_log.clone(),
                vmm_log: host(&jail_files.vmm_log.to_string_lossy()),
                ..FirecrackerFiles::in_dir(&run_dir)
            };
            let stderr = log_tails(&files);
            let _ = jail::teardown(&args);
            return Err(VmmError::StartFailed {
                kind: KIND,
                status,
                stderr,
                console_log,
            });
        }
        Ok(VmmHandle {
            kind: VmmKind::Firecracker,
            pid,
            tag,
            control_socket: sockets.api,
            agent: AgentEndpoint::Vsock {
                path: sockets.vsock,
                port: super::backend::AGENT_VSOCK_PORT,
            },
            console_log,
        })
    }
}

/// The run directory, the jail's log and metrics files (owned by the VMM's user), and the
/// plan over in-jail paths.
fn prepare(
    jailed: &LaunchSpec,
    jail_files: &FirecrackerFiles,
    host: &dyn Fn(&str) -> PathBuf,
    config: &JailConfig,
    run_dir: &Path,
    run_pidfile: &Path,
) -> Result<Vec<super::config::ApiCall>, VmmError> {
    std::fs::create_dir_all(run_dir)
        .map_err(VmmError::io(format!("create {}", run_dir.display())))?;
    super::backend::remove_if_present(run_pidfile)?;
    for inside in [&jail_files.vmm_log, &jail_files.metrics] {
        let path = host(&inside.to_string_lossy());
        std::fs::File::create(&path).map_err(VmmError::io(format!("create {}", path.display())))?;
        std::os::unix::fs::chown(&path, Some(config.uid), Some(config.gid))
            .map_err(VmmError::io(format!("chown {}", path.display())))?;
    }
    vm_config(jailed, jail_files, Path::new(JAIL_VSOCK_SOCKET))?
        .plan()
        .map_err(|e| VmmError::InvalidSpec(e.to_string()))
}

/// The jailer's pid file must name the process we started (which must still be this VM's);
/// its pid goes to the run directory's pid file.
fn check_pid_file(args: &JailerArgs, pid: u32, run_pidfile: &Path) -> Result<(), Failure> {
    match jail::pid(args) {
        Ok(Some(recorded)) if recorded == pid => std::fs::write(run_pidfile, format!("{pid}\n"))
            .map_err(|e| Failure(format!("cannot write {}: {e}", run_pidfile.display()))),
        Ok(Some(recorded)) => Err(Failure(format!(
            "the jailer's pid file names pid {recorded}, not the started process {pid}"
        ))),
        Ok(None) => Err(Failure("the jailer wrote no pid file".to_owned())),
        Err(e) => Err(Failure(e.to_string())),
    }
}
