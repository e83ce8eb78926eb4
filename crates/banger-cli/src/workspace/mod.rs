//! The host side of a workspace: which files of a repository go into a VM, and the one tar
//! stream that carries them.
//!
//! Why it is split from the VM side: choosing files needs only the host's `git` and is the
//! part that must be exactly right (tracked files by default, untracked only when asked,
//! ignored files never, submodules only in `full_copy`). `vm workspace prepare --dry-run`
//! shows that choice without a daemon or a VM, and the real copy (later) sends the very same
//! [`Selection`] through [`stream()`] as a single tar over SSH instead of one round trip per file.
//!
//! - [`select()`]: resolve the repo root from any directory inside it and list the files.
//! - [`stream()`]: write a [`Selection`] as a tar archive to any [`std::io::Write`].

mod git;
pub mod guest;
mod select;
mod stream;

use std::io;
use std::path::PathBuf;

use crate::error::CliError;

pub use select::{Options, Selection, select};

/// The full HEAD commit of the repository at `root`, or `None` when it cannot be read.
pub fn head_of(root: &std::path::Path) -> Option<String> {
    let out = git::run(root, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]).ok()?;
    let head = git::line(&out.stdout);
    (out.status.success() && !head.is_empty()).then_some(head)
}
pub use stream::stream;

/// Why a repository cannot be turned into a [`Selection`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path is not inside a git work tree.
    #[error("{} is not inside a git repository", path.display())]
    NotARepo {
        /// The path the user gave.
        path: PathBuf,
    },
    /// The repository has no commit, so there is no HEAD to record.
    #[error("{} has no commits yet; commit once so there is a HEAD to copy", root.display())]
    NoCommits {
        /// The repository root.
        root: PathBuf,
    },
    /// The repository has submodules and the mode does not copy them.
    #[error(
        "{} has submodules ({}); they are copied only with --mode full_copy",
        root.display(),
        first.display()
    )]
    Submodules {
        /// The repository root.
        root: PathBuf,
        /// The first submodule path, or `.gitmodules`.
        first: PathBuf,
    },
    /// `git` itself could not be started.
    #[error("cannot run git; is it installed?")]
    GitMissing(#[source] io::Error),
    /// A git command failed or printed something unexpected.
    #[error("git {command} failed in {}: {message}", dir.display())]
    Git {
        /// The git subcommand, e.g. `ls-files`.
        command: String,
        /// Where it ran.
        dir: PathBuf,
        /// git's own message (first line of stderr) or what was wrong with its output.
        message: String,
    },
    /// A file in the work tree could not be inspected.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Bad input (not a repo, no commits, submodules) is a usage error (exit 2); a broken or
/// missing git and unreadable files are failures (exit 1).
impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotARepo { .. } | Error::NoCommits { .. } | Error::Submodules { .. } => {
                Self::Usage(e.to_string())
            }
            Error::GitMissing(source) => Self::Io {
                what: "cannot run git; is it installed?".into(),
                source,
            },
            Error::Io { path, source } => Self::Io {
                what: format!("cannot read {}", path.display()),
                source,
            },
            Error::Git { .. } => Self::Failed(e.to_string()),
        }
    }
}
