//! banger's `ssh_config` and its `Include` block in `~/.ssh/config`.
//!
//! banger's own file ([`render_ssh_config`], `$XDG_STATE_HOME/banger/ssh_config`) holds one
//! `Host *.vm` block with banger's key and known_hosts, so plain `ssh NAME.vm` behaves like
//! `banger vm ssh NAME`. It reaches the user's ssh only through a marker-fenced block that
//! `banger ssh-config --install` adds to `~/.ssh/config`:
//!
//! ```text
//! # >>> banger >>>
//! # Managed by banger: `banger ssh-config --uninstall` removes this block.
//! Include "/home/me/.local/state/banger/ssh_config"
//! # <<< banger <<<
//! ```
//!
//! Invariants:
//! - the block goes at the very top of the file: OpenSSH takes the first value it finds for each
//!   option, and an `Include` after a `Host`/`Match` line would be conditional on that block, so
//!   anywhere else a user's `Host *` could override banger's `User root` or never reach the
//!   Include at all. (OpenSSH restores the enclosing `Host` state after an Include, so the user's
//!   own lines below are unaffected.)
//! - install is idempotent: a second install leaves the bytes unchanged; an existing block is
//!   rewritten in place (wherever the user moved it) and duplicates are dropped, so there is
//!   exactly one;
//! - uninstall removes exactly the block's lines, so install followed by uninstall restores the
//!   file byte for byte (line endings, a missing final newline, non-UTF-8 bytes included); a file
//!   that install created (the block remembers it) and that holds nothing else is deleted;
//! - a begin marker without an end marker is an error, never a guess;
//! - the block's line endings follow the file's (CRLF files get CRLF);
//! - nothing else of the user's file is ever rewritten. Files are replaced atomically (temporary
//!   sibling and rename) with their mode kept, through a symlink if `~/.ssh/config` is one; a new
//!   file is 0600 and a new `~/.ssh` 0700.
//!
//! The text transforms ([`install_text`], [`uninstall_text`]) are pure; [`install_include`] and
//! [`uninstall_include`] are thin wrappers that read and write the file.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::command::{self, CommandError};
use crate::fsutil;

/// First line of banger's block in `~/.ssh/config`.
pub const BEGIN_MARKER: &str = "# >>> banger >>>";
/// Last line of banger's block in `~/.ssh/config`.
pub const END_MARKER: &str = "# <<< banger <<<";
/// Explains the block to a reader of `~/.ssh/config`.
const NOTE: &str = "# Managed by banger: `banger ssh-config --uninstall` removes this block.";
/// Records that install created the file, so uninstall may delete it.
const CREATED_NOTE: &str =
    "# banger created this file; uninstalling deletes it if nothing else is left.";

/// Mode of a `~/.ssh/config` that install creates.
const NEW_CONFIG_MODE: u32 = 0o600;
/// Mode of a `~/.ssh` that install creates.
const NEW_SSH_DIR_MODE: u32 = 0o700;
/// Mode of banger's own ssh_config (ssh refuses config files others can write).
const BANGER_CONFIG_MODE: u32 = 0o644;

/// Why banger's ssh configuration could not be rendered or installed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A path must be absolute.
    #[error("{what} path {} is not absolute", path.display())]
    RelativePath {
        /// Which path.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A path that cannot be written into an ssh configuration file.
    #[error("{what} path {} cannot be used in an ssh config: it {reason}", path.display())]
    UnsafePath {
        /// Which path.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The user's file holds a malformed banger block.
    #[error("cannot edit {}", path.display())]
    Block {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: BlockError,
    },
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file could not be written or removed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The directory for the user's config could not be created.
    #[error("cannot create {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// A malformed banger block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// A begin marker has no end marker after it.
    #[error(
        "line {line} opens a banger block (`{BEGIN_MARKER}`) that is never closed by \
         `{END_MARKER}`; fix or remove it by hand"
    )]
    Unterminated {
        /// 1-based line number of the begin marker.
        line: usize,
    },
}

/// What [`install_include`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallOutcome {
    /// The file did not exist; it was created holding the block.
    Created,
    /// The block was added at the top of an existing file.
    Added,
    /// An existing block was rewritten (new path, or duplicates removed).
    Updated,
    /// The block was already there, byte for byte.
    Unchanged,
}

/// What [`uninstall_include`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UninstallOutcome {
    /// The block was removed.
    Removed,
    /// The block was removed and the file, created by install and now empty, deleted.
    RemovedFile,
    /// There was no block (or no file).
    NotInstalled,
}

/// The result of [`uninstall_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uninstalled {
    /// The text without banger's blocks.
    pub text: Vec<u8>,
    /// Whether any block was found.
    pub found: bool,
    /// Whether a removed block recorded that install created the file.
    pub created_by_banger: bool,
}

/// `~/.ssh/config` for the home directory `home`.
pub fn user_config_path(home: &Path) -> PathBuf {
    home.join(".ssh").join("config")
}

/// banger's `ssh_config`: a `Host *.vm` block using banger's key and known_hosts.
pub fn render_ssh_config(identity: &Path, known_hosts: &Path) -> Result<String, ConfigError> {
    let identity = config_value("identity", identity)?;
    let known_hosts = config_value("known_hosts", known_hosts)?;
    Ok(format!(
        "# banger's ssh configuration: generated by banger, which rewrites it; do not edit.\n\
         # `banger ssh-config --install` includes it from ~/.ssh/config so `ssh NAME.vm` works.\n\
         Host *.vm\n\
         \x20   User root\n\
         \x20   IdentityFile {identity}\n\
         \x20   IdentitiesOnly yes\n\
         \x20   UserKnownHostsFile {known_hosts}\n\
         \x20   StrictHostKeyChecking accept-new\n\
         \x20   LogLevel ERROR\n"
    ))
}

/// Writes banger's `ssh_config` to `path` (0644, atomically) unless it already holds exactly that;
/// returns whether it changed.
pub fn write_ssh_config(
    path: &Path,
    identity: &Path,
    known_hosts: &Path,
) -> Result<bool, ConfigError> {
    let text = render_ssh_config(identity, known_hosts)?;
    match fs::read(path) {
        Ok(old) if old == text.as_bytes() => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            });
        }
    }
    fsutil::write_atomic(path, text.as_bytes(), BANGER_CONFIG_MODE).map_err(|source| {
        ConfigError::Write {
            path: path.to_owned(),
            source,
        }
    })?;
    Ok(true)
}

/// The `Include` line for banger's ssh_config (what `banger ssh-config` prints).
pub fn include_line(banger_config: &Path) -> Result<String, ConfigError> {
    absolute("ssh_config", banger_config)?;
    let text = utf8("ssh_config", banger_config)?;
    if text.contains(['*', '?', '[']) {
        return Err(ConfigError::UnsafePath {
            what: "ssh_config",
            path: banger_config.to_owned(),
            reason: "contains glob characters, which Include would expand",
        });
    }
    if text.contains(['\n', '\r']) {
        return Err(ConfigError::UnsafePath {
            what: "ssh_config",
            path: banger_config.to_owned(),
            reason: "contains a line break",
        });
    }
    Ok(format!("Include {}", double_quote(text)))
}

/// `original` with banger's block (holding `include`, an [`include_line`]) at the top, or with
/// its existing block rewritten in place. `creating` records that install is creating the file.
pub fn install_text(original: &[u8], include: &str, creating: bool) -> Result<Vec<u8>, BlockError> {
    let blocks = find_blocks(original)?;
    let created = creating || blocks.iter().any(|b| b.created);
    let block = render_block(include, created, eol_of(original));
    let mut out = Vec::with_capacity(original.len() + block.len());
    match blocks.split_first() {
        None => {
            out.extend_from_slice(block.as_bytes());
            out.extend_from_slice(original);
        }
        Some((first, rest)) => {
            out.extend_from_slice(&original[..first.start]);
            out.extend_from_slice(block.as_bytes());
            let mut pos = first.end;
            for b in rest {
                out.extend_from_slice(&original[pos..b.start]);
                pos = b.end;
            }
            out.extend_from_slice(&original[pos..]);
        }
    }
    Ok(out)
}

/// `current` without any banger block.
pub fn uninstall_text(current: &[u8]) -> Result<Uninstalled, BlockError> {
    let blocks = find_blocks(current)?;
    let mut text = Vec::with_capacity(current.len());
    let mut pos = 0;
    for b in &blocks {
        text.extend_from_slice(&current[pos..b.start]);
        pos = b.end;
    }
    text.extend_from_slice(&current[pos..]);
    Ok(Uninstalled {
        text,
        found: !blocks.is_empty(),
        created_by_banger: blocks.iter().any(|b| b.created),
    })
}

/// Adds (or refreshes) banger's Include block at the top of `user_config` (`~/.ssh/config`).
pub fn install_include(
    user_config: &Path,
    banger_config: &Path,
) -> Result<InstallOutcome, ConfigError> {
    let include = include_line(banger_config)?;
    absolute("ssh config", user_config)?;
    let target = resolve(user_config)?;
    let existing = read_existing(&target)?;
    let creating = existing.is_none();
    let (original, mode) = match existing {
        Some(found) => found,
        None => {
            ensure_parent(&target)?;
            (Vec::new(), NEW_CONFIG_MODE)
        }
    };
    let block_error = |source| ConfigError::Block {
        path: target.clone(),
        source,
    };
    let had_block = uninstall_text(&original).map_err(block_error)?.found;
    let new = install_text(&original, &include, creating).map_err(block_error)?;
    if !creating && new == original {
        return Ok(InstallOutcome::Unchanged);
    }
    write(&target, &new, mode)?;
    Ok(if creating {
        InstallOutcome::Created
    } else if had_block {
        InstallOutcome::Updated
    } else {
        InstallOutcome::Added
    })
}

/// Removes banger's Include block from `user_config`, restoring the bytes it had before install.
pub fn uninstall_include(user_config: &Path) -> Result<UninstallOutcome, ConfigError> {
    absolute("ssh config", user_config)?;
    let target = resolve(user_config)?;
    let Some((current, mode)) = read_existing(&target)? else {
        return Ok(UninstallOutcome::NotInstalled);
    };
    let removed = uninstall_text(&current).map_err(|source| ConfigError::Block {
        path: target.clone(),
        source,
    })?;
    if !removed.found {
        return Ok(UninstallOutcome::NotInstalled);
    }
    if removed.created_by_banger && removed.text.is_empty() {
        fs::remove_file(&target).map_err(|source| ConfigError::Write {
            path: target.clone(),
            source,
        })?;
        return Ok(UninstallOutcome::RemovedFile);
    }
    write(&target, &removed.text, mode)?;
    Ok(UninstallOutcome::Removed)
}

/// One banger block: byte range (whole lines, terminators included) and whether install created
/// the file.
struct Block {
    start: usize,
    end: usize,
    created: bool,
}

/// Lines of `text` as (start, end) byte ranges including their terminator.
fn lines(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let end = text[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| start + i + 1);
        out.push((start, end));
        start = end;
    }
    out
}

fn is_line(line: &[u8], expected: &str) -> bool {
    line.trim_ascii() == expected.as_bytes()
}

fn find_blocks(text: &[u8]) -> Result<Vec<Block>, BlockError> {
    let lines = lines(text);
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (start, end) = lines[i];
        if !is_line(&text[start..end], BEGIN_MARKER) {
            i += 1;
            continue;
        }
        let mut created = false;
        let mut j = i + 1;
        loop {
            let Some(&(s, e)) = lines.get(j) else {
                return Err(BlockError::Unterminated { line: i + 1 });
            };
            let line = &text[s..e];
            if is_line(line, END_MARKER) {
                blocks.push(Block {
                    start,
                    end: e,
                    created,
                });
                break;
            }
            if is_line(line, BEGIN_MARKER) {
                return Err(BlockError::Unterminated { line: i + 1 });
            }
            created |= is_line(line, CREATED_NOTE);
            j += 1;
        }
        i = j + 1;
    }
    Ok(blocks)
}

/// The file's line ending, judged by its first line; LF for a file without any.
fn eol_of(text: &[u8]) -> &'static str {
    match text.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && text[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

fn render_block(include: &str, created: bool, eol: &str) -> String {
    let mut lines = vec![BEGIN_MARKER, NOTE];
    if created {
        lines.push(CREATED_NOTE);
    }
    lines.extend([include, END_MARKER]);
    lines.iter().map(|l| format!("{l}{eol}")).collect()
}

fn absolute(what: &'static str, path: &Path) -> Result<(), ConfigError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(ConfigError::RelativePath {
            what,
            path: path.to_owned(),
        })
    }
}

fn utf8<'a>(what: &'static str, path: &'a Path) -> Result<&'a str, ConfigError> {
    path.to_str().ok_or_else(|| ConfigError::UnsafePath {
        what,
        path: path.to_owned(),
        reason: "is not UTF-8",
    })
}

/// A path as an ssh_config value: absolute, `%` escaped, double-quoted.
fn config_value(what: &'static str, path: &Path) -> Result<String, ConfigError> {
    absolute(what, path)?;
    utf8(what, path)?;
    let escaped = command::ssh_path(what, path).map_err(|e| match e {
        CommandError::UnsafePath { reason, .. } => ConfigError::UnsafePath {
            what,
            path: path.to_owned(),
            reason,
        },
        _ => ConfigError::UnsafePath {
            what,
            path: path.to_owned(),
            reason: "is not usable",
        },
    })?;
    Ok(double_quote(&escaped.to_string_lossy()))
}

fn double_quote(text: &str) -> String {
    command::quote_option(OsStr::new(text))
        .to_string_lossy()
        .into_owned()
}

/// The file to edit: `path` itself, or what it links to (dotfile managers symlink
/// `~/.ssh/config`; replacing the link with a file would break them).
fn resolve(path: &Path) -> Result<PathBuf, ConfigError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })
        }
        _ => Ok(path.to_owned()),
    }
}

/// The file's bytes and mode, or `None` when it does not exist.
fn read_existing(path: &Path) -> Result<Option<(Vec<u8>, u32)>, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    let mode = fs::metadata(path).map_err(read_error)?.permissions().mode() & 0o7777;
    Ok(Some((bytes, mode)))
}

/// Creates the directory of a new `~/.ssh/config` (0700) if missing.
fn ensure_parent(path: &Path) -> Result<(), ConfigError> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(NEW_SSH_DIR_MODE)
        .create(dir)
        .map_err(|source| ConfigError::CreateDir {
            path: dir.to_owned(),
            source,
        })
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ConfigError> {
    fsutil::write_atomic(path, bytes, mode).map_err(|source| ConfigError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;

    const INCLUDE: &str = "Include \"/state/banger/ssh_config\"";

    fn count(text: &[u8], marker: &str) -> usize {
        lines(text)
            .iter()
            .filter(|&&(s, e)| is_line(&text[s..e], marker))
            .count()
    }

    const INPUTS: [&[u8]; 9] = [
        b"",
        b"\n",
        b"Host a\n    User b\n",
        b"Host a\n    User b",
        b"Host a\r\n    User b\r\n",
        b"Host a\r\n    User b",
        b"Include ~/.ssh/config.d/*\nInclude /etc/other\n\nHost *\n    ForwardAgent yes\n",
        b"# <<< banger <<<\nstray end marker above\n",
        b"Host caf\xe9\n  User \xff\xfe\n",
    ];

    #[test]
    fn install_puts_one_block_at_the_top() {
        for input in INPUTS {
            let once = install_text(input, INCLUDE, false).expect("install");
            assert!(once.starts_with(BEGIN_MARKER.as_bytes()), "{input:?}");
            assert!(once.ends_with(input), "rest untouched: {input:?}");
            let twice = install_text(&once, INCLUDE, false).expect("install again");
            assert_eq!(once, twice, "idempotent: {input:?}");
            assert_eq!(count(&twice, BEGIN_MARKER), 1);
            assert_eq!(
                count(&twice, END_MARKER),
                1 + count(input, END_MARKER),
                "{input:?}"
            );
        }
    }

    #[test]
    fn uninstall_restores_the_original_bytes() {
        for input in INPUTS {
            for creating in [false, true] {
                let installed = install_text(input, INCLUDE, creating).expect("install");
                let installed = install_text(&installed, INCLUDE, false).expect("again");
                let removed = uninstall_text(&installed).expect("uninstall");
                assert!(removed.found);
                assert_eq!(removed.created_by_banger, creating);
                assert_eq!(removed.text, input, "{input:?}");
            }
        }
    }

    #[test]
    fn block_follows_the_file_line_endings() {
        let crlf = install_text(b"Host a\r\n", INCLUDE, false).expect("install");
        let expected =
            format!("{BEGIN_MARKER}\r\n{NOTE}\r\n{INCLUDE}\r\n{END_MARKER}\r\nHost a\r\n");
        assert_eq!(String::from_utf8(crlf).expect("utf-8"), expected);
        let lf = install_text(b"", INCLUDE, true).expect("install");
        let expected = format!("{BEGIN_MARKER}\n{NOTE}\n{CREATED_NOTE}\n{INCLUDE}\n{END_MARKER}\n");
        assert_eq!(String::from_utf8(lf).expect("utf-8"), expected);
    }

    #[test]
    fn an_existing_block_is_rewritten_in_place_and_deduplicated() {
        let old = format!(
            "Host a\n  User b\n{BEGIN_MARKER}\nInclude /old/path\n{END_MARKER}\nHost c\n\
             {BEGIN_MARKER}\nInclude /older\n{END_MARKER}\ntail"
        );
        let new = install_text(old.as_bytes(), INCLUDE, false).expect("install");
        let new = String::from_utf8(new).expect("utf-8");
        assert_eq!(
            new,
            format!(
                "Host a\n  User b\n{BEGIN_MARKER}\n{NOTE}\n{INCLUDE}\n{END_MARKER}\nHost c\ntail"
            )
        );
    }

    #[test]
    fn an_unterminated_block_is_refused() {
        let text = format!("Host a\n{BEGIN_MARKER}\nInclude /x\n");
        assert_eq!(
            install_text(text.as_bytes(), INCLUDE, false),
            Err(BlockError::Unterminated { line: 2 })
        );
        let nested = format!("{BEGIN_MARKER}\n{BEGIN_MARKER}\n{END_MARKER}\n");
        assert_eq!(
            uninstall_text(nested.as_bytes()),
            Err(BlockError::Unterminated { line: 1 })
        );
    }

    #[test]
    fn uninstall_without_a_block_changes_nothing() {
        for input in INPUTS {
            let removed = uninstall_text(input).expect("uninstall");
            assert!(!removed.found);
            assert_eq!(removed.text, input);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        #[test]
        fn any_text_round_trips(lines in prop::collection::vec("[ -~\t\u{e9}]{0,20}", 0..8),
                                crlf: bool, final_eol: bool) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = lines.join(eol);
            if final_eol && !text.is_empty() {
                text.push_str(eol);
            }
            prop_assume!(!text.contains("# >>> banger") && !text.contains("# <<< banger"));
            let installed = install_text(text.as_bytes(), INCLUDE, false).expect("install");
            prop_assert_eq!(&install_text(&installed, INCLUDE, false).expect("again"), &installed);
            prop_assert_eq!(uninstall_text(&installed).expect("uninstall").text, text.as_bytes());
        }
    }

    #[test]
    fn renders_banger_ssh_config() {
        let text = render_ssh_config(
            Path::new("/s/ssh/id_ed25519"),
            Path::new("/s/ssh/known_hosts"),
        )
        .expect("render");
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "Host *.vm",
                "    User root",
                "    IdentityFile \"/s/ssh/id_ed25519\"",
                "    IdentitiesOnly yes",
                "    UserKnownHostsFile \"/s/ssh/known_hosts\"",
                "    StrictHostKeyChecking accept-new",
                "    LogLevel ERROR",
            ]
        );
        assert!(matches!(
            render_ssh_config(Path::new("rel/id"), Path::new("/kh")),
            Err(ConfigError::RelativePath { .. })
        ));
        assert!(matches!(
            render_ssh_config(Path::new("/id"), Path::new("/${X}/kh")),
            Err(ConfigError::UnsafePath { .. })
        ));
    }

    #[test]
    fn include_lines_are_quoted_and_checked() {
        assert_eq!(
            include_line(Path::new("/home/a b/ssh_config")).expect("line"),
            "Include \"/home/a b/ssh_config\""
        );
        assert!(matches!(
            include_line(Path::new("ssh_config")),
            Err(ConfigError::RelativePath { .. })
        ));
        assert!(matches!(
            include_line(Path::new("/x/*/ssh_config")),
            Err(ConfigError::UnsafePath { .. })
        ));
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("stat").mode() & 0o7777
    }

    #[test]
    fn install_creates_the_file_and_uninstall_removes_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ssh = tmp.path().join(".ssh");
        let user = ssh.join("config");
        let banger = tmp.path().join("state/ssh_config");
        assert_eq!(
            install_include(&user, &banger).expect("install"),
            InstallOutcome::Created
        );
        assert_eq!(mode(&ssh), 0o700);
        assert_eq!(mode(&user), 0o600);
        assert_eq!(
            install_include(&user, &banger).expect("install"),
            InstallOutcome::Unchanged
        );
        assert_eq!(
            uninstall_include(&user).expect("uninstall"),
            UninstallOutcome::RemovedFile
        );
        assert!(!user.exists());
        assert_eq!(
            uninstall_include(&user).expect("uninstall"),
            UninstallOutcome::NotInstalled
        );
    }

    #[test]
    fn install_keeps_an_existing_file_and_its_mode() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let user = tmp.path().join("config");
        let banger = tmp.path().join("ssh_config");
        for original in INPUTS {
            fs::write(&user, original).expect("write");
            fs::set_permissions(&user, fs::Permissions::from_mode(0o640)).expect("chmod");
            assert_eq!(
                install_include(&user, &banger).expect("install"),
                InstallOutcome::Added
            );
            assert_eq!(mode(&user), 0o640);
            assert_eq!(
                install_include(&user, &tmp.path().join("moved")).expect("install"),
                InstallOutcome::Updated
            );
            assert_eq!(
                uninstall_include(&user).expect("uninstall"),
                UninstallOutcome::Removed
            );
            assert_eq!(fs::read(&user).expect("read"), original, "{original:?}");
            assert_eq!(mode(&user), 0o640);
        }
        let names: Vec<_> = fs::read_dir(tmp.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["config"], "no temporary files left");
    }

    #[test]
    fn install_edits_through_a_symlink() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let real = tmp.path().join("dotfiles-ssh-config");
        fs::write(&real, "Host a\n").expect("write");
        let user = tmp.path().join("config");
        std::os::unix::fs::symlink(&real, &user).expect("symlink");
        install_include(&user, &tmp.path().join("ssh_config")).expect("install");
        assert!(
            fs::symlink_metadata(&user)
                .expect("lstat")
                .file_type()
                .is_symlink()
        );
        assert!(
            fs::read(&real)
                .expect("read")
                .starts_with(BEGIN_MARKER.as_bytes())
        );
        uninstall_include(&user).expect("uninstall");
        assert_eq!(fs::read(&real).expect("read"), b"Host a\n");
    }

    #[test]
    fn write_ssh_config_only_writes_changes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("ssh_config");
        let (id, kh) = (Path::new("/s/id"), Path::new("/s/kh"));
        assert!(write_ssh_config(&path, id, kh).expect("write"));
        assert_eq!(mode(&path), 0o644);
        assert!(!write_ssh_config(&path, id, kh).expect("write"));
        assert!(write_ssh_config(&path, Path::new("/t/id"), kh).expect("write"));
    }

    /// The real ssh resolves options the way the module docs promise: banger's block wins for
    /// `*.vm` even over a user's `Host *` and a later `Host *.vm`, and other hosts are unaffected.
    #[test]
    fn real_ssh_applies_the_included_block() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let user = tmp.path().join("config");
        fs::write(
            &user,
            "Host *\n    User bob\n    IdentityFile /bob/key\n\nHost *.vm\n    User carol\n",
        )
        .expect("write");
        let banger = tmp.path().join("banger ssh_config");
        let identity = tmp.path().join("ssh/id_ed25519");
        let known_hosts = tmp.path().join("ssh/known_hosts");
        write_ssh_config(&banger, &identity, &known_hosts).expect("write");
        install_include(&user, &banger).expect("install");
        let resolve = |host: &str| {
            let out = Command::new("ssh")
                .arg("-G")
                .arg("-F")
                .arg(&user)
                .arg(host)
                .output()
                .expect("ssh -G");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let has = |text: &str, line: &str| text.lines().any(|l| l == line);
        let vm = resolve("foo.vm");
        assert!(has(&vm, "user root"), "{vm}");
        assert!(
            has(
                &vm,
                &format!("userknownhostsfile {}", known_hosts.display())
            ),
            "{vm}"
        );
        assert!(has(&vm, "stricthostkeychecking accept-new"), "{vm}");
        assert!(has(&vm, "identitiesonly yes"), "{vm}");
        assert!(has(&vm, "loglevel ERROR"), "{vm}");
        assert!(
            vm.lines().find(|l| l.starts_with("identityfile "))
                == Some(&format!("identityfile {}", identity.display())),
            "banger's key comes first: {vm}"
        );
        let other = resolve("example.org");
        assert!(has(&other, "user bob"), "{other}");
        assert!(
            !other.contains(&known_hosts.display().to_string()),
            "{other}"
        );
    }
}
