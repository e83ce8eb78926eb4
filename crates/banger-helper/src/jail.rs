//! The jail requests: what the helper agrees to stage and spawn for a jailed Firecracker, and
//! doing it.
//!
//! The jailer must run as root; everything else of a jailed launch the owner's daemon does
//! itself. So the helper does exactly two things here — [`Request::LaunchJail`] (stage the
//! VM's files into a chroot and start the jailer) and [`Request::ReleaseJail`] (remove that
//! chroot) — and only within a [`JailPolicy`] fixed when the helper starts (its own flags, never
//! the owner's config):
//! - the jail id is `banger-<vm id>` for a VM id banger makes;
//! - the jailer and the Firecracker binary (the exec file the jailer copies in and runs) are
//!   exactly the configured ones, so the owner cannot choose what root runs;
//! - Firecracker drops to the owner's uid and gid, nobody else's;
//! - the chroot base lies under banger's state or runtime dir, with no symlink on the way
//!   (an owner-planted link cannot point the jail, or its removal, elsewhere);
//! - every file linked in is a regular file under banger's state dir, owned by the owner,
//!   named by its canonical path (the helper links that path, not the one asked for);
//! - the console is a descriptor the daemon opened and passed along (`SCM_RIGHTS`), so the
//!   helper never opens a path the owner named.
//!
//! Limits: the owner owns the state dir, so a path checked here could be swapped before the
//! jailer runs; what the jailer then creates is still confined to banger's dirs' checked
//! prefix and a `banger-<id>` name, and it runs the configured binary as the owner.
//!
//! [`Request::LaunchJail`]: crate::Request::LaunchJail
//! [`Request::ReleaseJail`]: crate::Request::ReleaseJail

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use banger_jail::{JailError, JailFiles, JailerArgs};
use banger_model::jail::{JailLaunch, JailRef, jail_id};

use crate::policy::{Refusal, check_vm_id};

/// What jail requests may name. Without one the helper refuses every jail request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailPolicy {
    /// The only `jailer` the helper runs.
    pub jailer_bin: PathBuf,
    /// The only Firecracker binary the jailer may exec.
    pub firecracker_bin: PathBuf,
    /// The owner's primary gid (Firecracker drops to it).
    pub owner_gid: u32,
    /// banger's state dir: the VMs' files and the chroot base.
    pub state_dir: PathBuf,
    /// banger's runtime dir: another place for the chroot base.
    pub runtime_dir: PathBuf,
}

impl JailPolicy {
    /// A policy over `state_dir` and `runtime_dir`. They need not exist yet (the helper starts
    /// before the daemon makes them); each check compares against their canonical paths then.
    pub fn new(
        jailer_bin: PathBuf,
        firecracker_bin: PathBuf,
        owner_gid: u32,
        state_dir: &Path,
        runtime_dir: &Path,
    ) -> Self {
        Self {
            jailer_bin,
            firecracker_bin,
            owner_gid,
            state_dir: state_dir.to_path_buf(),
            runtime_dir: runtime_dir.to_path_buf(),
        }
    }

    /// The state dir's canonical path (it must exist by the time a VM is jailed).
    fn state(&self) -> Result<PathBuf, Refusal> {
        self.state_dir.canonicalize().map_err(|e| {
            path_refusal(
                &self.state_dir,
                &format!("banger's state dir cannot be resolved ({e})"),
            )
        })
    }

    /// Whether `jail` names a jail the helper may touch; its `banger_jail` arguments if so.
    pub fn check_ref(&self, jail: &JailRef, uid: u32, gid: u32) -> Result<JailerArgs, Refusal> {
        check_vm_id(&jail.vm_id)?;
        if jail.exec_file != self.firecracker_bin {
            return Err(Refusal::JailBinary {
                what: "firecracker",
                asked: jail.exec_file.clone(),
                allowed: self.firecracker_bin.clone(),
            });
        }
        let base = &jail.chroot_base;
        let state = self.state()?;
        let runtime = self.runtime_dir.canonicalize().ok();
        let allowed: Vec<&PathBuf> = std::iter::once(&state).chain(runtime.as_ref()).collect();
        let Some(top) = allowed.iter().find(|dir| base.starts_with(dir)) else {
            return Err(path_refusal(
                base,
                "the chroot base must be under banger's state or runtime dir",
            ));
        };
        if !base
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        {
            return Err(path_refusal(
                base,
                "the chroot base must be a plain absolute path",
            ));
        }
        let args = JailerArgs {
            id: jail_id(&jail.vm_id),
            exec_file: jail.exec_file.clone(),
            uid,
            gid,
            chroot_base_dir: base.clone(),
            netns: None,
            daemonize: false,
            new_pid_ns: false,
        };
        if !banger_jail::is_valid_id(&args.id) {
            return Err(Refusal::VmId(jail.vm_id.clone()));
        }
        let dir = banger_jail::jail_dir(&args).map_err(|e| path_refusal(base, &e.to_string()))?;
        no_symlink_below(top, &dir)?;
        Ok(args)
    }

    /// Whether `launch` may run; the vetted arguments and files (canonical paths) if so.
    pub fn check_launch(
        &self,
        launch: &JailLaunch,
        owner_uid: u32,
    ) -> Result<(JailerArgs, JailFiles), Refusal> {
        if launch.jailer_bin != self.jailer_bin {
            return Err(Refusal::JailBinary {
                what: "jailer",
                asked: launch.jailer_bin.clone(),
                allowed: self.jailer_bin.clone(),
            });
        }
        if launch.uid != owner_uid || launch.gid != self.owner_gid {
            return Err(Refusal::JailUser {
                uid: launch.uid,
                gid: launch.gid,
                owner_uid,
                owner_gid: self.owner_gid,
            });
        }
        let args = self.check_ref(&launch.jail, launch.uid, launch.gid)?;
        let file = |path: &Path| self.owned_file(path, owner_uid);
        let files = JailFiles {
            kernel: file(&launch.kernel)?,
            initrd: launch.initrd.as_deref().map(file).transpose()?,
            disks: launch
                .disks
                .iter()
                .map(|d| file(d))
                .collect::<Result<_, _>>()?,
        };
        Ok((args, files))
    }

    /// `path`'s canonical form, if it is a regular file under the state dir owned by the owner.
    fn owned_file(&self, path: &Path, owner_uid: u32) -> Result<PathBuf, Refusal> {
        let real = path
            .canonicalize()
            .map_err(|e| path_refusal(path, &format!("cannot resolve it ({e})")))?;
        if !real.starts_with(self.state()?) {
            return Err(path_refusal(
                path,
                "only files under banger's state dir may be linked into a jail",
            ));
        }
        let meta = std::fs::metadata(&real)
            .map_err(|e| path_refusal(path, &format!("cannot read it ({e})")))?;
        if !meta.is_file() {
            return Err(path_refusal(path, "not a regular file"));
        }
        if meta.uid() != owner_uid {
            return Err(path_refusal(path, "not owned by the helper's owner"));
        }
        Ok(real)
    }
}

fn path_refusal(path: &Path, reason: &str) -> Refusal {
    Refusal::JailPath {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    }
}

/// No existing component of `path` below `top` is a symlink.
fn no_symlink_below(top: &Path, path: &Path) -> Result<(), Refusal> {
    let mut at = PathBuf::from(top);
    let Ok(rest) = path.strip_prefix(top) else {
        return Err(path_refusal(path, "outside banger's dirs"));
    };
    for part in rest.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(path_refusal(&at, "a symlink on the way to the jail"));
            }
            Ok(_) => {}
            // Nothing further exists yet: the jailer creates it.
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Stages and spawns a vetted launch (see [`banger_jail::launch`]); the pid.
pub fn launch(
    policy: &JailPolicy,
    args: &JailerArgs,
    files: &JailFiles,
    console: File,
) -> Result<u32, JailError> {
    banger_jail::launch(&policy.jailer_bin, args, files, console)
}

/// Removes a vetted jail.
pub fn release(args: &JailerArgs) -> Result<(), JailError> {
    banger_jail::teardown(args)
}
