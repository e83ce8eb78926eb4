//! The privileged step of a jailed launch — stage the chroot, start the jailer — as an
//! injected collaborator.
//!
//! Why: the jailer must run as root, but the daemon of a system install does not. Everything
//! else of a jailed launch (the plan, waiting for the API socket inside the jail, configuring
//! Firecracker, the pid-file check, liveness, shutdown) needs no privilege once Firecracker has
//! dropped to the owner's uid, so [`super::jailed`] does it itself and hands only this step to
//! a [`JailRunner`]: [`InProcessJail`] when the daemon is root (tests, single-user
//! development), or the root helper's client (composed by `bangerd`, since this crate may not
//! depend on the helper) otherwise. Both run the same `banger_jail` code.
//!
//! The calls are blocking (file operations, one helper exchange); the backend runs
//! [`JailRunner::launch`] off the async runtime.

use std::fs::File;
use std::path::Path;

use banger_jail::{JailError, JailFiles, JailerArgs};
use banger_model::jail::{JailLaunch, JailRef, jail_id};

use crate::launch::VmmError;

/// Stages and spawns jails, and removes them.
pub trait JailRunner: Send + Sync + std::fmt::Debug {
    /// Stages `request`'s jail (removing a stale one first) and starts the jailer with its
    /// stdout and stderr on `console`; returns the jailer's pid (Firecracker's after the
    /// exec). A failure leaves no jail.
    fn launch(&self, request: &JailLaunch, console: File) -> Result<u32, VmmError>;

    /// Removes `jail`; a missing one is fine. Only once its VMM is gone.
    fn release(&self, jail: &JailRef) -> Result<(), VmmError>;
}

/// The jail's `banger_jail` arguments.
pub fn jailer_args(jail: &JailRef, uid: u32, gid: u32) -> Result<JailerArgs, VmmError> {
    let args = JailerArgs {
        id: jail_id(&jail.vm_id),
        exec_file: jail.exec_file.clone(),
        uid,
        gid,
        chroot_base_dir: jail.chroot_base.clone(),
        netns: None,
        daemonize: false,
        new_pid_ns: false,
    };
    if banger_jail::is_valid_id(&args.id) {
        Ok(args)
    } else {
        Err(VmmError::InvalidSpec(format!(
            "vm id {:?} cannot name a jail: `banger-<id>` must be 1..=64 alphanumerics or '-'",
            jail.vm_id
        )))
    }
}

/// The request's files as `banger_jail` takes them.
pub fn jail_files(request: &JailLaunch) -> JailFiles {
    JailFiles {
        kernel: request.kernel.clone(),
        initrd: request.initrd.clone(),
        disks: request.disks.clone(),
    }
}

/// A `banger_jail` error as the backend reports it.
pub fn jail_error(error: JailError) -> VmmError {
    match error {
        JailError::MissingJailer(bin) => VmmError::MissingBinary {
            binary: bin.display().to_string(),
        },
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

/// The jail step done by this process, which must be root (or, with the fake jailer in
/// tests, the owner itself).
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcessJail;

impl JailRunner for InProcessJail {
    fn launch(&self, request: &JailLaunch, console: File) -> Result<u32, VmmError> {
        let args = jailer_args(&request.jail, request.uid, request.gid)?;
        banger_jail::launch(
            Path::new(&request.jailer_bin),
            &args,
            &jail_files(request),
            console,
        )
        .map_err(jail_error)
    }

    fn release(&self, jail: &JailRef) -> Result<(), VmmError> {
        // uid/gid do not name the jail; any will do for its path.
        let args = jailer_args(jail, 0, 0)?;
        banger_jail::teardown(&args).map_err(jail_error)
    }
}
