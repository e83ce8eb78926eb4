//! Where banger keeps things.
//!
//! User mode follows XDG (config, state, cache, runtime); a system install uses fixed paths
//! under `/var/lib`, `/var/cache`, `/run` and `/etc`. The binaries resolve one [`Layout`] at
//! start-up from the process environment and pass it down; nothing else reads the environment
//! for paths and no path is ever relative to the current directory — a relative value is an
//! error that names the variable to fix.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Read access to environment variables. The binaries pass the process environment; tests pass
/// a map.
pub trait Env {
    /// The value of `key`, if set and non-empty.
    fn var(&self, key: &str) -> Option<OsString>;
}

impl<F: Fn(&str) -> Option<OsString>> Env for F {
    fn var(&self, key: &str) -> Option<OsString> {
        self(key).filter(|v| !v.is_empty())
    }
}

/// Which kind of install a layout belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A per-user daemon started on demand by the CLI.
    User,
    /// systemd services installed by `banger system install`.
    System,
}

/// Why a layout could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A variable resolved to a relative path.
    #[error("{var} is a relative path ({value}); set it to an absolute path or unset it")]
    Relative {
        /// The variable that holds the relative path.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// Neither the XDG variable nor `HOME` is set.
    #[error("cannot find a home for banger's files: set HOME or {var}")]
    NoHome {
        /// The XDG variable that would also do.
        var: &'static str,
    },
}

/// Every directory and file banger uses, resolved once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// User or system install.
    pub mode: Mode,
    /// `config.toml`.
    pub config_file: PathBuf,
    /// Durable state: database, VMs, images, kernels, SSH keys.
    pub state_dir: PathBuf,
    /// Re-downloadable data: OCI blobs, package downloads.
    pub cache_dir: PathBuf,
    /// Sockets, pid and lock files.
    pub runtime_dir: PathBuf,
}

/// Where a system install records its version and owner.
pub const INSTALL_METADATA: &str = "/etc/banger/install.toml";

impl Layout {
    /// Resolves the user-mode layout from XDG variables (falling back to `HOME`).
    pub fn user(env: &dyn Env) -> Result<Self, LayoutError> {
        let home = absolute(env, "HOME")?;
        let base = |var: &'static str, fallback: &str| -> Result<PathBuf, LayoutError> {
            match absolute(env, var)? {
                Some(p) => Ok(p.join("banger")),
                None => home
                    .as_ref()
                    .map(|h| h.join(fallback).join("banger"))
                    .ok_or(LayoutError::NoHome { var }),
            }
        };
        let config_dir = base("XDG_CONFIG_HOME", ".config")?;
        let state_dir = base("XDG_STATE_HOME", ".local/state")?;
        let cache_dir = base("XDG_CACHE_HOME", ".cache")?;
        let runtime_dir = match absolute(env, "XDG_RUNTIME_DIR")? {
            Some(p) => p.join("banger"),
            None => state_dir.join("run"),
        };
        Ok(Self {
            mode: Mode::User,
            config_file: config_dir.join("config.toml"),
            state_dir,
            cache_dir,
            runtime_dir,
        })
    }

    /// The system-install layout. `owner_config` is the owner user's `config.toml`.
    pub fn system(owner_config: PathBuf) -> Self {
        Self {
            mode: Mode::System,
            config_file: owner_config,
            state_dir: PathBuf::from("/var/lib/banger"),
            cache_dir: PathBuf::from("/var/cache/banger"),
            runtime_dir: PathBuf::from("/run/banger"),
        }
    }

    /// A layout rooted in one directory (tests, benchmarks, throwaway daemons).
    pub fn rooted(mode: Mode, root: &Path) -> Self {
        Self {
            mode,
            config_file: root.join("config/config.toml"),
            state_dir: root.join("state"),
            cache_dir: root.join("cache"),
            runtime_dir: root.join("run"),
        }
    }

    /// The SQLite database.
    pub fn db_file(&self) -> PathBuf {
        self.state_dir.join("state.db")
    }

    /// The daemon's API socket.
    pub fn socket(&self) -> PathBuf {
        self.runtime_dir.join("bangerd.sock")
    }

    /// The daemon's single-instance lock; also holds its pid.
    pub fn lock_file(&self) -> PathBuf {
        self.runtime_dir.join("bangerd.lock")
    }

    /// Where an on-demand daemon's output goes.
    pub fn daemon_log(&self) -> PathBuf {
        self.state_dir.join("bangerd.log")
    }

    /// Per-VM directories.
    pub fn vms_dir(&self) -> PathBuf {
        self.state_dir.join("vms")
    }

    /// Warm snapshots, one directory per boot class.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.state_dir.join("snapshots")
    }

    /// Managed images.
    pub fn images_dir(&self) -> PathBuf {
        self.state_dir.join("images")
    }

    /// Managed kernels.
    pub fn kernels_dir(&self) -> PathBuf {
        self.state_dir.join("kernels")
    }

    /// banger's SSH key and known_hosts.
    pub fn ssh_dir(&self) -> PathBuf {
        self.state_dir.join("ssh")
    }
}

fn absolute(env: &dyn Env, var: &'static str) -> Result<Option<PathBuf>, LayoutError> {
    match env.var(var) {
        None => Ok(None),
        Some(v) => {
            let p = PathBuf::from(&v);
            if p.is_absolute() {
                Ok(Some(p))
            } else {
                Err(LayoutError::Relative {
                    var,
                    value: v.to_string_lossy().into_owned(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| map.get(k).map(OsString::from)
    }

    #[test]
    fn user_mode_follows_xdg() {
        let l = Layout::user(&env(&[
            ("HOME", "/home/u"),
            ("XDG_CONFIG_HOME", "/c"),
            ("XDG_STATE_HOME", "/s"),
            ("XDG_CACHE_HOME", "/k"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ]))
        .unwrap();
        assert_eq!(l.config_file, Path::new("/c/banger/config.toml"));
        assert_eq!(l.db_file(), Path::new("/s/banger/state.db"));
        assert_eq!(l.cache_dir, Path::new("/k/banger"));
        assert_eq!(l.socket(), Path::new("/run/user/1000/banger/bangerd.sock"));
        assert_eq!(l.mode, Mode::User);
    }

    #[test]
    fn user_mode_falls_back_to_home() {
        let l = Layout::user(&env(&[("HOME", "/home/u"), ("XDG_STATE_HOME", "")])).unwrap();
        assert_eq!(
            l.config_file,
            Path::new("/home/u/.config/banger/config.toml")
        );
        assert_eq!(l.state_dir, Path::new("/home/u/.local/state/banger"));
        assert_eq!(l.cache_dir, Path::new("/home/u/.cache/banger"));
        assert_eq!(l.runtime_dir, Path::new("/home/u/.local/state/banger/run"));
    }

    #[test]
    fn relative_paths_are_errors_that_name_the_variable() {
        let err = Layout::user(&env(&[("HOME", "/h"), ("XDG_STATE_HOME", "state")])).unwrap_err();
        assert!(err.to_string().contains("XDG_STATE_HOME"), "{err}");
        let err = Layout::user(&env(&[("HOME", "home")])).unwrap_err();
        assert!(err.to_string().contains("HOME"), "{err}");
    }

    #[test]
    fn no_home_is_an_error() {
        let err = Layout::user(&env(&[])).unwrap_err();
        assert!(matches!(err, LayoutError::NoHome { .. }));
    }

    #[test]
    fn system_mode_uses_fixed_paths() {
        let l = Layout::system(PathBuf::from("/home/o/.config/banger/config.toml"));
        assert_eq!(l.db_file(), Path::new("/var/lib/banger/state.db"));
        assert_eq!(l.socket(), Path::new("/run/banger/bangerd.sock"));
        assert_eq!(l.mode, Mode::System);
    }
}
