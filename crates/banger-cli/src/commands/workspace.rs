//! `banger vm workspace …`: `prepare` copies a repository into a VM (git history as one
//! bundle, then the selected files as one tar stream, both over SSH stdin) and records it on
//! the VM; `export` brings the guest's changes back as a binary git patch.
//!
//! `prepare --dry-run` lists what would be copied using only the host's git.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use banger_model::{VmRecord, Workspace};
use banger_proto::SshCommandLine;
use banger_proto::routes;

use super::vm_exec::{exit_result, ssh_line};
use crate::args::workspace::{ExportArgs, Mode, PrepareArgs, WorkspaceCommand};
use crate::client::Client;
use crate::client::connect::connect_or_start;
use crate::context::Context;
use crate::error::CliError;
use crate::workspace::guest::{self, Checkout, GUEST_PATH};
use crate::workspace::{self, Options, Selection};
use crate::{output, validate};

/// Runs a `vm workspace` subcommand.
pub async fn run(cmd: &WorkspaceCommand, ctx: &Context) -> Result<(), CliError> {
    match cmd {
        WorkspaceCommand::Prepare(args) => prepare(args, ctx).await,
        WorkspaceCommand::Export(args) => export(args, ctx).await,
    }
}

/// Which commit the guest repo checks out, and as which branch.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `--branch`: the branch to create (default: the host's current branch, if any).
    pub branch: Option<String>,
    /// `--from`: the ref to start it from (default: the host's HEAD plus its work tree).
    pub from: Option<String>,
}

/// Checks everything that needs no VM: the VM reference (syntax only, no daemon call), the
/// branch names, and the repository itself, so a bad repo fails the same way with or
/// without `--dry-run`.
async fn prepare(args: &PrepareArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("vm", &args.vm)?;
    for (what, value) in [("branch", &args.branch), ("ref", &args.from)] {
        if let Some(value) = value {
            validate::reference_text(what, value)?;
        }
    }
    let path = validate::existing_path("path", &args.path)?;
    if !path.is_dir() {
        return Err(CliError::Usage(format!(
            "path {} is not a directory",
            args.path.display()
        )));
    }
    let options = Options {
        include_untracked: args.include_untracked,
        full_copy: args.mode == Mode::FullCopy,
    };
    let selection = workspace::select(&path, options)?;
    if args.dry_run {
        return print_dry_run(&selection);
    }
    let daemon = connect_or_start(ctx).await?;
    let vm: VmRecord = daemon.client.get(routes::GET_VM, &[&args.vm]).await?;
    let target = Target {
        branch: args.branch.clone(),
        from: args.from.clone(),
    };
    copy(&daemon.client, &vm.id, &selection, &target).await?;
    output::info(&format!("prepared {GUEST_PATH} in {}", vm.name));
    Ok(())
}

/// Copies `selection` into `vm` at [`GUEST_PATH`] and records it on the VM.
pub async fn copy(
    client: &Client,
    vm: &str,
    selection: &Selection,
    target: &Target,
) -> Result<(), CliError> {
    output::info(&selection.summary());
    let fetch = target.from.clone().unwrap_or_else(|| "HEAD".to_owned());
    let head = match &target.from {
        None => selection.head.clone(),
        Some(from) => resolve(selection, from)?,
    };
    let checkout = Checkout {
        fetch: fetch.clone(),
        branch: target.branch.clone().or_else(|| {
            target
                .from
                .is_none()
                .then(|| selection.branch.clone())
                .flatten()
        }),
        name: selection.identity.0.clone(),
        email: selection.identity.1.clone(),
        // With --from the guest gets that commit as is: the host work tree belongs to HEAD.
        untar: target.from.is_none(),
    };
    let bundle_line = ssh_line(client, vm, guest::receive_bundle(), false).await?;
    let checkout_line = ssh_line(client, vm, guest::checkout(GUEST_PATH, &checkout), false).await?;
    let root = selection.root.clone();
    let sel = selection.clone();
    let vm_name = vm.to_owned();
    tokio::task::spawn_blocking(move || -> Result<(), CliError> {
        send_bundle(&vm_name, &root, &fetch, &bundle_line)?;
        send_files(&vm_name, &sel, checkout.untar, &checkout_line)
    })
    .await
    .map_err(|e| CliError::Failed(format!("workspace copy panicked: {e}")))??;
    record(client, vm, selection, head).await
}

/// Records the workspace on the VM (best effort: the copy itself already succeeded).
async fn record(
    client: &Client,
    vm: &str,
    selection: &Selection,
    head: String,
) -> Result<(), CliError> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body = Workspace {
        guest_path: PathBuf::from(GUEST_PATH),
        host_path: selection.root.clone(),
        head,
        prepared_at: banger_model::time::rfc3339(secs),
    };
    if let Err(e) = client
        .send::<_, VmRecord>(routes::SET_VM_WORKSPACE, &[vm], &body)
        .await
    {
        output::info(&format!(
            "warning: the workspace is in the VM but could not be recorded on it: {}",
            CliError::from(e)
        ));
    }
    Ok(())
}

/// The full commit id of `from` in the host repo.
pub fn resolve(selection: &Selection, from: &str) -> Result<String, CliError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(&selection.root)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("{from}^{{commit}}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|source| CliError::Io {
            what: "cannot run git; is it installed?".into(),
            source,
        })?;
    let head = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && guest::is_commit(&head) {
        Ok(head)
    } else {
        Err(CliError::Usage(format!(
            "--from {from} is not a commit in {}",
            selection.root.display()
        )))
    }
}

fn spawn_error(program: &str) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        what: format!("cannot run {program}"),
        source,
    }
}

/// `git bundle create - REF` piped into the guest.
fn send_bundle(
    vm: &str,
    root: &std::path::Path,
    fetch: &str,
    line: &SshCommandLine,
) -> Result<(), CliError> {
    let mut git = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["bundle", "create", "-", fetch])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error("git"))?;
    let stdout = git
        .stdout
        .take()
        .ok_or_else(|| CliError::Failed("git bundle has no stdout".into()))?;
    let status = Command::new(&line.program)
        .args(&line.args)
        .stdin(Stdio::from(stdout))
        .status()
        .map_err(spawn_error(&line.program));
    let git_out = git.wait_with_output().map_err(spawn_error("git"))?;
    if !git_out.status.success() {
        let stderr = String::from_utf8_lossy(&git_out.stderr);
        return Err(CliError::Failed(format!(
            "git bundle create failed in {}: {}",
            root.display(),
            stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message")
        )));
    }
    step(vm, "receiving the git bundle", line, status?)
}

/// The checkout script, with the selected files as one tar stream on its stdin.
fn send_files(
    vm: &str,
    selection: &Selection,
    untar: bool,
    line: &SshCommandLine,
) -> Result<(), CliError> {
    let mut ssh = Command::new(&line.program)
        .args(&line.args)
        .stdin(if untar { Stdio::piped() } else { Stdio::null() })
        .spawn()
        .map_err(spawn_error(&line.program))?;
    let streamed = match ssh.stdin.take() {
        Some(stdin) => workspace::stream(selection, stdin).map(drop),
        None => Ok(()),
    };
    let status = ssh.wait().map_err(spawn_error(&line.program))?;
    step(vm, "checking out the repository", line, status)?;
    streamed.map_err(|source| CliError::Io {
        what: format!("cannot stream the files of {}", selection.root.display()),
        source,
    })
}

fn step(
    vm: &str,
    what: &str,
    line: &SshCommandLine,
    status: std::process::ExitStatus,
) -> Result<(), CliError> {
    match exit_result(vm, line, status) {
        Err(CliError::Exited(code)) => Err(CliError::Failed(format!(
            "workspace prepare failed in {vm} while {what} (exit {code})"
        ))),
        other => other,
    }
}

/// `vm workspace export VM [-o FILE]`.
async fn export(args: &ExportArgs, ctx: &Context) -> Result<(), CliError> {
    validate::reference("vm", &args.vm)?;
    let daemon = connect_or_start(ctx).await?;
    let vm: VmRecord = daemon.client.get(routes::GET_VM, &[&args.vm]).await?;
    let Some(w) = vm.workspace else {
        return Err(CliError::Usage(format!(
            "{} has no workspace; run `banger vm workspace prepare {} PATH` first",
            vm.name, vm.name
        )));
    };
    if !guest::is_commit(&w.head) {
        return Err(CliError::Failed(format!(
            "the recorded workspace commit {:?} is not a commit id",
            w.head
        )));
    }
    let remote = guest::export(&w.guest_path.to_string_lossy(), &w.head);
    let line = ssh_line(&daemon.client, &vm.id, remote, false).await?;
    let output = args.output.clone();
    let name = vm.name.to_string();
    tokio::task::spawn_blocking(move || export_to(&name, &line, output))
        .await
        .map_err(|e| CliError::Failed(format!("export panicked: {e}")))?
}

fn export_to(vm: &str, line: &SshCommandLine, output: Option<PathBuf>) -> Result<(), CliError> {
    let stdout = match &output {
        Some(path) => Stdio::from(std::fs::File::create(path).map_err(|source| CliError::Io {
            what: format!("cannot write {}", path.display()),
            source,
        })?),
        None => Stdio::inherit(),
    };
    let status = Command::new(&line.program)
        .args(&line.args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .status()
        .map_err(spawn_error(&line.program))?;
    let result = match exit_result(vm, line, status) {
        Err(CliError::Exited(code)) => Err(CliError::Failed(format!(
            "workspace export failed in {vm} (exit {code})"
        ))),
        other => other,
    };
    if result.is_err()
        && let Some(path) = &output
    {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// `--dry-run`: the selected paths on stdout, one per line and byte for byte (a name with a
/// newline in it stays as git has it), then the summary on stderr.
pub fn print_dry_run(selection: &Selection) -> Result<(), CliError> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for file in &selection.files {
        out.write_all(file.as_os_str().as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(CliError::Output)?;
    }
    out.flush().map_err(CliError::Output)?;
    output::info(&selection.summary());
    Ok(())
}
