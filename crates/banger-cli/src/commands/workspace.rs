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

use super::shared_ssh::SharedConnection;
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
    let shared = SharedConnection::new()?;
    copy(&daemon.client, &vm.id, &selection, &target, &shared).await?;
    output::info(&format!("prepared {GUEST_PATH} in {}", vm.name));
    Ok(())
}

/// Copies `selection` into `vm` at [`GUEST_PATH`] over `shared` and records it on the VM.
pub async fn copy(
    client: &Client,
    vm: &str,
    selection: &Selection,
    target: &Target,
    shared: &SharedConnection,
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
    let bundle_line = ssh_line(client, vm, guest::receive_bundle(), false, Some(shared)).await?;
    let checkout_remote = guest::checkout(GUEST_PATH, &checkout);
    let checkout_line = ssh_line(client, vm, checkout_remote, false, Some(shared)).await?;
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
    let line = ssh_line(&daemon.client, &vm.id, remote, false, None).await?;
    let output = args.output.clone();
    let name = vm.name.to_string();
    tokio::task::spawn_blocking(move || export_to(&name, &line, output))
        .await
        .map_err(|e| CliError::Failed(format!("export panicked: {e}")))?
}

/// Runs the export script, copying the patch to FILE or stdout while counting it, then says
/// on stderr what was written. A failed export leaves no half-written FILE behind.
fn export_to(vm: &str, line: &SshCommandLine, output: Option<PathBuf>) -> Result<(), CliError> {
    let mut sink: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|source| CliError::Io {
            what: format!("cannot write {}", path.display()),
            source,
        })?),
        None => Box::new(std::io::stdout().lock()),
    };
    let spawned = Command::new(&line.program)
        .args(&line.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn();
    let mut ssh = match spawned {
        Ok(child) => child,
        Err(e) => {
            drop(sink);
            if let Some(path) = &output {
                let _ = std::fs::remove_file(path);
            }
            return Err(spawn_error(&line.program)(e));
        }
    };
    let mut stats = PatchStats::default();
    let copied = match ssh.stdout.take() {
        Some(mut patch) => copy_counting(&mut patch, &mut sink, &mut stats),
        None => Ok(()),
    };
    let status = ssh.wait().map_err(spawn_error(&line.program))?;
    let result = match exit_result(vm, line, status) {
        Err(CliError::Exited(code)) => Err(CliError::Failed(format!(
            "workspace export failed in {vm} (exit {code})"
        ))),
        other => other,
    }
    .and(copied.map_err(|source| match &output {
        Some(path) => CliError::Io {
            what: format!("cannot write {}", path.display()),
            source,
        },
        None => CliError::Output(source),
    }));
    drop(sink);
    if result.is_err()
        && let Some(path) = &output
    {
        let _ = std::fs::remove_file(path);
    }
    result?;
    output::info(&export_summary(vm, output.as_deref(), &stats));
    Ok(())
}

/// How much patch went by: its size and how many files it changes (one `diff --git` header
/// per file, always at the start of a line; patch body lines start with ` `, `+`, `-` or are
/// base85 binary data, so they never look like one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchStats {
    /// Files changed.
    pub files: usize,
    /// Bytes of patch.
    pub bytes: u64,
    /// The start of the current line, while it could still be a header.
    head: Vec<u8>,
    /// Whether the current line is still being matched against the header.
    matching: bool,
}

const FILE_HEADER: &[u8] = b"diff --git ";

impl Default for PatchStats {
    /// Nothing seen yet; the first byte starts a line.
    fn default() -> Self {
        Self {
            files: 0,
            bytes: 0,
            head: Vec::new(),
            matching: true,
        }
    }
}

impl PatchStats {
    /// Counts one chunk of the patch; chunks may split lines anywhere.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        for &b in chunk {
            if b == b'\n' {
                self.head.clear();
                self.matching = true;
            } else if self.matching {
                self.head.push(b);
                if !FILE_HEADER.starts_with(&self.head) {
                    self.matching = false;
                } else if self.head.len() == FILE_HEADER.len() {
                    self.files += 1;
                    self.matching = false;
                }
            }
        }
    }
}

/// Copies `from` into `to`, counting what passes.
fn copy_counting(
    from: &mut dyn std::io::Read,
    to: &mut dyn Write,
    stats: &mut PatchStats,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        stats.feed(chunk);
        to.write_all(chunk)?;
    }
    to.flush()
}

/// The stderr line after an export: what was written where, or that nothing changed.
pub fn export_summary(vm: &str, file: Option<&std::path::Path>, stats: &PatchStats) -> String {
    let files = match stats.files {
        1 => "1 file changed".to_owned(),
        n => format!("{n} files changed"),
    };
    let size = crate::render::vm_inspect::bytes(stats.bytes);
    match (file, stats.bytes) {
        (Some(path), 0) => format!(
            "no changes in {vm} since the prepared commit; {} is empty",
            path.display()
        ),
        (None, 0) => format!("no changes in {vm} since the prepared commit"),
        (Some(path), _) => format!("wrote {} ({files}, {size})", path.display()),
        (None, _) => format!("patch from {vm}: {files}, {size}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &[u8] =
        b"diff --git a/a.txt b/a.txt\nindex 1..2 100644\n--- a/a.txt\n+++ b/a.txt\n\
@@ -1 +1,2 @@\n one\n+diff --git not a header\ndiff --git a/new.bin b/new.bin\n\
GIT binary patch\nliteral 4\nLcmZQzWMT#Y01f~L\n\n";

    #[test]
    fn stats_count_file_headers_across_any_chunking() {
        for size in [1, 2, 5, 11, 12, PATCH.len()] {
            let mut stats = PatchStats::default();
            for chunk in PATCH.chunks(size) {
                stats.feed(chunk);
            }
            assert_eq!(stats.files, 2, "chunks of {size}");
            assert_eq!(stats.bytes, PATCH.len() as u64);
        }
        let mut empty = PatchStats::default();
        empty.feed(b"");
        assert_eq!((empty.files, empty.bytes), (0, 0));
    }

    #[test]
    fn summaries_say_what_was_written() {
        let stats = PatchStats {
            files: 3,
            bytes: 1229,
            ..PatchStats::default()
        };
        let file = std::path::Path::new("work.patch");
        assert_eq!(
            export_summary("web", Some(file), &stats),
            "wrote work.patch (3 files changed, 1.2 KiB)"
        );
        assert_eq!(
            export_summary("web", None, &stats),
            "patch from web: 3 files changed, 1.2 KiB"
        );
        let one = PatchStats {
            files: 1,
            bytes: 10,
            ..PatchStats::default()
        };
        assert_eq!(
            export_summary("web", None, &one),
            "patch from web: 1 file changed, 10 B"
        );
        let none = PatchStats::default();
        assert_eq!(
            export_summary("web", Some(file), &none),
            "no changes in web since the prepared commit; work.patch is empty"
        );
        assert_eq!(
            export_summary("web", None, &none),
            "no changes in web since the prepared commit"
        );
    }
}
