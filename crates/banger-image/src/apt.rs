//! Fetching Debian packages with a private apt configuration.
//!
//! The kernel recipe names a suite (`bookworm`), and the kernel must come from that suite
//! whatever the host runs: a trixie host's own apt would hand us a 6.12 kernel. So we run
//! `apt-get` with its own sources list (the recipe's suite, its `-updates` suite and the
//! security archive — the cloud kernel's current build lives in the latter two), its own lists
//! and cache directories and an empty dpkg status, all under a directory we own. Packages are
//! verified against Debian's archive keyring exactly as a normal `apt-get` would.
//! Measured here: `update` ~5 s (13 MB of indexes), downloading the kernel (27 MB) ~2 s.
//! `dpkg-deb` then reads fields and unpacks without installing anything.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::cmd::{self, CommandError};
use crate::mirror::Mirror;
use crate::{Progress, ProgressFn};

/// Debian's archive keyring (package `debian-archive-keyring`, a dependency of debootstrap).
pub const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Suites without `-updates` / `-security` companions.
const ROLLING: &[&str] = &["sid", "unstable", "experimental"];

/// An apt or dpkg-deb step failed.
#[derive(Debug, thiserror::Error)]
pub enum AptError {
    /// The Debian archive keyring is not installed.
    #[error("debian archive keyring {0} not found (install debian-archive-keyring)")]
    NoKeyring(String),
    /// Host I/O.
    #[error("i/o error on {path}")]
    Io {
        /// Path.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `apt-get update` failed.
    #[error("apt-get update failed")]
    Update(#[source] CommandError),
    /// `apt-get download` failed.
    #[error("apt-get download failed")]
    Download(#[source] CommandError),
    /// A package was not among the downloaded files.
    #[error("package {0} was not downloaded")]
    Missing(String),
    /// `dpkg-deb` failed.
    #[error("dpkg-deb failed on {path}")]
    DpkgDeb {
        /// Package file.
        path: String,
        /// Underlying error.
        #[source]
        source: CommandError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AptError + '_ {
    move |source| AptError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The one-line sources list for `suite` from `mirror`.
pub fn sources_list(mirror: &Mirror, suite: &str, components: &[String], keyring: &str) -> String {
    let comps = components.join(" ");
    let mut out = format!(
        "deb [signed-by={keyring}] {} {suite} {comps}\n",
        mirror.archive
    );
    if !ROLLING.contains(&suite) {
        out.push_str(&format!(
            "deb [signed-by={keyring}] {} {suite}-updates {comps}\n",
            mirror.archive
        ));
        if let Some(security) = &mirror.security {
            out.push_str(&format!(
                "deb [signed-by={keyring}] {security} {suite}-security {comps}\n"
            ));
        }
    }
    out
}

/// Package names from a `Depends:` value, ignoring versions and taking the first of each
/// alternative (`a (= 1), b | c` → `[a, b]`).
pub fn parse_depends(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|dep| {
            let first = dep.split('|').next()?.trim();
            let name = first.split([' ', '(', ':']).next()?.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .collect()
}

/// An apt configuration isolated from the host's sources, lists and dpkg status.
#[derive(Debug, Clone)]
pub struct PrivateApt {
    options: Vec<OsString>,
}

impl PrivateApt {
    /// Sets up `dir` (created if missing) for `suite`/`arch`/`components` from `mirror`.
    pub fn new(
        dir: &Path,
        mirror: &Mirror,
        suite: &str,
        arch: &str,
        components: &[String],
    ) -> Result<Self, AptError> {
        if !Path::new(DEBIAN_KEYRING).is_file() {
            return Err(AptError::NoKeyring(DEBIAN_KEYRING.to_owned()));
        }
        for sub in [
            "lists/partial",
            "cache/archives/partial",
            "sources.list.d",
            "preferences.d",
        ] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        let list = dir.join("sources.list");
        std::fs::write(
            &list,
            sources_list(mirror, suite, components, DEBIAN_KEYRING),
        )
        .map_err(io(&list))?;
        let status = dir.join("status");
        std::fs::write(&status, b"").map_err(io(&status))?;
        let path_opt = |key: &str, sub: &str| -> OsString {
            let mut o = OsString::from(format!("{key}="));
            o.push(dir.join(sub));
            o
        };
        let settings = [
            path_opt("Dir::Etc::SourceList", "sources.list"),
            path_opt("Dir::Etc::SourceParts", "sources.list.d"),
            path_opt("Dir::Etc::Preferences", "preferences"),
            path_opt("Dir::Etc::PreferencesParts", "preferences.d"),
            path_opt("Dir::State::Lists", "lists"),
            path_opt("Dir::State::status", "status"),
            path_opt("Dir::Cache", "cache"),
            "Debug::NoLocking=true".into(),
            // Our directories belong to us, not to `_apt`; apt would fall back with a warning.
            "APT::Sandbox::User=root".into(),
            "Acquire::Languages=none".into(),
            format!("APT::Architecture={arch}").into(),
            format!("APT::Architectures={arch}").into(),
        ];
        let mut options = vec![OsString::from("-q")];
        for s in settings {
            options.push("-o".into());
            options.push(s);
        }
        Ok(PrivateApt { options })
    }

    /// The `-o` options (for tests and logs).
    pub fn options(&self) -> &[OsString] {
        &self.options
    }

    /// Downloads the package indexes.
    pub fn update(&self, progress: &mut ProgressFn<'_>) -> Result<(), AptError> {
        progress(Progress::Stage("apt-get update"));
        let mut c = cmd::command("apt-get").map_err(AptError::Update)?;
        c.args(&self.options).arg("update");
        cmd::run_streaming(&mut c, progress).map_err(AptError::Update)
    }

    /// Downloads `packages` (validated names) into `into`; returns the `.deb` paths in the
    /// order of `packages`.
    pub fn download(
        &self,
        packages: &[&str],
        into: &Path,
        progress: &mut ProgressFn<'_>,
    ) -> Result<Vec<PathBuf>, AptError> {
        progress(Progress::Stage("apt-get download"));
        let mut c = cmd::command("apt-get").map_err(AptError::Download)?;
        c.args(&self.options)
            .arg("download")
            .arg("--")
            .args(packages)
            .current_dir(into);
        cmd::run_streaming(&mut c, progress).map_err(AptError::Download)?;
        let files: Vec<PathBuf> = std::fs::read_dir(into)
            .map_err(io(into))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        packages
            .iter()
            .map(|pkg| {
                let prefix = format!("{pkg}_");
                files
                    .iter()
                    .find(|f| {
                        f.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
                    })
                    .cloned()
                    .ok_or_else(|| AptError::Missing((*pkg).to_owned()))
            })
            .collect()
    }
}

/// A control field of a `.deb` (`dpkg-deb -f`).
pub fn deb_field(deb: &Path, field: &str) -> Result<String, AptError> {
    let wrap = |source| AptError::DpkgDeb {
        path: deb.display().to_string(),
        source,
    };
    let mut c = cmd::command("dpkg-deb").map_err(wrap)?;
    c.arg("-f").arg(deb).arg(field);
    let out = cmd::run(&mut c, &[0]).map_err(wrap)?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// Unpacks a `.deb`'s files into `dest` (`dpkg-deb -x`; no maintainer scripts run).
pub fn deb_extract(deb: &Path, dest: &Path) -> Result<(), AptError> {
    let wrap = |source| AptError::DpkgDeb {
        path: deb.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    let mut c = cmd::command("dpkg-deb").map_err(wrap)?;
    c.arg("-x").arg(deb).arg(dest);
    cmd::run(&mut c, &[0]).map_err(wrap)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_for_stable_and_rolling() {
        let m = Mirror {
            archive: "http://deb.debian.org/debian".into(),
            security: Some("http://deb.debian.org/debian-security".into()),
        };
        let main = vec!["main".to_owned()];
        assert_eq!(
            sources_list(&m, "bookworm", &main, "/k.gpg"),
            "deb [signed-by=/k.gpg] http://deb.debian.org/debian bookworm main\n\
             deb [signed-by=/k.gpg] http://deb.debian.org/debian bookworm-updates main\n\
             deb [signed-by=/k.gpg] http://deb.debian.org/debian-security bookworm-security main\n"
        );
        assert_eq!(
            sources_list(&m, "sid", &main, "/k.gpg"),
            "deb [signed-by=/k.gpg] http://deb.debian.org/debian sid main\n"
        );
    }

    #[test]
    fn depends_parsing() {
        assert_eq!(
            parse_depends("linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)"),
            ["linux-image-6.1.0-56-cloud-amd64"]
        );
        assert_eq!(
            parse_depends(
                "kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, libc6:amd64"
            ),
            ["kmod", "linux-base", "initramfs-tools", "libc6"]
        );
        assert!(parse_depends("").is_empty());
    }

    #[test]
    fn private_config_points_into_dir() {
        // Debian hosts always have the keyring (apt depends on it).
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Mirror {
            archive: "http://deb.debian.org/debian".into(),
            security: None,
        };
        let apt =
            PrivateApt::new(dir.path(), &m, "bookworm", "amd64", &["main".into()]).expect("new");
        let opts: Vec<String> = apt
            .options()
            .iter()
            .map(|o| o.to_string_lossy().into_owned())
            .collect();
        let lists = format!("Dir::State::Lists={}", dir.path().join("lists").display());
        assert!(opts.contains(&lists), "{opts:?}");
        assert!(dir.path().join("sources.list").is_file());
        assert!(dir.path().join("lists/partial").is_dir());
    }
}
