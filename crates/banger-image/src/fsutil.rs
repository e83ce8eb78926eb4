//! File-system helpers shared by the builders: chroot-style path resolution, safe removal of
//! staging trees, and file injection.
//!
//! A debootstrap tree is a foreign root: its `/sbin` is a symlink to `usr/sbin`, and a symlink
//! may point anywhere. Writing a caller's file to `/sbin/banger-init` must follow such links
//! *inside* the tree, never out of it, so [`resolve_in_root`] resolves each component itself,
//! clamping `..` and absolute targets to the tree's root. Removing a failed staging tree must
//! never descend into a mount (debootstrap mounts `/proc` inside its target), so
//! [`remove_tree`] checks `/proc/self/mountinfo` first.

use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::cmd;

/// Most symlinks followed while resolving one path (as the kernel's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// A staging tree could not be removed or a path could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// I/O error on `path`.
    #[error("i/o error on {path}")]
    Io {
        /// Path.
        path: String,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// Mounts remain inside a tree that should be removed.
    #[error("refusing to remove {path}: {mounts} mount(s) remain inside it")]
    StillMounted {
        /// Tree.
        path: String,
        /// Number of mounts.
        mounts: usize,
    },
    /// A guest path is not absolute or normal (`..`).
    #[error("invalid guest path `{0}` (must be absolute, without `..`)")]
    InvalidGuestPath(String),
    /// Too many symlinks.
    #[error("too many symlinks resolving `{0}`")]
    SymlinkLoop(String),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FsError + '_ {
    move |source| FsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Decodes the octal escapes (`\040`) mountinfo uses for spaces and friends.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or below `dir` in `mountinfo` text, deepest first.
pub(crate) fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mp| mp.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

fn current_mounts_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| mounts_under(&text, dir))
        .unwrap_or_default()
}

/// Removes `dir` recursively after unmounting anything mounted inside it.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), FsError> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(());
    }
    let dir = std::fs::canonicalize(dir).map_err(io_err(dir))?;
    for mp in current_mounts_under(&dir) {
        if let Ok(mut umount) = cmd::command("umount") {
            // Best effort; the re-check below decides.
            let _ = cmd::run(umount.arg("--").arg(&mp), &[0]);
        }
    }
    let left = current_mounts_under(&dir);
    if !left.is_empty() {
        return Err(FsError::StillMounted {
            path: dir.display().to_string(),
            mounts: left.len(),
        });
    }
    std::fs::remove_dir_all(&dir).map_err(io_err(&dir))
}

/// Checks a guest path: absolute, and only normal components.
pub(crate) fn check_guest_path(guest: &Path) -> Result<Vec<&OsStr>, FsError> {
    let invalid = || FsError::InvalidGuestPath(guest.display().to_string());
    let mut comps = guest.components();
    if comps.next() != Some(Component::RootDir) {
        return Err(invalid());
    }
    let parts: Vec<&OsStr> = comps
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(invalid()),
        })
        .collect::<Result<_, _>>()?;
    if parts.is_empty() {
        return Err(invalid());
    }
    Ok(parts)
}

/// Resolves directory `guest` (absolute, inside the tree at `root`) to a host path, following
/// symlinks as if `root` were `/` and creating missing directories with mode 0755 (0700 below
/// `/root`).
pub(crate) fn resolve_dir_in_root(root: &Path, guest: &Path) -> Result<PathBuf, FsError> {
    let mut pending: Vec<std::ffi::OsString> = guest
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            _ => None,
        })
        .rev()
        .collect();
    // `current` is always root-relative and never escapes.
    let mut current: Vec<std::ffi::OsString> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            current.pop();
            continue;
        }
        if part == "." {
            continue;
        }
        let host: PathBuf = std::iter::once(root.as_os_str())
            .chain(current.iter().map(|c| c.as_os_str()))
            .chain(std::iter::once(part.as_os_str()))
            .collect();
        match std::fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(FsError::SymlinkLoop(guest.display().to_string()));
                }
                let target = std::fs::read_link(&host).map_err(io_err(&host))?;
                if target.is_absolute() {
                    current.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_owned()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            Ok(meta) if meta.is_dir() => current.push(part),
            Ok(_) => {
                return Err(FsError::Io {
                    path: host.display().to_string(),
                    source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&host).map_err(io_err(&host))?;
                // Root's home is private: anything created below it is too (`~/.ssh`).
                let private = current.first().is_some_and(|c| c == "root");
                set_mode(&host, if private { 0o700 } else { 0o755 })?;
                current.push(part);
            }
            Err(e) => return Err(io_err(&host)(e)),
        }
    }
    Ok(std::iter::once(root.as_os_str())
        .chain(current.iter().map(|c| c.as_os_str()))
        .collect())
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), FsError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

/// Copies host file `src` to `guest` inside the tree at `root` with `mode`, replacing any
/// existing file or symlink there (a symlink is replaced, not followed).
pub(crate) fn install_file(
    root: &Path,
    guest: &Path,
    src: &Path,
    mode: u32,
) -> Result<(), FsError> {
    let parts = check_guest_path(guest)?;
    let (name, parents) = parts
        .split_last()
        .ok_or_else(|| FsError::InvalidGuestPath(guest.display().to_string()))?;
    let parent_guest: PathBuf = std::iter::once(OsStr::new("/"))
        .chain(parents.iter().copied())
        .collect();
    let dir = resolve_dir_in_root(root, &parent_guest)?;
    let dest = dir.join(name);
    if let Ok(meta) = std::fs::symlink_metadata(&dest) {
        if meta.is_dir() {
            return Err(FsError::Io {
                path: dest.display().to_string(),
                source: io::Error::new(io::ErrorKind::IsADirectory, "is a directory"),
            });
        }
        std::fs::remove_file(&dest).map_err(io_err(&dest))?;
    }
    std::fs::copy(src, &dest).map_err(io_err(src))?;
    set_mode(&dest, mode)
}

/// Writes `contents` to `guest` inside `root` (same rules as [`install_file`]).
pub(crate) fn write_guest_file(
    root: &Path,
    guest: &Path,
    contents: &[u8],
    mode: u32,
) -> Result<(), FsError> {
    let tmp = tempfile::NamedTempFile::new().map_err(io_err(Path::new("/tmp")))?;
    std::fs::write(tmp.path(), contents).map_err(io_err(tmp.path()))?;
    install_file(root, guest, tmp.path(), mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn mountinfo_parsing() {
        let text = "\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
90 22 0:5 / /var/tmp/stage/rootfs/proc rw - proc proc rw
91 90 0:6 / /var/tmp/stage/rootfs/proc/sys/fs/binfmt_misc rw - binfmt_misc x rw
92 22 0:7 / /var/tmp/stage\\040two/sys rw - sysfs sysfs rw
93 22 0:8 / /var/tmp/stagefoo rw - tmpfs t rw
";
        assert_eq!(
            mounts_under(text, Path::new("/var/tmp/stage")),
            [
                PathBuf::from("/var/tmp/stage/rootfs/proc/sys/fs/binfmt_misc"),
                PathBuf::from("/var/tmp/stage/rootfs/proc"),
            ]
        );
        assert_eq!(
            mounts_under(text, Path::new("/var/tmp/stage two")),
            [PathBuf::from("/var/tmp/stage two/sys")]
        );
    }

    #[test]
    fn guest_path_checks() {
        assert!(check_guest_path(Path::new("/sbin/init")).is_ok());
        for bad in ["sbin/init", "/", "/a/../b", "/a/./b"] {
            // `Path::components` drops interior `.`, so "/a/./b" is fine as "/a/b".
            if bad == "/a/./b" {
                assert!(check_guest_path(Path::new(bad)).is_ok());
                continue;
            }
            assert!(check_guest_path(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn install_follows_symlinks_inside_root_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/sbin")).expect("mkdir");
        symlink("usr/sbin", r.join("sbin")).expect("symlink");
        // An absolute escape attempt and a `..` escape attempt.
        symlink("/etc", r.join("evil_abs")).expect("symlink");
        symlink("../../../../../../tmp", r.join("evil_rel")).expect("symlink");
        let src = r.join("src-file");
        std::fs::write(&src, b"agent").expect("write");

        install_file(r, Path::new("/sbin/banger-init"), &src, 0o755).expect("install");
        assert_eq!(
            std::fs::read(r.join("usr/sbin/banger-init")).expect("read"),
            b"agent"
        );

        install_file(r, Path::new("/evil_abs/x"), &src, 0o644).expect("install");
        assert!(
            r.join("etc/x").is_file(),
            "absolute link clamped to the root"
        );
        install_file(r, Path::new("/evil_rel/y"), &src, 0o644).expect("install");
        assert!(r.join("tmp/y").is_file(), "`..` clamped at the root");

        std::fs::create_dir(r.join("root")).expect("mkdir");
        install_file(r, Path::new("/root/.ssh/authorized_keys"), &src, 0o600).expect("install");
        let ssh = std::fs::metadata(r.join("root/.ssh"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(ssh & 0o777, 0o700);
        install_file(r, Path::new("/new/dir/z"), &src, 0o600).expect("install");
        let mode = std::fs::metadata(r.join("new/dir/z"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        // Replaces an existing symlink instead of writing through it.
        symlink("/etc/passwd", r.join("usr/sbin/linked")).expect("symlink");
        install_file(r, Path::new("/sbin/linked"), &src, 0o644).expect("install");
        assert!(
            !std::fs::symlink_metadata(r.join("usr/sbin/linked"))
                .expect("meta")
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn symlink_loop_is_an_error() {
        let root = tempfile::tempdir().expect("tempdir");
        symlink("b", root.path().join("a")).expect("symlink");
        symlink("a", root.path().join("b")).expect("symlink");
        assert!(matches!(
            resolve_dir_in_root(root.path(), Path::new("/a/x")),
            Err(FsError::SymlinkLoop(_))
        ));
    }

    #[test]
    fn remove_tree_removes_and_tolerates_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dir.path().join("t");
        std::fs::create_dir_all(tree.join("a/b")).expect("mkdir");
        std::fs::write(tree.join("a/b/f"), b"x").expect("write");
        remove_tree(&tree).expect("remove");
        assert!(!tree.exists());
        remove_tree(&tree).expect("missing is fine");
    }
}
