//! The few ways doctor looks at the host: find a program, ask it for its version, look at a
//! path. Every probe only reads; the one program it runs is a tool's `--version`, bounded in
//! time so a hanging binary cannot hang doctor.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a `--version` may take.
const VERSION_LIMIT: Duration = Duration::from_secs(3);

/// Directories the image builder searches after `PATH` (the same list as `banger-image`).
pub const SBIN_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Where a program was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// On `PATH`.
    Path(PathBuf),
    /// Not on `PATH`, but in one of [`SBIN_DIRS`].
    Sbin(PathBuf),
    /// Nowhere.
    Missing,
}

/// `name` on `PATH`, else in [`SBIN_DIRS`].
pub fn find(name: &str) -> Found {
    if let Some(path) = banger_util::path::find_on_path(name) {
        return Found::Path(path);
    }
    SBIN_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| is_executable(p))
        .map_or(Found::Missing, Found::Sbin)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first non-empty line `program --version` prints (stdout, else stderr), or `None` when
/// it cannot run, fails, or takes longer than a few seconds.
pub fn version(program: &Path) -> Option<String> {
    let mut child = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .spawn()
        .ok()?;
    let deadline = Instant::now() + VERSION_LIMIT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    first_line(&out.stdout).or_else(|| first_line(&out.stderr))
}

fn first_line(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[test]
    fn version_is_the_first_line_and_failures_are_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = script(dir.path(), "ok", "echo; echo 'Tool v1.2'; echo more");
        assert_eq!(version(&ok).as_deref(), Some("Tool v1.2"));
        let stderr = script(dir.path(), "err", "echo 'v3' >&2");
        assert_eq!(version(&stderr).as_deref(), Some("v3"));
        let failing = script(dir.path(), "bad", "echo v1; exit 3");
        assert_eq!(version(&failing), None);
        assert_eq!(version(&dir.path().join("missing")), None);
    }
}
