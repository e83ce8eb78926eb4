//! Test support for banger. Dev-only: no product crate may depend on it outside
//! `[dev-dependencies]` (a workspace test enforces that).
//!
//! - [`TestEnv`]: a private temp root with its own XDG directories, applied to child processes
//!   through their environment, so tests never touch the real user's state and never mutate the
//!   test process's own environment.
//! - [`bin_path`]: the real `banger`/`bangerd` binaries built by this workspace.
//! - [`fakes`]: recording fakes of the VMM and host networking, with failures to inject, so
//!   the daemon's lifecycle can be tested without root, QEMU or a guest.
#![deny(missing_docs)]

pub mod fakes;
pub mod netns;
pub mod oci;

pub use netns::NetNs;

use std::path::{Path, PathBuf};
use std::process::Command;

use banger_model::{Layout, Mode};

/// A throwaway home for one test: `HOME` and every XDG directory live under one temp dir.
pub struct TestEnv {
    root: tempfile::TempDir,
}

impl TestEnv {
    /// Creates a fresh temp root. Its path is short so socket paths stay under 108 bytes.
    pub fn new() -> std::io::Result<Self> {
        let root = tempfile::Builder::new().prefix("bgr").tempdir_in("/tmp")?;
        for dir in ["home", "config", "state", "cache", "run"] {
            std::fs::create_dir_all(root.path().join(dir))?;
        }
        Ok(Self { root })
    }

    /// The temp root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The `HOME` given to child processes.
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    /// The layout a user-mode `banger`/`bangerd` resolves under [`TestEnv::apply`].
    pub fn layout(&self) -> Layout {
        Layout {
            mode: Mode::User,
            config_file: self.root().join("config/banger/config.toml"),
            state_dir: self.root().join("state/banger"),
            cache_dir: self.root().join("cache/banger"),
            runtime_dir: self.root().join("run/banger"),
        }
    }

    /// The environment variables that point a child process at this root.
    pub fn vars(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("HOME", self.home()),
            ("XDG_CONFIG_HOME", self.root().join("config")),
            ("XDG_STATE_HOME", self.root().join("state")),
            ("XDG_CACHE_HOME", self.root().join("cache")),
            ("XDG_RUNTIME_DIR", self.root().join("run")),
        ]
    }

    /// Points `cmd` at this root and turns colour off.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        for (k, v) in self.vars() {
            cmd.env(k, v);
        }
        cmd.env("NO_COLOR", "1").env_remove("BANGER_LOG")
    }

    /// A `Command` for one of the workspace's binaries, already pointed at this root.
    pub fn command(&self, bin: &str) -> Command {
        let mut cmd = Command::new(bin_path(bin));
        self.apply(&mut cmd);
        cmd
    }

    /// Every file under the root that is not a directory, relative to it, sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(self.root(), self.root(), &mut out);
        out.sort();
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(base, &path, out);
        } else if let Ok(rel) = path.strip_prefix(base) {
            out.push(rel.to_path_buf());
        }
    }
}

/// Path of a binary built by this workspace (`banger`, `bangerd`), next to the test's own
/// `target/<profile>/` directory. `cargo test --workspace` builds every binary before running
/// any test, so the path exists whenever tests run that way.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("."));
    // target/<profile>/deps/<test-binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    profile_dir.join(name)
}

/// `fake-firecracker` and `fake-jailer`, built once per test binary with the same cargo
/// (bounded in time; panics if the build fails): `cargo test -p CRATE` does not build other
/// packages' binaries.
pub fn fake_firecracker_bins() -> (&'static Path, &'static Path) {
    static BINS: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    let (fc, jailer) = BINS.get_or_init(build_fake_firecracker);
    (fc, jailer)
}

fn build_fake_firecracker() -> (PathBuf, PathBuf) {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    const BUILD_BOUND: Duration = Duration::from_secs(20 * 60);
    let bin = bin_path("fake-firecracker");
    let jailer = bin_path("fake-jailer");
    let profile_dir = bin.parent().expect("target/<profile>").to_path_buf();
    let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut child = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "banger-testkit",
            "--bin",
            "fake-firecracker",
            "--bin",
            "fake-jailer",
        ])
        .arg("--profile")
        .arg(&profile)
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("cargo runs");
    let deadline = Instant::now() + BUILD_BOUND;
    loop {
        match child.try_wait().expect("wait for cargo") {
            Some(status) => {
                assert!(
                    status.success(),
                    "building fake-firecracker failed: {status}"
                );
                break;
            }
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("building fake-firecracker took over {BUILD_BOUND:?}");
            }
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    assert!(bin.is_file(), "{} was not built", bin.display());
    assert!(jailer.is_file(), "{} was not built", jailer.display());
    (bin, jailer)
}

/// Whether the tests run as root (needed for privileged tests; `.ci/run` runs as root).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Stops whatever daemon runs for a [`TestEnv`] when dropped, so a failing test never leaves a
/// daemon behind. It finds the daemon through the pid in the layout's lock file.
pub struct DaemonGuard {
    lock_file: PathBuf,
}

impl DaemonGuard {
    /// Guards the daemon of `env`'s layout (started now or later).
    pub fn new(env: &TestEnv) -> Self {
        Self {
            lock_file: env.layout().lock_file(),
        }
    }

    /// The pid recorded in the lock file, if the daemon holding it is alive.
    pub fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(&self.lock_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// Waits (bounded) until no live daemon holds the lock; true if it went away.
    pub fn wait_gone(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            match self.pid() {
                None => return true,
                Some(pid) if is_zombie(pid) => return true,
                Some(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        false
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        let Some(pid) = self.pid() else {
            return;
        };
        let _ = Command::new("kill").arg(pid.to_string()).status();
        if !self.wait_gone(std::time::Duration::from_secs(5)) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}
pub mod fake_firecracker;
