//! The `file sync` stage: what the daemon writes into a VM's work disk before every boot.
//!
//! The work disk is the guest's `/root`, so a guest path `~/x` or `/root/x` is `/x` inside it.
//! Before each create and start the stage writes, straight into the ext4 image with
//! `banger_image::ext4` (no mount, no root):
//! - banger's login ([`super::disks::write_guest_login`]: its key added once to
//!   `authorized_keys`, `.hushlogin`);
//! - every `[[file_sync]]` entry, in order. A file gets the entry's mode (default 0600); a
//!   directory is copied recursively, each file and directory keeping its host mode. Everything
//!   is owned by root (0:0). Symlinks and special files (fifos, sockets, devices) inside a
//!   directory are skipped and counted, so nothing outside the host directory is ever read. What
//!   is in the guest but no longer on the host is left alone: entries add and replace, never
//!   delete;
//! - the host's global git identity as `~/.gitconfig` (`[user]` name and email, 0644), unless an
//!   entry wrote `~/.gitconfig`: the user's own file wins.
//!
//! A host path that does not exist is skipped with a warning (in the stage's detail and the
//! log); any other problem fails the stage naming the entry (`file_sync[N]`).

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use banger_image::ext4::{self, Edits, Ext4Error, Kind};
use banger_model::{FileSync, VmRecord};

use super::disks::{self, DiskError};
use super::{Stage, StageError, VmBackends};
use crate::context::DaemonContext;
use crate::operations::OperationHandle;

/// The guest's git config, inside the work disk.
const GITCONFIG: &str = "/.gitconfig";

/// Why the file sync stage failed.
#[derive(Debug, thiserror::Error)]
pub enum FileSyncError {
    /// banger's key or `.hushlogin` could not be written.
    #[error("banger's login could not be written into the work disk")]
    Login(#[source] DiskError),
    /// One `[[file_sync]]` entry could not be copied.
    #[error("cannot copy file_sync[{index}] ({} to {guest})", host.display())]
    Entry {
        /// The entry's index in the config.
        index: usize,
        /// Its host path, `~` expanded.
        host: PathBuf,
        /// Its guest path as configured.
        guest: String,
        /// Why (boxed: keeps every stage error small).
        #[source]
        source: Box<EntryError>,
    },
    /// The host's git identity could not be written as `~/.gitconfig`.
    #[error("the host's git identity could not be written to ~/.gitconfig")]
    GitIdentity(#[source] EntryError),
}

/// Why one entry (or the git identity) could not be copied.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The host path is a fifo, socket or device.
    #[error("{} is neither a file nor a directory", path.display())]
    NotFileOrDir {
        /// The host path.
        path: PathBuf,
    },
    /// A host file operation failed (unreadable file, unlistable directory).
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which host path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Under a system install, a host path outside the owner's home (after following the
    /// entry's own symlink).
    #[error(
        "{} is outside the owner's home {}: a system install syncs only files from there",
        path.display(),
        home.display()
    )]
    OutsideHome {
        /// The host path, resolved.
        path: PathBuf,
        /// The owner's home.
        home: PathBuf,
    },
    /// A name inside a host directory is not UTF-8, so no guest path can carry it.
    #[error("{} has a name that is not UTF-8", path.display())]
    NotUtf8 {
        /// The host path.
        path: PathBuf,
    },
    /// debugfs could not write into the work disk.
    #[error("cannot write into the work disk")]
    Ext4(#[from] Ext4Error),
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> EntryError + 'a {
    move |source| EntryError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// `user.name` and `user.email` from the host's global git config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitIdentity {
    /// `user.name`, when set.
    pub name: Option<String>,
    /// `user.email`, when set.
    pub email: Option<String>,
}

impl GitIdentity {
    /// Reads the global identity of the user whose home is `home` (`git config --global` with
    /// `HOME` set to it, so `~/.gitconfig` or `~/.config/git/config`). No git, no config or no
    /// such key is `None` for that key: the identity is a convenience, never a failure.
    pub fn read(home: &Path) -> Self {
        Self {
            name: git_config(home, "user.name"),
            email: git_config(home, "user.email"),
        }
    }

    /// The `.gitconfig` text, or `None` when neither key is set.
    pub fn to_gitconfig(&self) -> Option<String> {
        if self.name.is_none() && self.email.is_none() {
            return None;
        }
        let mut text = String::from("[user]\n");
        for (key, value) in [("name", &self.name), ("email", &self.email)] {
            if let Some(value) = value {
                text.push_str(&format!("\t{key} = {}\n", gitconfig_value(value)));
            }
        }
        Some(text)
    }
}

fn git_config(home: &Path, key: &str) -> Option<String> {
    let out = Command::new("git")
        .args(["config", "--global", "--get", key])
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("GIT_CONFIG_GLOBAL")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let value = String::from_utf8(out.stdout).ok()?;
    let value = value.trim_end_matches(['\n', '\r']);
    (!value.is_empty()).then(|| value.to_owned())
}

/// A value as git config syntax: bare when it reads back as itself, else quoted with `\`, `"`
/// and control characters escaped.
fn gitconfig_value(value: &str) -> String {
    let plain = value.trim() == value
        && !value
            .chars()
            .any(|c| matches!(c, '"' | '\\' | '#' | ';') || c.is_control());
    if plain {
        return value.to_owned();
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Everything the stage writes, gathered on the async side.
#[derive(Debug, Clone)]
pub struct GuestFiles {
    /// banger's public key line.
    pub authorized_key: String,
    /// `~/` of the entries' host paths.
    pub home: PathBuf,
    /// The `[[file_sync]]` entries.
    pub entries: Vec<FileSync>,
    /// The host's git identity.
    pub git: GitIdentity,
    /// Whether host paths must resolve inside `home` (a system install, where the daemon
    /// serves the owner and must not become a way to read other users' files).
    pub confine_to_home: bool,
}

/// What the stage did, for its detail line and the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Entries copied.
    pub copied: usize,
    /// Entries skipped because their host path does not exist: index and path.
    pub missing: Vec<(usize, PathBuf)>,
    /// Symlinks and special files skipped inside directories.
    pub skipped_inside: usize,
    /// Whether the git identity was written.
    pub git_identity: bool,
    /// Whether an entry wrote `~/.gitconfig` (so the identity was not).
    pub gitconfig_from_entry: bool,
}

impl SyncReport {
    /// One line for the stage's detail.
    pub fn detail(&self) -> String {
        let total = self.copied + self.missing.len();
        let mut parts = vec!["banger key".to_owned()];
        if total > 0 {
            parts.push(format!("{} of {total} file_sync entries", self.copied));
        }
        if self.git_identity {
            parts.push("git identity".to_owned());
        } else if self.gitconfig_from_entry {
            parts.push("~/.gitconfig from file_sync".to_owned());
        }
        if self.skipped_inside > 0 {
            parts.push(format!(
                "{} symlinks or special files skipped",
                self.skipped_inside
            ));
        }
        let mut text = parts.join(", ");
        for (index, path) in &self.missing {
            text.push_str(&format!(
                "; warning: file_sync[{index}] skipped: {} does not exist",
                path.display()
            ));
        }
        text
    }
}

/// Writes `files` into the work disk `work`. Blocking (debugfs runs).
pub fn apply(work: &Path, files: &GuestFiles) -> Result<SyncReport, FileSyncError> {
    disks::write_guest_login(work, &files.authorized_key).map_err(FileSyncError::Login)?;
    let mut report = SyncReport::default();
    let mut written = BTreeSet::new();
    for (index, entry) in files.entries.iter().enumerate() {
        let host = entry.host_path(&files.home);
        let fail = |source| FileSyncError::Entry {
            index,
            host: host.clone(),
            guest: entry.guest.clone(),
            source: Box::new(source),
        };
        let confine = files.confine_to_home.then_some(files.home.as_path());
        match copy_entry(work, entry, &host, confine, &mut written, &mut report).map_err(fail)? {
            Copied::Yes => report.copied += 1,
            Copied::Missing => report.missing.push((index, host.clone())),
        }
    }
    if written.contains(GITCONFIG) {
        report.gitconfig_from_entry = true;
    } else if let Some(text) = files.git.to_gitconfig() {
        write_gitconfig(work, &text).map_err(FileSyncError::GitIdentity)?;
        report.git_identity = true;
    }
    Ok(report)
}

enum Copied {
    Yes,
    Missing,
}

/// The entry's guest path inside the work disk: `~/a/b/` → `/a/b`.
fn work_disk_path(entry: &FileSync) -> String {
    let guest = entry.guest_path();
    let inside = guest.strip_prefix("/root").unwrap_or(&guest);
    let parts: Vec<_> = inside
        .to_string_lossy()
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_owned)
        .collect();
    format!("/{}", parts.join("/"))
}

fn copy_entry(
    work: &Path,
    entry: &FileSync,
    host: &Path,
    confine: Option<&Path>,
    written: &mut BTreeSet<String>,
    report: &mut SyncReport,
) -> Result<Copied, EntryError> {
    // The entry's own path may be a symlink (dotfiles often are): it is followed.
    let meta = match std::fs::metadata(host) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Copied::Missing),
        Err(e) => return Err(io("stat", host)(e)),
    };
    if let Some(home) = confine {
        inside_home(host, home)?;
    }
    let guest = work_disk_path(entry);
    let mut edits = Edits::new();
    if meta.is_file() {
        readable(host)?;
        if let Some((parent, _)) = guest.rsplit_once('/')
            && !parent.is_empty()
        {
            edits.mkdir_p(parent);
        }
        put_file(&mut edits, host, &guest, entry.file_mode());
        written.insert(guest);
    } else if meta.is_dir() {
        add_dir(&mut edits, host, &guest, meta.mode(), written, report)?;
    } else {
        return Err(EntryError::NotFileOrDir {
            path: host.to_path_buf(),
        });
    }
    ext4::apply(work, &edits)?;
    Ok(Copied::Yes)
}

/// `host`, resolved, lies in `home`, resolved. Directories are walked without following
/// symlinks, so checking the entry's own path is enough.
fn inside_home(host: &Path, home: &Path) -> Result<(), EntryError> {
    let resolved = std::fs::canonicalize(host).map_err(io("resolve", host))?;
    let home = std::fs::canonicalize(home).map_err(io("resolve", home))?;
    if resolved.starts_with(&home) {
        Ok(())
    } else {
        Err(EntryError::OutsideHome {
            path: resolved,
            home,
        })
    }
}

fn readable(path: &Path) -> Result<(), EntryError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(io("read", path))
}

fn put_file(edits: &mut Edits, host: &Path, guest: &str, mode: u32) {
    edits
        .put(host, guest)
        .mode(guest, Kind::File, mode)
        .owner(guest, 0, 0);
}

/// Adds directory `host` at `guest` with its mode, then its files and directories, sorted by
/// name; symlinks and special files are counted in `report` and skipped.
fn add_dir(
    edits: &mut Edits,
    host: &Path,
    guest: &str,
    mode: u32,
    written: &mut BTreeSet<String>,
    report: &mut SyncReport,
) -> Result<(), EntryError> {
    edits
        .mkdir_p(guest)
        .mode(guest, Kind::Dir, mode)
        .owner(guest, 0, 0);
    let mut children = Vec::new();
    for child in std::fs::read_dir(host).map_err(io("list", host))? {
        let child = child.map_err(io("list", host))?;
        children.push(child.path());
    }
    children.sort();
    for path in children {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| EntryError::NotUtf8 { path: path.clone() })?;
        let child_guest = format!("{}/{name}", guest.trim_end_matches('/'));
        let meta = std::fs::symlink_metadata(&path).map_err(io("stat", &path))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            add_dir(edits, &path, &child_guest, meta.mode(), written, report)?;
        } else if kind.is_file() {
            readable(&path)?;
            put_file(edits, &path, &child_guest, meta.mode());
            written.insert(child_guest);
        } else {
            // A symlink could point outside the directory; fifos, sockets and devices are
            // not files to copy.
            report.skipped_inside += 1;
        }
    }
    Ok(())
}

fn write_gitconfig(work: &Path, text: &str) -> Result<(), EntryError> {
    let dir = tempfile::tempdir().map_err(io("create a temp dir in", Path::new("/tmp")))?;
    let file = dir.path().join("gitconfig");
    std::fs::write(&file, text).map_err(io("write", &file))?;
    let mut edits = Edits::new();
    put_file(&mut edits, &file, GITCONFIG, 0o644);
    ext4::apply(work, &edits)?;
    Ok(())
}

/// Runs the stage for `record` (create and start): gathers the inputs, writes them on the
/// blocking pool, logs and shows what was skipped.
pub(super) async fn run(
    ctx: &DaemonContext,
    backends: &VmBackends,
    record: &VmRecord,
    op: &OperationHandle,
) -> Result<(), StageError> {
    op.stage(Stage::FileSync.name());
    let home = backends.home.clone();
    let authorized_key = backends.ssh_key.public_line.clone();
    let entries = ctx.config().file_sync.clone();
    let work = record.dir.join("work.ext4");
    let confine_to_home = ctx.layout().mode == banger_model::Mode::System;
    let report = tokio::task::spawn_blocking(move || {
        let files = GuestFiles {
            authorized_key,
            entries,
            git: GitIdentity::read(&home),
            home,
            confine_to_home,
        };
        apply(&work, &files)
    })
    .await
    .map_err(|e| StageError::other(Stage::FileSync, format!("the file sync task crashed: {e}")))?
    .map_err(|e| StageError::new(Stage::FileSync, e))?;
    for (index, path) in &report.missing {
        tracing::warn!(
            vm = %record.name,
            entry = index,
            host = %path.display(),
            "file_sync host path does not exist; skipped"
        );
        op.warn(&format!(
            "file_sync[{index}] skipped: {} does not exist on the host",
            path.display()
        ));
    }
    op.detail(&report.detail());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str, guest: &str) -> FileSync {
        FileSync {
            host: host.into(),
            guest: guest.into(),
            mode: None,
        }
    }

    #[test]
    fn guest_paths_are_inside_the_work_disk() {
        assert_eq!(work_disk_path(&entry("/a", "~/.gitconfig")), "/.gitconfig");
        assert_eq!(work_disk_path(&entry("/a", "/root/x/y/")), "/x/y");
        assert_eq!(work_disk_path(&entry("/a", "~//x/./y")), "/x/y");
    }

    #[test]
    fn the_git_identity_is_written_as_git_reads_it() {
        let both = GitIdentity {
            name: Some("Ada Lovelace".into()),
            email: Some("ada@example.org".into()),
        };
        assert_eq!(
            both.to_gitconfig().as_deref(),
            Some("[user]\n\tname = Ada Lovelace\n\temail = ada@example.org\n")
        );
        let odd = GitIdentity {
            name: Some(" A \"B\" \\ #c".into()),
            email: None,
        };
        assert_eq!(
            odd.to_gitconfig().as_deref(),
            Some("[user]\n\tname = \" A \\\"B\\\" \\\\ #c\"\n")
        );
        assert_eq!(GitIdentity::default().to_gitconfig(), None);
    }

    #[test]
    fn the_detail_names_what_was_skipped() {
        let report = SyncReport {
            copied: 1,
            missing: vec![(2, PathBuf::from("/h/nope"))],
            skipped_inside: 1,
            git_identity: true,
            gitconfig_from_entry: false,
        };
        assert_eq!(
            report.detail(),
            "banger key, 1 of 2 file_sync entries, git identity, 1 symlinks or special files \
             skipped; warning: file_sync[2] skipped: /h/nope does not exist"
        );
        assert_eq!(SyncReport::default().detail(), "banger key");
    }

    #[test]
    fn a_system_install_syncs_only_from_the_owners_home() {
        let root = tempfile::tempdir().expect("tempdir");
        let home = root.path().join("home");
        let elsewhere = root.path().join("etc");
        std::fs::create_dir_all(home.join(".config")).expect("home");
        std::fs::create_dir_all(&elsewhere).expect("elsewhere");
        std::fs::write(home.join(".config/tool.toml"), "x").expect("file");
        std::fs::write(elsewhere.join("shadow"), "secret").expect("file");
        std::os::unix::fs::symlink(elsewhere.join("shadow"), home.join("link")).expect("link");

        assert!(inside_home(&home.join(".config/tool.toml"), &home).is_ok());
        assert!(inside_home(&home.join(".config"), &home).is_ok());
        for outside in [
            elsewhere.join("shadow"),
            home.join("link"),
            home.join("../etc"),
        ] {
            let err = inside_home(&outside, &home).expect_err("outside the home");
            assert!(
                matches!(err, EntryError::OutsideHome { .. }),
                "{}: {err}",
                outside.display()
            );
        }
    }
}
