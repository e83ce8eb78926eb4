//! Read-only facts about a local repository that argument checks need.
//!
//! `vm run` must refuse up front when the repo wants its tools bootstrapped (mise) but the
//! VM would have no network; that only needs the repo root and a look for mise's files. No
//! git process runs here and nothing is written.

use std::path::{Path, PathBuf};

/// Files that make `vm run` bootstrap tools with mise.
pub const MISE_FILES: [&str; 3] = [".mise.toml", "mise.toml", ".tool-versions"];

/// The root of the git repository containing `dir` (the nearest ancestor with `.git`).
pub fn root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// The first mise file at the root of `dir`'s repository (or in `dir` outside a repo).
pub fn mise_file(dir: &Path) -> Option<PathBuf> {
    let base = root(dir).unwrap_or_else(|| dir.to_path_buf());
    MISE_FILES
        .iter()
        .map(|f| base.join(f))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_root_from_a_subdirectory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::create_dir_all(dir.path().join("src/deep")).unwrap();
        std::fs::write(dir.path().join(".tool-versions"), "rust 1.92\n").unwrap();
        let deep = dir.path().join("src/deep");
        assert_eq!(root(&deep).as_deref(), Some(dir.path()));
        assert_eq!(mise_file(&deep), Some(dir.path().join(".tool-versions")));
    }

    #[test]
    fn no_mise_file_means_no_bootstrap() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(mise_file(dir.path()), None);
    }
}
