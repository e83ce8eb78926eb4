//! The `jailer` command line and the chroot's layout, built as data.
//!
//! Why pure: the argv and the paths are what the root helper's policy reasons about, so they
//! are fixed here as tested functions; [`crate::launch`] runs with them.
//!
//! Flag names follow Firecracker's `docs/jailer.md`: `--id`, `--exec-file`, `--uid`, `--gid`,
//! `--chroot-base-dir`, optional `--netns`, `--daemonize`, `--new-pid-ns`, then `--` and the
//! arguments passed on to Firecracker (the jailer adds `--id` for Firecracker itself, so the
//! process still carries the `banger-<id>` tag liveness checks look for).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Longest id the jailer (and Firecracker's `--id`) accepts.
pub const MAX_ID: usize = 64;

/// Whether the jailer accepts `id` for `--id`: 1..=64 alphanumerics or `-`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len()) && id.chars().all(|c| c == '-' || c.is_ascii_alphanumeric())
}

/// The jailer's default `--chroot-base-dir`.
pub const DEFAULT_CHROOT_BASE: &str = "/srv/jailer";

/// Flags of one `jailer` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailerArgs {
    /// `--id`: the jail's id, also Firecracker's instance id (1..=64 alphanumerics or `-`).
    pub id: String,
    /// `--exec-file`: the Firecracker binary to copy into the jail and exec.
    pub exec_file: PathBuf,
    /// `--uid`: the uid Firecracker runs as.
    pub uid: u32,
    /// `--gid`: the gid Firecracker runs as.
    pub gid: u32,
    /// `--chroot-base-dir`.
    pub chroot_base_dir: PathBuf,
    /// `--netns`: a network namespace file to join.
    pub netns: Option<PathBuf>,
    /// `--daemonize`.
    pub daemonize: bool,
    /// `--new-pid-ns`.
    pub new_pid_ns: bool,
}

/// Why a jailer command line cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JailerArgsError {
    /// The id breaks the jailer's rule.
    #[error("invalid jail id {0:?}: 1..=64 alphanumerics or '-'")]
    Id(String),
    /// `--exec-file` must name a file.
    #[error("jailer exec file {} has no file name", .0.display())]
    ExecFile(PathBuf),
}

impl JailerArgs {
    /// The jail's root: `<chroot_base_dir>/<exec file name>/<id>/root`.
    pub fn chroot_dir(&self) -> Result<PathBuf, JailerArgsError> {
        let name = self
            .exec_file
            .file_name()
            .ok_or_else(|| JailerArgsError::ExecFile(self.exec_file.clone()))?;
        Ok(self.chroot_base_dir.join(name).join(&self.id).join("root"))
    }

    /// A host path as seen from inside the jail, if it lies in it.
    pub fn path_in_jail(&self, host_path: &Path) -> Option<PathBuf> {
        let root = self.chroot_dir().ok()?;
        let rel = host_path.strip_prefix(&root).ok()?;
        Some(Path::new("/").join(rel))
    }
}

/// `argv` of the jailer: `jailer_bin`, its flags in a fixed order, `--`, then
/// `firecracker_args` (Firecracker's own flags, without the binary).
pub fn jailer_command_line(
    jailer_bin: impl Into<OsString>,
    args: &JailerArgs,
    firecracker_args: &[OsString],
) -> Result<Vec<OsString>, JailerArgsError> {
    if !is_valid_id(&args.id) {
        return Err(JailerArgsError::Id(args.id.clone()));
    }
    if args.exec_file.file_name().is_none() {
        return Err(JailerArgsError::ExecFile(args.exec_file.clone()));
    }
    let mut argv: Vec<OsString> = vec![
        jailer_bin.into(),
        "--id".into(),
        args.id.clone().into(),
        "--exec-file".into(),
        args.exec_file.clone().into_os_string(),
        "--uid".into(),
        args.uid.to_string().into(),
        "--gid".into(),
        args.gid.to_string().into(),
        "--chroot-base-dir".into(),
        args.chroot_base_dir.clone().into_os_string(),
    ];
    if let Some(netns) = &args.netns {
        argv.push("--netns".into());
        argv.push(netns.clone().into_os_string());
    }
    if args.daemonize {
        argv.push("--daemonize".into());
    }
    if args.new_pid_ns {
        argv.push("--new-pid-ns".into());
    }
    if !firecracker_args.is_empty() {
        argv.push("--".into());
        argv.extend(firecracker_args.iter().cloned());
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> JailerArgs {
        JailerArgs {
            id: "banger-0123abcd".to_owned(),
            exec_file: "/usr/bin/firecracker".into(),
            uid: 123,
            gid: 456,
            chroot_base_dir: DEFAULT_CHROOT_BASE.into(),
            netns: None,
            daemonize: false,
            new_pid_ns: false,
        }
    }

    #[test]
    fn minimal_and_full_command_lines() {
        let fc: Vec<OsString> = vec!["--api-sock".into(), "/run/firecracker.socket".into()];
        assert_eq!(
            jailer_command_line("/usr/bin/jailer", &args(), &fc).expect("argv"),
            [
                "/usr/bin/jailer",
                "--id",
                "banger-0123abcd",
                "--exec-file",
                "/usr/bin/firecracker",
                "--uid",
                "123",
                "--gid",
                "456",
                "--chroot-base-dir",
                "/srv/jailer",
                "--",
                "--api-sock",
                "/run/firecracker.socket",
            ]
        );
        let full = JailerArgs {
            netns: Some("/var/run/netns/bgr".into()),
            daemonize: true,
            new_pid_ns: true,
            ..args()
        };
        let argv = jailer_command_line("jailer", &full, &[]).expect("argv");
        assert_eq!(
            argv[11..],
            [
                "--netns",
                "/var/run/netns/bgr",
                "--daemonize",
                "--new-pid-ns"
            ]
        );
        assert!(!argv.iter().any(|a| a == "--"));
    }

    #[test]
    fn rejects_bad_ids_and_exec_files() {
        let bad = JailerArgs {
            id: "a_b".to_owned(),
            ..args()
        };
        assert_eq!(
            jailer_command_line("jailer", &bad, &[]),
            Err(JailerArgsError::Id("a_b".to_owned()))
        );
        let bad = JailerArgs {
            exec_file: "/".into(),
            ..args()
        };
        assert!(matches!(
            jailer_command_line("jailer", &bad, &[]),
            Err(JailerArgsError::ExecFile(_))
        ));
    }

    #[test]
    fn chroot_layout() {
        let a = args();
        assert_eq!(
            a.chroot_dir().expect("chroot"),
            Path::new("/srv/jailer/firecracker/banger-0123abcd/root")
        );
        assert_eq!(
            a.path_in_jail(Path::new(
                "/srv/jailer/firecracker/banger-0123abcd/root/run/fc.sock"
            )),
            Some(PathBuf::from("/run/fc.sock"))
        );
        assert_eq!(a.path_in_jail(Path::new("/elsewhere")), None);
    }
}
