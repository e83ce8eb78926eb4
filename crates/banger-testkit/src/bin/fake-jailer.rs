//! `fake-jailer`: Firecracker's jailer as banger relies on it, for contract tests where the
//! real one cannot be downloaded.
//!
//! It follows the operation list of Firecracker's `docs/jailer.md`, in its order:
//!
//! 1. validate: `--id` 1..=64 alphanumerics or `-`; `--exec-file` an existing file whose name
//!    contains `firecracker`; `--chroot-base-dir` (default `/srv/jailer`) absolute; `--uid` and
//!    `--gid` numbers. Flags banger does not use (`--cgroup`, `--netns`, `--new-pid-ns`, …) are
//!    refused as not implemented, unknown ones as errors;
//! 2. create `<chroot-base>/<exec-file-name>/<id>/root` (an existing one is fine, as upstream)
//!    and copy the exec file to `root/<exec-file-name>`;
//! 3. as root: `mknod` `dev/kvm` (10:232) and `dev/net/tun` (10:200) in the jail, `chown` them
//!    and the jail's root to `uid:gid`;
//! 4. `--daemonize`: `setsid()` — which fails for a process-group leader, as upstream warns —
//!    and the three standard descriptors to `/dev/null`;
//! 5. write its pid to `root/<exec-file-name>.pid` (no `--new-pid-ns`, so the pid stays the
//!    same through the exec: it is Firecracker's pid);
//! 6. drop to `gid` (supplementary groups cleared) and `uid`; exec the *copy* in the jail with
//!    `--id=<id> --start-time-us=… --start-time-cpu-us=…` and the arguments after `--`, with
//!    an empty environment and the jail's root as working directory.
//!
//! The one deviation: it does not `pivot_root`/`chroot`, because `fake-firecracker` is a
//! dynamically linked test binary that could not run in an empty root. Instead it passes the
//! jail's root in `BANGER_FAKE_JAIL_ROOT`, and the fake Firecracker resolves every path it is
//! given inside that root and refuses any that leaves it — so a caller that forgot to stage a
//! file, or passed a host path, fails exactly where it would against the real jailer.
//!
//! Unprivileged, the real jailer fails; this one runs unprivileged only when `--uid`/`--gid`
//! are the caller's own (then steps 3 and the drop are no-ops), so the staging and pid-file
//! contract can be tested without root; the uid drop is tested as root.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use banger_testkit::fake_firecracker::JAIL_ROOT_ENV;

/// The jailer's default `--chroot-base-dir`.
const DEFAULT_CHROOT_BASE: &str = "/srv/jailer";

/// Real jailer flags this fake does not implement.
const UNSUPPORTED: &[&str] = &[
    "cgroup",
    "cgroup-version",
    "parent-cgroup",
    "netns",
    "resource-limit",
    "new-pid-ns",
];

#[derive(Debug, Default)]
struct Args {
    id: Option<String>,
    exec_file: Option<PathBuf>,
    uid: Option<u32>,
    gid: Option<u32>,
    chroot_base: Option<PathBuf>,
    daemonize: bool,
    extra: Vec<OsString>,
}

fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = argv.into_iter();
    while let Some(raw) = it.next() {
        let text = raw.to_string_lossy().into_owned();
        if text == "--" {
            args.extra = it.collect();
            break;
        }
        let Some(name) = text.strip_prefix("--") else {
            return Err(format!("unexpected argument {text:?}"));
        };
        if UNSUPPORTED.contains(&name) {
            return Err(format!("fake-jailer does not implement --{name}"));
        }
        if name == "daemonize" {
            args.daemonize = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        let number = || {
            value
                .to_string_lossy()
                .parse::<u32>()
                .map_err(|_| format!("--{name} must be a number"))
        };
        match name {
            "id" => args.id = Some(value.to_string_lossy().into_owned()),
            "exec-file" => args.exec_file = Some(value.clone().into()),
            "uid" => args.uid = Some(number()?),
            "gid" => args.gid = Some(number()?),
            "chroot-base-dir" => args.chroot_base = Some(value.clone().into()),
            _ => return Err(format!("unknown argument --{name}")),
        }
    }
    Ok(args)
}

fn run(args: Args) -> Result<std::convert::Infallible, String> {
    let id = args.id.ok_or("--id is required")?;
    if !(1..=64).contains(&id.len()) || !id.chars().all(|c| c == '-' || c.is_ascii_alphanumeric()) {
        return Err(format!("invalid instance id {id:?}"));
    }
    let exec_file = args.exec_file.ok_or("--exec-file is required")?;
    let (uid, gid) = (
        args.uid.ok_or("--uid is required")?,
        args.gid.ok_or("--gid is required")?,
    );
    let name = exec_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n.contains("firecracker"))
        .ok_or_else(|| format!("{} is not a firecracker binary", exec_file.display()))?;
    if !exec_file.is_file() {
        return Err(format!("{} is not a file", exec_file.display()));
    }
    let base = args
        .chroot_base
        .unwrap_or_else(|| DEFAULT_CHROOT_BASE.into());
    if !base.is_absolute() {
        return Err(format!("chroot base {} is not absolute", base.display()));
    }
    let root_user = nix::unistd::geteuid().is_root();
    if !root_user
        && (uid != nix::unistd::getuid().as_raw() || gid != nix::unistd::getgid().as_raw())
    {
        return Err("switching uid/gid needs root".to_owned());
    }

    let root = base.join(&name).join(&id).join("root");
    std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
    let jailed_exec = root.join(&name);
    std::fs::copy(&exec_file, &jailed_exec)
        .map_err(|e| format!("copy {} into the jail: {e}", exec_file.display()))?;
    if root_user {
        make_devices(&root, uid, gid)?;
        std::os::unix::fs::chown(&root, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", root.display()))?;
    }
    let mut command = Command::new(&jailed_exec);
    if args.daemonize {
        nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }
    let pid_file = root.join(format!("{name}.pid"));
    std::fs::write(&pid_file, std::process::id().to_string())
        .map_err(|e| format!("write {}: {e}", pid_file.display()))?;
    if root_user {
        nix::unistd::setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
        nix::unistd::setgid(nix::unistd::Gid::from_raw(gid)).map_err(|e| format!("setgid: {e}"))?;
        nix::unistd::setuid(nix::unistd::Uid::from_raw(uid)).map_err(|e| format!("setuid: {e}"))?;
    }
    let error = command
        .arg(format!("--id={id}"))
        .arg("--start-time-us=0")
        .arg("--start-time-cpu-us=0")
        .args(&args.extra)
        .env_clear()
        .env(JAIL_ROOT_ENV, &root)
        .current_dir(&root)
        .exec();
    Err(format!("exec {}: {error}", jailed_exec.display()))
}

fn make_devices(root: &Path, uid: u32, gid: u32) -> Result<(), String> {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    for (rel, major, minor) in [("dev/kvm", 10, 232), ("dev/net/tun", 10, 200)] {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("create {}: {e}", parent.display()))?;
        }
        match mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::S_IRUSR | Mode::S_IWUSR,
            makedev(major, minor),
        ) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(format!("mknod {}: {e}", path.display())),
        }
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let outcome = parse(std::env::args_os().skip(1)).and_then(run);
    match outcome {
        Ok(never) => match never {},
        Err(message) => {
            eprintln!("fake-jailer: {message}");
            ExitCode::FAILURE
        }
    }
}
