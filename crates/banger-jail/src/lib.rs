//! The Firecracker jailer's chroot, as banger uses it: the mechanics both privileged callers
//! share.
//!
//! Why a crate of its own: the jailer must run as root (it chroots, makes device nodes and
//! drops to the owner's uid), so under a system install the *root helper* stages and spawns it,
//! while a daemon running as root does the same in-process through the Firecracker backend.
//! The helper may not depend on the VMM adapter, and the adapter may not depend on the helper,
//! so the one implementation of "build the command line, stage the files, spawn, tear down"
//! lives here, a leaf crate that depends on no banger crate (the request types both sides
//! exchange are `banger_model::jail`).
//!
//! - [`args`]: the jailer's command line and the chroot's layout, as pure data;
//! - [`stage`]: hard-linking the VM's files into the chroot under fixed names, the log files
//!   owned by the VMM's user, the jailer's pid file, and removing the jail;
//! - [`spawn`]: starting the jailer detached with its output on a given descriptor.
//!
//! [`launch`] composes them; a failure removes whatever it staged.

pub mod args;
pub mod spawn;
pub mod stage;

use std::fs::File;
use std::path::PathBuf;

pub use args::{
    DEFAULT_CHROOT_BASE, JailerArgs, JailerArgsError, is_valid_id, jailer_command_line,
};
pub use stage::{JailError, JailFiles, jail_dir, jailed_names, pid, pid_file, teardown};

/// Firecracker's API socket inside the jail (its `--api-sock`).
pub const API_SOCKET: &str = "/firecracker.socket";
/// The hybrid vsock socket inside the jail.
pub const VSOCK_SOCKET: &str = "/vsock.sock";
/// Firecracker's own log inside the jail (created, owned by the VMM's user, before it runs).
pub const VMM_LOG: &str = "/firecracker-vmm.log";
/// Firecracker's metrics file inside the jail (likewise).
pub const METRICS: &str = "/firecracker-metrics.json";

/// Stages `files` into the jail `args` names, creates its log and metrics files owned by the
/// VMM's uid/gid, and starts `jailer_bin` with Firecracker's `--api-sock` [`API_SOCKET`], its
/// stdout and stderr on `console`. Returns the jailer's pid (which becomes Firecracker's: no
/// `--new-pid-ns`); the files' in-jail paths are [`jailed_names`]. A stale jail of the same id
/// is removed first; any failure removes the jail again.
pub fn launch(
    jailer_bin: &std::path::Path,
    args: &JailerArgs,
    files: &JailFiles,
    console: File,
) -> Result<u32, JailError> {
    teardown(args)?;
    let started = stage::stage(args, files).and_then(|_| {
        stage::create_owned(args, &[VMM_LOG, METRICS])?;
        let argv =
            jailer_command_line(jailer_bin, args, &["--api-sock".into(), API_SOCKET.into()])?;
        let pid = spawn::spawn_detached(&argv, console).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                JailError::MissingJailer(jailer_bin.to_path_buf())
            } else {
                JailError::Io {
                    action: "run",
                    path: PathBuf::from(jailer_bin),
                    source,
                }
            }
        })?;
        Ok(pid)
    });
    if started.is_err() {
        let _ = teardown(args);
    }
    started
}
