//! Writing a [`Selection`] as one tar stream, to be unpacked in the guest with
//! `tar -x -C /root/repo`: one pipe instead of a round trip per file.
//!
//! Entries are the selection's files in its (sorted) order: regular files with their
//! permission bits and mtime, symlinks as symlinks, directories implied by the paths. Owner
//! is always root (0:0) with no user names, so a root `tar -x` in the guest does not hand the
//! tree to whatever uid the host user happens to have.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tar::{Builder, EntryType, Header};

use super::Selection;

/// Writes the selection as a tar archive to `out` and returns `out` once the archive is
/// complete. A file that vanishes or changes size while being read is an error, never a
/// silently corrupt stream.
pub fn stream<W: Write>(selection: &Selection, out: W) -> io::Result<W> {
    let mut builder = Builder::new(out);
    for rel in &selection.files {
        let full = selection.root.join(rel);
        let meta = fs::symlink_metadata(&full).map_err(|e| context(&full, e))?;
        let mut header = Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = fs::read_link(&full).map_err(|e| context(&full, e))?;
            header.set_entry_type(EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            builder.append_link(&mut header, rel, &target)?;
        } else if kind.is_file() {
            header.set_entry_type(EntryType::Regular);
            header.set_mode(meta.permissions().mode() & 0o7777);
            header.set_size(meta.len());
            let file = File::open(&full).map_err(|e| context(&full, e))?;
            let data = Exact {
                inner: file.take(meta.len()),
                left: meta.len(),
                path: &full,
            };
            builder.append_data(&mut header, rel, data)?;
        } else {
            return Err(io::Error::other(format!(
                "{} is neither a file nor a symlink",
                full.display()
            )));
        }
    }
    builder.into_inner()
}

fn context(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// A reader that yields exactly the size written in the header, or fails: the tar crate
/// pads whatever it gets, so a file that shrank mid-copy would otherwise shift every later
/// entry.
struct Exact<'a, R> {
    inner: R,
    left: u64,
    path: &'a Path,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} changed while being copied", self.path.display()),
            ));
        }
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    use super::*;

    fn selection(root: &Path, files: &[&str]) -> Selection {
        Selection {
            root: root.to_path_buf(),
            files: files.iter().map(PathBuf::from).collect(),
            untracked_skipped: 0,
            head: "0".repeat(40),
            branch: None,
            identity: (None, None),
        }
    }

    #[test]
    fn round_trips_contents_modes_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("bin/deep")).unwrap();
        fs::write(root.join("README"), "hello\n").unwrap();
        fs::write(root.join("bin/deep/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(
            root.join("bin/deep/run.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        fs::set_permissions(root.join("README"), fs::Permissions::from_mode(0o644)).unwrap();
        symlink("bin/deep/run.sh", root.join("run")).unwrap();
        let long = format!("{}/x\nname", "d".repeat(120));
        fs::create_dir_all(root.join("d".repeat(120))).unwrap();
        fs::write(root.join(&long), "long\n").unwrap();
        fs::write(root.join("not-selected"), "no\n").unwrap();

        let sel = selection(root, &["README", "bin/deep/run.sh", &long, "run"]);
        let bytes = stream(&sel, Vec::new()).unwrap();

        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().into_owned();
            let header = entry.header().clone();
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            match path.to_str().unwrap() {
                "README" => {
                    assert_eq!(body, "hello\n");
                    assert_eq!(header.mode().unwrap(), 0o644);
                }
                "bin/deep/run.sh" => {
                    assert_eq!(body, "#!/bin/sh\necho hi\n");
                    assert_eq!(header.mode().unwrap(), 0o755);
                }
                "run" => {
                    assert_eq!(header.entry_type(), EntryType::Symlink);
                    assert_eq!(
                        header.link_name().unwrap().unwrap(),
                        Path::new("bin/deep/run.sh")
                    );
                }
                p if p == long => assert_eq!(body, "long\n"),
                other => panic!("unexpected entry {other:?}"),
            }
            seen.push(path);
        }
        let expected: Vec<PathBuf> = sel.files.clone();
        assert_eq!(seen, expected, "entries in selection order, nothing else");

        // Unpacked with a real extractor, the tree matches (directories implied).
        let out = tempfile::tempdir().unwrap();
        tar::Archive::new(bytes.as_slice())
            .unpack(out.path())
            .unwrap();
        assert_eq!(
            fs::read_to_string(out.path().join("run")).unwrap(),
            "#!/bin/sh\necho hi\n"
        );
        assert!(
            fs::symlink_metadata(out.path().join("run"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let mode = fs::metadata(out.path().join("bin/deep/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn same_selection_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), "a").unwrap();
        fs::write(dir.path().join("b"), "b").unwrap();
        let sel = selection(dir.path(), &["a", "b"]);
        assert_eq!(
            stream(&sel, Vec::new()).unwrap(),
            stream(&sel, Vec::new()).unwrap()
        );
    }

    #[test]
    fn a_vanished_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let sel = selection(dir.path(), &["gone"]);
        let err = stream(&sel, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
    }
}
