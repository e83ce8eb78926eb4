//! Serving: resolve, lock, open the store, bind, serve until a signal.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

use banger_daemon::access::AccessPolicy;
use banger_daemon::dns::forward::{RESOLV_CONF, Upstreams};
use banger_daemon::dns::guest as guest_dns;
use banger_daemon::server::{self, InstanceLock};
use banger_daemon::{DaemonContext, Shutdown, SocketOptions, vms};
use banger_model::Mode;
use banger_proto::DaemonInfo;
use banger_store::Store;

use crate::args::Args;
use crate::{logging, setup};

/// Runs the daemon until SIGTERM, SIGINT or `POST /v1/shutdown`.
pub fn main(args: &Args) -> Result<()> {
    let layout = setup::layout(args.system)?;
    let config = setup::config(&layout)?;
    let level = args
        .log_level
        .clone()
        .or_else(|| config.log_level.clone())
        .unwrap_or_else(|| "info".to_owned());
    logging::init(&level)?;

    let lock = InstanceLock::acquire(&layout)?;
    for dir in [&layout.state_dir, &layout.runtime_dir] {
        crate::private::private_dir(dir)
            .with_context(|| format!("cannot make {} private (0700)", dir.display()))?;
    }
    let store = Store::open(&layout.db_file())
        .with_context(|| format!("cannot open the store {}", layout.db_file().display()))?;
    let db = layout.db_file();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let shm = PathBuf::from(format!("{}-shm", db.display()));
    crate::private::private_files([db.as_path(), wal.as_path(), shm.as_path()])
        .context("cannot make the store's files private (0600)")?;
    let report = store.migration_report();
    if !report.applied_now.is_empty() {
        tracing::info!(migrations = ?report.applied_now, "applied store migrations");
    }
    if !report.unknown.is_empty() {
        tracing::warn!(
            migrations = ?report.unknown,
            "the store has migrations this bangerd does not know (from a newer banger); their data is left alone"
        );
    }

    let owner_uid = nix::unistd::geteuid().as_raw();
    let (dns_sockets, dns) = banger_daemon::dns::server::bind(banger_daemon::dns::DEFAULT_ADDR);
    match &dns {
        banger_daemon::dns::server::Listener::Unavailable(why) => {
            tracing::warn!(reason = %why, "NAME.vm names are not served");
        }
        other => tracing::info!(dns = %other.describe(), "dns"),
    }
    let shutdown = Shutdown::new();
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let backends = crate::backends::detect(&layout, &config, &home, owner_uid)
        .context("cannot prepare the ssh key banger uses for guests")?;
    let info = DaemonInfo {
        build: banger_proto::build_info!(),
        pid: std::process::id(),
        mode: if args.system {
            Mode::System
        } else {
            Mode::User
        },
        owner_uid,
        socket: layout.socket(),
        state_dir: layout.state_dir.clone(),
        started_at: banger_daemon::ids::now_rfc3339(),
        dns: Some(dns.describe()),
        guest_dns: None, // filled in per ping from the resolver's state
    };
    let ctx = DaemonContext::new(
        layout.clone(),
        config,
        store,
        info,
        shutdown.clone(),
        backends.clone(),
        crate::backends::agent_locator(),
    );

    // Bound by the first network stage, next to the bridge (see `dns::guest`).
    let own = std::net::SocketAddr::new(backends.plan.gateway().into(), guest_dns::PORT);
    ctx.enable_guest_dns(guest_dns::GuestResolver::new(
        backends.plan.clone(),
        ctx.zone().clone(),
        Upstreams::new(RESOLV_CONF, vec![own]),
        shutdown.clone(),
    ));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = server::bind(&layout, &lock, SocketOptions::default())?;
        tokio::spawn(stop_on_signals(shutdown.clone()));
        if let Some(sockets) = dns_sockets {
            tokio::spawn(banger_daemon::dns::server::serve(
                sockets,
                ctx.zone().clone(),
                shutdown,
            ));
        }
        banger_daemon::state_dir::reconcile(&ctx);
        vms::reconcile_at_start(&ctx, &backends).await;
        tokio::spawn(vms::monitor(ctx.clone(), backends));
        crate::notify::ready();
        tracing::info!(
            version = %banger_proto::build_info!().version_line("bangerd"),
            pid = std::process::id(),
            state_dir = %layout.state_dir.display(),
            "bangerd started"
        );
        server::serve(listener, ctx, AccessPolicy { owner_uid }).await?;
        drop(lock);
        Ok(())
    })
}

async fn stop_on_signals(shutdown: Shutdown) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!(
            "cannot install signal handlers; stop the daemon with `banger daemon stop`"
        );
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    shutdown.trigger();
}
