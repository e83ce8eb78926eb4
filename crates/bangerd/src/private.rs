//! Keeping the daemon's state private to its owner.
//!
//! The state dir holds the database, VM disks and banger's SSH key; the runtime dir holds the
//! API socket. Both are made 0700 at every start, whatever mode an earlier version, a user or
//! a restore gave them, and the database files 0600, so nothing is world-readable even if a
//! file inside was created with a looser mode.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Forces `dir` to 0700 (creating it if missing).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    set_mode(dir, 0o700)
}

/// Forces each existing file in `files` to 0600; missing ones are skipped.
pub fn private_files<'a>(files: impl IntoIterator<Item = &'a Path>) -> std::io::Result<()> {
    for file in files {
        match std::fs::symlink_metadata(file) {
            Ok(meta) if meta.file_type().is_file() => set_mode(file, 0o600)?,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if current != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        tracing::info!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"), "made private");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn loose_dirs_and_files_are_made_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.join("state.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_dir(&dir).unwrap();
        private_files([db.as_path(), dir.join("missing").as_path()]).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
        private_dir(&root.path().join("new/run")).unwrap();
        assert_eq!(mode(&root.path().join("new/run")), 0o700);
    }
}
