//! Staging new managed files so that a registration is all or nothing.
//!
//! Files are copied into a private scratch directory under `<state>/staging/` (same file
//! system as `images/` and `kernels/`), and only when everything is there is the directory
//! renamed into place, atomically, together with writing the record. A rename onto an
//! existing directory fails, so two registrations of one name never share a directory and a
//! loser removes only its own scratch dir. A crash leaves at most a scratch dir, which the
//! start-up reconcile removes.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `<state>/staging`.
pub fn staging_root(state_dir: &Path) -> PathBuf {
    state_dir.join("staging")
}

/// A scratch directory; removed on drop unless [`Staging::commit`]ted.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    committed: bool,
}

/// Why a staged directory could not be moved into place.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Something is already at the destination.
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// The rename failed otherwise.
    #[error("cannot move the staged files to {}", path.display())]
    Io {
        /// The destination.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Staging {
    /// A fresh private (0700) scratch dir under `<state>/staging/`.
    pub fn new(state_dir: &Path) -> std::io::Result<Self> {
        let root = staging_root(state_dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)?;
        let dir = root.join(crate::ids::random_hex(8));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Self {
            dir,
            committed: false,
        })
    }

    /// Where to put files.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves the scratch dir to `dest` (its parent is created), made 0700 and its files 0600.
    pub fn commit(mut self, dest: &Path) -> Result<(), CommitError> {
        let io = |source| CommitError::Io {
            path: dest.to_path_buf(),
            source,
        };
        if let Some(parent) = dest.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io)?;
        }
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_file() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io)?;
            }
        }
        // rename(2) replaces an empty directory, so refuse any existing entry first; the
        // caller holds the registry lock, so nothing can appear between check and rename.
        if std::fs::symlink_metadata(dest).is_ok() {
            return Err(CommitError::Exists(dest.to_path_buf()));
        }
        match std::fs::rename(&self.dir, dest) {
            Ok(()) => {
                self.committed = true;
                Ok(())
            }
            // EEXIST or ENOTEMPTY: something appeared at the destination.
            Err(e) if matches!(e.raw_os_error(), Some(17 | 39)) => {
                Err(CommitError::Exists(dest.to_path_buf()))
            }
            Err(e) => Err(io(e)),
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed
            && let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove a staging dir");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_once_and_cleans_up_what_did_not_commit() {
        let state = tempfile::tempdir().unwrap();
        let dest = state.path().join("kernels/k1");
        let a = Staging::new(state.path()).unwrap();
        std::fs::write(a.path().join("vmlinux"), b"a").unwrap();
        let b = Staging::new(state.path()).unwrap();
        std::fs::write(b.path().join("vmlinux"), b"b").unwrap();
        a.commit(&dest).unwrap();
        let err = b.commit(&dest).unwrap_err();
        assert!(matches!(err, CommitError::Exists(_)), "{err}");
        assert_eq!(
            std::fs::read(dest.join("vmlinux")).unwrap(),
            b"a",
            "the winner's files stay"
        );
        let left: Vec<_> = std::fs::read_dir(staging_root(state.path()))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "the loser's scratch dir is gone");
        let mode = std::fs::metadata(dest.join("vmlinux"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // An empty directory in the way counts as taken too.
        std::fs::create_dir_all(state.path().join("kernels/k2")).unwrap();
        let c = Staging::new(state.path()).unwrap();
        assert!(matches!(
            c.commit(&state.path().join("kernels/k2")),
            Err(CommitError::Exists(_))
        ));
    }
}
