//! The real-guest harness: one place that knows how to give a test a network namespace, a
//! banger layout, and the real `banger`/`bangerd` binaries pointed at both.
//!
//! - Pulls reach the Debian mirror, which a namespace cannot, so they run on the host side;
//!   everything else (the daemon, every VM operation, SSH) runs inside the namespace.
//! - The layout lives under a persistent root (`BANGER_E2E_ROOT`, default
//!   `/var/tmp/banger-e2e`) so the default image and kernel are built once per machine and the
//!   second pull is the cache hit users get; VMs are never left behind (a guard deletes them).
//! - Every wait is bounded; every command gets a timeout.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod container;

use banger_model::{Layout, Mode};
use banger_testkit::NetNs;

/// A namespace plus a layout, with the binaries wired to both.
pub struct Guestbed {
    root: PathBuf,
    ns: NetNs,
    /// Held for the bed's life: one bed at a time per machine, so guests never exceed the
    /// bound and the shared layout has one daemon.
    _lock: std::fs::File,
}

/// A banger binary: from the install under test when `BANGER_E2E_PREFIX` names one (CI sets
/// it after `PREFIX=… ./install.sh`, so a missing install step fails the real-guest tests),
/// else from this workspace's build.
pub fn binary(name: &str) -> PathBuf {
    match std::env::var_os("BANGER_E2E_PREFIX") {
        Some(prefix) => {
            let prefix = PathBuf::from(prefix);
            let path = if name == "banger-agent" {
                prefix.join("libexec/banger").join(name)
            } else {
                prefix.join("bin").join(name)
            };
            assert!(
                path.is_file(),
                "BANGER_E2E_PREFIX is set but {} is not installed",
                path.display()
            );
            path
        }
        None => banger_testkit::bin_path(name),
    }
}

/// The persistent root of the e2e layout.
pub fn e2e_root() -> PathBuf {
    std::env::var_os("BANGER_E2E_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/banger-e2e"))
}

impl Guestbed {
    /// A fresh namespace over the shared persistent layout, once no other bed is in use.
    /// An earlier run that was killed (a timeout, a cut-off CI job) never ran its guard, so
    /// the bed first clears what such a run may have left: its daemon, its config, its VMs.
    pub fn new() -> Self {
        let root = e2e_root().join("bed");
        for dir in ["home", "config", "state", "cache", "run"] {
            std::fs::create_dir_all(root.join(dir)).expect("e2e dirs");
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(e2e_root().join("bed.lock"))
            .expect("lock file");
        lock.lock().expect("e2e lock");
        let bed = Self {
            root,
            ns: NetNs::new().expect("network namespace (needs root)"),
            _lock: lock,
        };
        bed.kill_daemon();
        let _ = std::fs::remove_file(bed.layout().config_file);
        bed.delete_every_vm();
        let _ = bed.banger(&["daemon", "stop"], Duration::from_secs(30));
        bed.kill_daemon();
        bed
    }

    /// Deletes every VM the layout holds (best effort: the caller checks what matters).
    fn delete_every_vm(&self) {
        let out = self.banger(&["vm", "list", "--json"], Duration::from_secs(30));
        if let Ok(serde_json::Value::Array(vms)) = serde_json::from_slice(&out.stdout) {
            for vm in vms {
                if let Some(name) = vm["name"].as_str() {
                    let _ = self.banger(&["vm", "delete", name], Duration::from_secs(60));
                }
            }
        }
    }

    /// The layout banger resolves here.
    pub fn layout(&self) -> Layout {
        let mut l = Layout::rooted(Mode::User, &self.root);
        l.config_file = self.root.join("config/banger/config.toml");
        l.state_dir = self.root.join("state/banger");
        l.cache_dir = self.root.join("cache/banger");
        l.runtime_dir = self.root.join("run/banger");
        l
    }

    /// The namespace.
    pub fn ns(&self) -> &NetNs {
        &self.ns
    }

    /// A test OCI registry (no auth) where the daemon is: on the namespace's loopback.
    pub fn registry(&self) -> banger_testkit::oci::Registry {
        let ns = self.ns.name().to_owned();
        banger_testkit::oci::Registry::start_with(
            None,
            Box::new(move |program: &str| {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", &ns]).arg(program);
                cmd
            }),
        )
    }

    fn apply(&self, cmd: &mut Command) {
        cmd.env("HOME", self.root.join("home"))
            .env("XDG_CONFIG_HOME", self.root.join("config"))
            .env("XDG_STATE_HOME", self.root.join("state"))
            .env("XDG_CACHE_HOME", self.root.join("cache"))
            .env("XDG_RUNTIME_DIR", self.root.join("run"))
            .env("NO_COLOR", "1")
            // Only the binaries under test: the daemon must find its agent where they are.
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null());
    }

    /// `banger ARGS` on the host side (for pulls).
    pub fn host(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = Command::new(binary("banger"));
        cmd.args(args);
        self.apply(&mut cmd);
        run(cmd, timeout)
    }

    /// `banger ARGS` inside the namespace.
    pub fn banger(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = self.ns.command(binary("banger"));
        cmd.args(args);
        self.apply(&mut cmd);
        run(cmd, timeout)
    }

    /// `banger ARGS` inside the namespace with `PATH` replaced.
    pub fn banger_with_path(
        &self,
        args: &[&str],
        path: &std::ffi::OsStr,
        timeout: Duration,
    ) -> Output {
        let mut cmd = self.ns.command(binary("banger"));
        cmd.args(args);
        self.apply(&mut cmd);
        cmd.env("PATH", path);
        run(cmd, timeout)
    }

    /// Starts `banger ARGS` inside the namespace without waiting for it (output discarded).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        let mut cmd = self.ns.command(binary("banger"));
        cmd.args(args);
        self.apply(&mut cmd);
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("banger starts")
    }

    /// The `HOME` the binaries get.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// Any `program ARGS` inside the namespace, with the bed's environment.
    pub fn in_ns(&self, program: &str, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = self.ns.command(program);
        cmd.args(args);
        self.apply(&mut cmd);
        run(cmd, timeout)
    }

    /// `banger ARGS` inside the namespace, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.banger(args, Duration::from_secs(300));
        assert!(
            out.status.success(),
            "banger {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Pulls the default image and kernel on the host side (the namespace cannot reach the
    /// mirror), then stops that host-side daemon so VM work happens inside the namespace.
    pub fn pull_defaults(&self) {
        for args in [
            ["image", "pull", "debian-bookworm"],
            ["kernel", "pull", "debian-cloud"],
        ] {
            let out = self.host(&args, Duration::from_secs(900));
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = self.host(&["daemon", "stop"], Duration::from_secs(30));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The daemon's pid, if one runs for this layout.
    pub fn daemon_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.layout().lock_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// SIGKILLs the daemon, if any, and waits until it is gone.
    pub fn kill_daemon(&self) {
        if let Some(pid) = self.daemon_pid() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            wait_until(Duration::from_secs(10), || {
                !Path::new(&format!("/proc/{pid}")).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .map(|s| s.contains(") Z"))
                        .unwrap_or(true)
            });
        }
    }

    /// Names of the namespace's links starting with `prefix`.
    pub fn links(&self, prefix: &str) -> Vec<String> {
        let text = self.ns.ip(&["-o", "link", "show"]).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .filter(|n| n.starts_with(prefix))
            .collect()
    }
}

impl Drop for Guestbed {
    fn drop(&mut self) {
        // Leave no guest behind: delete every VM, then stop the daemon.
        self.delete_every_vm();
        let _ = self.banger(&["daemon", "stop"], Duration::from_secs(30));
        self.kill_daemon();
    }
}

/// Pids of live processes whose command line carries `tag` (a VM's `banger-<id>`).
pub fn tagged_pids(tag: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']));
            !zombie
                && cmdline
                    .split(|b| *b == 0)
                    .any(|arg| String::from_utf8_lossy(arg).contains(tag))
        })
        .collect()
}

/// Runs `cmd` with a timeout; a command that overruns is killed and reported.
pub fn run(mut cmd: Command, timeout: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait for command"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
    }
}

/// Polls `f` every 100 ms until it is true or `timeout` passes; returns whether it became true.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}
