//! Network namespaces made by tests, for tests.
//!
//! Every bridge, TAP and guest a test creates lives inside a namespace made here and removed
//! when the guard drops, so tests never touch the host's own network. Names are unique per
//! process and call, short enough for interface-name-like uses.

use std::fs::File;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace that exists until this value is dropped.
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `bgr-t<pid>-<n>` with its loopback up. Needs root.
    pub fn new() -> std::io::Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("bgr-t{}-{n}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Self { name };
        run(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Moves the calling thread into the namespace (only this thread; other threads stay).
    /// Use it on a dedicated thread.
    pub fn enter_on_this_thread(&self) -> std::io::Result<()> {
        let file = File::open(format!("/var/run/netns/{}", self.name))?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
    }

    /// Output of `ip -n NS ARGS…`, for assertions.
    pub fn ip(&self, args: &[&str]) -> std::io::Result<String> {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(cmd: &mut Command) -> std::io::Result<()> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
