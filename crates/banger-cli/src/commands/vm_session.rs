//! `banger vm ssh` and `banger vm logs`.
//!
//! ssh: the daemon builds the command line (banger's key, banger's known_hosts, each remote
//! argument quoted for the remote shell); the CLI runs it with the terminal attached and exits
//! with its code, so `-- sh -c 'exit 42'` exits 42. Exit 255 is ssh's own failure; it gets a
//! hint that names the likely causes.
//!
//! After an interactive session (no remote command) the CLI asks the daemon whether the VM is
//! still up and, if it is, reminds the user with one stderr line how to stop it.
//!
//! logs: the console log through the daemon, from an offset; `-f` polls for more.

use std::io::IsTerminal;
use std::time::Duration;

use banger_proto::{LogChunk, SshCommandLine, SshRequest, VmHealth, routes};

use crate::args::vm::{LogsArgs, SshArgs};
use crate::client::Client;
use crate::client::connect::connect_or_start;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{self, Stdout};
use crate::{render, validate};

/// How long the post-session check may take; a slow answer only costs the reminder.
const REMINDER_LIMIT: Duration = Duration::from_secs(3);

/// Prints the "still running" reminder when `vm`'s VMM and guest agent still answer. Best
/// effort: a VM that was powered off from inside, or any error, prints nothing.
pub async fn remind_if_running(client: &Client, vm: &str) {
    let params = [vm];
    let check = client.get::<VmHealth>(routes::VM_HEALTH, &params);
    if let Ok(Ok(health)) = tokio::time::timeout(REMINDER_LIMIT, check).await
        && health.vmm_alive
        && health.agent.ok
    {
        output::note(&render::vm::still_running(&health.vm));
    }
}

/// Runs ssh into the VM; returns the remote command's exit code as [`CliError::Exited`].
pub async fn ssh(args: &SshArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("vm", &args.vm)?;
    let daemon = connect_or_start(ctx).await?;
    let request = SshRequest {
        remote: args.command.clone(),
        tty: std::io::stdin().is_terminal(),
        control_path: None,
    };
    let line: SshCommandLine = daemon
        .client
        .send(routes::SSH_VM, &[&args.vm], &request)
        .await?;
    let status = tokio::process::Command::new(&line.program)
        .args(&line.args)
        .status()
        .await
        .map_err(|source| CliError::Io {
            what: format!("cannot run {}", line.program),
            source,
        })?;
    // An interactive session that ended on its own (not ssh failing to connect) leaves the
    // VM running: say so. A remote command is a one-off and gets no reminder.
    if args.command.is_empty() && status.code().is_some_and(|c| c != 255) {
        remind_if_running(&daemon.client, &args.vm).await;
    }
    match status.code() {
        Some(0) => Ok(()),
        Some(255) => Err(CliError::Failed(format!(
            "ssh to {} failed (exit 255). If ssh warned that the host key changed, the VM was \
             rebuilt or someone is intercepting: check, then remove the old key from {}. \
             Otherwise the guest may not be up: see `banger vm logs {}`",
            args.vm,
            line.known_hosts.display(),
            args.vm
        ))),
        Some(code) => Err(CliError::Exited(u8::try_from(code).unwrap_or(1))),
        None => Err(CliError::Failed("ssh was killed by a signal".to_owned())),
    }
}

/// Prints the console log; with `-f`, keeps printing what is appended.
pub async fn logs(args: &LogsArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("vm", &args.vm)?;
    let daemon = connect_or_start(ctx).await?;
    let mut offset = None;
    loop {
        let chunk: LogChunk = match offset {
            None => daemon.client.get(routes::VM_LOGS, &[&args.vm]).await?,
            Some(o) => {
                let path = format!("{}?offset={o}", routes::VM_LOGS.url(&[&args.vm]));
                daemon.client.get_path(routes::VM_LOGS, &path).await?
            }
        };
        let mut out = Stdout::lock();
        out.text(&chunk.text)?;
        out.finish()?;
        let more = chunk.next_offset > chunk.offset;
        offset = Some(chunk.next_offset);
        if !args.follow && !more {
            return Ok(());
        }
        if !args.follow {
            continue;
        }
        if !more {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
