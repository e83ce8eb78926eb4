//! Unpacking a downloaded release tarball into the staging dir, trusting nothing in it.
//!
//! The tarball holds one top directory (`banger-VERSION-x86_64-linux/`) with exactly
//! `bin/banger`, `bin/bangerd` and `libexec/banger/banger-agent`. Only those three regular
//! files are written (mode 0755), each is checked against the verified `SHA256SUMS` (which
//! names them under the top directory), and anything else in the archive (links, devices,
//! other paths) refuses the release. The staging dir is emptied first, so files of an earlier,
//! interrupted update never mix in.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::flow::Staged;
use super::verify::{Sums, sha256_hex};
use crate::error::CliError;

/// The files a release tarball holds, relative to its top directory.
pub const FILES: [&str; 3] = ["bin/banger", "bin/bangerd", "libexec/banger/banger-agent"];

/// Largest file accepted from a tarball.
const FILE_LIMIT: u64 = 512 << 20;

fn refused(tarball: &Path, why: String) -> CliError {
    CliError::Failed(format!(
        "release tarball {} refused: {why}",
        tarball.file_name().unwrap_or_default().to_string_lossy()
    ))
}

/// The tarball's top directory name: its file name without `.tar.gz`.
pub fn top_dir(tarball_name: &str) -> &str {
    tarball_name.strip_suffix(".tar.gz").unwrap_or(tarball_name)
}

/// Unpacks `tarball` into `dir` (emptied first) and checks every file against `sums`.
pub fn unpack(tarball: &Path, dir: &Path, sums: &Sums) -> Result<Staged, CliError> {
    let name = tarball.file_name().unwrap_or_default().to_string_lossy();
    let top = top_dir(&name).to_owned();
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(CliError::Failed(format!(
                "cannot empty the staging dir {}: {e}",
                dir.display()
            )));
        }
    }
    let io = |what: String| move |e: std::io::Error| refused(tarball, format!("{what}: {e}"));
    let file = std::fs::File::open(tarball).map_err(io("cannot open it".into()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found = Vec::new();
    for entry in archive.entries().map_err(io("not a tar.gz".into()))? {
        let mut entry = entry.map_err(io("not a tar.gz".into()))?;
        let path = entry
            .path()
            .map_err(io("bad entry name".into()))?
            .to_string_lossy()
            .trim_end_matches('/')
            .to_owned();
        let kind = entry.header().entry_type();
        let rel = path.strip_prefix(&format!("{top}/")).unwrap_or("");
        if kind.is_dir() && (path == top || ["bin", "libexec", "libexec/banger"].contains(&rel)) {
            continue;
        }
        if !kind.is_file() || !FILES.contains(&rel) {
            return Err(refused(
                tarball,
                format!(
                    "unexpected entry {path:?} (a release holds only {top}/{{{}}})",
                    FILES.join(",")
                ),
            ));
        }
        if entry.size() > FILE_LIMIT {
            return Err(refused(tarball, format!("{path} is too large")));
        }
        let mut bytes = Vec::new();
        entry
            .by_ref()
            .take(FILE_LIMIT)
            .read_to_end(&mut bytes)
            .map_err(io(format!("cannot read {path}")))?;
        sums.check(&path, &sha256_hex(&bytes))
            .map_err(|e| refused(tarball, e.to_string()))?;
        let dest = dir.join(rel);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dest.parent().unwrap_or(dir))?;
            std::fs::write(&dest, &bytes)?;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
        };
        write().map_err(|e| CliError::Failed(format!("cannot stage {}: {e}", dest.display())))?;
        found.push(rel.to_owned());
    }
    for want in FILES {
        if !found.iter().any(|f| f == want) {
            return Err(refused(tarball, format!("it has no {top}/{want}")));
        }
    }
    let at = |rel: &str| -> PathBuf { dir.join(rel) };
    Ok(Staged {
        banger: at(FILES[0]),
        bangerd: at(FILES[1]),
        agent: at(FILES[2]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: &str = "banger-v1.0.0-x86_64-linux";

    fn tarball(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join(format!("{TOP}.tar.gz"));
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).expect("create"),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        for (name, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            b.append_data(&mut h, name, *body).expect("append");
        }
        b.into_inner().expect("tar").finish().expect("gz");
        path
    }

    fn sums(files: &[(&str, &[u8])]) -> Sums {
        let text: String = files
            .iter()
            .map(|(n, b)| format!("{}  {n}\n", sha256_hex(b)))
            .collect();
        Sums::parse(&text).expect("sums")
    }

    fn good() -> Vec<(String, Vec<u8>)> {
        FILES
            .iter()
            .map(|f| (format!("{TOP}/{f}"), f.as_bytes().to_vec()))
            .collect()
    }

    fn borrow(v: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
        v.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect()
    }

    #[test]
    fn a_good_tarball_stages_three_checked_executables() {
        let dir = tempfile::tempdir().expect("dir");
        let files = good();
        let t = tarball(dir.path(), &borrow(&files));
        let stage = dir.path().join("stage");
        std::fs::create_dir_all(&stage).expect("stage");
        std::fs::write(stage.join("leftover"), "old").expect("leftover");
        let s = unpack(&t, &stage, &sums(&borrow(&files))).expect("stages");
        assert_eq!(std::fs::read(&s.bangerd).expect("bangerd"), b"bin/bangerd");
        let mode = std::fs::metadata(&s.agent)
            .expect("agent")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert!(!stage.join("leftover").exists(), "staging starts empty");
    }

    #[test]
    fn a_file_that_differs_from_its_sum_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let files = good();
        let mut evil = files.clone();
        evil[1].1 = b"evil".to_vec();
        let t = tarball(dir.path(), &borrow(&evil));
        let err = unpack(&t, &dir.path().join("s"), &sums(&borrow(&files)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bin/bangerd has sha256"), "{err}");
    }

    #[test]
    fn extra_or_missing_entries_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let mut files = good();
        files.push((format!("{TOP}/bin/extra"), b"x".to_vec()));
        let t = tarball(dir.path(), &borrow(&files));
        let err = unpack(&t, &dir.path().join("s"), &sums(&borrow(&files)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unexpected entry"), "{err}");
        let files = good()[..2].to_vec();
        let t = tarball(dir.path(), &borrow(&files));
        let err = unpack(&t, &dir.path().join("s"), &sums(&borrow(&files)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no"), "{err}");
    }
}
