//! Service mode: the agent as an ordinary process next to another init (e.g. systemd).
//!
//! Only the API runs. `POST /shutdown` asks the real init to power off with
//! `systemctl poweroff` (fixed argv), or, with `--exit-on-shutdown` (tests), makes the agent
//! exit 0. The main thread waits on a channel fed by the API; when every transport has given up
//! the channel closes and the agent exits with an error, so a supervisor can restart it.

use std::sync::Arc;
use std::sync::mpsc;

use crate::api::{Api, SystemInfo};
use crate::init::run_command;
use crate::log;
use crate::transport::{self, Transports};

/// systemd's control tool.
pub const SYSTEMCTL: &str = "/usr/bin/systemctl";

/// Why service mode ended.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No transport is serving any more.
    #[error("no api transport is running")]
    NoTransport,
}

/// What `POST /shutdown` does in service mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownAction {
    /// `systemctl poweroff`.
    PowerOff,
    /// Exit the agent with status 0.
    Exit,
}

/// Serves the API until shutdown (with [`ShutdownAction::Exit`]) or until no transport is left.
pub fn run(transports: Transports, action: ShutdownAction) -> Result<(), ServiceError> {
    log!("banger-agent {} starting in service mode", crate::VERSION);
    let (tx, rx) = mpsc::channel::<()>();
    let api = Arc::new(Api::new(SystemInfo::new("service"), move || {
        let _ = tx.send(());
    }));
    let threads = transport::start(&api, &transports);
    // Only the transport threads keep the sender alive from here on.
    drop(api);
    if threads.is_empty() {
        return Err(ServiceError::NoTransport);
    }
    while rx.recv().is_ok() {
        match action {
            ShutdownAction::Exit => {
                log!("shutdown requested; exiting");
                return Ok(());
            }
            ShutdownAction::PowerOff => {
                log!("shutdown requested; running {SYSTEMCTL} poweroff");
                if let Err(e) = run_command(SYSTEMCTL, &["poweroff"]) {
                    log!("{}", crate::log::chain(&e));
                }
            }
        }
    }
    Err(ServiceError::NoTransport)
}
