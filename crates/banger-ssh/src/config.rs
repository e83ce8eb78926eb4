//! banger's `ssh_config` and its `Include` block in `~/.ssh/config`: the file side.
//!
//! The text (banger's `Host *.vm` block, the marker-fenced Include block, install and uninstall
//! as byte-exact transforms) lives in [`banger_model::ssh_config`], with its invariants; this
//! module only reads and writes files with it. Files are replaced atomically (temporary sibling
//! and rename) with their mode kept, through a symlink if `~/.ssh/config` is one; a new file is
//! 0600 and a new `~/.ssh` 0700.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use banger_model::ssh_config::{self as text, PathError};
pub use banger_model::ssh_config::{
    BEGIN_MARKER, BlockError, END_MARKER, Uninstalled, install_text, uninstall_text,
    user_config_path,
};

use crate::fsutil;

/// Mode of a `~/.ssh/config` that install creates.
const NEW_CONFIG_MODE: u32 = 0o600;
/// Mode of a `~/.ssh` that install creates.
const NEW_SSH_DIR_MODE: u32 = 0o700;
/// Mode of banger's own ssh_config (ssh refuses config files others can write).
const BANGER_CONFIG_MODE: u32 = 0o644;

/// Why banger's ssh configuration could not be rendered or installed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A path that cannot be written into an ssh configuration file.
    #[error(transparent)]
    Path(#[from] PathError),
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

/// banger's `ssh_config` (see [`banger_model::ssh_config::render`]).
pub fn render_ssh_config(
    identity: &Path,
    known_hosts: &Path,
    banger: &Path,
) -> Result<String, ConfigError> {
    Ok(text::render(identity, known_hosts, banger)?)
}

/// Writes banger's `ssh_config` to `path` (0644, atomically) unless it already holds exactly that;
/// returns whether it changed.
pub fn write_ssh_config(
    path: &Path,
    identity: &Path,
    known_hosts: &Path,
    banger: &Path,
) -> Result<bool, ConfigError> {
    let text = render_ssh_config(identity, known_hosts, banger)?;
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
    Ok(text::include_line(banger_config)?)
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

fn absolute(what: &'static str, path: &Path) -> Result<(), ConfigError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(PathError::Relative {
            what,
            path: path.to_owned(),
        }
        .into())
    }
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
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;

    const INPUTS: [&[u8]; 5] = [
        b"",
        b"Host a\n    User b",
        b"Host a\r\n    User b\r\n",
        b"# <<< banger <<<\nstray end marker above\n",
        b"Host caf\xe9\n  User \xff\xfe\n",
    ];

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
        let bin = Path::new("/usr/bin/banger");
        assert!(write_ssh_config(&path, id, kh, bin).expect("write"));
        assert_eq!(mode(&path), 0o644);
        assert!(!write_ssh_config(&path, id, kh, bin).expect("write"));
        assert!(write_ssh_config(&path, Path::new("/t/id"), kh, bin).expect("write"));
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
        write_ssh_config(
            &banger,
            &identity,
            &known_hosts,
            Path::new("/usr/bin/banger"),
        )
        .expect("write");
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
