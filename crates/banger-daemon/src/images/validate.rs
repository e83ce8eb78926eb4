//! Checking what a registration is handed before anything is copied.
//!
//! Two questions, both answered before the daemon reads a byte of the file:
//! - **May the requester read it?** The daemon may run with more privilege than the user who
//!   asks (root today, and a narrow helper later), so it never reads a path the requesting
//!   peer could not read itself: the file and every directory above it are checked against
//!   the peer's uid and groups (from `SO_PEERCRED` and `/proc/<pid>/status`). Root may read
//!   anything.
//! - **Is it what it claims to be?** A kernel must be a bzImage or an x86-64 `vmlinux` (an
//!   ELF executable that carries the kernel's `Linux version` banner), an initrd a cpio
//!   archive (plain or compressed), a root filesystem or work seed an ext4 image; magic
//!   numbers decide, so `/etc/shadow`, an empty file or `/bin/true` are refused.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Who asked: the peer's uid and groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// Effective uid of the peer.
    pub uid: u32,
    /// Its primary and supplementary groups.
    pub groups: Vec<u32>,
}

impl Requester {
    /// Root: may read everything.
    pub fn root() -> Self {
        Self {
            uid: 0,
            groups: vec![0],
        }
    }

    /// The peer `uid` (process `pid`), with its groups read from `/proc/<pid>/status`. A peer
    /// whose groups cannot be read keeps only its uid (group permissions then never apply).
    pub fn from_peer(uid: u32, pid: Option<i32>) -> Self {
        let groups = pid
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .map(|status| groups_of(&status))
            .unwrap_or_default();
        Self { uid, groups }
    }

    fn may(&self, meta: &std::fs::Metadata, bits: u32) -> bool {
        if self.uid == 0 {
            return true;
        }
        let mode = meta.mode();
        if meta.uid() == self.uid {
            mode & (bits << 6) != 0
        } else if self.groups.contains(&meta.gid()) {
            mode & (bits << 3) != 0
        } else {
            mode & bits != 0
        }
    }
}

/// The `Gid:` (effective) and `Groups:` entries of a `/proc/<pid>/status` text.
fn groups_of(status: &str) -> Vec<u32> {
    let mut groups = Vec::new();
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("Gid:") {
            groups.extend(
                rest.split_whitespace()
                    .nth(1)
                    .and_then(|g| g.parse::<u32>().ok()),
            );
        } else if let Some(rest) = line.strip_prefix("Groups:") {
            groups.extend(
                rest.split_whitespace()
                    .filter_map(|g| g.parse::<u32>().ok()),
            );
        }
    }
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// Why a file was refused. Messages name the file and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileRefused {
    /// Not absolute.
    #[error("{what} {path} must be an absolute path")]
    Relative {
        /// Which input.
        what: &'static str,
        /// As given.
        path: String,
    },
    /// Missing, or not a regular file.
    #[error("{what} {path} is not a regular file")]
    NotAFile {
        /// Which input.
        what: &'static str,
        /// As given.
        path: String,
    },
    /// The requester could not read it.
    #[error(
        "{what} {path} is not readable by you (uid {uid}); banger reads only files you can read"
    )]
    NotReadable {
        /// Which input.
        what: &'static str,
        /// As given.
        path: String,
        /// The requester.
        uid: u32,
    },
    /// The content is not of the expected kind.
    #[error("{what} {path} is not {expected}")]
    WrongKind {
        /// Which input.
        what: &'static str,
        /// As given.
        path: String,
        /// What it must be.
        expected: &'static str,
    },
}

/// What a registered file must contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// An ELF `vmlinux` or a bzImage.
    Kernel,
    /// A cpio archive, plain or compressed (gzip, zstd, xz, lz4, bzip2, lzma).
    Initrd,
    /// An ext4 (or ext2/3) file system image.
    Ext4,
}

impl FileKind {
    fn expected(self) -> &'static str {
        match self {
            Self::Kernel => "a kernel (an ELF vmlinux or a bzImage)",
            Self::Initrd => "an initramfs (a cpio archive, optionally compressed)",
            Self::Ext4 => "an ext4 file system image",
        }
    }

    fn matches(self, head: &[u8], path: &Path) -> bool {
        let at =
            |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
        match self {
            Self::Kernel => {
                at(0x202, b"HdrS")
                    || (at(0, b"\x7fELF\x02\x01")
                        // ET_EXEC, EM_X86_64: a vmlinux is a static executable…
                        && at(16, &[2, 0, 62, 0])
                        // …with the kernel's banner in it (a program binary has none).
                        && contains(path, b"Linux version "))
            }
            Self::Initrd => {
                at(0, b"070701")
                    || at(0, b"070702")
                    || at(0, b"\x1f\x8b")
                    || at(0, b"\x28\xb5\x2f\xfd")
                    || at(0, b"\xfd7zXZ\x00")
                    || at(0, b"\x02\x21\x4c\x18")
                    || at(0, b"\x04\x22\x4d\x18")
                    || at(0, b"BZh")
                    || at(0, b"\x5d\x00\x00")
            }
            Self::Ext4 => at(1024 + 56, &[0x53, 0xef]),
        }
    }
}

/// Bytes read to decide the kind (the ext4 superblock magic sits at 1080).
const HEAD: usize = 4096;

/// Checks that `path` is an absolute regular file that `requester` may read and whose
/// content is of `kind`.
pub fn check_file(
    what: &'static str,
    path: &Path,
    kind: FileKind,
    requester: &Requester,
) -> Result<(), FileRefused> {
    let shown = path.display().to_string();
    if !path.is_absolute() {
        return Err(FileRefused::Relative { what, path: shown });
    }
    let not_readable = || FileRefused::NotReadable {
        what,
        path: shown.clone(),
        uid: requester.uid,
    };
    // Every directory above must let the requester through (search permission).
    let mut dir = path.parent();
    while let Some(d) = dir {
        match std::fs::metadata(d) {
            Ok(meta) if requester.may(&meta, 0o1) => {}
            _ => return Err(not_readable()),
        }
        dir = d.parent();
    }
    let meta = match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => meta,
        _ => return Err(FileRefused::NotAFile { what, path: shown }),
    };
    if !requester.may(&meta, 0o4) {
        return Err(not_readable());
    }
    let mut head = Vec::with_capacity(HEAD);
    std::fs::File::open(path)
        .and_then(|f| f.take(HEAD as u64).read_to_end(&mut head))
        .map_err(|_| not_readable())?;
    if !kind.matches(&head, path) {
        return Err(FileRefused::WrongKind {
            what,
            path: shown,
            expected: kind.expected(),
        });
    }
    Ok(())
}

/// Whether the file contains `needle` (read in chunks, bounded to 256 MiB).
fn contains(path: &Path, needle: &[u8]) -> bool {
    const CHUNK: usize = 1 << 20;
    const LIMIT: u64 = 256 << 20;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut reader = std::io::BufReader::new(file.take(LIMIT));
    let mut window: Vec<u8> = Vec::with_capacity(CHUNK + needle.len());
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        window.extend_from_slice(&buf[..n]);
        if window.windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        let keep = window.len().saturating_sub(needle.len());
        window.drain(..keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn stand_in_vmlinux() -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
        bytes[16..20].copy_from_slice(&[2, 0, 62, 0]);
        bytes.extend_from_slice(b"Linux version 6.1.0-stand-in (test)\n");
        bytes
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn kinds_are_told_by_their_magic() {
        let dir = tempfile::tempdir().unwrap();
        let me = Requester::root();
        let elf = write(dir.path(), "vmlinux", &stand_in_vmlinux());
        assert!(check_file("kernel", &elf, FileKind::Kernel, &me).is_ok());
        // An ELF program is not a kernel.
        let mut program = stand_in_vmlinux();
        program[16] = 3; // ET_DYN, as PIE binaries are
        let program = write(dir.path(), "true", &program);
        assert!(check_file("kernel", &program, FileKind::Kernel, &me).is_err());
        let mut bannerless = stand_in_vmlinux();
        bannerless.truncate(64);
        let bannerless = write(dir.path(), "static", &bannerless);
        assert!(check_file("kernel", &bannerless, FileKind::Kernel, &me).is_err());
        let mut bz = vec![0u8; 0x300];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        let bz = write(dir.path(), "bzImage", &bz);
        assert!(check_file("kernel", &bz, FileKind::Kernel, &me).is_ok());
        let cpio = write(dir.path(), "initrd", b"070701000000");
        assert!(check_file("initrd", &cpio, FileKind::Initrd, &me).is_ok());
        let gz = write(dir.path(), "initrd.gz", b"\x1f\x8b\x08\x00");
        assert!(check_file("initrd", &gz, FileKind::Initrd, &me).is_ok());
        let mut ext4 = vec![0u8; 2048];
        ext4[1080] = 0x53;
        ext4[1081] = 0xef;
        let ext4 = write(dir.path(), "rootfs.ext4", &ext4);
        assert!(check_file("rootfs", &ext4, FileKind::Ext4, &me).is_ok());

        let empty = write(dir.path(), "empty", b"");
        let text = write(dir.path(), "shadow", b"root:*:19000:0:99999:7:::\n");
        for (path, kind) in [
            (&empty, FileKind::Kernel),
            (&text, FileKind::Kernel),
            (&elf, FileKind::Ext4),
            (&text, FileKind::Initrd),
            (&empty, FileKind::Ext4),
        ] {
            let err = check_file("input", path, kind, &me).unwrap_err();
            assert!(matches!(err, FileRefused::WrongKind { .. }), "{err}");
        }
        let err = check_file("kernel", Path::new("vmlinux"), FileKind::Kernel, &me).unwrap_err();
        assert!(matches!(err, FileRefused::Relative { .. }));
        let err = check_file("kernel", dir.path(), FileKind::Kernel, &me).unwrap_err();
        assert!(matches!(err, FileRefused::NotAFile { .. }));
    }

    #[test]
    fn a_file_the_requester_cannot_read_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let secret = write(dir.path(), "secret", &stand_in_vmlinux());
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let owner = std::fs::metadata(&secret).unwrap().uid();
        let stranger = Requester {
            uid: owner.wrapping_add(4242),
            groups: vec![4242],
        };
        let err = check_file("kernel", &secret, FileKind::Kernel, &stranger).unwrap_err();
        assert!(matches!(err, FileRefused::NotReadable { .. }), "{err}");
        assert!(err.to_string().contains("not readable by you"), "{err}");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(check_file("kernel", &secret, FileKind::Kernel, &stranger).is_ok());
        // A directory on the way that the stranger may not search hides the file.
        let inner = dir.path().join("inner");
        std::fs::create_dir(&inner).unwrap();
        let hidden = write(&inner, "vmlinux", &stand_in_vmlinux());
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = check_file("kernel", &hidden, FileKind::Kernel, &stranger).unwrap_err();
        assert!(matches!(err, FileRefused::NotReadable { .. }), "{err}");
        let owner_req = Requester {
            uid: owner,
            groups: Vec::new(),
        };
        assert!(check_file("kernel", &hidden, FileKind::Kernel, &owner_req).is_ok());
    }

    #[test]
    fn groups_come_from_proc_status() {
        let status = "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t100\t1000\t1000\nGroups:\t27 1000 \n";
        assert_eq!(groups_of(status), [27, 100, 1000]);
    }
}
