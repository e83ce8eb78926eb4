//! banger's own `known_hosts` file.
//!
//! Host keys of guests are pinned in `<ssh_dir>/known_hosts`, never in the user's
//! `~/.ssh/known_hosts`: `ssh` writes there on first connection (trust on first use,
//! `StrictHostKeyChecking=accept-new`) and refuses a changed key afterwards. A guest is known under
//! every name it is reached by — its IP and `NAME.vm` (as `[host]:port` when the port is not 22;
//! see [`host_key_name`]) — so deleting a VM removes each alias with [`remove_host`], otherwise a
//! new VM that reuses the IP or the name would be reported as a man-in-the-middle.
//!
//! Edits go through `ssh-keygen -R`, which understands hashed entries and markers; the `.old`
//! backup it leaves is deleted. The file's directory is locked (`flock`) around each edit so
//! concurrent deletes do not lose each other's changes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use crate::fsutil::{self, DirLock};

/// File name of banger's known_hosts inside the ssh directory.
pub const FILE_NAME: &str = "known_hosts";

/// Why banger's known_hosts could not be read or edited.
#[derive(Debug, thiserror::Error)]
pub enum KnownHostsError {
    /// The host name is empty or contains whitespace.
    #[error("invalid known_hosts host name {host:?}")]
    InvalidHost {
        /// The rejected name.
        host: String,
    },
    /// The directory of the file could not be locked.
    #[error("cannot lock {}", path.display())]
    Lock {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The `.old` backup could not be removed.
    #[error("cannot remove {}", path.display())]
    RemoveBackup {
        /// The backup.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `ssh-keygen` could not be started.
    #[error("cannot run ssh-keygen (is OpenSSH installed?)")]
    Spawn {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `ssh-keygen` failed.
    #[error("ssh-keygen {action} {host} in {} failed ({status}): {stderr}", file.display())]
    Keygen {
        /// `-R` or `-F`.
        action: &'static str,
        /// The host.
        host: String,
        /// The known_hosts file.
        file: PathBuf,
        /// Its exit status.
        status: ExitStatus,
        /// The last line it printed on stderr.
        stderr: String,
    },
}

/// banger's known_hosts path inside `ssh_dir`.
pub fn path(ssh_dir: &Path) -> PathBuf {
    ssh_dir.join(FILE_NAME)
}

/// The name `ssh` records a host under: `host` on port 22, `[host]:port` otherwise.
pub fn host_key_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

fn check_host(host: &str) -> Result<(), KnownHostsError> {
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(KnownHostsError::InvalidHost {
            host: host.to_owned(),
        });
    }
    Ok(())
}

fn backup_path(known_hosts: &Path) -> PathBuf {
    let mut name = known_hosts.as_os_str().to_owned();
    name.push(".old");
    PathBuf::from(name)
}

fn remove_backup(backup: &Path) -> Result<bool, KnownHostsError> {
    match fs::remove_file(backup) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(KnownHostsError::RemoveBackup {
            path: backup.to_owned(),
            source,
        }),
    }
}

/// Removes every entry for `host` (a name as [`host_key_name`] writes it) from `known_hosts`.
///
/// Returns whether anything was removed. A missing file or entry is not an error.
pub fn remove_host(known_hosts: &Path, host: &str) -> Result<bool, KnownHostsError> {
    check_host(host)?;
    if !known_hosts.exists() {
        return Ok(false);
    }
    let dir = match known_hosts.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let _lock = DirLock::acquire(dir).map_err(|source| KnownHostsError::Lock {
        path: dir.to_owned(),
        source,
    })?;
    // ssh-keygen writes `<file>.old` only when it removed something; clear a stale one first so
    // its presence afterwards tells us.
    let backup = backup_path(known_hosts);
    remove_backup(&backup)?;
    let out = fsutil::run_tool(
        "ssh-keygen",
        [
            "-R".as_ref(),
            host.as_ref(),
            "-f".as_ref(),
            known_hosts.as_os_str(),
        ],
    )
    .map_err(|source| KnownHostsError::Spawn { source })?;
    if !out.status.success() {
        let _ = remove_backup(&backup);
        return Err(KnownHostsError::Keygen {
            action: "-R",
            host: host.to_owned(),
            file: known_hosts.to_owned(),
            status: out.status,
            stderr: fsutil::last_line(&out.stderr),
        });
    }
    remove_backup(&backup)
}

/// Removes the entries of every alias in `hosts`; returns whether anything was removed.
pub fn remove_hosts<I, S>(known_hosts: &Path, hosts: I) -> Result<bool, KnownHostsError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut removed = false;
    for host in hosts {
        removed |= remove_host(known_hosts, host.as_ref())?;
    }
    Ok(removed)
}

/// The entries `ssh-keygen -F` finds for `host` in `known_hosts` (for tests and `doctor`).
///
/// A missing file or an unknown host gives an empty list.
pub fn entries_for(known_hosts: &Path, host: &str) -> Result<Vec<String>, KnownHostsError> {
    check_host(host)?;
    if !known_hosts.exists() {
        return Ok(Vec::new());
    }
    let out = fsutil::run_tool(
        "ssh-keygen",
        [
            "-F".as_ref(),
            host.as_ref(),
            "-f".as_ref(),
            known_hosts.as_os_str(),
        ],
    )
    .map_err(|source| KnownHostsError::Spawn { source })?;
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()),
        // Not found.
        Some(1) => Ok(Vec::new()),
        _ => Err(KnownHostsError::Keygen {
            action: "-F",
            host: host.to_owned(),
            file: known_hosts.to_owned(),
            status: out.status,
            stderr: fsutil::last_line(&out.stderr),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHAIFyq6f/KxKedk6l5taKnr/O26SaM2zLTXa/BpX8iv";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEGQ4NrIrxYzMQs3nB+DSAbCSSbdwvNQ9bk5bwxdjPXh";

    fn sample(dir: &Path) -> PathBuf {
        let file = path(dir);
        fs::write(
            &file,
            format!("10.0.0.2 {KEY_A}\nfoo.vm {KEY_A}\n[127.0.0.1]:2222 {KEY_B}\nbar.vm {KEY_B}\n"),
        )
        .expect("write");
        file
    }

    #[test]
    fn names_hosts_like_ssh_does() {
        assert_eq!(host_key_name("10.0.0.2", 22), "10.0.0.2");
        assert_eq!(host_key_name("127.0.0.1", 2222), "[127.0.0.1]:2222");
        assert_eq!(host_key_name("foo.vm", 22), "foo.vm");
    }

    #[test]
    fn removes_every_alias_and_leaves_no_backup() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = sample(tmp.path());
        assert_eq!(
            entries_for(&file, "foo.vm").expect("F"),
            [format!("foo.vm {KEY_A}")]
        );
        assert!(remove_hosts(&file, ["10.0.0.2", "foo.vm"]).expect("remove"));
        assert!(entries_for(&file, "foo.vm").expect("F").is_empty());
        assert!(entries_for(&file, "10.0.0.2").expect("F").is_empty());
        assert_eq!(
            fs::read_to_string(&file).expect("read"),
            format!("[127.0.0.1]:2222 {KEY_B}\nbar.vm {KEY_B}\n")
        );
        assert!(!backup_path(&file).exists());
        assert_eq!(
            entries_for(&file, "[127.0.0.1]:2222").expect("F"),
            [format!("[127.0.0.1]:2222 {KEY_B}")]
        );
    }

    #[test]
    fn missing_entries_and_files_are_no_ops() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = sample(tmp.path());
        let before = fs::read(&file).expect("read");
        assert!(!remove_host(&file, "nothere.vm").expect("remove"));
        assert_eq!(fs::read(&file).expect("read"), before);
        assert!(!backup_path(&file).exists());
        let missing = tmp.path().join("missing/known_hosts");
        assert!(!remove_host(&missing, "foo.vm").expect("remove"));
        assert!(entries_for(&missing, "foo.vm").expect("F").is_empty());
        assert!(!missing.exists());
    }

    #[test]
    fn removes_hashed_entries() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = sample(tmp.path());
        let out = std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&file)
            .output()
            .expect("ssh-keygen -H");
        assert!(out.status.success(), "{out:?}");
        let _ = fs::remove_file(backup_path(&file));
        assert!(!fs::read_to_string(&file).expect("read").contains("foo.vm"));
        assert_eq!(entries_for(&file, "foo.vm").expect("F").len(), 1);
        assert!(remove_host(&file, "foo.vm").expect("remove"));
        assert!(entries_for(&file, "foo.vm").expect("F").is_empty());
        assert_eq!(entries_for(&file, "bar.vm").expect("F").len(), 1);
    }

    #[test]
    fn rejects_empty_or_odd_hosts() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = sample(tmp.path());
        for host in ["", "a b", "a\nb"] {
            assert!(matches!(
                remove_host(&file, host),
                Err(KnownHostsError::InvalidHost { .. })
            ));
        }
    }
}
