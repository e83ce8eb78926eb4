//! `banger vm run [PATH] [-- CMD…]`: create + boot (the `vm create` flow), prepare the
//! repository at PATH when it is a git repo, bootstrap its tools with mise, then a shell in
//! the workspace or CMD with its exit code. `--rm` deletes the VM afterwards (Ctrl-C included)
//! unless it never got as far as SSH; `-d` returns once it is ready.

use std::io::IsTerminal;

use banger_model::{ResolvedSpec, VmRecord};
use banger_proto::{CreateVmRequest, routes};

use super::shared_ssh::SharedConnection;
use super::vm::launch;
use super::vm_exec::{HOME, exit_result, run_attached, ssh_line};
use super::vm_session;
use super::workspace::{Target, copy};
use crate::args::vm::RunArgs;
use crate::client::Client;
use crate::client::connect::connect_or_start;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{self, Stdout};
use crate::workspace::guest::{self, GUEST_PATH, NO_MISE};
use crate::workspace::{self, Options, Selection};
use crate::{repo, spec};

/// What `vm run` copies: the selection of the git repository at PATH, or `None` when PATH
/// was omitted and the current directory is not in a repository (said in one line, never
/// silently). A PATH given explicitly must be in a repository, as in the earlier product;
/// bad repos (submodules, no commits) fail too. All of it before anything is created.
pub fn source(args: &RunArgs) -> Result<Option<Selection>, CliError> {
    let path = args.path.clone().unwrap_or_else(|| ".".into());
    match workspace::select(
        &path,
        Options {
            include_untracked: args.include_untracked,
            full_copy: false,
        },
    ) {
        Ok(s) => {
            // A bad --from fails now, not after the VM exists.
            if let Some(from) = &args.from {
                super::workspace::resolve(&s, from)?;
            }
            Ok(Some(s))
        }
        Err(e @ workspace::Error::NotARepo { .. }) if args.branch.is_some() => Err(
            CliError::Usage(format!("--branch needs a git repository: {e}")),
        ),
        Err(workspace::Error::NotARepo { path: p }) if args.path.is_none() => {
            let dir = std::env::current_dir().unwrap_or(p);
            output::info(&not_a_repo_note(&dir));
            Ok(None)
        }
        Err(e @ workspace::Error::NotARepo { .. }) => Err(CliError::Usage(format!(
            "{e}; vm run copies a git repository into the VM (without PATH, outside a \
             repository, nothing is copied)"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The line `vm run` prints when the current directory is not in a git repository.
pub fn not_a_repo_note(dir: &std::path::Path) -> String {
    format!(
        "not a git repository: {}; nothing copied to {GUEST_PATH}",
        dir.display()
    )
}

/// Runs `vm run` after its arguments were checked.
pub async fn run(args: RunArgs, resolved: ResolvedSpec, ctx: &Context) -> Result<(), CliError> {
    let selection = source(&args)?;
    let bootstrap = resolved.spec.nat
        && !args.no_bootstrap
        && selection
            .as_ref()
            .is_some_and(|s| repo::mise_file(&s.root).is_some());

    output::info(&spec::line(&resolved));
    let daemon = connect_or_start(ctx).await?;
    let client = &daemon.client;
    let request = CreateVmRequest {
        name: args.name.clone(),
        image: args.image.clone(),
        spec: resolved.spec,
        cold: args.cold,
    };
    let done = match launch(ctx, client, &request).await {
        Ok(done) => done,
        Err(e) => {
            // SSH never came up: the VM (if the daemon kept it) stays, even with --rm, so
            // its console log can say why.
            if let Some(vm) = &e.vm
                && let Ok(record) = client.get::<VmRecord>(routes::GET_VM, &[vm]).await
            {
                output::info(&format!(
                    "kept {0} so you can see why: `banger vm logs {0}`; `banger vm rm {0}` \
                     deletes it",
                    record.name
                ));
            }
            return Err(e.error);
        }
    };
    let name = done.target.unwrap_or_default();
    let result = match SharedConnection::new() {
        Ok(shared) => {
            let result =
                after_create(client, &name, &args, selection.as_ref(), bootstrap, &shared).await;
            // The master goes before the VM does.
            drop(shared);
            result
        }
        Err(e) => Err(e),
    };
    if args.rm {
        match client
            .send::<_, VmRecord>(routes::DELETE_VM, &[&name], &())
            .await
        {
            Ok(_) => output::note(&format!("{name} deleted")),
            Err(e) => output::info(&format!(
                "warning: could not delete {name}: {}",
                CliError::from(e)
            )),
        }
    } else if !args.detach {
        // Never with --rm (the VM is gone) nor -d (the user asked to keep it).
        vm_session::remind_if_running(client, &name).await;
    }
    result
}

/// Prepare, bootstrap, then detach, a command, or a shell.
async fn after_create(
    client: &Client,
    name: &str,
    args: &RunArgs,
    selection: Option<&Selection>,
    bootstrap: bool,
    shared: &SharedConnection,
) -> Result<(), CliError> {
    let dir = match selection {
        Some(selection) => {
            let target = Target {
                branch: args.branch.clone(),
                from: args.from.clone(),
            };
            copy(client, name, selection, &target, shared).await?;
            GUEST_PATH
        }
        None => HOME,
    };
    if bootstrap {
        mise_install(client, name, dir, shared).await?;
    }
    if args.detach {
        output::info(&format!(
            "{name} is ready; `banger vm exec {name} -- CMD` runs there"
        ));
        let mut out = Stdout::lock();
        out.line(name)?;
        return out.finish();
    }
    let (remote, tty) = if args.command.is_empty() {
        (guest::shell(dir), true)
    } else {
        (
            guest::exec(dir, &args.command),
            std::io::stdin().is_terminal(),
        )
    };
    let line = ssh_line(client, name, remote, tty, Some(shared)).await?;
    let status = run_attached(&line, args.rm).await?;
    exit_result(name, &line, status)
}

/// `mise install` in the workspace; a guest without mise only gets a note.
async fn mise_install(
    client: &Client,
    name: &str,
    dir: &str,
    shared: &SharedConnection,
) -> Result<(), CliError> {
    output::info("installing the repo's tools with mise");
    let line = ssh_line(client, name, guest::bootstrap(dir), false, Some(shared)).await?;
    let status = run_attached(&line, false).await?;
    match status.code() {
        Some(0) => Ok(()),
        Some(NO_MISE) => {
            output::note("mise is not in the image; skipping the tool bootstrap");
            Ok(())
        }
        Some(255) => exit_result(name, &line, status),
        code => {
            output::info(&format!(
                "warning: mise install failed ({}); continuing without it",
                code.map_or_else(|| "killed".to_owned(), |c| format!("exit {c}"))
            ));
            Ok(())
        }
    }
}
