//! Replacing the installed binaries, and putting them back.
//!
//! Each staged binary is first copied next to its destination (`.NAME.banger-new`, same
//! filesystem), so the swap itself is only renames: for each binary the installed file is
//! hard-linked to `NAME.previous`, then the new one is renamed over `NAME` (a running binary
//! is replaced, never rewritten, and `NAME` never goes missing). [`Install::restore`] renames
//! each `.previous` back over what this swap replaced. `.previous` stays after a successful
//! update: the last release can be put back by hand.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::flow::Staged;
use crate::error::CliError;
use crate::system::paths;

/// Where a system install's binaries live.
#[derive(Debug, Clone)]
pub struct Install {
    /// `banger`, `bangerd`, `banger-agent`.
    dests: [PathBuf; 3],
    /// What this run replaced, in order.
    swapped: Vec<PathBuf>,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> CliError {
    move |source| CliError::Io { what, source }
}

fn sibling(dest: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    dest.with_file_name(format!("{prefix}{name}{suffix}"))
}

/// `NAME.previous` beside `dest`.
pub fn previous(dest: &Path) -> PathBuf {
    sibling(dest, "", ".previous")
}

impl Install {
    /// The fixed paths of a system install.
    pub fn system() -> Self {
        Self::at([paths::BANGER, paths::BANGERD, paths::AGENT].map(PathBuf::from))
    }

    /// An install at `dests` (`banger`, `bangerd`, `banger-agent`).
    pub fn at(dests: [PathBuf; 3]) -> Self {
        Self {
            dests,
            swapped: Vec::new(),
        }
    }

    /// Swaps the staged binaries in (the agent first, the CLI last).
    pub fn swap(&mut self, staged: &Staged) -> Result<(), CliError> {
        let pairs: Vec<(PathBuf, PathBuf)> = [&staged.agent, &staged.bangerd, &staged.banger]
            .into_iter()
            .zip([&self.dests[2], &self.dests[1], &self.dests[0]])
            .map(|(s, d)| (s.clone(), d.clone()))
            .collect();
        // Copies first: a full disk or a missing file fails before anything is replaced.
        let mut news = Vec::new();
        for (src, dest) in &pairs {
            let new = sibling(dest, ".", ".banger-new");
            news.push(new.clone());
            let copied = std::fs::copy(src, &new)
                .and_then(|_| {
                    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o755))
                })
                .and_then(|()| std::fs::File::open(&new)?.sync_all());
            if let Err(e) = copied {
                for n in &news {
                    let _ = std::fs::remove_file(n);
                }
                return Err(io(format!(
                    "cannot copy {} to {}",
                    src.display(),
                    new.display()
                ))(e));
            }
        }
        for ((_, dest), new) in pairs.iter().zip(&news) {
            let prev = previous(dest);
            let _ = std::fs::remove_file(&prev);
            if dest.exists() {
                std::fs::hard_link(dest, &prev)
                    .or_else(|_| std::fs::copy(dest, &prev).map(|_| ()))
                    .map_err(io(format!(
                        "cannot keep {} as {}",
                        dest.display(),
                        prev.display()
                    )))?;
            }
            std::fs::rename(new, dest).map_err(io(format!(
                "cannot move {} to {}",
                new.display(),
                dest.display()
            )))?;
            self.swapped.push(dest.clone());
        }
        Ok(())
    }

    /// Puts back what [`Self::swap`] replaced; leftover copies are removed.
    pub fn restore(&mut self) -> Result<(), CliError> {
        for dest in &self.dests {
            let _ = std::fs::remove_file(sibling(dest, ".", ".banger-new"));
        }
        while let Some(dest) = self.swapped.pop() {
            let prev = previous(&dest);
            std::fs::rename(&prev, &dest).map_err(io(format!(
                "cannot move {} back to {}",
                prev.display(),
                dest.display()
            )))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(dir: &Path) -> (Install, Staged) {
        let mut dests = Vec::new();
        for name in ["bin/banger", "bin/bangerd", "libexec/banger-agent"] {
            let p = dir.join("install").join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
            std::fs::write(&p, format!("old {name}")).expect("old");
            dests.push(p);
        }
        let stage = dir.join("stage");
        std::fs::create_dir_all(&stage).expect("stage");
        let staged = Staged {
            banger: stage.join("banger"),
            bangerd: stage.join("bangerd"),
            agent: stage.join("banger-agent"),
        };
        for (p, body) in [
            (&staged.banger, "new cli"),
            (&staged.bangerd, "new daemon"),
            (&staged.agent, "new agent"),
        ] {
            std::fs::write(p, body).expect("new");
        }
        let dests: [PathBuf; 3] = dests.try_into().expect("three");
        (Install::at(dests), staged)
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).expect("read")
    }

    #[test]
    fn swap_keeps_previous_and_restore_puts_it_back() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut install, staged) = setup(dir.path());
        install.swap(&staged).expect("swaps");
        let cli = install.dests[0].clone();
        assert_eq!(read(&cli), "new cli");
        assert_eq!(read(&previous(&cli)), "old bin/banger");
        let mode = std::fs::metadata(&cli).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        install.restore().expect("restores");
        assert_eq!(read(&cli), "old bin/banger");
        assert_eq!(read(&install.dests[2]), "old libexec/banger-agent");
    }

    #[test]
    fn a_missing_staged_file_changes_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut install, staged) = setup(dir.path());
        std::fs::remove_file(&staged.banger).expect("rm");
        let err = install.swap(&staged).unwrap_err().to_string();
        assert!(err.contains("cannot copy"), "{err}");
        for (dest, old) in install.dests.iter().zip([
            "old bin/banger",
            "old bin/bangerd",
            "old libexec/banger-agent",
        ]) {
            assert_eq!(read(dest), old);
            assert!(!previous(dest).exists());
        }
        let left: Vec<_> = std::fs::read_dir(dir.path().join("install/bin"))
            .expect("ls")
            .map(|e| e.expect("e").file_name())
            .collect();
        assert_eq!(left.len(), 2, "no leftover copies: {left:?}");
    }
}
