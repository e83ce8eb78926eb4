//! A writer for the `newc` cpio format, the format the Linux kernel unpacks as an initramfs.
//!
//! Only what an initramfs needs: directories, regular files, symlinks and character devices,
//! all owned by root, with mtime 0 so the same inputs give byte-identical archives. Paths are
//! relative (`bin/busybox`), normalised and checked: no `..`, no empty or `.` components, no
//! NUL. Each header is `070701` followed by thirteen 8-digit hex fields; the name (with its
//! NUL) and the data are each padded to a multiple of 4 bytes; the archive ends with the
//! `TRAILER!!!` entry and is padded to 512 bytes.

use std::io::{self, Write};

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const TRAILER: &str = "TRAILER!!!";

/// An entry cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    /// The path is absolute, empty, or has `..`, `.` or empty components.
    #[error("invalid archive path `{0}`")]
    InvalidPath(String),
    /// A file is larger than the format's 32-bit size field.
    #[error("`{0}` is too large for a cpio archive")]
    TooLarge(String),
    /// Writing to the underlying sink failed.
    #[error("cannot write the cpio archive")]
    Io(#[source] io::Error),
}

/// Streams a newc archive into `W`.
#[derive(Debug)]
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

fn check_path(path: &str) -> Result<(), CpioError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\0')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        Err(CpioError::InvalidPath(path.to_owned()))
    } else {
        Ok(())
    }
}

impl<W: Write> CpioWriter<W> {
    /// A writer appending to `out`.
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            next_ino: 1,
            written: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), CpioError> {
        self.out.write_all(bytes).map_err(CpioError::Io)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self, align: u64) -> Result<(), CpioError> {
        let n = (align - self.written % align) % align;
        self.put(&vec![0u8; n as usize])
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> Result<(), CpioError> {
        let size = u32::try_from(data.len()).map_err(|_| CpioError::TooLarge(name.to_owned()))?;
        let ino = if name == TRAILER { 0 } else { self.next_ino };
        self.next_ino += 1;
        let namesize = name.len() as u32 + 1;
        let header = format!(
            "070701{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{size:08x}\
             {maj:08x}{min:08x}{rmaj:08x}{rmin:08x}{namesize:08x}{check:08x}",
            uid = 0,
            gid = 0,
            mtime = 0,
            maj = 0,
            min = 0,
            rmaj = rdev.0,
            rmin = rdev.1,
            check = 0,
        );
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad(4)?;
        self.put(data)?;
        self.pad(4)
    }

    /// Adds a directory with permission bits `mode` (e.g. `0o755`).
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<(), CpioError> {
        check_path(path)?;
        self.entry(path, S_IFDIR | (mode & 0o7777), 2, (0, 0), &[])
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<(), CpioError> {
        check_path(path)?;
        self.entry(path, S_IFREG | (mode & 0o7777), 1, (0, 0), data)
    }

    /// Adds a symlink pointing at `target` (stored verbatim).
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), CpioError> {
        check_path(path)?;
        if target.is_empty() || target.contains('\0') {
            return Err(CpioError::InvalidPath(target.to_owned()));
        }
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// Adds a character device node.
    pub fn char_device(
        &mut self,
        path: &str,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        check_path(path)?;
        self.entry(path, S_IFCHR | (mode & 0o7777), 1, (major, minor), &[])
    }

    /// Writes the trailer, pads to 512 bytes and returns the sink.
    pub fn finish(mut self) -> Result<W, CpioError> {
        self.entry(TRAILER, 0, 1, (0, 0), &[])?;
        self.pad(512)?;
        self.out.flush().map_err(CpioError::Io)?;
        Ok(self.out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One parsed entry: (name, mode, rdev, data).
    pub(crate) type Entry = (String, u32, (u32, u32), Vec<u8>);

    /// A minimal newc reader for tests.
    pub(crate) fn parse(mut data: &[u8]) -> Vec<Entry> {
        let total = data.len();
        let mut out = Vec::new();
        let field = |h: &[u8], i: usize| {
            u32::from_str_radix(
                std::str::from_utf8(&h[6 + i * 8..14 + i * 8]).expect("ascii"),
                16,
            )
            .expect("hex")
        };
        loop {
            let off = total - data.len();
            assert_eq!(off % 4, 0);
            let h = &data[..110];
            assert_eq!(&h[..6], b"070701");
            let (mode, size, namesize) = (field(h, 1), field(h, 6) as usize, field(h, 11) as usize);
            let rdev = (field(h, 9), field(h, 10));
            assert_eq!((field(h, 2), field(h, 3), field(h, 5)), (0, 0, 0));
            let name = std::str::from_utf8(&data[110..110 + namesize - 1])
                .expect("utf8")
                .to_owned();
            let data_start = (110 + namesize).div_ceil(4) * 4;
            let body = data[data_start..data_start + size].to_vec();
            data = &data[(data_start + size).div_ceil(4) * 4..];
            if name == TRAILER {
                assert_eq!(total % 512, 0);
                assert!(data.iter().all(|&b| b == 0));
                return out;
            }
            out.push((name, mode, rdev, body));
        }
    }

    fn sample() -> Vec<u8> {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("bin", 0o755).expect("dir");
        w.file("bin/busybox", 0o755, b"\x7fELF...").expect("file");
        w.symlink("bin/sh", "busybox").expect("symlink");
        w.dir("dev", 0o755).expect("dir");
        w.char_device("dev/console", 0o600, 5, 1).expect("dev");
        w.file("init", 0o755, b"#!/bin/sh\necho hi\n")
            .expect("file");
        w.file("empty", 0o644, b"").expect("file");
        w.finish().expect("finish")
    }

    #[test]
    fn round_trip_through_own_reader() {
        let entries = parse(&sample());
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/busybox",
                "bin/sh",
                "dev",
                "dev/console",
                "init",
                "empty"
            ]
        );
        assert_eq!(entries[0].1, 0o040_755);
        assert_eq!(entries[1].1, 0o100_755);
        assert_eq!(entries[2].1, 0o120_777);
        assert_eq!(entries[2].3, b"busybox");
        assert_eq!(entries[4].1, 0o020_600);
        assert_eq!(entries[4].2, (5, 1));
        assert_eq!(entries[5].3, b"#!/bin/sh\necho hi\n");
    }

    #[test]
    fn deterministic() {
        assert_eq!(sample(), sample());
    }

    #[test]
    fn rejects_bad_paths() {
        let mut w = CpioWriter::new(Vec::new());
        for bad in ["", "/abs", "a/../b", "a//b", "./a", "a/", "nul\0"] {
            assert!(
                matches!(w.file(bad, 0o644, b""), Err(CpioError::InvalidPath(_))),
                "{bad:?}"
            );
        }
        assert!(w.symlink("x", "").is_err());
    }

    /// Lists and extracts with the system `cpio` (Debian package `cpio`).
    #[test]
    #[ignore = "needs the cpio tool (apt-get install cpio)"]
    fn round_trip_through_system_cpio() {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = dir.path().join("a.cpio");
        std::fs::write(&archive, sample()).expect("write");
        let list = Command::new("cpio")
            .args(["-t", "--quiet", "-F"])
            .arg(&archive)
            .output()
            .expect("cpio runs");
        assert!(list.status.success(), "{list:?}");
        let listed = String::from_utf8(list.stdout).expect("utf8");
        assert_eq!(
            listed.lines().collect::<Vec<_>>(),
            [
                "bin",
                "bin/busybox",
                "bin/sh",
                "dev",
                "dev/console",
                "init",
                "empty"
            ]
        );
        let out = dir.path().join("x");
        std::fs::create_dir(&out).expect("mkdir");
        let status = Command::new("cpio")
            .args(["-i", "-d", "--quiet", "--no-absolute-filenames", "-F"])
            .arg(&archive)
            .current_dir(&out)
            .stdin(Stdio::null())
            .status()
            .expect("cpio runs");
        assert!(status.success());
        assert_eq!(
            std::fs::read(out.join("init")).expect("init"),
            b"#!/bin/sh\necho hi\n"
        );
        assert_eq!(
            std::fs::read_link(out.join("bin/sh")).expect("link"),
            std::path::Path::new("busybox")
        );
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let meta = std::fs::metadata(out.join("bin/busybox")).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        let console = std::fs::symlink_metadata(out.join("dev/console")).expect("meta");
        assert!(console.file_type().is_char_device());
    }
}
