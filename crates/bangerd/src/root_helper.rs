//! `bangerd root-helper --owner USER`: serve the root helper (see `banger_helper`).
//!
//! Runs as root, binds the helper socket for the owner and serves until SIGTERM or SIGINT,
//! logging one JSON line per request on stderr (the journal under systemd).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio::signal::unix::{SignalKind, signal};

use banger_helper::{Policy, server, socket};
use banger_net::NetPlan;

/// Resolves `owner` (a user name or a numeric uid) to a uid.
pub fn owner_uid(owner: &str) -> Result<u32> {
    if let Ok(uid) = owner.parse::<u32>() {
        return Ok(uid);
    }
    match nix::unistd::User::from_name(owner) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        Ok(None) => {
            bail!("no user named {owner:?}; pass an existing user name or a uid to --owner")
        }
        Err(e) => Err(e).with_context(|| format!("cannot look up user {owner:?}")),
    }
}

/// Serves until a signal.
pub fn main(owner: &str, socket_path: Option<PathBuf>, level: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the root helper must run as root: `sudo bangerd root-helper --owner {owner}`");
    }
    let owner_uid = owner_uid(owner)?;
    if owner_uid == 0 {
        bail!("--owner must be the unprivileged user whose daemon the helper serves, not root");
    }
    crate::logging::init_for("banger_helper", level)?;
    let path = socket_path.unwrap_or_else(|| PathBuf::from(banger_helper::DEFAULT_SOCKET));
    let policy = Arc::new(Policy::new(NetPlan::default(), owner_uid));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = socket::bind(&path, owner_uid)?;
        tracing::info!(socket = %path.display(), owner_uid, bridge = %policy.plan.bridge, "root helper started");
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
