//! A VM's jail: staging its files into the jailer's chroot, its pid file, and tearing it down.
//!
//! Why: under the jailer Firecracker sees only `<chroot-base>/<exec-file-name>/<id>/root`
//! (see [`crate::args`]), so every file it is told about through the API must be in there and
//! named by its path *inside* the jail. [`stage`] puts them there before the jailer runs (the
//! jailer leaves an existing chroot alone) and returns the files' in-jail paths; [`pid`] reads
//! the jailer's record of Firecracker's pid; [`teardown`] removes the whole `<id>` directory
//! on delete and after a crash.
//!
//! Invariants:
//! - the kernel and initrd are hard-linked, or copied when the chroot base is on another file
//!   system (they are read-only to the guest, so a copy is equivalent);
//! - disks are hard-linked only: a copy of a writable disk would silently fork the VM's disk
//!   from the one banger keeps, so a chroot base on another file system than the state dir is
//!   an error naming the fix;
//! - names inside the jail are fixed (`vmlinux`, `initrd`, `disk<N>`), so nothing of a host
//!   path reaches the jail;
//! - [`teardown`] removes only `<chroot-base>/<exec-file-name>/<id>` for a valid jail id, and
//!   never follows a symlink out of it (`remove_dir_all` does not follow links).

use std::io;
use std::path::{Path, PathBuf};

use crate::args::{JailerArgs, JailerArgsError};

/// The files a VM's Firecracker reads: host paths going in, in-jail paths coming out of
/// [`stage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailFiles {
    /// The kernel.
    pub kernel: PathBuf,
    /// The initrd, if any.
    pub initrd: Option<PathBuf>,
    /// The disks, in drive order.
    pub disks: Vec<PathBuf>,
}

/// Why a jail could not be staged, read or removed.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// The jailer's arguments are invalid.
    #[error(transparent)]
    Args(#[from] JailerArgsError),
    /// A file operation failed.
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
    /// A disk cannot be hard-linked into the jail.
    #[error(
        "cannot link disk {} into the jail at {}: the jailer's chroot base must be on the same \
         file system as banger's state dir (a copy would fork the VM's disk)",
        disk.display(),
        jail.display()
    )]
    CrossDevice {
        /// The VM's disk.
        disk: PathBuf,
        /// Where it should have been linked.
        jail: PathBuf,
    },
    /// The pid file does not hold a pid.
    #[error("{} does not hold a pid", .0.display())]
    BadPid(PathBuf),
    /// The jailer binary does not exist.
    #[error("the jailer {} does not exist", .0.display())]
    MissingJailer(PathBuf),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> JailError + use<> {
    let path = path.to_path_buf();
    move |source| JailError::Io {
        action,
        path,
        source,
    }
}

/// The jail's `<chroot-base>/<exec-file-name>/<id>` directory (the parent of its root).
pub fn jail_dir(args: &JailerArgs) -> Result<PathBuf, JailError> {
    let root = args.chroot_dir()?;
    Ok(root
        .parent()
        .map_or_else(|| root.clone(), Path::to_path_buf))
}

/// Links (or, for the kernel and initrd, copies) `files` into the jail's root and returns
/// their in-jail paths. A failure removes what it staged.
pub fn stage(args: &JailerArgs, files: &JailFiles) -> Result<JailFiles, JailError> {
    let root = args.chroot_dir()?;
    std::fs::create_dir_all(&root).map_err(io_error("create", &root))?;
    let staged = stage_files(&root, files);
    if staged.is_err() {
        let _ = teardown(args);
    }
    staged
}

/// The in-jail paths [`stage`] gives `files`: `/vmlinux`, `/initrd`, `/disk<N>`.
pub fn jailed_names(files: &JailFiles) -> JailFiles {
    JailFiles {
        kernel: "/vmlinux".into(),
        initrd: files.initrd.as_ref().map(|_| "/initrd".into()),
        disks: (0..files.disks.len())
            .map(|i| PathBuf::from(format!("/disk{i}")))
            .collect(),
    }
}

fn stage_files(root: &Path, files: &JailFiles) -> Result<JailFiles, JailError> {
    let kernel = link_or_copy(&files.kernel, root, "vmlinux")?;
    let initrd = match &files.initrd {
        Some(initrd) => Some(link_or_copy(initrd, root, "initrd")?),
        None => None,
    };
    let mut disks = Vec::with_capacity(files.disks.len());
    for (i, disk) in files.disks.iter().enumerate() {
        let name = format!("disk{i}");
        let target = root.join(&name);
        replace_with_link(disk, &target).map_err(|e| {
            if e.kind() == io::ErrorKind::CrossesDevices {
                JailError::CrossDevice {
                    disk: disk.clone(),
                    jail: target.clone(),
                }
            } else {
                io_error("link a disk to", &target)(e)
            }
        })?;
        disks.push(Path::new("/").join(name));
    }
    let staged = JailFiles {
        kernel,
        initrd,
        disks,
    };
    debug_assert_eq!(staged, jailed_names(files));
    Ok(staged)
}

/// Creates (empty) each of `inside` (in-jail paths) in the jail's root, owned by the jail's
/// uid/gid, so Firecracker can write them after the drop.
pub fn create_owned(args: &JailerArgs, inside: &[&str]) -> Result<(), JailError> {
    let root = args.chroot_dir()?;
    for name in inside {
        let path = root.join(name.trim_start_matches('/'));
        std::fs::File::create(&path).map_err(io_error("create", &path))?;
        std::os::unix::fs::chown(&path, Some(args.uid), Some(args.gid))
            .map_err(io_error("chown", &path))?;
    }
    Ok(())
}

fn replace_with_link(source: &Path, target: &Path) -> io::Result<()> {
    match std::fs::remove_file(target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::hard_link(source, target)
}

fn link_or_copy(source: &Path, root: &Path, name: &str) -> Result<PathBuf, JailError> {
    let target = root.join(name);
    match replace_with_link(source, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            std::fs::copy(source, &target).map_err(io_error("copy into the jail", source))?;
        }
        Err(e) => return Err(io_error("link into the jail", source)(e)),
    }
    Ok(Path::new("/").join(name))
}

/// The jailer's pid file: `<root>/<exec-file-name>.pid`.
pub fn pid_file(args: &JailerArgs) -> Result<PathBuf, JailError> {
    let root = args.chroot_dir()?;
    let name = args
        .exec_file
        .file_name()
        .ok_or_else(|| JailerArgsError::ExecFile(args.exec_file.clone()))?;
    let mut file = name.to_os_string();
    file.push(".pid");
    Ok(root.join(file))
}

/// Firecracker's pid as the jailer recorded it; `None` while there is no pid file yet.
pub fn pid(args: &JailerArgs) -> Result<Option<u32>, JailError> {
    let path = pid_file(args)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| JailError::BadPid(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", &path)(e)),
    }
}

/// Removes the jail (`<chroot-base>/<exec-file-name>/<id>`); a missing one is fine.
pub fn teardown(args: &JailerArgs) -> Result<(), JailError> {
    let dir = jail_dir(args)?;
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove the jail", &dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn args(base: &Path) -> JailerArgs {
        JailerArgs {
            id: "banger-0123456789abcdef".to_owned(),
            exec_file: "/usr/bin/firecracker".into(),
            uid: 1000,
            gid: 1000,
            chroot_base_dir: base.to_path_buf(),
            netns: None,
            daemonize: false,
            new_pid_ns: false,
        }
    }

    fn spec(dir: &Path) -> JailFiles {
        for f in ["vmlinux", "initrd.img", "rootfs.ext4", "work.ext4"] {
            std::fs::write(dir.join(f), f).expect("write");
        }
        JailFiles {
            kernel: dir.join("vmlinux"),
            initrd: Some(dir.join("initrd.img")),
            disks: vec![dir.join("rootfs.ext4"), dir.join("work.ext4")],
        }
    }

    #[test]
    fn stages_hard_links_under_fixed_names_and_tears_down() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = args(&tmp.path().join("jail"));
        let s = spec(tmp.path());
        let jailed = stage(&a, &s).expect("staged");
        assert_eq!(jailed, jailed_names(&s));
        assert_eq!(jailed.kernel, Path::new("/vmlinux"));
        assert_eq!(jailed.initrd.as_deref(), Some(Path::new("/initrd")));
        assert_eq!(
            jailed.disks,
            [PathBuf::from("/disk0"), PathBuf::from("/disk1")]
        );
        let root = a.chroot_dir().expect("root");
        for (host, inside) in [(&s.kernel, "vmlinux"), (&s.disks[0], "disk0")] {
            let (h, j) = (
                std::fs::metadata(host).expect("host"),
                std::fs::metadata(root.join(inside)).expect("jail"),
            );
            assert_eq!(
                (h.dev(), h.ino()),
                (j.dev(), j.ino()),
                "{inside} is a hard link"
            );
        }
        // Staging again (a restart of a stopped VM) replaces the links.
        stage(&a, &s).expect("restaged");
        teardown(&a).expect("teardown");
        assert!(!jail_dir(&a).expect("dir").exists());
        assert!(s.disks[0].exists(), "the VM's own disk is untouched");
        teardown(&a).expect("a missing jail is fine");
    }

    #[test]
    fn a_missing_file_fails_and_leaves_no_jail() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = args(&tmp.path().join("jail"));
        let mut s = spec(tmp.path());
        s.disks[1] = tmp.path().join("missing.ext4");
        let err = stage(&a, &s).expect_err("missing disk");
        assert!(err.to_string().contains("disk1"), "{err}");
        assert!(!jail_dir(&a).expect("dir").exists());
    }

    #[test]
    fn pid_file_is_named_after_the_exec_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = args(tmp.path());
        assert_eq!(
            pid_file(&a).expect("pid file"),
            tmp.path()
                .join("firecracker/banger-0123456789abcdef/root/firecracker.pid")
        );
        assert_eq!(pid(&a).expect("no file yet"), None);
        std::fs::create_dir_all(a.chroot_dir().expect("root")).expect("mkdir");
        std::fs::write(pid_file(&a).expect("pid file"), "4242\n").expect("write");
        assert_eq!(pid(&a).expect("pid"), Some(4242));
        std::fs::write(pid_file(&a).expect("pid file"), "x").expect("write");
        assert!(matches!(pid(&a), Err(JailError::BadPid(_))));
    }
}
