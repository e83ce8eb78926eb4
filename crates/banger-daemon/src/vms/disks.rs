//! Per-VM disks: the system overlay and the work disk, and what is written into them before
//! boot.
//!
//! - The system disk is a copy-on-write view of the image's read-only rootfs. Device-mapper
//!   snapshots need a kernel feature this host may lack, so the portable strategy used here is
//!   a sparse copy (holes stay holes: only written blocks cost space and time). `doctor` reports
//!   the strategy.
//! - The work disk (mounted at `/root`) is a copy of the image's work seed grown to the
//!   requested size with `resize2fs`, or a fresh ext4 when the image has no seed.
//! - Pre-boot writes go straight into the ext4 image with `debugfs` (no mount, no root needed):
//!   banger's public key added to `/root/.ssh/authorized_keys` (root-owned, 0600 in a 0700
//!   dir; lines already there are kept) and `/root/.hushlogin`. Each write is read back, because debugfs reports some failures only on
//!   stderr.
//!
//! Every e2fsprogs call goes through `banger_image::ext4` (the one e2fsprogs layer, shared
//! with the image builder); this module decides what to do, that one how.

use std::path::{Path, PathBuf};

use banger_image::ext4::{self, Edits, Ext4Error, Kind};
use banger_model::Size;

/// How the system disk was made.
pub const OVERLAY_STRATEGY: &str = "sparse-copy";

/// Why disk preparation failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// A file operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An ext4 operation (mkfs, check, resize, debugfs) failed.
    #[error("cannot prepare the ext4 filesystem of a vm disk")]
    Ext4(#[from] Ext4Error),
    /// The key read back from the work disk is not the one written.
    #[error("the authorized key did not land in {}", path.display())]
    KeyNotWritten {
        /// The work disk.
        path: PathBuf,
    },
    /// A disk would have to shrink.
    #[error("{} is already {current}; disks only grow, so it cannot become {requested}", path.display())]
    Shrink {
        /// The disk.
        path: PathBuf,
        /// Its size now.
        current: Size,
        /// The size asked for.
        requested: Size,
    },
    /// The work disk would shrink.
    #[error("the work disk cannot be {requested}: the image's work seed is already {seed}")]
    TooSmall {
        /// Requested size.
        requested: Size,
        /// Seed size.
        seed: Size,
    },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DiskError + 'a {
    move |source| DiskError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Copies `src` to `dst` keeping holes (SEEK_DATA/SEEK_HOLE); `dst` must not exist.
pub fn sparse_copy(src: &Path, dst: &Path) -> Result<(), DiskError> {
    banger_util::sparse::copy(src, dst).map_err(|e| DiskError::Io {
        action: e.action,
        path: e.path,
        source: e.source,
    })
}

/// Refuses a work disk of `size` smaller than the image's `seed`.
pub fn check_work_size(seed: &Path, size: Size) -> Result<(), DiskError> {
    let seed_len = std::fs::metadata(seed).map_err(io("stat", seed))?.len();
    if seed_len > size.bytes() {
        return Err(DiskError::TooSmall {
            requested: size,
            seed: Size::from_bytes(seed_len),
        });
    }
    Ok(())
}

/// Makes the work disk at `dst` of `size`: the seed grown to size, or a fresh ext4.
pub fn make_work_disk(seed: Option<&Path>, dst: &Path, size: Size) -> Result<(), DiskError> {
    match seed {
        Some(seed) => {
            check_work_size(seed, size)?;
            sparse_copy(seed, dst)?;
            grow_work_disk(dst, size)?;
        }
        None => ext4::mkfs(None, dst, size.bytes(), "work")?,
    }
    Ok(())
}

/// Grows the ext4 work disk at `path` to `size`: extends the file (sparse), checks the file
/// system (`resize2fs` insists on a fresh check) and grows it to fill the file. The same size
/// is a no-op; a smaller one is refused, because shrinking could cut off the guest's data.
pub fn grow_work_disk(path: &Path, size: Size) -> Result<(), DiskError> {
    let current = std::fs::metadata(path).map_err(io("stat", path))?.len();
    if size.bytes() < current {
        return Err(DiskError::Shrink {
            path: path.to_path_buf(),
            current: Size::from_bytes(current),
            requested: size,
        });
    }
    if size.bytes() == current {
        return Ok(());
    }
    ext4::grow(path, size.bytes())?;
    Ok(())
}

/// Writes the VM's own SSH host key (made on the host) into its system disk, so the guest
/// starts sshd at once instead of running `ssh-keygen` (hundreds of milliseconds under
/// emulation). The two halves pass through files in `scratch` (the VM's directory) only for
/// the debugfs run.
pub fn write_host_key(
    rootfs: &Path,
    scratch: &Path,
    private: &str,
    public: &str,
) -> Result<(), DiskError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let guest_private = banger_guest::paths::HOST_KEY;
    let guest_public = format!("{guest_private}.pub");
    let staged = [
        (scratch.join(".host-key"), private, guest_private, 0o600),
        (
            scratch.join(".host-key.pub"),
            public,
            guest_public.as_str(),
            0o644,
        ),
    ];
    let cleanup = || {
        for (host, ..) in &staged {
            let _ = std::fs::remove_file(host);
        }
    };
    cleanup();
    let written = staged.iter().try_for_each(|(host, text, _, _)| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(host)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(io("write", host))
    });
    let applied = written.and_then(|()| {
        let mut edits = Edits::new();
        edits.mkdir_p("/etc/ssh");
        for (host, _, guest, mode) in &staged {
            edits
                .put(host, guest)
                .mode(guest, Kind::File, *mode)
                .owner(guest, 0, 0);
        }
        ext4::apply(rootfs, &edits).map_err(DiskError::from)
    });
    cleanup();
    applied
}

/// Writes banger's key and `.hushlogin` into a work disk (its root is the guest's `/root`).
///
/// Idempotent, so it runs before every boot: the lines already in `authorized_keys` (from the
/// image's work seed, or added in the guest) are kept and banger's key is added once;
/// `.hushlogin` is created only when missing.
pub fn write_guest_login(work_disk: &Path, authorized_key: &str) -> Result<(), DiskError> {
    let (ssh, key, hush) = ("/.ssh", "/.ssh/authorized_keys", "/.hushlogin");
    let existing = match ext4::stat(work_disk, key)? {
        Some(s) if !s.is_dir => ext4::read_file(work_disk, key)?,
        _ => Vec::new(),
    };
    let merged = merge_authorized_keys(&String::from_utf8_lossy(&existing), authorized_key);
    let dir = tempfile::tempdir().map_err(io("create temp dir for", work_disk))?;
    let key_file = dir.path().join("authorized_keys");
    std::fs::write(&key_file, &merged).map_err(io("write", &key_file))?;
    let mut edits = Edits::new();
    edits
        .mkdir_p(ssh)
        .put(&key_file, key)
        .mode(ssh, Kind::Dir, 0o700)
        .owner(ssh, 0, 0)
        .mode(key, Kind::File, 0o600)
        .owner(key, 0, 0);
    if ext4::stat(work_disk, hush)?.is_none() {
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").map_err(io("write", &empty))?;
        edits.put(&empty, hush).owner(hush, 0, 0);
    }
    ext4::apply(work_disk, &edits)?;
    let written = ext4::read_file(work_disk, key)?;
    if !has_key(&String::from_utf8_lossy(&written), authorized_key) {
        return Err(DiskError::KeyNotWritten {
            path: work_disk.to_path_buf(),
        });
    }
    Ok(())
}

fn has_key(text: &str, key: &str) -> bool {
    text.lines().any(|line| line.trim() == key.trim())
}

/// `existing` with `key` added as a line of its own unless a line already is that key.
fn merge_authorized_keys(existing: &str, key: &str) -> String {
    let mut out = existing.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !has_key(existing, key) {
        out.push_str(key.trim());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banger_s_key_is_added_once_and_other_lines_are_kept() {
        let key = "ssh-ed25519 AAAAKEY banger";
        assert_eq!(merge_authorized_keys("", key), format!("{key}\n"));
        assert_eq!(
            merge_authorized_keys("ssh-rsa OTHER user", key),
            format!("ssh-rsa OTHER user\n{key}\n")
        );
        let once = merge_authorized_keys("# comment\nssh-rsa OTHER user\n", key);
        assert_eq!(once, format!("# comment\nssh-rsa OTHER user\n{key}\n"));
        assert_eq!(merge_authorized_keys(&once, &format!(" {key}\n")), once);
    }

    #[test]
    fn the_login_keeps_the_seed_s_keys_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("seed");
        std::fs::create_dir_all(tree.join(".ssh")).unwrap();
        std::fs::write(
            tree.join(".ssh/authorized_keys"),
            "ssh-rsa SEED user@image\n",
        )
        .unwrap();
        std::fs::write(tree.join(".hushlogin"), "kept").unwrap();
        let work = dir.path().join("work.ext4");
        ext4::mkfs(Some(&tree), &work, 16 << 20, "work").unwrap();
        let key = "ssh-ed25519 AAAAKEY banger";
        write_guest_login(&work, key).unwrap();
        write_guest_login(&work, key).unwrap();
        let keys = ext4::read_file(&work, "/.ssh/authorized_keys").unwrap();
        assert_eq!(
            String::from_utf8(keys).unwrap(),
            format!("ssh-rsa SEED user@image\n{key}\n")
        );
        assert_eq!(ext4::read_file(&work, "/.hushlogin").unwrap(), b"kept");
    }

    #[test]
    fn work_disks_grow_from_a_seed_and_carry_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let seed_dir = dir.path().join("seed");
        std::fs::create_dir(&seed_dir).unwrap();
        std::fs::write(seed_dir.join("keep.txt"), "from the image").unwrap();
        let seed = dir.path().join("seed.ext4");
        ext4::mkfs(Some(&seed_dir), &seed, 16 << 20, "seed").unwrap();
        let work = dir.path().join("work.ext4");
        make_work_disk(Some(&seed), &work, Size::from_mib(64)).unwrap();
        assert_eq!(std::fs::metadata(&work).unwrap().len(), 64 << 20);
        write_guest_login(&work, "ssh-ed25519 AAAATEST banger").unwrap();
        let key = ext4::stat(&work, "/.ssh/authorized_keys").unwrap().unwrap();
        assert_eq!((key.mode, key.uid, key.gid), (0o600, 0, 0));
        let ssh = ext4::stat(&work, "/.ssh").unwrap().unwrap();
        assert_eq!((ssh.is_dir, ssh.mode, ssh.uid), (true, 0o700, 0));
        assert!(ext4::stat(&work, "/.hushlogin").unwrap().is_some());
        let kept = ext4::read_file(&work, "/keep.txt").unwrap();
        assert_eq!(kept, b"from the image");
        assert_eq!(ext4::geometry(&work).unwrap().bytes(), 64 << 20);
        assert!(matches!(
            make_work_disk(Some(&seed), &dir.path().join("tiny"), Size::from_mib(8)),
            Err(DiskError::TooSmall { .. })
        ));
        // Growing keeps the data and fills the new size; shrinking is refused.
        grow_work_disk(&work, Size::from_mib(96)).unwrap();
        assert_eq!(std::fs::metadata(&work).unwrap().len(), 96 << 20);
        let kept = ext4::read_file(&work, "/keep.txt").unwrap();
        assert_eq!(kept, b"from the image");
        assert_eq!(ext4::geometry(&work).unwrap().bytes(), 96 << 20);
        grow_work_disk(&work, Size::from_mib(96)).unwrap();
        assert!(matches!(
            grow_work_disk(&work, Size::from_mib(64)),
            Err(DiskError::Shrink { .. })
        ));
        assert_eq!(std::fs::metadata(&work).unwrap().len(), 96 << 20);
        let fresh = dir.path().join("fresh.ext4");
        make_work_disk(None, &fresh, Size::from_mib(32)).unwrap();
        write_guest_login(&fresh, "ssh-ed25519 AAAB banger").unwrap();
        assert_eq!(ext4::geometry(&fresh).unwrap().bytes(), 32 << 20);
        assert!(matches!(
            write_guest_login(&dir.path().join("not-a-disk"), "ssh-ed25519 AAAC banger"),
            Err(DiskError::Ext4(_))
        ));
    }
}
