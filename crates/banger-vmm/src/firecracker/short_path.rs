//! Unix-socket paths that fit `sun_path`, even when the VM's directory is deep.
//!
//! Why: `AF_UNIX` addresses hold at most 108 bytes including the terminating NUL, and both
//! Firecracker sockets (`--api-sock` and the vsock `uds_path`) are bound by path. A VM
//! directory under a long `$XDG_STATE_HOME` (or a test's temp dir) easily exceeds that, and
//! `bind` then fails with `ENAMETOOLONG` deep inside Firecracker. The reference implementation
//! solved it the way this module does: a short symlink (`/run/banger/fc/banger-<id>` for root,
//! `$XDG_RUNTIME_DIR/banger/fc/banger-<id>` otherwise) points at the VM directory, and the
//! sockets are bound *through* it. `bind` and `connect` resolve symlinks in the directory part
//! of a path, so the socket files still live in the VM directory.
//!
//! Invariants: [`socket_paths`] is pure (it only decides); [`ensure_link`] is the only code that
//! touches the file system, replaces only symlinks (never a real file or directory), and creates
//! missing parents with mode 0700. The socket paths put in a handle are the ones that were
//! bound, so they stay connectable for as long as the link exists (`/run` and
//! `$XDG_RUNTIME_DIR` are cleared at reboot, when no VM runs any more).

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Longest socket path `bind`/`connect` accept: `sun_path` is 108 bytes with the NUL.
pub const MAX_SOCKET_PATH: usize = 107;

/// File name of the API socket in the VM directory.
pub const API_SOCKET: &str = "fc.sock";

/// File name of the hybrid vsock socket in the VM directory.
pub const VSOCK_SOCKET: &str = "vsock.sock";

/// A symlink `link` → `target` that must exist before the sockets are bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortLink {
    /// The short path (in the link base).
    pub link: PathBuf,
    /// The VM directory it points at.
    pub target: PathBuf,
}

/// Where Firecracker binds its sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketPaths {
    /// `--api-sock`.
    pub api: PathBuf,
    /// The vsock device's `uds_path`.
    pub vsock: PathBuf,
    /// The symlink the paths go through, when the direct ones were too long.
    pub link: Option<ShortLink>,
}

/// Why no usable socket paths exist.
#[derive(Debug, thiserror::Error)]
pub enum ShortPathError {
    /// The direct path is too long and no short base directory is known.
    #[error(
        "socket path {} is {len} bytes, over the {MAX_SOCKET_PATH}-byte AF_UNIX limit, and there \
         is no short runtime directory to link through (run as root for /run/banger, or set \
         XDG_RUNTIME_DIR)",
        path.display()
    )]
    NoShortBase {
        /// The direct path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// Even the path through the link is too long.
    #[error(
        "socket path {} is {len} bytes even through the short link, over the \
         {MAX_SOCKET_PATH}-byte AF_UNIX limit; use a shorter runtime directory",
        path.display()
    )]
    StillTooLong {
        /// The linked path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// The VM directory is relative; a symlink to it would resolve elsewhere.
    #[error("vm directory {} is not absolute", path.display())]
    RelativeTarget {
        /// The directory.
        path: PathBuf,
    },
    /// Something that is not a symlink sits where the link goes.
    #[error("{} exists and is not a symlink; refusing to replace it", path.display())]
    Occupied {
        /// The path.
        path: PathBuf,
    },
    /// A file-system call failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn fits(path: &Path) -> bool {
    path.as_os_str().len() <= MAX_SOCKET_PATH
}

/// Decides where the sockets of the VM in `run_dir` are bound: directly in `run_dir` when both
/// paths fit, otherwise through `<link_base>/<link_name>` → `run_dir`.
pub fn socket_paths(
    run_dir: &Path,
    link_name: &str,
    link_base: Option<&Path>,
) -> Result<SocketPaths, ShortPathError> {
    let direct = SocketPaths {
        api: run_dir.join(API_SOCKET),
        vsock: run_dir.join(VSOCK_SOCKET),
        link: None,
    };
    if fits(&direct.api) && fits(&direct.vsock) {
        return Ok(direct);
    }
    let longest = if direct.vsock.as_os_str().len() >= direct.api.as_os_str().len() {
        direct.vsock
    } else {
        direct.api
    };
    let Some(base) = link_base else {
        let len = longest.as_os_str().len();
        return Err(ShortPathError::NoShortBase { path: longest, len });
    };
    if !run_dir.is_absolute() {
        return Err(ShortPathError::RelativeTarget {
            path: run_dir.to_path_buf(),
        });
    }
    let link = base.join(link_name);
    let linked = SocketPaths {
        api: link.join(API_SOCKET),
        vsock: link.join(VSOCK_SOCKET),
        link: Some(ShortLink {
            link: link.clone(),
            target: run_dir.to_path_buf(),
        }),
    };
    for path in [&linked.api, &linked.vsock] {
        if !fits(path) {
            return Err(ShortPathError::StillTooLong {
                path: path.clone(),
                len: path.as_os_str().len(),
            });
        }
    }
    Ok(linked)
}

/// The short base directory for this process: `/run/banger/fc` for root,
/// `$XDG_RUNTIME_DIR/banger/fc` otherwise (when that is set and absolute).
pub fn default_link_base(is_root: bool, xdg_runtime_dir: Option<&Path>) -> Option<PathBuf> {
    if is_root {
        return Some(PathBuf::from("/run/banger/fc"));
    }
    xdg_runtime_dir
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("banger").join("fc"))
}

/// [`default_link_base`] for the running process.
pub fn link_base_from_env() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    default_link_base(nix::unistd::geteuid().is_root(), xdg.as_deref())
}

/// Makes `link.link` a symlink to `link.target`, creating its parent (0700) and replacing a
/// stale symlink; refuses to replace anything that is not a symlink.
pub fn ensure_link(link: &ShortLink) -> Result<(), ShortPathError> {
    let io_err = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| ShortPathError::Io {
            action,
            path,
            source,
        }
    };
    if let Some(parent) = link.link.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io_err("create", parent))?;
    }
    match std::fs::symlink_metadata(&link.link) {
        Ok(meta) if meta.file_type().is_symlink() => {
            if std::fs::read_link(&link.link).ok().as_deref() == Some(link.target.as_path()) {
                return Ok(());
            }
            std::fs::remove_file(&link.link).map_err(io_err("remove", &link.link))?;
        }
        Ok(_) => {
            return Err(ShortPathError::Occupied {
                path: link.link.clone(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspect", &link.link)(e)),
    }
    std::os::unix::fs::symlink(&link.target, &link.link).map_err(io_err("create", &link.link))
}

/// Removes the symlink if it still points at its target (best effort; for failed launches).
pub fn remove_link(link: &ShortLink) {
    if std::fs::read_link(&link.link).ok().as_deref() == Some(link.target.as_path()) {
        let _ = std::fs::remove_file(&link.link);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_run_dirs_bind_directly() {
        let paths = socket_paths(Path::new("/var/lib/banger/vms/abc"), "banger-abc", None)
            .expect("short paths");
        assert_eq!(paths.api, Path::new("/var/lib/banger/vms/abc/fc.sock"));
        assert_eq!(paths.vsock, Path::new("/var/lib/banger/vms/abc/vsock.sock"));
        assert_eq!(paths.link, None);
    }

    #[test]
    fn the_limit_is_exact() {
        // "/" + dir + "/vsock.sock" (11 bytes) == 107 fits; one more byte does not.
        let dir = format!("/{}", "d".repeat(MAX_SOCKET_PATH - 12));
        let paths = socket_paths(Path::new(&dir), "x", None).expect("fits exactly");
        assert_eq!(paths.vsock.as_os_str().len(), MAX_SOCKET_PATH);
        let dir = format!("{dir}d");
        assert!(matches!(
            socket_paths(Path::new(&dir), "x", None),
            Err(ShortPathError::NoShortBase { len: 108, .. })
        ));
    }

    #[test]
    fn long_run_dirs_go_through_a_link() {
        let long = PathBuf::from(format!("/home/u/.local/state/banger/{}", "v".repeat(90)));
        let paths = socket_paths(&long, "banger-0123", Some(Path::new("/run/banger/fc")))
            .expect("linked paths");
        assert_eq!(paths.api, Path::new("/run/banger/fc/banger-0123/fc.sock"));
        assert_eq!(
            paths.vsock,
            Path::new("/run/banger/fc/banger-0123/vsock.sock")
        );
        assert_eq!(
            paths.link,
            Some(ShortLink {
                link: "/run/banger/fc/banger-0123".into(),
                target: long.clone(),
            })
        );

        let long_base = PathBuf::from(format!("/{}", "b".repeat(100)));
        assert!(matches!(
            socket_paths(&long, "banger-0123", Some(&long_base)),
            Err(ShortPathError::StillTooLong { .. })
        ));
        let relative = PathBuf::from("v".repeat(120));
        assert!(matches!(
            socket_paths(&relative, "x", Some(Path::new("/run/banger/fc"))),
            Err(ShortPathError::RelativeTarget { .. })
        ));
    }

    #[test]
    fn default_bases() {
        assert_eq!(
            default_link_base(true, Some(Path::new("/run/user/1000"))),
            Some(PathBuf::from("/run/banger/fc"))
        );
        assert_eq!(
            default_link_base(false, Some(Path::new("/run/user/1000"))),
            Some(PathBuf::from("/run/user/1000/banger/fc"))
        );
        assert_eq!(default_link_base(false, Some(Path::new("run"))), None);
        assert_eq!(default_link_base(false, None), None);
    }

    #[test]
    fn ensure_link_creates_replaces_and_refuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target_a = dir.path().join("vm-a");
        let target_b = dir.path().join("vm-b");
        std::fs::create_dir_all(&target_a).expect("mkdir");
        std::fs::create_dir_all(&target_b).expect("mkdir");
        let link_path = dir.path().join("base/fc/banger-x");
        let link = ShortLink {
            link: link_path.clone(),
            target: target_a.clone(),
        };

        ensure_link(&link).expect("created");
        assert_eq!(std::fs::read_link(&link_path).expect("link"), target_a);
        ensure_link(&link).expect("idempotent");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("base/fc"))
                .expect("base")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }

        // A socket bound through the link lives in the target.
        let through = link_path.join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&through).expect("bind");
        assert!(target_a.join("s.sock").exists());

        // A stale link to another directory is replaced.
        let moved = ShortLink {
            link: link_path.clone(),
            target: target_b.clone(),
        };
        ensure_link(&moved).expect("replaced");
        assert_eq!(std::fs::read_link(&link_path).expect("link"), target_b);

        // remove_link only removes a link that still points at its target.
        remove_link(&link);
        assert!(std::fs::symlink_metadata(&link_path).is_ok());
        remove_link(&moved);
        assert!(std::fs::symlink_metadata(&link_path).is_err());

        // A real directory is never replaced.
        std::fs::create_dir_all(&link_path).expect("mkdir");
        assert!(matches!(
            ensure_link(&link),
            Err(ShortPathError::Occupied { .. })
        ));
    }
}
