//! Running and supervising sshd.
//!
//! SSH is how users reach a sandbox, so init keeps `sshd -D -e` running as a direct child and
//! restarts it when it exits, with a capped backoff (1 s doubling to 30 s, reset after it has
//! stayed up for 30 s) so a broken configuration costs a log line every 30 s, not a busy loop.
//! The restart decisions live in [`Supervisor`], which takes the spawn function as a parameter
//! so they can be tested without processes.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use banger_guest::paths::SSH_BUNDLE_DIR;

use super::StepError;
use super::accounts;
use super::bundle::{self, Program};
use crate::backoff::Backoff;
use crate::log;

/// The image's OpenSSH server.
pub const SSHD: &str = banger_guest::paths::IMAGE_SSHD;
/// Generates the host key when it is missing.
pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
/// The one host key a sandbox needs. Only ed25519: RSA key generation takes many seconds
/// under emulation, and every OpenSSH client in use speaks ed25519.
pub const HOST_KEY: &str = banger_guest::paths::HOST_KEY;
/// sshd's privilege-separation directory.
pub const PRIVSEP_DIR: &str = "/run/sshd";
/// After running this long, sshd counts as healthy and the backoff starts over.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);

/// The image's sshd, else the bundled one.
pub fn server() -> Option<Program> {
    bundle::resolve(&[SSHD], "sshd")
}

/// How a running sshd comes to serve a host key that changed on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPickup {
    /// Every connection re-executes sshd, which reads its host keys from disk (OpenSSH before
    /// 9.8 in its default re-exec mode), so the next connection already serves the new key.
    NextConnection,
    /// The listener holds the keys (OpenSSH 9.8 and later hand them to `sshd-session`; a
    /// bundled sshd runs with `-r`; anything unrecognised): only a restart serves a new key.
    Restart,
}

/// [`KeyPickup`] of `sshd`, read off its binary (a bundled one never re-executes).
pub fn key_pickup(sshd: &Program) -> KeyPickup {
    if sshd.is_bundled() {
        return KeyPickup::Restart;
    }
    match std::fs::read(&sshd.exe) {
        Ok(binary) => key_pickup_of(&binary),
        Err(_) => KeyPickup::Restart,
    }
}

/// [`KeyPickup`] of an sshd binary's contents: OpenSSH names `sshd-session` (the per-connection
/// program that receives its keys from the listener) from 9.8 on and never before.
pub fn key_pickup_of(binary: &[u8]) -> KeyPickup {
    if contains(binary, b"OpenSSH_") && !contains(binary, b"sshd-session") {
        KeyPickup::NextConnection
    } else {
        KeyPickup::Restart
    }
}

/// Whether `needle` occurs in `hay`: a scan for its first byte (a tight loop, cheap even
/// under emulation, unlike a comparison at every offset), then a comparison there.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut from = 0;
    while let Some(p) = hay
        .get(from..)
        .and_then(|h| h.iter().position(|&b| b == first))
    {
        let at = from + p;
        if hay
            .get(at + 1..)
            .is_some_and(|after| after.starts_with(rest))
        {
            return true;
        }
        from = at + 1;
    }
    false
}

/// sshd's arguments: foreground, log to stderr (the console), the agent-made host key; a
/// bundled sshd also gets banger's config and `-r` (no re-exec: its own path is only reachable
/// through the bundle's loader).
pub fn sshd_args(bundled: bool) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    if bundled {
        args.extend([
            "-r".into(),
            "-f".into(),
            format!("{SSH_BUNDLE_DIR}/sshd_config"),
        ]);
    }
    args.extend(["-D", "-e", "-h", HOST_KEY].map(String::from));
    args
}

/// Creates host keys that are missing and sshd's runtime directory; for a bundled sshd also
/// the accounts it needs.
pub fn prepare() -> Vec<StepError> {
    let mut errors = Vec::new();
    for dir in [PRIVSEP_DIR, "/etc/ssh"] {
        if let Err(source) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
        {
            errors.push(StepError::Mkdir {
                path: dir.into(),
                source,
            });
        }
    }
    if server().is_some_and(|s| s.is_bundled()) {
        errors.extend(ensure_accounts().err());
    }
    if !std::path::Path::new(HOST_KEY).exists() {
        match bundle::resolve(&[SSH_KEYGEN], "ssh-keygen") {
            Some(keygen) => {
                if let Err(e) =
                    super::run_program(&keygen, &["-q", "-t", "ed25519", "-N", "", "-f", HOST_KEY])
                {
                    errors.push(e);
                }
            }
            None => errors.push(StepError::Spawn {
                program: SSH_KEYGEN.into(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "neither the image nor banger's bundle has ssh-keygen",
                ),
            }),
        }
    }
    errors
}

/// Installs the host key the host made (both files, each written beside and renamed into
/// place, the private one readable by root only).
pub fn install_host_key(key: &banger_guest::identity::HostKey) -> Result<(), StepError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let public = format!("{HOST_KEY}.pub");
    for (path, text, mode) in [
        (HOST_KEY, key.private.as_str(), 0o600),
        (public.as_str(), key.public.as_str(), 0o644),
    ] {
        let staged = format!("{path}.banger-new");
        let write = |source| StepError::Write {
            path: path.to_owned(),
            source,
        };
        let _ = std::fs::remove_file(&staged);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&staged)
            .map_err(write)?;
        file.write_all(text.as_bytes()).map_err(write)?;
        drop(file);
        std::fs::rename(&staged, path).map_err(write)?;
    }
    Ok(())
}

/// Adds the `sshd` user and group and a usable `root` entry when they are missing.
fn ensure_accounts() -> Result<(), StepError> {
    let read = |p: &str| match std::fs::read_to_string(p) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(StepError::Write {
            path: p.into(),
            source,
        }),
    };
    let invalid = |path: &str, msg: String| StepError::Write {
        path: path.into(),
        source: io::Error::new(io::ErrorKind::InvalidData, msg),
    };
    let (group, gid) =
        accounts::ensure_group(&read("/etc/group")?).map_err(|m| invalid("/etc/group", m))?;
    if let Some(text) = group {
        super::write_file("/etc/group", &text)?;
        log!("added group {} to /etc/group", accounts::PRIVSEP_USER);
    }
    let exists = |p: &str| std::path::Path::new(p).is_file();
    if let Some(text) = accounts::ensure_passwd(&read("/etc/passwd")?, gid, &exists)
        .map_err(|m| invalid("/etc/passwd", m))?
    {
        super::write_file("/etc/passwd", &text)?;
        log!("updated /etc/passwd for the bundled sshd");
    }
    Ok(())
}

/// Starts sshd (the image's, or banger's bundled one).
pub fn spawn_sshd() -> io::Result<Pid> {
    let sshd = server().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "neither the image nor banger's bundle has sshd",
        )
    })?;
    let args = sshd_args(sshd.is_bundled());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = sshd
        .command(&args)
        .env_clear()
        .env("PATH", super::PATH)
        .stdin(Stdio::null())
        .spawn()?;
    let pid = i32::try_from(child.id()).map_err(io::Error::other)?;
    // The child is reaped by init's waitpid(-1) loop, not through `child`.
    drop(child);
    Ok(Pid::from_raw(pid))
}

/// When sshd should run next.
#[derive(Debug)]
pub struct Supervisor {
    pid: Option<Pid>,
    started: Instant,
    restart_at: Option<Instant>,
    backoff: Backoff,
}

impl Supervisor {
    /// A supervisor that wants sshd started at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            pid: None,
            started: now,
            restart_at: Some(now),
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
        }
    }

    /// The running sshd, if any.
    pub fn pid(&self) -> Option<Pid> {
        self.pid
    }

    /// How long until a start is due (zero if overdue), or `None` when sshd is running.
    pub fn due_in(&self, now: Instant) -> Option<Duration> {
        self.restart_at.map(|t| t.saturating_duration_since(now))
    }

    fn schedule(&mut self, now: Instant, ran_for: Duration) -> Duration {
        if ran_for >= STABLE_AFTER {
            self.backoff.reset();
        }
        let delay = self.backoff.next_delay();
        self.restart_at = Some(now + delay);
        delay
    }

    /// Starts sshd with `spawn` if a start is due.
    pub fn poll(&mut self, now: Instant, spawn: impl FnOnce() -> io::Result<Pid>) {
        if self.pid.is_some() || self.restart_at.is_none_or(|t| t > now) {
            return;
        }
        match spawn() {
            Ok(pid) => {
                log!("started sshd (pid {pid})");
                self.pid = Some(pid);
                self.started = now;
                self.restart_at = None;
            }
            Err(e) => {
                let delay = self.schedule(now, Duration::ZERO);
                log!("cannot start {SSHD}: {e}; retrying in {}s", delay.as_secs());
            }
        }
    }

    /// Wants sshd started at `now`, without backoff (after a deliberate stop).
    pub fn restart_now(&mut self, now: Instant) {
        if self.pid.is_none() {
            self.backoff.reset();
            self.restart_at = Some(now);
        }
    }

    /// Notes that a child exited; true if it was sshd (a restart is then scheduled).
    pub fn child_exited(&mut self, pid: Pid, status: &WaitStatus, now: Instant) -> bool {
        if self.pid != Some(pid) {
            return false;
        }
        self.pid = None;
        let ran_for = now.saturating_duration_since(self.started);
        let delay = self.schedule(now, ran_for);
        log!(
            "sshd (pid {pid}) {}; restarting in {}s",
            super::reap::describe(status),
            delay.as_secs()
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_re_executing_openssh_before_9_8_picks_up_keys_by_itself() {
        let v92 = b"\0OpenSSH_9.2p1 Debian-2\0/usr/sbin/sshd\0-R\0";
        let v98 = b"\0OpenSSH_9.8p1\0/usr/lib/openssh/sshd-session\0";
        assert_eq!(key_pickup_of(v92), KeyPickup::NextConnection);
        assert_eq!(key_pickup_of(v98), KeyPickup::Restart);
        assert_eq!(key_pickup_of(b"dropbear"), KeyPickup::Restart);
        assert_eq!(key_pickup_of(b""), KeyPickup::Restart);
        assert!(contains(b"xxOpenSSH_9", b"OpenSSH_"));
        assert!(contains(b"OpenSSH_", b"OpenSSH_"));
        assert!(!contains(b"OpenSSH", b"OpenSSH_"));
        assert!(contains(b"sshsshd-session", b"sshd-session"));
        assert!(contains(b"abc", b""));
        let bundled = Program::bundled("/b", "sshd");
        assert_eq!(key_pickup(&bundled), KeyPickup::Restart);
        assert_eq!(
            key_pickup(&Program::direct("/nonexistent/sshd")),
            KeyPickup::Restart
        );
    }

    #[test]
    fn the_host_sshd_is_recognised() {
        // The host's own OpenSSH (the CI installs openssh-server): whatever its version, the
        // verdict must match whether it ships sshd-session.
        let binary = std::fs::read("/usr/sbin/sshd")
            .expect("/usr/sbin/sshd: install openssh-server (.ci/run does)");
        let split = ["/usr/lib/openssh/sshd-session", "/usr/libexec/sshd-session"]
            .iter()
            .any(|p| std::path::Path::new(p).exists());
        let want = if split {
            KeyPickup::Restart
        } else {
            KeyPickup::NextConnection
        };
        assert_eq!(key_pickup_of(&binary), want);
    }

    fn exit(pid: Pid) -> WaitStatus {
        WaitStatus::Exited(pid, 255)
    }

    #[test]
    fn bundled_sshd_gets_banger_s_config_and_no_reexec() {
        assert_eq!(
            sshd_args(false),
            ["-D", "-e", "-h", "/etc/ssh/ssh_host_ed25519_key"]
        );
        assert_eq!(
            sshd_args(true),
            [
                "-r",
                "-f",
                "/usr/local/lib/banger/ssh/sshd_config",
                "-D",
                "-e",
                "-h",
                "/etc/ssh/ssh_host_ed25519_key"
            ]
        );
    }

    #[test]
    fn starts_immediately_then_backs_off_on_quick_exits() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(t0);
        assert_eq!(s.due_in(t0), Some(Duration::ZERO));
        let mut next = 100;
        let mut spawn = || {
            next += 1;
            Ok(Pid::from_raw(next))
        };
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..7 {
            s.poll(now, &mut spawn);
            let pid = s.pid().expect("running");
            assert_eq!(s.due_in(now), None);
            now += Duration::from_millis(10);
            assert!(s.child_exited(pid, &exit(pid), now));
            let d = s.due_in(now).expect("scheduled");
            delays.push(d.as_secs());
            // Not restarted before it is due.
            s.poll(now, || panic!("too early"));
            now += d;
        }
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn long_run_resets_backoff_and_other_children_are_ignored() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(t0);
        s.poll(t0, || Ok(Pid::from_raw(7)));
        let other = Pid::from_raw(8);
        assert!(!s.child_exited(other, &exit(other), t0));
        assert_eq!(s.pid(), Some(Pid::from_raw(7)));
        let t1 = t0 + Duration::from_millis(1);
        assert!(s.child_exited(Pid::from_raw(7), &exit(Pid::from_raw(7)), t1));
        let t2 = t1 + Duration::from_secs(1);
        s.poll(t2, || Ok(Pid::from_raw(9)));
        assert!(s.child_exited(
            Pid::from_raw(9),
            &exit(Pid::from_raw(9)),
            t2 + Duration::from_secs(1)
        ));
        assert_eq!(
            s.due_in(t2 + Duration::from_secs(1)),
            Some(Duration::from_secs(2))
        );
        let t3 = t2 + Duration::from_secs(3);
        s.poll(t3, || Ok(Pid::from_raw(10)));
        let t4 = t3 + STABLE_AFTER;
        assert!(s.child_exited(Pid::from_raw(10), &exit(Pid::from_raw(10)), t4));
        assert_eq!(s.due_in(t4), Some(Duration::from_secs(1)));
    }

    #[test]
    fn spawn_failure_is_retried_with_backoff() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(t0);
        s.poll(t0, || Err(io::Error::from(io::ErrorKind::NotFound)));
        assert_eq!(s.pid(), None);
        assert_eq!(s.due_in(t0), Some(Duration::from_secs(1)));
        s.poll(t0 + Duration::from_secs(1), || {
            Err(io::Error::from(io::ErrorKind::NotFound))
        });
        assert_eq!(
            s.due_in(t0 + Duration::from_secs(1)),
            Some(Duration::from_secs(2))
        );
    }
}
