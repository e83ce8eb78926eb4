//! A system install: where its files go, who owns it, and the systemd calls that run it.
//!
//! `commands::system` orchestrates; this module holds the parts: the fixed paths
//! ([`paths`]), the typed units ([`units`]), the owner lookup, finding the binaries to install
//! next to the running `banger`, atomic file writes (temp file + rename, so a running binary
//! is replaced, never rewritten in place) and bounded `systemctl` calls.

pub mod units;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::CliError;

/// Fixed paths of a system install.
pub mod paths {
    /// Installed CLI.
    pub const BANGER: &str = "/usr/local/bin/banger";
    /// Installed daemon (also the root helper: `bangerd root-helper`).
    pub const BANGERD: &str = "/usr/local/bin/bangerd";
    /// Installed guest agent, where the daemon's agent lookup finds it.
    pub const AGENT: &str = "/usr/local/libexec/banger/banger-agent";
    /// Where the units go.
    pub const UNIT_DIR: &str = "/etc/systemd/system";
    /// Install metadata and its directory.
    pub const ETC_DIR: &str = "/etc/banger";
    /// The daemon's state (StateDirectory=banger).
    pub const STATE_DIR: &str = "/var/lib/banger";
    /// The daemon's cache (CacheDirectory=banger).
    pub const CACHE_DIR: &str = "/var/cache/banger";
    /// The daemon's socket.
    pub const DAEMON_SOCKET: &str = "/run/banger/bangerd.sock";
    /// The root helper's socket (its contract default).
    pub const HELPER_SOCKET: &str = super::units::HELPER_SOCKET;
    /// Present while systemd is PID 1.
    pub const SYSTEMD_RUNNING: &str = "/run/systemd/system";
}

/// The owner, resolved from the password database.
#[derive(Debug, Clone)]
pub struct OwnerAccount {
    /// User name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary group name.
    pub group: String,
    /// Home directory.
    pub home: PathBuf,
}

/// Looks up `user` (a name or a numeric uid).
pub fn owner_account(user: &str) -> Result<OwnerAccount, CliError> {
    let found = match user.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(uid.into()),
        Err(_) => nix::unistd::User::from_name(user),
    }
    .map_err(|e| CliError::Failed(format!("cannot look up user {user}: {e}")))?;
    let Some(account) = found else {
        return Err(CliError::Usage(format!(
            "no user {user} on this host; pass --owner with the user who will run VMs"
        )));
    };
    if account.uid.is_root() {
        return Err(CliError::Usage(
            "the owner must not be root: pass --owner with the user who will run VMs (the \
             daemon runs as that user; only the helper runs as root)"
                .to_owned(),
        ));
    }
    let group = nix::unistd::Group::from_gid(account.gid)
        .ok()
        .flatten()
        .map_or_else(|| account.gid.to_string(), |g| g.name);
    Ok(OwnerAccount {
        name: account.name,
        uid: account.uid.as_raw(),
        group,
        home: account.dir,
    })
}

/// Whether the host has a group named `name`.
pub fn group_exists(name: &str) -> bool {
    matches!(nix::unistd::Group::from_name(name), Ok(Some(_)))
}

/// The binaries to install, found next to the running `banger`.
#[derive(Debug, Clone)]
pub struct Sources {
    /// This `banger`.
    pub banger: PathBuf,
    /// `bangerd` beside it.
    pub bangerd: PathBuf,
    /// `banger-agent` beside it or in `../libexec/banger/`.
    pub agent: PathBuf,
}

/// Finds `bangerd` and `banger-agent` the way an install lays them out: beside `banger`
/// (a cargo build) or in the prefix's `libexec/banger/` (install.sh, a system install).
pub fn sources(banger: &Path) -> Result<Sources, CliError> {
    let dir = banger.parent().unwrap_or(Path::new("/"));
    let bangerd = dir.join("bangerd");
    if !bangerd.is_file() {
        return Err(CliError::Failed(format!(
            "cannot find bangerd next to {} (looked for {}); build it (cargo build -p bangerd) \
             or run the banger that install.sh installed",
            banger.display(),
            bangerd.display()
        )));
    }
    let mut tried = vec![dir.join("banger-agent")];
    if let Some(prefix) = dir.parent() {
        tried.push(prefix.join("libexec/banger/banger-agent"));
    }
    let Some(agent) = tried.iter().find(|p| p.is_file()).cloned() else {
        let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        return Err(CliError::Failed(format!(
            "cannot find banger-agent (looked for {}); build it (cargo build -p banger-agent)",
            tried.join(", ")
        )));
    };
    Ok(Sources {
        banger: banger.to_owned(),
        bangerd,
        agent,
    })
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> CliError {
    move |source| CliError::Io { what, source }
}

/// Writes `bytes` to `dest` through a temp file in the same directory and a rename, with `mode`.
pub fn write_atomic(dest: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    let dir = dest.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.banger-new"));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        std::fs::rename(&tmp, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io(format!("cannot write {}", dest.display())))
}

/// Copies the binary `src` to `dest` atomically (0755); nothing to do when they are one file.
pub fn install_binary(src: &Path, dest: &Path) -> Result<bool, CliError> {
    let same = match (std::fs::canonicalize(src), std::fs::canonicalize(dest)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Ok(false);
    }
    let bytes = std::fs::read(src).map_err(io(format!("cannot read {}", src.display())))?;
    write_atomic(dest, &bytes, 0o755)?;
    Ok(true)
}

/// Removes `path` if it exists; says whether it did.
pub fn remove_file(path: &Path) -> Result<bool, CliError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(CliError::Io {
            what: format!("cannot remove {}", path.display()),
            source,
        }),
    }
}

/// Removes the directory tree `path` if it exists; says whether it did.
pub fn remove_tree(path: &Path) -> Result<bool, CliError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(CliError::Io {
            what: format!("cannot remove {}", path.display()),
            source,
        }),
    }
}

/// How long one `systemctl` call may take (a start waits for the unit to start).
const SYSTEMCTL_LIMIT: Duration = Duration::from_secs(90);

/// Runs `systemctl ARGS`, bounded; an error carries its output.
pub fn systemctl(args: &[&str]) -> Result<String, CliError> {
    let mut cmd = Command::new("systemctl");
    cmd.args(args);
    let out = output_bounded(cmd, SYSTEMCTL_LIMIT)
        .map_err(|e| CliError::Failed(format!("cannot run systemctl {}: {e}", args.join(" "))))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(CliError::Failed(format!(
            "systemctl {} failed ({}): {}",
            args.join(" "),
            out.status,
            stderr.trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` to completion with captured output, killing it after `limit`.
pub fn output_bounded(mut cmd: Command, limit: Duration) -> std::io::Result<std::process::Output> {
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out,
        Err(_) => {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("still running after {}s; killed", limit.as_secs()),
            ))
        }
    }
}

/// A unit's state as `systemctl show` reports it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UnitState {
    /// The unit's name.
    pub unit: String,
    /// `active`, `inactive`, `failed`, `activating`…
    pub active: String,
    /// `running`, `dead`, `exited`…
    pub sub: String,
    /// `enabled`, `disabled`, or empty when the unit file is missing.
    pub enabled: String,
    /// Main process id (0 when none).
    pub pid: u32,
}

/// Reads a unit's state (works without root).
pub fn unit_state(unit: &str) -> Result<UnitState, CliError> {
    let text = systemctl(&[
        "show",
        "-p",
        "ActiveState,SubState,UnitFileState,MainPID",
        unit,
    ])?;
    Ok(parse_unit_state(unit, &text))
}

fn parse_unit_state(unit: &str, text: &str) -> UnitState {
    let mut state = UnitState {
        unit: unit.to_owned(),
        ..UnitState::default()
    };
    for line in text.lines() {
        match line.split_once('=') {
            Some(("ActiveState", v)) => state.active = v.to_owned(),
            Some(("SubState", v)) => state.sub = v.to_owned(),
            Some(("UnitFileState", v)) => state.enabled = v.to_owned(),
            Some(("MainPID", v)) => state.pid = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_state_reads_systemctl_show() {
        let s = parse_unit_state(
            "bangerd.service",
            "MainPID=42\nActiveState=active\nSubState=running\nUnitFileState=enabled\n",
        );
        assert_eq!(s.active, "active");
        assert_eq!(s.sub, "running");
        assert_eq!(s.enabled, "enabled");
        assert_eq!(s.pid, 42);
    }

    #[test]
    fn sources_are_found_beside_banger_or_in_libexec() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("banger"), "").unwrap();
        let err = sources(&bin.join("banger")).unwrap_err().to_string();
        assert!(err.contains("cannot find bangerd"), "{err}");
        std::fs::write(bin.join("bangerd"), "").unwrap();
        let err = sources(&bin.join("banger")).unwrap_err().to_string();
        assert!(err.contains("libexec/banger/banger-agent"), "{err}");
        let libexec = dir.path().join("libexec/banger");
        std::fs::create_dir_all(&libexec).unwrap();
        std::fs::write(libexec.join("banger-agent"), "").unwrap();
        let found = sources(&bin.join("banger")).unwrap();
        assert_eq!(found.agent, libexec.join("banger-agent"));
        std::fs::write(bin.join("banger-agent"), "").unwrap();
        assert_eq!(
            sources(&bin.join("banger")).unwrap().agent,
            bin.join("banger-agent")
        );
    }

    #[test]
    fn atomic_writes_replace_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/x");
        write_atomic(&dest, b"one", 0o644).unwrap();
        write_atomic(&dest, b"two", 0o755).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        assert_eq!(
            std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
            1
        );
        assert!(
            !install_binary(&dest, &dest).unwrap(),
            "same file: nothing to copy"
        );
    }

    #[test]
    fn root_cannot_own_an_install() {
        let err = owner_account("root").unwrap_err().to_string();
        assert!(err.contains("must not be root"), "{err}");
        assert!(owner_account("no-such-user-banger").is_err());
    }
}
