//! Finding the `banger-agent` binary that the daemon writes into every image and VM.
//!
//! The agent is installed beside the daemon: next to `bangerd` (a cargo build or a copied
//! release), in the install's `libexec/banger/` directory (`install.sh` puts it there too), or
//! anywhere on `PATH`. It is looked up each time it is needed, never cached at start, so a
//! user who installs it after the daemon started does not have to restart anything. When it
//! is missing the error lists every path tried and the command that fixes it.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

/// The agent's file name.
pub const AGENT_NAME: &str = "banger-agent";

/// Where to look for the agent, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLocator {
    candidates: Vec<PathBuf>,
}

/// The agent is not installed where the daemon looks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AgentMissing {
    /// Every path tried, in order.
    pub tried: Vec<PathBuf>,
}

impl fmt::Display for AgentMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tried: Vec<String> = self.tried.iter().map(|p| p.display().to_string()).collect();
        write!(
            f,
            "the guest agent {AGENT_NAME} is not installed (looked for {}); install it with \
             `sudo ./install.sh` from the banger source tree, or copy target/release/{AGENT_NAME} \
             next to bangerd",
            if tried.is_empty() {
                "it nowhere".to_owned()
            } else {
                tried.join(", ")
            }
        )
    }
}

impl AgentLocator {
    /// The daemon's own search order: beside `daemon_exe`, then `<prefix>/libexec/banger/`
    /// (the prefix being the directory above the daemon's `bin/`), then each `PATH` entry.
    pub fn for_daemon(daemon_exe: &Path, path_var: Option<&OsStr>) -> Self {
        let mut candidates = Vec::new();
        if let Some(dir) = daemon_exe.parent() {
            candidates.push(dir.join(AGENT_NAME));
            if let Some(prefix) = dir.parent() {
                candidates.push(prefix.join("libexec/banger").join(AGENT_NAME));
            }
        }
        if let Some(path) = path_var {
            for dir in std::env::split_paths(path) {
                if dir.is_absolute() {
                    candidates.push(dir.join(AGENT_NAME));
                }
            }
        }
        candidates.dedup();
        Self { candidates }
    }

    /// Exactly one place (tests, or a build that knows where its agent is).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            candidates: vec![path.into()],
        }
    }

    /// The paths tried, in order.
    pub fn candidates(&self) -> &[PathBuf] {
        &self.candidates
    }

    /// The first candidate that is a regular, executable file.
    pub fn find(&self) -> Result<PathBuf, AgentMissing> {
        self.candidates
            .iter()
            .find(|p| is_executable_file(p))
            .cloned()
            .ok_or_else(|| AgentMissing {
                tried: self.candidates.clone(),
            })
    }
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn install(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn looks_beside_the_daemon_then_libexec_then_path_and_sees_late_installs() {
        let root = tempfile::tempdir().unwrap();
        let exe = root.path().join("prefix/bin/bangerd");
        let on_path = root.path().join("elsewhere");
        let path_var = std::env::join_paths([&on_path]).unwrap();
        let locator = AgentLocator::for_daemon(&exe, Some(&path_var));
        assert_eq!(
            locator.candidates(),
            [
                root.path().join("prefix/bin/banger-agent"),
                root.path().join("prefix/libexec/banger/banger-agent"),
                on_path.join("banger-agent"),
            ]
        );

        let err = locator.find().unwrap_err();
        let msg = err.to_string();
        for tried in locator.candidates() {
            assert!(msg.contains(&tried.display().to_string()), "{msg}");
        }
        assert!(msg.contains("install.sh"), "{msg}");

        // Installed after the locator was made: found without a restart.
        install(&on_path.join("banger-agent"));
        assert_eq!(locator.find().unwrap(), on_path.join("banger-agent"));
        install(&root.path().join("prefix/libexec/banger/banger-agent"));
        assert_eq!(
            locator.find().unwrap(),
            root.path().join("prefix/libexec/banger/banger-agent")
        );
        install(&root.path().join("prefix/bin/banger-agent"));
        assert_eq!(
            locator.find().unwrap(),
            root.path().join("prefix/bin/banger-agent")
        );
    }

    #[test]
    fn a_file_that_is_not_executable_does_not_count() {
        let root = tempfile::tempdir().unwrap();
        let agent = root.path().join("banger-agent");
        std::fs::write(&agent, b"x").unwrap();
        assert!(AgentLocator::at(&agent).find().is_err());
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(AgentLocator::at(&agent).find().unwrap(), agent);
    }
}
