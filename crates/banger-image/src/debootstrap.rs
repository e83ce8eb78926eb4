//! Running `debootstrap` for an image recipe.
//!
//! debootstrap is Debian's own way to build a root filesystem from the archive, with the
//! archive keyring verifying every package. We run it as a fixed argument vector built from a
//! validated recipe ([`crate::catalog`]) and a validated mirror ([`crate::mirror`]), forward its
//! output lines as progress, and on failure remove the half-built target, unmounting anything
//! debootstrap left mounted inside it first. Needs root (it chroots and creates device nodes).

use std::ffi::OsString;
use std::path::Path;

use crate::catalog::ImageRecipe;
use crate::cmd::{self, CommandError};
use crate::fsutil::{self, FsError};
use crate::mirror::Mirror;
use crate::{Progress, ProgressFn};

/// debootstrap failed.
#[derive(Debug, thiserror::Error)]
pub enum DebootstrapError {
    /// The target exists already or is not absolute.
    #[error("debootstrap target {0} must be an absolute path that does not exist yet")]
    BadTarget(String),
    /// debootstrap failed; the target was removed.
    #[error("debootstrap failed")]
    Failed(#[source] CommandError),
    /// debootstrap failed and the target could not be removed either.
    #[error("debootstrap failed ({run}); cleaning up its target also failed")]
    FailedAndCleanup {
        /// The debootstrap failure.
        run: CommandError,
        /// The cleanup failure.
        #[source]
        cleanup: FsError,
    },
}

/// The argument vector (after the program name) for `recipe` into `target` from `mirror`.
pub fn args(recipe: &ImageRecipe, mirror: &Mirror, target: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        format!("--variant={}", recipe.variant).into(),
        format!("--arch={}", recipe.arch).into(),
        format!("--components={}", recipe.components.join(",")).into(),
    ];
    if !recipe.packages.is_empty() {
        a.push(format!("--include={}", recipe.packages.join(",")).into());
    }
    a.push(recipe.suite.clone().into());
    a.push(target.into());
    a.push(mirror.archive.clone().into());
    a
}

/// Runs debootstrap into `target` (created by debootstrap; its parent must exist).
pub fn run(
    recipe: &ImageRecipe,
    mirror: &Mirror,
    target: &Path,
    progress: &mut ProgressFn<'_>,
) -> Result<(), DebootstrapError> {
    if !target.is_absolute() || std::fs::symlink_metadata(target).is_ok() {
        return Err(DebootstrapError::BadTarget(target.display().to_string()));
    }
    progress(Progress::Stage("debootstrap"));
    let result = cmd::command("debootstrap").and_then(|mut c| {
        c.args(args(recipe, mirror, target))
            .env("DEBIAN_FRONTEND", "noninteractive");
        cmd::run_streaming(&mut c, progress)
    });
    match result {
        Ok(()) => Ok(()),
        Err(run) => match fsutil::remove_tree(target) {
            Ok(()) => Err(DebootstrapError::Failed(run)),
            Err(cleanup) => Err(DebootstrapError::FailedAndCleanup { run, cleanup }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn recipe() -> ImageRecipe {
        Catalog::builtin()
            .expect("catalog")
            .image("debian-bookworm")
            .expect("image")
            .clone()
    }

    #[test]
    fn argv() {
        let mirror = Mirror {
            archive: "http://deb.debian.org/debian".into(),
            security: None,
        };
        let a: Vec<String> = args(&recipe(), &mirror, Path::new("/s/rootfs"))
            .into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            a,
            [
                "--variant=minbase",
                "--arch=amd64",
                "--components=main",
                "--include=openssh-server,iproute2,kmod,ca-certificates,git,procps",
                "bookworm",
                "/s/rootfs",
                "http://deb.debian.org/debian",
            ]
        );
    }

    #[test]
    fn refuses_existing_or_relative_target() {
        let mirror = Mirror {
            archive: "http://deb.debian.org/debian".into(),
            security: None,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut noop = |_: Progress<'_>| {};
        assert!(matches!(
            run(&recipe(), &mirror, dir.path(), &mut noop),
            Err(DebootstrapError::BadTarget(_))
        ));
        assert!(matches!(
            run(&recipe(), &mirror, Path::new("rel"), &mut noop),
            Err(DebootstrapError::BadTarget(_))
        ));
    }

    #[test]
    #[ignore = "needs root and debootstrap"]
    fn failure_cleans_up_target() {
        // Nothing listens on loopback port 9: debootstrap creates the target, then fails
        // fetching the Release file.
        let r = recipe();
        let mirror = Mirror {
            archive: "http://127.0.0.1:9/debian".into(),
            security: None,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("rootfs");
        let mut lines = 0;
        let err = run(&r, &mirror, &target, &mut |p| {
            if matches!(p, Progress::Line(_)) {
                lines += 1;
            }
        })
        .expect_err("must fail");
        assert!(matches!(err, DebootstrapError::Failed(_)), "{err:?}");
        assert!(!target.exists());
        assert!(lines > 0);
    }
}
