//! Launching Firecracker under the jailer ([`JailConfig`] on a [`FirecrackerVmm`]).
//!
//! Why: in a system install the VMM must not run as root in the host's root file system. The
//! jailer (run as root) builds `<chroot-base>/<exec-file-name>/banger-<vm id>/root`, copies
//! Firecracker in, drops to the owner's uid/gid and execs it there. This module is the launch
//! that follows the jailer's contract (Firecracker's `docs/jailer.md`), split by privilege:
//!
//! 1. (unprivileged) decide everything decidable: the plan over in-jail paths, the socket
//!    paths, the run directory; open the console log (the guest's serial console);
//! 2. (privileged, the injected [`JailRunner`]: in-process when root, else the root helper)
//!    remove a stale jail, stage the kernel, initrd and disks into the jail's root under fixed
//!    names, create the log and metrics files owned by the VMM's uid/gid, and spawn
//!    `jailer --id banger-<vm id> --exec-file <firecracker> --uid --gid --chroot-base-dir
//!    <base> -- --api-sock /firecracker.socket` detached with its output on the console log.
//!    No `--daemonize` (the spawn already detaches, and the jailer refuses `setsid` as a
//!    process-group leader) and no `--new-pid-ns` (the pid stays the jailer's through the exec,
//!    so it is Firecracker's);
//! 3. (unprivileged: Firecracker now runs as the owner and its API socket is the owner's) wait
//!    for the API socket at its host path `<root>/firecracker.socket` and apply the plan;
//! 4. check the jailer's pid file `<root>/<exec-file-name>.pid` names the process started and
//!    carries the VM's tag (the jailer passes `--id=banger-<vm id>` to Firecracker), and write
//!    it to the run directory's `vmm.pid` as unjailed launches do.
//!
//! Any failure kills the process and releases the jail. [`FirecrackerVmm::remove_jail`]
//! releases it after the VM stopped (delete, reconcile after a crash).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use banger_jail::{API_SOCKET, JailFiles, METRICS, VMM_LOG, VSOCK_SOCKET, jailed_names};
use banger_model::jail::{JailLaunch, JailRef};

use super::backend::{
    CONSOLE_LOG, Failure, FirecrackerFiles, FirecrackerVmm, KILL_WAIT, KIND, PID_FILE, configure,
    log_tails, vm_config,
};
use super::jail_runner::jailer_args;
use super::short_path::SocketPaths;
use crate::launch::{AgentEndpoint, LaunchSpec, VmmError, VmmHandle, VmmKind, tag_for};

/// The API socket inside the jail.
pub const JAIL_API_SOCKET: &str = API_SOCKET;
/// The hybrid vsock socket inside the jail.
pub const JAIL_VSOCK_SOCKET: &str = VSOCK_SOCKET;
/// Longest Unix socket path (`sun_path` less its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;
/// How often a jailed VMM started elsewhere (the helper) is checked for having exited.
const EXIT_POLL: Duration = Duration::from_millis(100);

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
    /// Which jail VM `vm_id` runs in with `firecracker_bin`.
    pub fn jail(&self, firecracker_bin: &Path, vm_id: &str) -> JailRef {
        JailRef {
            vm_id: vm_id.to_owned(),
            exec_file: firecracker_bin.to_path_buf(),
            chroot_base: self.chroot_base.clone(),
        }
    }

    /// The jailer's arguments for `vm_id` with `firecracker_bin`.
    pub fn args(
        &self,
        firecracker_bin: &Path,
        vm_id: &str,
    ) -> Result<banger_jail::JailerArgs, VmmError> {
        jailer_args(&self.jail(firecracker_bin, vm_id), self.uid, self.gid)
    }
}

impl FirecrackerVmm {
    /// Removes VM `vm_id`'s jail, if this backend jails VMs; a missing jail is fine. Call it
    /// only once the VMM is gone.
    pub fn remove_jail(&self, vm_id: &str) -> Result<(), VmmError> {
        let Some(jail) = self.jail() else {
            return Ok(());
        };
        self.jail_runner()
            .release(&jail.jail(self.firecracker_bin(), vm_id))
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
            vmm_log: VMM_LOG.into(),
            metrics: METRICS.into(),
            pidfile: PID_FILE.into(),
        };
        let run_dir = std::path::absolute(&spec.run_dir)
            .map_err(VmmError::io(format!("resolve {}", spec.run_dir.display())))?;
        let console_log = run_dir.join(CONSOLE_LOG);
        let run_pidfile = run_dir.join(PID_FILE);

        // Everything decidable is decided before the jail exists.
        let host_files = JailFiles {
            kernel: spec.kernel.clone(),
            initrd: spec.initrd.clone(),
            disks: spec.disks.iter().map(|d| d.path.clone()).collect(),
        };
        let inside = jailed_names(&host_files);
        let mut jailed = spec.clone();
        jailed.kernel = inside.kernel;
        jailed.initrd = inside.initrd;
        for (disk, path) in jailed.disks.iter_mut().zip(inside.disks) {
            disk.path = path;
        }
        let plan = vm_config(&jailed, &jail_files, Path::new(JAIL_VSOCK_SOCKET))?
            .plan()
            .map_err(|e| VmmError::InvalidSpec(e.to_string()))?;
        std::fs::create_dir_all(&run_dir)
            .map_err(VmmError::io(format!("create {}", run_dir.display())))?;
        super::backend::remove_if_present(&run_pidfile)?;
        let console = open_log(&console_log)?;

        let request = JailLaunch {
            jail: config.jail(self.firecracker_bin(), &spec.vm_id),
            jailer_bin: config.jailer_bin.clone(),
            uid: config.uid,
            gid: config.gid,
            kernel: host_files.kernel,
            initrd: host_files.initrd,
            disks: host_files.disks,
        };
        let runner = Arc::clone(self.jail_runner());
        let launched = {
            let request = request.clone();
            tokio::task::spawn_blocking(move || runner.launch(&request, console))
                .await
                .map_err(|e| VmmError::InvalidSpec(format!("the jail step crashed: {e}")))?
        };
        let pid = launched?;
        let tag = tag_for(&spec.vm_id);
        let exited = watch_exit(pid);
        let started = match configure(&sockets, &plan, exited, pid, &tag).await {
            Ok(()) => check_pid_file(&args, pid, &run_pidfile),
            Err(failure) => Err(failure),
        };
        if let Err(Failure(status)) = started {
            let _ = crate::process::kill(pid, &tag);
            crate::process::wait_gone(pid, &tag, KILL_WAIT).await;
            let _ = std::fs::remove_file(&run_pidfile);
            let files = FirecrackerFiles {
                console_log: console_log.clone(),
                vmm_log: host(VMM_LOG),
                ..FirecrackerFiles::in_dir(&run_dir)
            };
            let stderr = log_tails(&files);
            let _ = self.jail_runner().release(&request.jail);
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

/// Truncates `log` and opens it for appending (stdout and stderr share the description).
fn open_log(log: &Path) -> Result<std::fs::File, VmmError> {
    std::fs::File::create(log)
        .and_then(|_| std::fs::OpenOptions::new().append(true).open(log))
        .map_err(VmmError::io(format!("open {}", log.display())))
}

/// Fires once `pid` is gone (the jailer may be another process's child, so its exit status is
/// not ours to collect). Existence, not the tag: while the jailer execs Firecracker its
/// command line is briefly unreadable; the tag is checked after the launch.
fn watch_exit(
    pid: u32,
) -> tokio::sync::oneshot::Receiver<std::io::Result<std::process::ExitStatus>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let exists = move || {
        let Ok(raw) = i32::try_from(pid) else {
            return false;
        };
        // EPERM: it exists, still as root (the jailer before its drop to the owner).
        matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
            Ok(()) | Err(nix::errno::Errno::EPERM)
        ) && !is_zombie(pid)
    };
    tokio::spawn(async move {
        while exists() {
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
        let _ = tx.send(Err(std::io::Error::other("the jailed VMM is gone")));
    });
    rx
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
    })
}

/// The jailer's pid file must name the process we started (which must still be this VM's);
/// its pid goes to the run directory's pid file.
fn check_pid_file(
    args: &banger_jail::JailerArgs,
    pid: u32,
    run_pidfile: &Path,
) -> Result<(), Failure> {
    match banger_jail::pid(args) {
        Ok(Some(recorded)) if recorded == pid => std::fs::write(run_pidfile, format!("{pid}\n"))
            .map_err(|e| Failure(format!("cannot write {}: {e}", run_pidfile.display()))),
        Ok(Some(recorded)) => Err(Failure(format!(
            "the jailer's pid file names pid {recorded}, not the started process {pid}"
        ))),
        Ok(None) => Err(Failure("the jailer wrote no pid file".to_owned())),
        Err(e) => Err(Failure(e.to_string())),
    }
}
