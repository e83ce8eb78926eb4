//! Finding the daemon: connect, or start one on demand in user mode.
//!
//! - An answer on the socket: use it, warning once (dimmed, on stderr) when the daemon comes
//!   from another build.
//! - No socket, or nobody listening: in user mode start one ([`super::autostart`]); a system
//!   install's daemon is systemd's job, so the CLI only says how to check it.
//! - Permission denied: another user's daemon; report it and never start one.
//!
//! Before any of that, [`connect_or_start`] parses `config.toml`: an invalid config is a usage
//! error (exit 2) for every command that may start a daemon, whether or not one runs.
//! [`connect_existing`] (used where a daemon must never be started, such as `daemon stop`)
//! does not, so a broken config never stands between the user and stopping the daemon.

use banger_proto::{BuildInfo, DaemonInfo};

use super::{ApiError, Client, autostart};
use crate::context::Context;
use crate::error::CliError;
use crate::output;

/// A daemon that answered, and who it is.
pub struct Connected {
    /// The client bound to its socket.
    pub client: Client,
    /// Its answer to the first ping.
    pub info: DaemonInfo,
}

/// Connects to the daemon, starting one in user mode when none runs.
///
/// The config file is checked first, daemon running or not: a daemon started now would
/// refuse it, and a running one still uses the config it started with, so the edit the user
/// just made would silently not apply. Either way the answer is exit 2 naming the field.
pub async fn connect_or_start(ctx: &Context) -> Result<Connected, CliError> {
    ctx.config()?;
    let layout = ctx.layout()?;
    let client = Client::new(layout.socket());
    let info = match ping_settled(&client).await {
        Ok(info) => info,
        Err(ApiError::NotRunning { socket, .. }) if ctx.is_system() => {
            return Err(CliError::SystemDaemonDown { socket });
        }
        Err(ApiError::NotRunning { .. }) => autostart::start(layout, &client).await?,
        Err(e) => return Err(e.into()),
    };
    warn_if_other_build(&info);
    Ok(Connected { client, info })
}

/// Pings, giving a daemon that is just dying (or just starting) a moment: an exchange that
/// breaks mid-way is retried for up to 3 s before it counts as an error.
async fn ping_settled(client: &Client) -> Result<DaemonInfo, ApiError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match client.ping().await {
            Err(ApiError::Http { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Connects to a running daemon without starting one; `None` when nothing answers.
pub async fn connect_existing(ctx: &Context) -> Result<Option<Connected>, CliError> {
    let client = Client::new(ctx.layout()?.socket());
    match client.ping().await {
        Ok(info) => Ok(Some(Connected { client, info })),
        Err(ApiError::NotRunning { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn warn_if_other_build(info: &DaemonInfo) {
    if let Some(line) = build_mismatch(&info.build, &banger_proto::build_info!()) {
        output::note(&line);
    }
}

/// The warning to show when the daemon's build differs from the CLI's.
fn build_mismatch(daemon: &BuildInfo, ours: &BuildInfo) -> Option<String> {
    (daemon.commit != ours.commit).then(|| {
        format!(
            "bangerd is from another build (commit {}); run `banger daemon stop` to restart it",
            daemon.short_commit()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(commit: &str) -> BuildInfo {
        BuildInfo {
            version: "0.1.0".into(),
            commit: commit.into(),
            built_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn same_commit_is_quiet() {
        assert_eq!(build_mismatch(&build("abc"), &build("abc")), None);
    }

    #[test]
    fn other_commit_warns_with_the_short_commit() {
        let line = build_mismatch(&build("0123456789abcdef"), &build("fedcba")).unwrap();
        assert_eq!(
            line,
            "bangerd is from another build (commit 01234567); run `banger daemon stop` to restart it"
        );
    }
}
