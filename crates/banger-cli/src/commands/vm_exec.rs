//! `banger vm exec`, and the SSH plumbing that workspaces and `vm run` share.
//!
//! The daemon builds every ssh command line (banger's key and known_hosts, each remote
//! argument quoted for the remote shell); the CLI runs it. Remote commands are the fixed
//! scripts of [`crate::workspace::guest`], so user words reach the guest verbatim.

use std::io::IsTerminal;
use std::process::ExitStatus;

use banger_model::VmRecord;
use banger_proto::{SshCommandLine, SshRequest, routes};

use super::shared_ssh::SharedConnection;
use super::workspace as ws;
use crate::args::vm::ExecArgs;
use crate::client::Client;
use crate::client::connect::connect_or_start;
use crate::context::Context;
use crate::error::CliError;
use crate::workspace::guest;
use crate::{output, validate};

/// Where commands run when a VM has no workspace.
pub const HOME: &str = "/root";

/// The ssh command line that runs `remote` in `vm`, over `shared` when given.
pub async fn ssh_line(
    client: &Client,
    vm: &str,
    remote: Vec<String>,
    tty: bool,
    shared: Option<&SharedConnection>,
) -> Result<SshCommandLine, CliError> {
    let request = SshRequest {
        remote,
        tty,
        control_path: shared.map(|s| s.socket().to_owned()),
    };
    Ok(client.send(routes::SSH_VM, &[vm], &request).await?)
}

/// Runs `line` with the terminal attached. With `hold_interrupts`, Ctrl-C does not end
/// banger while ssh runs (the remote side gets it through the terminal), so whatever must
/// happen after the session (deleting a `--rm` VM) still happens.
pub async fn run_attached(
    line: &SshCommandLine,
    hold_interrupts: bool,
) -> Result<ExitStatus, CliError> {
    let mut child = tokio::process::Command::new(&line.program)
        .args(&line.args)
        .spawn()
        .map_err(|source| CliError::Io {
            what: format!("cannot run {}", line.program),
            source,
        })?;
    let waited = if hold_interrupts {
        loop {
            tokio::select! {
                status = child.wait() => break status,
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    } else {
        child.wait().await
    };
    waited.map_err(|source| CliError::Io {
        what: format!("cannot wait for {}", line.program),
        source,
    })
}

/// ssh's exit status as banger's result: 0 is success, 255 is ssh's own failure (with a
/// hint), anything else is the remote command's code, verbatim.
pub fn exit_result(vm: &str, line: &SshCommandLine, status: ExitStatus) -> Result<(), CliError> {
    match status.code() {
        Some(0) => Ok(()),
        Some(255) => Err(CliError::Failed(format!(
            "ssh to {vm} failed (exit 255). If ssh warned that the host key changed, the VM was \
             rebuilt or someone is intercepting: check, then remove the old key from {}. \
             Otherwise the guest may not be up: see `banger vm logs {vm}`",
            line.known_hosts.display(),
        ))),
        Some(code) => Err(CliError::Exited(u8::try_from(code).unwrap_or(1))),
        None => Err(CliError::Failed("ssh was killed by a signal".to_owned())),
    }
}

/// The warning when the host repo moved since prepare.
pub fn moved_warning(old: &str, new: &str) -> String {
    let short = |h: &str| h.get(..12).unwrap_or(h).to_owned();
    format!(
        "the host repo moved since prepare ({} → {}); run with --auto-prepare to re-sync",
        short(old),
        short(new)
    )
}

/// Checks whether `vm`'s workspace is behind its host repo; warns, or with `auto_prepare`
/// re-syncs it. Returns the directory to run in.
pub async fn workspace_dir(
    client: &Client,
    vm: &VmRecord,
    auto_prepare: bool,
    shared: &SharedConnection,
) -> Result<String, CliError> {
    let Some(w) = &vm.workspace else {
        return Ok(HOME.to_owned());
    };
    if let Some(now) = crate::workspace::head_of(&w.host_path)
        && now != w.head
    {
        if auto_prepare {
            let selection = crate::workspace::select(&w.host_path, Default::default())?;
            ws::copy(client, &vm.id, &selection, &ws::Target::default(), shared).await?;
        } else {
            output::info(&format!("warning: {}", moved_warning(&w.head, &now)));
        }
    }
    Ok(w.guest_path.to_string_lossy().into_owned())
}

/// `vm exec VM [--auto-prepare] -- CMD…`.
pub async fn exec(args: &ExecArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("vm", &args.vm)?;
    let daemon = connect_or_start(ctx).await?;
    let vm: VmRecord = daemon.client.get(routes::GET_VM, &[&args.vm]).await?;
    // With --auto-prepare the copy's sessions and the command share one connection.
    let shared = SharedConnection::new()?;
    let dir = workspace_dir(&daemon.client, &vm, args.auto_prepare, &shared).await?;
    let line = ssh_line(
        &daemon.client,
        &vm.id,
        guest::exec(&dir, &args.command),
        std::io::stdin().is_terminal(),
        Some(&shared),
    )
    .await?;
    let status = run_attached(&line, false).await?;
    exit_result(&args.vm, &line, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_names_both_commits_short() {
        let old = "a".repeat(40);
        let new = "b".repeat(40);
        assert_eq!(
            moved_warning(&old, &new),
            "the host repo moved since prepare (aaaaaaaaaaaa → bbbbbbbbbbbb); run with \
             --auto-prepare to re-sync"
        );
    }
}
