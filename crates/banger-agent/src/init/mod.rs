//! PID 1 of a banger sandbox.
//!
//! Sandbox images boot the kernel with `init=/usr/local/bin/banger-agent` after an initramfs has
//! loaded the virtio modules and switched root. Instead of systemd (30–44 s to SSH under TCG)
//! init does only what a sandbox needs, in this order:
//!
//! 1. block the signals it handles (before any thread exists, so all threads inherit the mask);
//! 2. mount the API filesystems that are missing and remount `/` read-write ([`mounts`]);
//! 3. disable Ctrl-Alt-Del reboot, so the kernel sends SIGINT to PID 1 instead;
//! 4. read the `banger.*` parameters from `/proc/cmdline` ([`banger_guest::boot`]);
//! 5. start the API transports (the host's "wait for agent" stage can pass from here on);
//! 6. hostname, `/etc/hosts`, the work disk at `/root`, `/etc/resolv.conf`, network ([`net`]);
//! 7. host keys and `/run/sshd`, then supervise `sshd -D -e` ([`sshd`]) while reaping every
//!    child ([`reap`]) until SIGINT/SIGTERM/SIGPWR or `POST /shutdown`; once sshd is first
//!    started and its binary probed (on a thread), `GET /healthz` says `"settled":true` (a
//!    warm snapshot is saved only then, so a restored guest wakes in this loop and takes
//!    `POST /identity` at once);
//! 8. power off ([`poweroff`]).
//!
//! Every step but the first logs its failure and carries on; a panic or fatal error anywhere
//! leads to the power-off path, and [`run`] never returns, because PID 1 exiting panics the
//! kernel.

pub mod accounts;
pub mod bundle;
pub mod entropy;
pub mod identity;
pub mod mounts;
pub mod net;
pub mod nic;
pub mod poweroff;
pub mod reap;
pub mod sshd;

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};

use crate::api::{Api, Settled, SystemInfo};
use crate::log::chain;
use crate::transport::{self, Transports};
use crate::{files, log};
use banger_guest::GuestBoot;
use banger_guest::paths::WORK_MOUNT;

/// `PATH` given to every program init starts.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The main loop wakes at least this often to reap children (a SIGCHLD may have been merged).
const TICK: Duration = Duration::from_secs(5);

/// How long to wait for the NIC or the work disk to appear.
const DEVICE_WAIT: Duration = Duration::from_secs(5);

/// A failed init step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// `mount(2)` failed.
    #[error("cannot mount {target}")]
    Mount {
        /// The mount point.
        target: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// `umount2(2)` failed.
    #[error("cannot unmount {target}")]
    Unmount {
        /// The mount point.
        target: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// A directory could not be created.
    #[error("cannot create directory {path}")]
    Mkdir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `sethostname(2)` failed.
    #[error("cannot set the hostname")]
    Hostname(#[source] Errno),
    /// A program could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A program exited unsuccessfully.
    #[error("{command} failed: {status}")]
    Failed {
        /// The command line.
        command: String,
        /// How it ended.
        status: ExitStatus,
    },
    /// The kernel refused a network configuration ioctl.
    #[error("the kernel refused it")]
    Net(#[source] io::Error),
    /// Something did not appear in time.
    #[error("timed out waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
    },
}

/// Runs `program args…` to completion with a clean environment; output goes to the console.
pub fn run_command(program: &str, args: &[&str]) -> Result<(), StepError> {
    let status = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .status()
        .map_err(|source| StepError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(StepError::Failed {
            command: std::iter::once(program)
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join(" "),
            status,
        })
    }
}

/// [`run_command`] for a program that may be bundled.
pub fn run_program(program: &bundle::Program, args: &[&str]) -> Result<(), StepError> {
    let argv = program.argv(args);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    run_command(&program.exe, &argv)
}

/// Something the main loop reacts to.
#[derive(Debug)]
enum Event {
    Signal(Signal),
    ShutdownRequested,
    /// `POST /identity`: apply the body, answer on `reply`.
    Identity {
        body: Vec<u8>,
        reply: Sender<crate::http::Response>,
        received: Instant,
    },
}

/// How long `POST /identity` waits for the main loop (it restarts sshd on the way).
const IDENTITY_WAIT: Duration = Duration::from_secs(60);

/// The signals init handles (all blocked and taken with `sigwait` by one thread).
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGPWR,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    set
}

/// Whether `sig` means "power off".
pub fn is_power_off_signal(sig: Signal) -> bool {
    matches!(sig, Signal::SIGINT | Signal::SIGTERM | Signal::SIGPWR)
}

/// Runs init. Never returns.
pub fn run(transports: Transports) -> ! {
    log!(
        "banger-agent {} starting as init (pid {})",
        crate::VERSION,
        nix::unistd::getpid()
    );
    let signals = handled_signals();
    if let Err(e) = signals.thread_block() {
        log!("cannot block signals: {e}; relying on periodic reaping");
    }
    let (tx, rx) = mpsc::channel();
    let reason = catch_unwind(AssertUnwindSafe(|| {
        boot_and_supervise(&transports, signals, &tx, &rx)
    }))
    .unwrap_or_else(|_| "init panicked".to_owned());
    log!("powering off: {reason}");
    let _ = catch_unwind(|| {
        let unmount: Vec<PathBuf> = if mounts::is_mount_point("/root") {
            vec![PathBuf::from("/root")]
        } else {
            Vec::new()
        };
        poweroff::execute(&poweroff::plan(&unmount))
    });
    log!("power-off path failed; idling");
    loop {
        reap::reap_all();
        std::thread::sleep(TICK);
    }
}

/// Boots the guest and supervises sshd; returns why the machine should power off.
fn boot_and_supervise(
    transports: &Transports,
    signals: SigSet,
    tx: &Sender<Event>,
    rx: &mpsc::Receiver<Event>,
) -> String {
    mounts::setup();
    ensure_console();
    match nix::sys::reboot::set_cad_enabled(false) {
        Ok(()) => log!("ctrl-alt-del now powers off"),
        Err(e) => log!("cannot disable ctrl-alt-del reboot: {e}"),
    }
    let params = read_params();

    let shutdown_tx = tx.clone();
    // mpsc::Sender is Sync: the API threads share it without a lock.
    let identity_tx = tx.clone();
    let settled = Settled::pending();
    let info = SystemInfo::new("init").with_settled(settled.clone());
    let api = Api::new(info, move || {
        let _ = shutdown_tx.send(Event::ShutdownRequested);
    })
    .with_identity(move |body| {
        let (reply, answer) = mpsc::channel();
        let sent = identity_tx
            .send(Event::Identity {
                body: body.to_vec(),
                reply,
                received: Instant::now(),
            })
            .is_ok();
        if !sent {
            return identity_error(503, "init is not taking requests");
        }
        answer
            .recv_timeout(IDENTITY_WAIT)
            .unwrap_or_else(|_| identity_error(504, "init did not apply the identity in time"))
    });
    let api = Arc::new(api);
    // The threads run for the life of the guest; their handles are not needed.
    drop(transport::start(&api, transports));
    let sig_tx = tx.clone();
    if transport::spawn("agent-signals", move || signal_loop(signals, sig_tx)).is_none() {
        log!("no signal thread; signals are not handled");
    }

    configure(&params);

    let mut sup = sshd::Supervisor::new(Instant::now());
    let pickup: Arc<std::sync::OnceLock<sshd::KeyPickup>> = Arc::default();
    let mut probing = false;
    loop {
        sup.poll(Instant::now(), sshd::spawn_sshd);
        if !probing {
            probing = true;
            // sshd is starting. How it picks up a new host key is read off its binary on a
            // thread (not in its way, nor in this loop's), before the guest counts as settled
            // and a warm snapshot may be taken, so a restore need not read it.
            let (done, found) = (settled.clone(), pickup.clone());
            let probe = move || {
                let p = sshd::server().map_or(sshd::KeyPickup::Restart, |s| sshd::key_pickup(&s));
                log!("sshd picks up a new host key: {p:?}");
                let _ = found.set(p);
                // Configured, sshd started and probed: a warm snapshot taken from here on
                // restores into this loop, ready for `POST /identity` at once.
                done.mark();
                log!("boot setup done; supervising");
            };
            if transport::spawn("agent-sshd-probe", probe).is_none() {
                let _ = pickup.set(sshd::KeyPickup::Restart);
                settled.mark();
            }
        }
        let wait = sup.due_in(Instant::now()).unwrap_or(TICK).min(TICK);
        let event = rx.recv_timeout(wait);
        let reaped = reap::reap_all();
        for (pid, status) in &reaped.exited {
            sup.child_exited(*pid, status, Instant::now());
        }
        match event {
            Ok(Event::Signal(sig)) if is_power_off_signal(sig) => {
                return format!("received {sig}");
            }
            Ok(Event::Signal(Signal::SIGCHLD)) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Event::Signal(sig)) => log!("ignoring {sig}"),
            Ok(Event::ShutdownRequested) => return "shutdown requested over the api".into(),
            Ok(Event::Identity {
                body,
                reply,
                received,
            }) => {
                let waited = received.elapsed();
                // Unprobed (a request before the guest settled) is the safe answer: restart.
                let found = pickup.get().copied().unwrap_or(sshd::KeyPickup::Restart);
                let answer = reidentify(&body, &mut sup, found);
                log!(
                    "identity: answered {} ms after the request ({} ms of it waiting for init)",
                    received.elapsed().as_millis(),
                    waited.as_millis()
                );
                let _ = reply.send(answer);
            }
            // Unreachable while `tx` lives; wait instead of spinning.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(TICK),
        }
    }
}

fn identity_error(status: u16, message: &str) -> crate::http::Response {
    crate::http::Response::json(status, crate::api::error_body("identity_failed", message))
}

/// Applies a `POST /identity` body (see [`identity`]; sshd is restarted with the new host key
/// unless it picks it up by itself) before answering. A body with a bad value is refused whole and changes nothing.
fn reidentify(
    body: &[u8],
    sup: &mut sshd::Supervisor,
    pickup: sshd::KeyPickup,
) -> crate::http::Response {
    let text = String::from_utf8_lossy(body);
    let parsed = banger_guest::Identity::parse(&text);
    if !parsed.errors.is_empty() {
        let why: Vec<String> = parsed.errors.iter().map(ToString::to_string).collect();
        return crate::http::Response::json(
            400,
            crate::api::error_body("bad_identity", &why.join("; ")),
        );
    }
    let iface = net::pick_interface(&net::list_interfaces(Path::new("/sys/class/net")));
    let steps = identity::plan(&parsed.identity, iface.as_deref(), pickup);
    let outcome = identity::apply(&steps, |step| {
        let started = Instant::now();
        let result = apply_step(step, sup);
        let took = started.elapsed().as_millis();
        match &result {
            Ok(()) => log!("identity: {}: ok ({took} ms)", identity::describe(step)),
            Err(e) => log!("identity: {}: {e} ({took} ms)", identity::describe(step)),
        }
        result
    });
    if outcome.failed.is_empty() {
        let applied = u64::try_from(outcome.applied.len()).unwrap_or(u64::MAX);
        crate::http::Response::json(
            200,
            crate::json::Object::new()
                .str("status", "ok")
                .num("applied", applied)
                .finish(),
        )
    } else {
        identity_error(500, &outcome.failed.join("; "))
    }
}

fn apply_step(step: &identity::Step, sup: &mut sshd::Supervisor) -> Result<(), String> {
    use identity::Step;
    let text = |e: StepError| chain(&e);
    match step {
        Step::Clock(c) => identity::set_clock(*c).map_err(|e| e.to_string()),
        Step::Seed(seed) => entropy::credit_entropy(seed).map_err(|e| e.to_string()),
        Step::Hostname(name) => {
            nix::unistd::sethostname(name).map_err(|e| text(StepError::Hostname(e)))?;
            write_file("/etc/hostname", &files::render_hostname(name)).map_err(text)?;
            write_file("/etc/hosts", &files::render_hosts(name)).map_err(text)
        }
        Step::Resolver(dns) => {
            write_file("/etc/resolv.conf", &files::render_resolv(*dns)).map_err(text)
        }
        Step::Nic(planned) => nic::apply(planned).map_err(|e| e.to_string()),
        Step::HostKey(Some(key)) => sshd::install_host_key(key).map_err(text),
        Step::HostKey(None) => {
            for path in [sshd::HOST_KEY.to_owned(), format!("{}.pub", sshd::HOST_KEY)] {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("remove {path}: {e}")),
                }
            }
            let errors: Vec<String> = sshd::prepare().iter().map(|e| chain(e)).collect();
            if errors.is_empty() && Path::new(sshd::HOST_KEY).exists() {
                Ok(())
            } else {
                Err(format!("no new host key: {}", errors.join("; ")))
            }
        }
        Step::RestartSshd => {
            restart_sshd(sup);
            if sup.pid().is_some() {
                Ok(())
            } else {
                Err("sshd did not start again".into())
            }
        }
    }
}

/// Stops the running sshd (it holds the old host key), waits for it (bounded), and starts a new
/// one at once.
fn restart_sshd(sup: &mut sshd::Supervisor) {
    const GRACE: Duration = Duration::from_secs(3);
    if let Some(pid) = sup.pid() {
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        let start = Instant::now();
        let mut killed = false;
        while sup.pid() == Some(pid) && start.elapsed() < GRACE * 2 {
            if !killed && start.elapsed() >= GRACE {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                killed = true;
            }
            for (child, status) in &reap::reap_all().exited {
                sup.child_exited(*child, status, Instant::now());
            }
            if sup.pid() == Some(pid) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    sup.restart_now(Instant::now());
    sup.poll(Instant::now(), sshd::spawn_sshd);
}

/// Takes the blocked signals one by one and forwards them to the main loop.
fn signal_loop(signals: SigSet, tx: Sender<Event>) {
    loop {
        match signals.wait() {
            Ok(sig) => {
                if tx.send(Event::Signal(sig)).is_err() {
                    return;
                }
            }
            Err(e) => {
                log!("sigwait failed: {e}");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Reopens stdin/stdout/stderr on `/dev/console` if the kernel started init without them.
fn ensure_console() {
    let missing: Vec<i32> = (0..3)
        .filter(|fd| !Path::new(&format!("/proc/self/fd/{fd}")).exists())
        .collect();
    if missing.is_empty() {
        return;
    }
    let console = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    {
        Ok(c) => c,
        Err(_) => return,
    };
    for fd in missing {
        let _ = match fd {
            0 => nix::unistd::dup2_stdin(&console),
            1 => nix::unistd::dup2_stdout(&console),
            _ => nix::unistd::dup2_stderr(&console),
        };
    }
}

fn read_params() -> GuestBoot {
    let text = match std::fs::read_to_string("/proc/cmdline") {
        Ok(t) => t,
        Err(e) => {
            log!("cannot read /proc/cmdline: {e}; no banger.* settings");
            return GuestBoot::default();
        }
    };
    let parsed = GuestBoot::parse(&text);
    for e in &parsed.errors {
        log!("{e}");
    }
    let p = &parsed.boot;
    log!(
        "boot parameters: hostname={} ip={} gw={} dns={} work={}",
        p.hostname.as_deref().unwrap_or("-"),
        p.ip.map_or("-".into(), |v| v.to_string()),
        p.gw.map_or("-".into(), |v| v.to_string()),
        p.dns.map_or("-".into(), |v| v.to_string()),
        p.work.as_deref().unwrap_or("-"),
    );
    parsed.boot
}

fn write_file(path: &str, contents: &str) -> Result<(), StepError> {
    files::write_atomic(Path::new(path), contents).map_err(|source| StepError::Write {
        path: path.to_owned(),
        source,
    })
}

fn report(step: &str, res: Result<(), StepError>) {
    match res {
        Ok(()) => log!("{step}: ok"),
        Err(e) => log!("{step}: {}", chain(&e)),
    }
}

/// Applies the boot parameters: hostname and files, work disk, network, sshd prerequisites.
fn configure(p: &GuestBoot) {
    if let Some(name) = &p.hostname {
        report(
            &format!("hostname {name}"),
            nix::unistd::sethostname(name).map_err(StepError::Hostname),
        );
        report(
            "write /etc/hostname",
            write_file("/etc/hostname", &files::render_hostname(name)),
        );
        report(
            "write /etc/hosts",
            write_file("/etc/hosts", &files::render_hosts(name)),
        );
    }
    match &p.work {
        Some(dev) => report(
            &format!("mount work disk {dev} at {WORK_MOUNT}"),
            mounts::mount_work(dev),
        ),
        None => log!("no banger.work; keeping /root from the root filesystem"),
    }
    if let Some(dns) = p.dns {
        report(
            "write /etc/resolv.conf",
            write_file("/etc/resolv.conf", &files::render_resolv(dns)),
        );
    }
    configure_network(p);
    for e in sshd::prepare() {
        log!("sshd setup: {}", chain(&e));
    }
}

fn configure_network(p: &GuestBoot) {
    let iface = match p.ip {
        Some(_) => {
            let i = net::wait_for_interface(Path::new("/sys/class/net"), DEVICE_WAIT);
            if i.is_none() {
                log!("no network interface found; only loopback is configured");
            }
            i
        }
        None => {
            log!("no banger.ip; only loopback is configured");
            None
        }
    };
    if p.ip.is_some() && p.gw.is_none() {
        log!("no banger.gw; no default route");
    }
    for planned in nic::boot_steps(iface.as_deref(), p.ip, p.gw) {
        report(
            &planned.describe(),
            nic::apply(&planned).map_err(StepError::Net),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_off_signals() {
        assert!(is_power_off_signal(Signal::SIGINT));
        assert!(is_power_off_signal(Signal::SIGTERM));
        assert!(is_power_off_signal(Signal::SIGPWR));
        assert!(!is_power_off_signal(Signal::SIGCHLD));
        assert!(!is_power_off_signal(Signal::SIGHUP));
        let set = handled_signals();
        assert!(set.contains(Signal::SIGCHLD) && set.contains(Signal::SIGPWR));
    }

    #[test]
    fn run_command_reports_failures() {
        assert!(run_command("/bin/true", &[]).is_ok());
        let e = run_command("/bin/false", &["x"]).expect_err("fails");
        assert!(e.to_string().starts_with("/bin/false x failed: "), "{e}");
        let e = run_command("/nonexistent/prog", &[]).expect_err("missing");
        assert!(matches!(e, StepError::Spawn { .. }));
    }
}
