//! Checks of the disk tools a VM create runs and of the overlay strategy.
//!
//! The daemon runs `mkfs.ext4`, `resize2fs`, `e2fsck` and `debugfs` by name, from its `PATH`,
//! so a tool that exists only in `/usr/sbin` while `/usr/sbin` is not on `PATH` is a warning:
//! the create would not find it.

use std::path::PathBuf;

use banger_proto::Check;

use super::probe::{self, Found};

/// The tools every VM create runs.
pub const DISK_TOOLS: &[&str] = &["mkfs.ext4", "resize2fs", "e2fsck", "debugfs"];

/// Each tool and where it was found.
pub fn probe_tools(names: &[&'static str]) -> Vec<(&'static str, Found)> {
    names.iter().map(|n| (*n, probe::find(n))).collect()
}

/// `disk-tools`: all on `PATH`, some only in an sbin directory, or missing.
pub fn disk_tools(tools: &[(&'static str, Found)]) -> Check {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(_, f)| *f == Found::Missing)
        .map(|(n, _)| *n)
        .collect();
    let off_path: Vec<PathBuf> = tools
        .iter()
        .filter_map(|(_, f)| match f {
            Found::Sbin(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = tools.iter().map(|(n, _)| *n).collect();
    if !missing.is_empty() {
        return Check::fail(
            "disk-tools",
            format!(
                "missing: {} (every VM create runs them)",
                missing.join(", ")
            ),
            "install e2fsprogs: `sudo apt install e2fsprogs`",
        );
    }
    if !off_path.is_empty() {
        let list: Vec<String> = off_path.iter().map(|p| p.display().to_string()).collect();
        return Check::warn(
            "disk-tools",
            format!(
                "{} not on PATH; the daemon runs them from its PATH",
                list.join(", ")
            ),
            "add /usr/sbin to PATH (sudo's PATH has it)",
        );
    }
    Check::ok("disk-tools", format!("{} on PATH", names.join(", ")))
}

/// `overlay`: how each VM's system disk is made.
pub fn overlay(strategy: &str) -> Check {
    Check::ok(
        "overlay",
        format!(
            "{strategy}: each VM gets a sparse copy of the image's rootfs (device-mapper \
             snapshots are not used)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_proto::CheckStatus::{Fail, Ok, Warn};

    fn on_path(n: &'static str) -> (&'static str, Found) {
        (n, Found::Path(PathBuf::from(format!("/usr/bin/{n}"))))
    }

    #[test]
    fn all_on_path_is_ok_sbin_only_warns_missing_fails() {
        let all: Vec<_> = DISK_TOOLS.iter().map(|n| on_path(n)).collect();
        let c = disk_tools(&all);
        assert_eq!(c.status, Ok);
        assert!(c.detail.contains("mkfs.ext4, resize2fs, e2fsck, debugfs"));

        let mut sbin = all.clone();
        sbin[3] = ("debugfs", Found::Sbin(PathBuf::from("/usr/sbin/debugfs")));
        let c = disk_tools(&sbin);
        assert_eq!(c.status, Warn);
        assert!(
            c.detail.contains("/usr/sbin/debugfs not on PATH"),
            "{}",
            c.detail
        );

        let mut missing = sbin;
        missing[0] = ("mkfs.ext4", Found::Missing);
        let c = disk_tools(&missing);
        assert_eq!(c.status, Fail);
        assert!(c.detail.contains("missing: mkfs.ext4"), "{}", c.detail);
        assert!(c.fix.as_deref().unwrap_or_default().contains("e2fsprogs"));
    }

    #[test]
    fn overlay_names_the_strategy() {
        let c = overlay("sparse-copy");
        assert_eq!(c.status, Ok);
        assert!(c.detail.starts_with("sparse-copy:"));
    }
}
