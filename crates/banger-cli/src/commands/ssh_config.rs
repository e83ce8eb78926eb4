//! `banger ssh-config`: banger's own ssh_config and its Include block in `~/.ssh/config`.
//!
//! Every run (re)writes `<state_dir>/ssh_config` (0600) so it names the current banger binary
//! (its `ProxyCommand`), banger's key and banger's known_hosts. `--install` puts the
//! marker-fenced Include block at the top of `~/.ssh/config`; `--uninstall` takes it out again,
//! byte for byte. The text is [`banger_model::ssh_config`]'s; this module only does the file
//! work: atomic replacement (temporary sibling, rename) keeping the file's mode, editing through
//! a symlink, a new `~/.ssh` 0700 and a new config 0600. This is the only code in banger that
//! writes `~/.ssh/config`.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use banger_model::ssh_config;

use crate::args::ssh_config::SshConfigArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::output::Stdout;

/// Mode of banger's own ssh_config.
const BANGER_CONFIG_MODE: u32 = 0o600;
/// Mode of a `~/.ssh/config` that install creates.
const NEW_CONFIG_MODE: u32 = 0o600;
/// Mode of a `~/.ssh` (or banger state directory) that banger creates.
const NEW_DIR_MODE: u32 = 0o700;

/// Runs `banger ssh-config [--install | --uninstall]`.
pub fn run(args: &SshConfigArgs, ctx: &Context) -> Result<(), CliError> {
    if args.uninstall {
        let user_config = user_config()?;
        let message = match uninstall(&user_config)? {
            Uninstall::Removed => {
                format!("removed banger's Include from {}", user_config.display())
            }
            Uninstall::RemovedFile => format!(
                "removed banger's Include and {} (banger had created it)",
                user_config.display()
            ),
            Uninstall::NotInstalled => {
                format!("banger's Include is not in {}", user_config.display())
            }
        };
        let mut out = Stdout::lock();
        out.line(&message)?;
        return out.finish();
    }
    let layout = ctx.layout()?;
    let banger_config = layout.state_dir.join("ssh_config");
    let ssh_dir = layout.ssh_dir();
    let banger = std::env::current_exe().map_err(|source| CliError::Io {
        what: "cannot find the path of the banger binary".to_owned(),
        source,
    })?;
    let text = ssh_config::render(
        &ssh_dir.join("id_ed25519"),
        &ssh_dir.join("known_hosts"),
        &banger,
    )
    .map_err(|e| CliError::Failed(e.to_string()))?;
    let include =
        ssh_config::include_line(&banger_config).map_err(|e| CliError::Failed(e.to_string()))?;
    write_banger_config(&banger_config, &text)?;
    let mut out = Stdout::lock();
    if args.install {
        let user_config = user_config()?;
        let message = if install(&user_config, &include)? {
            format!("added banger's Include to {}", user_config.display())
        } else {
            format!("banger's Include is already in {}", user_config.display())
        };
        out.line(&message)?;
        out.line("try: ssh NAME.vm")?;
    } else {
        out.line(&banger_config.display().to_string())?;
        out.line(&include)?;
    }
    out.finish()
}

/// `~/.ssh/config`, from `HOME`.
fn user_config() -> Result<PathBuf, CliError> {
    match std::env::var_os("HOME") {
        Some(home) if Path::new(&home).is_absolute() => {
            Ok(ssh_config::user_config_path(Path::new(&home)))
        }
        _ => Err(CliError::Failed(
            "HOME is not set to an absolute path, so ~/.ssh/config cannot be found".to_owned(),
        )),
    }
}

/// Writes banger's ssh_config unless it already holds exactly `text`.
fn write_banger_config(path: &Path, text: &str) -> Result<(), CliError> {
    match fs::read(path) {
        Ok(old) if old == text.as_bytes() => {
            let mode = fs::metadata(path).map(|m| m.permissions().mode() & 0o7777);
            if mode.ok() == Some(BANGER_CONFIG_MODE) {
                return Ok(());
            }
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(io_error("cannot read", path, source)),
    }
    ensure_parent(path)?;
    write_atomic(path, text.as_bytes(), BANGER_CONFIG_MODE)
}

/// Adds (or refreshes) the Include block; returns whether the file changed.
fn install(user_config: &Path, include: &str) -> Result<bool, CliError> {
    let target = resolve(user_config)?;
    let existing = read_existing(&target)?;
    let creating = existing.is_none();
    let (original, mode) = existing.unwrap_or((Vec::new(), NEW_CONFIG_MODE));
    let new = ssh_config::install_text(&original, include, creating)
        .map_err(|e| CliError::Failed(format!("cannot edit {}: {e}", target.display())))?;
    if !creating && new == original {
        return Ok(false);
    }
    if creating {
        ensure_parent(&target)?;
    }
    write_atomic(&target, &new, mode)?;
    Ok(true)
}

/// What [`uninstall`] did.
enum Uninstall {
    Removed,
    RemovedFile,
    NotInstalled,
}

/// Removes the Include block, restoring the bytes the file had before install.
fn uninstall(user_config: &Path) -> Result<Uninstall, CliError> {
    let target = resolve(user_config)?;
    let Some((current, mode)) = read_existing(&target)? else {
        return Ok(Uninstall::NotInstalled);
    };
    let removed = ssh_config::uninstall_text(&current)
        .map_err(|e| CliError::Failed(format!("cannot edit {}: {e}", target.display())))?;
    if !removed.found {
        return Ok(Uninstall::NotInstalled);
    }
    if removed.created_by_banger && removed.text.is_empty() {
        fs::remove_file(&target).map_err(|e| io_error("cannot remove", &target, e))?;
        return Ok(Uninstall::RemovedFile);
    }
    write_atomic(&target, &removed.text, mode)?;
    Ok(Uninstall::Removed)
}

/// The file to edit: `path`, or what it links to (dotfile managers symlink `~/.ssh/config`;
/// replacing the link with a file would break them).
fn resolve(path: &Path) -> Result<PathBuf, CliError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|e| io_error("cannot resolve", path, e))
        }
        _ => Ok(path.to_owned()),
    }
}

/// The file's bytes and mode, or `None` when it does not exist.
fn read_existing(path: &Path) -> Result<Option<(Vec<u8>, u32)>, CliError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot read", path, e)),
    };
    let mode = fs::metadata(path)
        .map_err(|e| io_error("cannot read", path, e))?
        .permissions()
        .mode()
        & 0o7777;
    Ok(Some((bytes, mode)))
}

/// Creates the parent directory (0700) if missing.
fn ensure_parent(path: &Path) -> Result<(), CliError> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(NEW_DIR_MODE)
        .create(dir)
        .map_err(|e| io_error("cannot create", dir, e))
}

/// Replaces `path` with `bytes` (mode `mode`) through a temporary sibling and a rename.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.banger-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        // The umask may have narrowed the mode at creation.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_error("cannot write", path, e)
    })
}

fn io_error(what: &str, path: &Path, source: io::Error) -> CliError {
    CliError::Io {
        what: format!("{what} {}", path.display()),
        source,
    }
}
