//! Choosing the files of a workspace with `git ls-files`, NUL-separated so any file name
//! (spaces, newlines, non-UTF-8) survives.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Error, git};

/// What to copy besides tracked files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Also copy untracked files that are not ignored.
    pub include_untracked: bool,
    /// `--mode full_copy`: submodules are allowed and their tracked files are listed.
    pub full_copy: bool,
}

/// The files of a repository that a workspace copy takes, and the facts recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The repository root (absolute, as git reports it).
    pub root: PathBuf,
    /// Files and symlinks to copy, relative to `root`, sorted and without duplicates.
    /// Directories are implied by the paths.
    pub files: Vec<PathBuf>,
    /// Untracked, non-ignored files left out because untracked files were not asked for
    /// (best effort: 0 when they could not be counted).
    pub untracked_skipped: usize,
    /// The full HEAD commit id.
    pub head: String,
    /// The checked-out branch; `None` on a detached HEAD.
    pub branch: Option<String>,
    /// The repository's `user.name` and `user.email`, each when set.
    pub identity: (Option<String>, Option<String>),
}

impl Selection {
    /// HEAD shortened for people.
    pub fn short_head(&self) -> &str {
        self.head.get(..12).unwrap_or(&self.head)
    }

    /// One line for stderr: how many files, from where, at which commit, and how many
    /// untracked files were left out.
    pub fn summary(&self) -> String {
        let n = self.files.len();
        let mut line = format!(
            "{n} {} from {} at {}",
            if n == 1 { "file" } else { "files" },
            self.root.display(),
            self.short_head()
        );
        if self.untracked_skipped > 0 {
            let m = self.untracked_skipped;
            line.push_str(&format!(
                "; {m} untracked {} skipped (use --include-untracked)",
                if m == 1 { "file" } else { "files" }
            ));
        }
        line
    }
}

/// Mode of a gitlink (submodule) entry in `git ls-files --stage`.
const GITLINK_MODE: &[u8] = b"160000";

/// Selects the files of the repository containing `path` (any directory inside it).
pub fn select(path: &Path, options: Options) -> Result<Selection, Error> {
    let root = root(path)?;
    let head = head(&root)?;
    if !options.full_copy
        && let Some(first) = submodule(&root)?
    {
        return Err(Error::Submodules { root, first });
    }

    let tracked_args: &[&str] = if options.full_copy {
        &["ls-files", "-z", "--cached", "--recurse-submodules"]
    } else {
        &["ls-files", "-z", "--cached"]
    };
    let mut files = BTreeSet::new();
    for file in git::paths(&root, "ls-files", &git::stdout(&root, tracked_args)?)? {
        if present(&root, &file)? {
            files.insert(file);
        }
    }

    let untracked = || -> Result<Vec<PathBuf>, Error> {
        let out = git::stdout(&root, &["ls-files", "-z", "--others", "--exclude-standard"])?;
        let mut kept = Vec::new();
        for file in git::paths(&root, "ls-files", &out)? {
            if present(&root, &file)? {
                kept.push(file);
            }
        }
        Ok(kept)
    };
    let mut untracked_skipped = 0;
    if options.include_untracked {
        files.extend(untracked()?);
    } else {
        // Only a courtesy notice: a failure to count is never fatal.
        untracked_skipped = untracked().map_or(0, |u| u.len());
    }

    let branch = git::run(&root, &["symbolic-ref", "--quiet", "--short", "HEAD"])?;
    let branch = branch
        .status
        .success()
        .then(|| git::line(&branch.stdout))
        .filter(|b| !b.is_empty());
    let identity = (config(&root, "user.name")?, config(&root, "user.email")?);

    Ok(Selection {
        root,
        files: files.into_iter().collect(),
        untracked_skipped,
        head,
        branch,
        identity,
    })
}

/// The work tree root containing `path`.
fn root(path: &Path) -> Result<PathBuf, Error> {
    let args = ["rev-parse", "--show-toplevel"];
    let out = git::run(path, &args)?;
    let not_a_repo = || Error::NotARepo {
        path: path.to_path_buf(),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(if stderr.contains("not a git repository") {
            not_a_repo()
        } else {
            git::failed(path, &args, &out)
        });
    }
    let raw = out.stdout.strip_suffix(b"\n").unwrap_or(&out.stdout);
    // Empty output: inside `.git` or a bare repository, where there is no work tree to copy.
    if raw.is_empty() {
        return Err(not_a_repo());
    }
    Ok(PathBuf::from(OsStr::from_bytes(raw)))
}

/// The full HEAD commit id.
fn head(root: &Path) -> Result<String, Error> {
    let out = git::run(root, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])?;
    let head = git::line(&out.stdout);
    if out.status.success() && !head.is_empty() {
        Ok(head)
    } else {
        Err(Error::NoCommits {
            root: root.to_path_buf(),
        })
    }
}

/// The first submodule of the repository: a gitlink in the index, else `.gitmodules`.
fn submodule(root: &Path) -> Result<Option<PathBuf>, Error> {
    let out = git::stdout(root, &["ls-files", "-z", "--stage"])?;
    for entry in out.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        // `<mode> <object> <stage>\t<path>`
        let Some(tab) = entry.iter().position(|b| *b == b'\t') else {
            continue;
        };
        if entry.starts_with(GITLINK_MODE) && entry.get(GITLINK_MODE.len()) == Some(&b' ') {
            let path = entry.get(tab + 1..).unwrap_or_default();
            return git::relative(root, "ls-files", path).map(Some);
        }
    }
    let modules = Path::new(".gitmodules");
    Ok(root.join(modules).exists().then(|| modules.to_path_buf()))
}

/// A config value as git resolves it for this repository; `None` when unset.
fn config(root: &Path, key: &str) -> Result<Option<String>, Error> {
    let out = git::run(root, &["config", "--get", key])?;
    Ok(out
        .status
        .success()
        .then(|| git::line(&out.stdout))
        .filter(|v| !v.is_empty()))
}

/// Whether `rel` exists in the work tree as something to copy: a file or a symlink. Files
/// deleted from the work tree (still in the index) and directories (an uninitialised
/// submodule, a nested repository) are skipped.
fn present(root: &Path, rel: &Path) -> Result<bool, Error> {
    match std::fs::symlink_metadata(root.join(rel)) {
        Ok(meta) => Ok(!meta.is_dir()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(false)
        }
        Err(source) => Err(Error::Io {
            path: root.join(rel),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(files: usize, skipped: usize) -> Selection {
        Selection {
            root: PathBuf::from("/src/app"),
            files: (0..files).map(|i| PathBuf::from(i.to_string())).collect(),
            untracked_skipped: skipped,
            head: "0123456789abcdef0123456789abcdef01234567".into(),
            branch: Some("main".into()),
            identity: (None, None),
        }
    }

    #[test]
    fn summary_names_counts_root_and_short_head() {
        assert_eq!(
            selection(3, 1).summary(),
            "3 files from /src/app at 0123456789ab; 1 untracked file skipped \
             (use --include-untracked)"
        );
        assert_eq!(
            selection(1, 0).summary(),
            "1 file from /src/app at 0123456789ab"
        );
    }

    #[test]
    fn a_plain_directory_is_not_a_repository() {
        let dir = tempfile::tempdir().unwrap();
        let err = select(dir.path(), Options::default()).unwrap_err();
        assert!(matches!(err, Error::NotARepo { .. }), "{err}");
    }
}
