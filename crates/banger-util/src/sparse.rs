//! Copying sparse files: disk images and guest RAM files are mostly holes, and a plain copy
//! would write every hole out as zeros (gigabytes on disk, and all of it read back later).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// A failed copy: the step and the file it failed on.
#[derive(Debug)]
pub struct CopyError {
    /// What was being done (`open`, `read`, `write`, …).
    pub action: &'static str,
    /// The file it was done to.
    pub path: PathBuf,
    /// Why it failed.
    pub source: std::io::Error,
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot {} {}", self.action, self.path.display())
    }
}

impl std::error::Error for CopyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Copies `src` to `dst` (which must not exist) keeping its holes, and syncs `dst`.
pub fn copy(src: &Path, dst: &Path) -> Result<(), CopyError> {
    let on = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| CopyError {
            action,
            path,
            source,
        }
    };
    let mut input = File::open(src).map_err(on("open", src))?;
    let len = input.metadata().map_err(on("stat", src))?.len();
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(on("create", dst))?;
    output.set_len(len).map_err(on("size", dst))?;
    let mut offset: i64 = 0;
    let end = i64::try_from(len).unwrap_or(i64::MAX);
    let mut buf = vec![0u8; 1 << 20];
    while offset < end {
        let data = match nix::unistd::lseek(input.as_fd(), offset, nix::unistd::Whence::SeekData) {
            Ok(d) => d,
            Err(nix::errno::Errno::ENXIO) => break, // only a hole remains
            Err(e) => return Err(on("seek data in", src)(e.into())),
        };
        let hole = nix::unistd::lseek(input.as_fd(), data, nix::unistd::Whence::SeekHole)
            .map_err(|e| on("seek hole in", src)(e.into()))?;
        let start = u64::try_from(data).unwrap_or(0);
        input
            .seek(SeekFrom::Start(start))
            .map_err(on("seek", src))?;
        output
            .seek(SeekFrom::Start(start))
            .map_err(on("seek", dst))?;
        let mut remaining = u64::try_from(hole - data).unwrap_or(0);
        while remaining > 0 {
            let want = usize::try_from(remaining.min(buf.len() as u64)).unwrap_or(buf.len());
            let n = input.read(&mut buf[..want]).map_err(on("read", src))?;
            if n == 0 {
                break;
            }
            output.write_all(&buf[..n]).map_err(on("write", dst))?;
            remaining -= n as u64;
        }
        offset = hole;
    }
    output.sync_all().map_err(on("sync", dst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_stay_holes_and_data_is_copied() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        let mut f = File::create(&src).expect("create");
        f.set_len(64 << 20).expect("len");
        f.seek(SeekFrom::Start(32 << 20)).expect("seek");
        f.write_all(b"middle").expect("write");
        f.seek(SeekFrom::Start((64 << 20) - 3)).expect("seek");
        f.write_all(b"end").expect("write");
        drop(f);
        let dst = dir.path().join("dst");
        copy(&src, &dst).expect("copy");
        assert_eq!(
            std::fs::read(&src).expect("src"),
            std::fs::read(&dst).expect("dst")
        );
        let blocks = std::fs::metadata(&dst).expect("meta").blocks() * 512;
        assert!(blocks < 4 << 20, "the copy allocated {blocks} bytes");
        let again = copy(&src, &dst).expect_err("dst exists");
        assert_eq!(again.action, "create");
    }
}
