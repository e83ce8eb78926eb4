//! `bangerd root-helper --owner USER`: serve the root helper (see `banger_helper`).
//!
//! Runs as root, binds the helper socket for the owner and serves until SIGTERM or SIGINT,
//! logging one JSON line per request on stderr (the journal under systemd).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio::signal::unix::{SignalKind, signal};

use banger_helper::{JailPolicy, Policy, server, socket};
use banger_net::NetPlan;

/// The helper's jail flags.
#[derive(Debug, Clone)]
pub struct JailFlags {
    /// `--jailer` and `--firecracker`; `None`: jail requests are refused.
    pub binaries: Option<(PathBuf, PathBuf)>,
    /// `--state-dir`.
    pub state_dir: PathBuf,
    /// `--runtime-dir`.
    pub runtime_dir: PathBuf,
}

/// `owner`'s uid and primary gid (a bare uid without a passwd entry keeps gid = uid).
fn owner_ids(owner: &str) -> Result<(u32, u32)> {
    let lookup = match owner.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .map(|u| Some(u.map_or((uid, uid), |u| (uid, u.gid.as_raw())))),
        Err(_) => {
            nix::unistd::User::from_name(owner).map(|u| u.map(|u| (u.uid.as_raw(), u.gid.as_raw())))
        }
    };
    match lookup {
        Ok(Some(ids)) => Ok(ids),
        Ok(None) => {
            bail!("no user named {owner:?}; pass an existing user name or a uid to --owner")
        }
        Err(e) => Err(e).with_context(|| format!("cannot look up user {owner:?}")),
    }
}

/// A binary root may run for the owner: an executable regular file that only root can change
/// (owned by root, not writable by group or others), so the owner cannot swap what runs.
fn root_binary(flag: &str, path: &Path) -> Result<PathBuf> {
    if !path.is_absolute() {
        bail!("{flag} {} must be an absolute path", path.display());
    }
    let meta = std::fs::metadata(path)
        .with_context(|| format!("{flag} {}: no such file", path.display()))?;
    let mode = meta.permissions().mode();
    if !meta.is_file() || mode & 0o111 == 0 {
        bail!("{flag} {} is not an executable file", path.display());
    }
    if meta.uid() != 0 || mode & 0o022 != 0 {
        bail!(
            "{flag} {} must be owned by root and writable by root only (chown root {0}; chmod \
             go-w {0}): the helper runs it as root",
            path.display()
        );
    }
    Ok(path.to_path_buf())
}

/// The jail policy the flags ask for.
fn jail_policy(flags: &JailFlags, owner_gid: u32) -> Result<Option<JailPolicy>> {
    let Some((jailer, firecracker)) = &flags.binaries else {
        return Ok(None);
    };
    Ok(Some(JailPolicy::new(
        root_binary("--jailer", jailer)?,
        root_binary("--firecracker", firecracker)?,
        owner_gid,
        &flags.state_dir,
        &flags.runtime_dir,
    )))
}

/// Serves until a signal.
pub fn main(
    owner: &str,
    socket_path: Option<PathBuf>,
    jail: &JailFlags,
    level: &str,
) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the root helper must run as root: `sudo bangerd root-helper --owner {owner}`");
    }
    let (owner_uid, owner_gid) = owner_ids(owner)?;
    if owner_uid == 0 {
        bail!("--owner must be the unprivileged user whose daemon the helper serves, not root");
    }
    crate::logging::init_for("banger_helper", level)?;
    let path = socket_path.unwrap_or_else(|| PathBuf::from(banger_helper::DEFAULT_SOCKET));
    let jail = jail_policy(jail, owner_gid)?;
    let jailer = jail.as_ref().map(|j| j.jailer_bin.display().to_string());
    let policy = Arc::new(Policy::new(NetPlan::default(), owner_uid).with_jail(jail));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = socket::bind(&path, owner_uid)?;
        tracing::info!(socket = %path.display(), owner_uid, bridge = %policy.plan.bridge, jailer = jailer.as_deref().unwrap_or("none"), "root helper started");
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            bail!("cannot install signal handlers");
        };
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        server::serve(listener, policy, Arc::new(banger_net::LinuxNet), stop).await;
        tracing::info!("root helper stopping");
        let _ = std::fs::remove_file(&path);
        Ok(())
    })
}
