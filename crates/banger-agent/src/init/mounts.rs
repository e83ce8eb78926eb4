//! The filesystems init must provide, and the work disk.
//!
//! After `switch_root` the initramfs may already have moved `/proc`, `/sys`, `/dev` and `/run`
//! into the new root, so every mount is "if not mounted": [`api_mounts`] is the fixed plan,
//! [`parse_mountinfo`] reads what is there, and [`setup`] mounts only what is missing. `/proc`
//! comes first because the mount table is read from it; `/` is remounted read-write before any
//! directory is created. Each failure is logged and the next mount is still tried.

use std::collections::HashSet;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::statvfs::{FsFlags, statvfs};

use super::StepError;
use crate::log;

/// One filesystem to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The `source` argument (a label for virtual filesystems).
    pub source: &'static str,
    /// Where to mount it.
    pub target: &'static str,
    /// The filesystem type.
    pub fstype: &'static str,
    /// Mount flags.
    pub flags: MsFlags,
    /// Filesystem options.
    pub data: Option<&'static str>,
    /// Mode of the mount point if it has to be created.
    pub dir_mode: u32,
}

/// The API filesystems, in mount order (parents before children).
pub fn api_mounts() -> Vec<MountSpec> {
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let kernel = nosuid_nodev | MsFlags::MS_NOEXEC;
    vec![
        MountSpec {
            source: "proc",
            target: "/proc",
            fstype: "proc",
            flags: kernel,
            data: None,
            dir_mode: 0o555,
        },
        MountSpec {
            source: "sysfs",
            target: "/sys",
            fstype: "sysfs",
            flags: kernel,
            data: None,
            dir_mode: 0o555,
        },
        MountSpec {
            source: "devtmpfs",
            target: "/dev",
            fstype: "devtmpfs",
            flags: MsFlags::MS_NOSUID,
            data: Some("mode=0755"),
            dir_mode: 0o755,
        },
        MountSpec {
            source: "devpts",
            target: "/dev/pts",
            fstype: "devpts",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            data: Some("gid=5,mode=620,ptmxmode=000"),
            dir_mode: 0o755,
        },
        MountSpec {
            source: "tmpfs",
            target: "/dev/shm",
            fstype: "tmpfs",
            flags: nosuid_nodev,
            data: Some("mode=1777"),
            dir_mode: 0o1777,
        },
        MountSpec {
            source: "tmpfs",
            target: "/run",
            fstype: "tmpfs",
            flags: nosuid_nodev,
            data: Some("mode=0755"),
            dir_mode: 0o755,
        },
        MountSpec {
            source: "tmpfs",
            target: "/tmp",
            fstype: "tmpfs",
            flags: nosuid_nodev,
            data: Some("mode=1777"),
            dir_mode: 0o1777,
        },
    ]
}

/// The `/dev` symlinks that udev or systemd would otherwise create.
pub const DEV_LINKS: &[(&str, &str)] = &[
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

/// Mount points listed in `/proc/self/mountinfo` (field 5, octal escapes decoded).
pub fn parse_mountinfo(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_octal)
        .collect()
}

/// Decodes the `\040`-style escapes the kernel uses in mount tables.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The specs of `plan` whose target is not in `mounted`, in order.
pub fn missing<'a>(plan: &'a [MountSpec], mounted: &HashSet<String>) -> Vec<&'a MountSpec> {
    plan.iter()
        .filter(|m| !mounted.contains(m.target))
        .collect()
}

/// The current mount points (empty if `/proc` is unavailable).
pub fn current_mounts() -> HashSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t).into_iter().collect())
        .unwrap_or_default()
}

/// Whether `path` is a mount point now.
pub fn is_mount_point(path: &str) -> bool {
    current_mounts().contains(path)
}

fn make_dir(path: &str, mode: u32) -> Result<(), StepError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|source| StepError::Mkdir {
            path: path.to_owned(),
            source,
        })
}

fn do_mount(spec: &MountSpec) -> Result<(), StepError> {
    if !Path::new(spec.target).is_dir() {
        make_dir(spec.target, spec.dir_mode)?;
    }
    mount(
        Some(spec.source),
        spec.target,
        Some(spec.fstype),
        spec.flags,
        spec.data,
    )
    .map_err(|source| StepError::Mount {
        target: spec.target.to_owned(),
        source,
    })
}

/// Remounts `/` read-write when it is read-only.
pub fn remount_root_rw() -> Result<bool, StepError> {
    let ro = statvfs("/")
        .map(|s| s.flags().contains(FsFlags::ST_RDONLY))
        .map_err(|source| StepError::Mount {
            target: "/".into(),
            source,
        })?;
    if !ro {
        return Ok(false);
    }
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT,
        None::<&str>,
    )
    .map_err(|source| StepError::Mount {
        target: "/".into(),
        source,
    })?;
    Ok(true)
}

/// Mounts the API filesystems that are missing and remounts `/` read-write.
pub fn setup() {
    let plan = api_mounts();
    let (proc_spec, rest) = plan.split_at(1);
    if !Path::new("/proc/self/mountinfo").exists() {
        match do_mount(&proc_spec[0]) {
            Ok(()) => log!("mounted /proc"),
            Err(e) => log!("{}", crate::log::chain(&e)),
        }
    }
    match remount_root_rw() {
        Ok(true) => log!("remounted / read-write"),
        Ok(false) => {}
        Err(e) => log!("{}", crate::log::chain(&e)),
    }
    let mounted = current_mounts();
    for spec in missing(rest, &mounted) {
        match do_mount(spec) {
            Ok(()) => log!("mounted {} ({})", spec.target, spec.fstype),
            Err(e) => log!("{}", crate::log::chain(&e)),
        }
    }
    for (link, target) in DEV_LINKS {
        if std::fs::symlink_metadata(link).is_err()
            && let Err(e) = std::os::unix::fs::symlink(target, link)
        {
            log!("cannot link {link} -> {target}: {e}");
        }
    }
}

/// Waits (bounded) for a device node to appear.
pub fn wait_for_path(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if path.exists() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Mounts the work disk `dev` (ext4) at `/root`, unless `/root` is already a mount point.
pub fn mount_work(dev: &str) -> Result<(), StepError> {
    if is_mount_point("/root") {
        log!("/root is already mounted");
        return Ok(());
    }
    if !wait_for_path(Path::new(dev), Duration::from_secs(5)) {
        return Err(StepError::Timeout {
            what: format!("work disk {dev}"),
        });
    }
    if !Path::new("/root").is_dir() {
        make_dir("/root", 0o700)?;
    }
    mount(
        Some(dev),
        "/root",
        Some("ext4"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|source| StepError::Mount {
        target: "/root".into(),
        source,
    })
}

/// Unmounts `target`, lazily if it is busy.
pub fn unmount(target: &str) -> Result<(), StepError> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => umount2(target, MntFlags::MNT_DETACH),
        Err(e) => Err(e),
    }
    .map_err(|source| StepError::Unmount {
        target: target.to_owned(),
        source,
    })
}

/// Remounts `/` read-only (last step before power-off).
pub fn remount_root_ro() -> Result<(), StepError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|source| StepError::Mount {
        target: "/ (read-only)".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw
24 22 0:5 / /dev rw,nosuid shared:3 - devtmpfs devtmpfs rw,size=1k
25 22 0:30 / /mnt/with\\040space rw - tmpfs tmpfs rw
";

    #[test]
    fn parses_mountinfo_and_unescapes() {
        assert_eq!(
            parse_mountinfo(MOUNTINFO),
            vec!["/", "/proc", "/dev", "/mnt/with space"]
        );
        assert_eq!(unescape_octal("a\\134b\\01"), "a\\b\\01");
    }

    #[test]
    fn plan_mounts_parents_first() {
        let plan = api_mounts();
        let targets: Vec<&str> = plan.iter().map(|m| m.target).collect();
        assert_eq!(
            targets,
            vec![
                "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/run", "/tmp"
            ]
        );
        for (i, m) in plan.iter().enumerate() {
            for parent in &plan[i + 1..] {
                assert!(
                    !m.target.starts_with(&format!("{}/", parent.target)),
                    "{} mounted before its parent {}",
                    m.target,
                    parent.target
                );
            }
        }
    }

    #[test]
    fn only_missing_mounts_are_planned() {
        let plan = api_mounts();
        let mounted: HashSet<String> = parse_mountinfo(MOUNTINFO).into_iter().collect();
        let todo: Vec<&str> = missing(&plan, &mounted).iter().map(|m| m.target).collect();
        assert_eq!(todo, vec!["/sys", "/dev/pts", "/dev/shm", "/run", "/tmp"]);
    }
}
