//! Finding executables the way a shell would.
//!
//! The daemon picks its VMM by what is on `PATH`, the image builder runs e2fsprogs and
//! debootstrap, the CLI starts `bangerd`: all need "the first executable file of this name in
//! these directories". A candidate counts only if it is a regular file (after symlinks) with an
//! execute bit, so a stray non-executable file earlier in `PATH` does not shadow the real one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Whether `path` is a regular file (following symlinks) with at least one execute bit.
pub fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The directories of `$PATH`, in order (none when it is unset).
pub fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

/// The first executable `name` in `dirs`. A `name` with a `/` is not searched for: it is
/// returned when it is executable itself.
pub fn find_in<I>(name: &str, dirs: I) -> Option<PathBuf>
where
    I: IntoIterator,
    I::Item: AsRef<Path>,
{
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    if name.is_empty() {
        return None;
    }
    dirs.into_iter()
        .map(|dir| dir.as_ref().join(name))
        .find(|candidate| is_executable(candidate))
}

/// The first executable `name` on `$PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    find_in(name, path_dirs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, mode: u32) {
        std::fs::write(path, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn first_executable_wins() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        touch(&a.path().join("tool"), 0o644);
        touch(&b.path().join("tool"), 0o755);
        std::fs::create_dir(a.path().join("dir")).expect("mkdir");
        let dirs = [a.path(), b.path()];
        assert_eq!(find_in("tool", dirs), Some(b.path().join("tool")));
        assert_eq!(
            find_in("dir", dirs),
            None,
            "directories are not executables"
        );
        assert_eq!(find_in("missing", dirs), None);
        assert_eq!(find_in("", dirs), None);
    }

    #[test]
    fn names_with_a_slash_are_not_searched() {
        let a = tempfile::tempdir().expect("tempdir");
        let tool = a.path().join("tool");
        touch(&tool, 0o755);
        let name = tool.to_str().expect("utf-8");
        assert_eq!(
            find_in(name, [Path::new("/nonexistent")]),
            Some(tool.clone())
        );
        touch(&tool, 0o644);
        assert_eq!(find_in(name, [a.path()]), None);
    }

    #[test]
    fn sh_is_on_path() {
        assert!(find_on_path("sh").is_some());
    }
}
