//! [`FakeVmm`]: a hypervisor whose "processes" live in memory and whose "guests" answer the
//! daemon's readiness probes.
//!
//! A launch writes a console log into the VM's run dir, serves the agent protocol on
//! `<run_dir>/agent.sock` (`GET /healthz`, `GET /ports`, `POST /shutdown`, with the request id
//! echoed) and an SSH banner on the guest address from the kernel command line
//! (`banger.ip=`) at the port given to [`FakeVmm::new`] — tests use loopback subnets, so this
//! is real TCP on `127.x.y.z`. Each part can be switched off ([`FakeGuest`]) to stand in for a
//! guest that never gets ready, and launches can be made to fail. Processes outlive the daemon
//! that started them, as real VMMs do: share one `FakeVmm` between a test's daemon instances.
//!
//! With [`FakeVmm::with_warm`] it also has warm snapshots: a saveable launch writes its RAM
//! file, a save writes a snapshot's two files (text naming the saved VM), and a restore takes
//! only a state file this fake wrote (or fails, when told to) and starts a guest as a launch
//! does. Its agents take `POST /identity` (parsed as the real agent does; 400 for a bad body,
//! 500 when told to refuse) and record each one per pid.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use banger_guest::identity::Identity;
use banger_vmm::warm::{Snapshot, WarmSnapshots};
use banger_vmm::{
    AgentEndpoint, BoxFuture, LaunchSpec, Vmm, VmmError, VmmHandle, VmmKind, console_log_path,
    tag_for,
};

/// How the fake guest behaves once launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeGuest {
    /// Agent and SSH answer.
    Ready,
    /// The agent answers, sshd never does.
    NoSsh,
    /// Nothing answers.
    NoAgent,
}

/// One call made to the fake, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmmCall {
    /// `launch` for this VM id.
    Launch(String),
    /// `launch_saveable` (warm snapshots) for this VM id.
    LaunchSaveable(String),
    /// `save` of this pid.
    Save(u32),
    /// `resume` of this pid.
    Resume(u32),
    /// `restore` for this VM id (recorded whether or not it succeeded).
    Restore(String),
    /// `request_shutdown` of this pid.
    Shutdown(u32),
    /// `kill` of this pid.
    Kill(u32),
    /// `release` of this VM id, and whether a VMM of it still ran then (it never should).
    Release {
        /// The VM.
        vm_id: String,
        /// Whether a process tagged with it was alive.
        while_running: bool,
    },
}

struct Process {
    tag: String,
    vm_id: String,
    run_dir: PathBuf,
    tasks: Vec<JoinHandle<()>>,
    /// The RAM file of a saveable launch.
    ram: Option<PathBuf>,
    paused: bool,
}

/// One `POST /identity` a fake agent answered 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPost {
    /// The fake VMM that got it.
    pub pid: u32,
    /// What it said.
    pub identity: Identity,
}

type IdentityObserver = Arc<dyn Fn(&IdentityPost) + Send + Sync>;

struct State {
    next_pid: u32,
    processes: BTreeMap<u32, Process>,
    calls: Vec<VmmCall>,
    guest: FakeGuest,
    fail_launch: bool,
    fail_restore: bool,
    refuse_identity: bool,
    identities: Vec<IdentityPost>,
    on_identity: Option<IdentityObserver>,
}

/// The fake hypervisor. Cheap to share behind an `Arc`.
pub struct FakeVmm {
    state: Arc<Mutex<State>>,
    ssh_port: u16,
    /// The "VMM binary" when warm snapshots are on ([`FakeVmm::with_warm`]).
    warm_binary: Option<PathBuf>,
}

/// The first line of every state file the fake writes: a restore of anything else fails.
const STATE_MARKER: &str = "banger fake-vmm snapshot v1";

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeVmm {
    /// A fake whose guests answer SSH on `ssh_port`.
    pub fn new(ssh_port: u16) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                next_pid: 4_000_000,
                processes: BTreeMap::new(),
                calls: Vec::new(),
                guest: FakeGuest::Ready,
                fail_launch: false,
                fail_restore: false,
                refuse_identity: false,
                identities: Vec::new(),
                on_identity: None,
            })),
            ssh_port,
            warm_binary: None,
        }
    }

    /// Turns warm snapshots on ([`Vmm::warm`] returns the fake): `binary` stands for the VMM
    /// binary (it must exist: the daemon hashes it into the boot class).
    pub fn with_warm(mut self, binary: PathBuf) -> Self {
        self.warm_binary = Some(binary);
        self
    }

    /// Makes restores fail before any process starts (a VMM that rejects the snapshot).
    pub fn fail_restore(&self, fail: bool) {
        lock(&self.state).fail_restore = fail;
    }

    /// Makes agents answer `POST /identity` with 500 (a guest that cannot take its identity).
    pub fn refuse_identity(&self, refuse: bool) {
        lock(&self.state).refuse_identity = refuse;
    }

    /// Every identity a fake agent took, in order.
    pub fn identities(&self) -> Vec<IdentityPost> {
        lock(&self.state).identities.clone()
    }

    /// Calls `observer` as each identity is taken, before the agent answers (so a test can
    /// look at the rest of the host at that moment).
    pub fn on_identity(&self, observer: impl Fn(&IdentityPost) + Send + Sync + 'static) {
        lock(&self.state).on_identity = Some(Arc::new(observer));
    }

    /// Pids of live fake VMMs that are paused.
    pub fn paused_pids(&self) -> Vec<u32> {
        lock(&self.state)
            .processes
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// How guests launched from now on behave.
    pub fn set_guest(&self, guest: FakeGuest) {
        lock(&self.state).guest = guest;
    }

    /// Makes launches fail (as a VMM that exits at once does).
    pub fn fail_launch(&self, fail: bool) {
        lock(&self.state).fail_launch = fail;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<VmmCall> {
        lock(&self.state).calls.clone()
    }

    /// Pids of live fake VMMs.
    pub fn running_pids(&self) -> Vec<u32> {
        lock(&self.state).processes.keys().copied().collect()
    }

    /// Whether a live fake VMM carries VM `vm_id`'s tag.
    pub fn is_running_vm(&self, vm_id: &str) -> bool {
        let tag = tag_for(vm_id);
        lock(&self.state).processes.values().any(|p| p.tag == tag)
    }

    /// Launches VM `spec` as a daemon would, then "crashes" before anything is recorded: the
    /// process runs, tagged, but no handles exist anywhere.
    pub async fn spawn_unrecorded(&self, spec: &LaunchSpec) -> Result<u32, VmmError> {
        self.launch(spec).await.map(|h| h.pid)
    }

    /// Kills VM `vm_id`'s VMM behind the daemon's back (a crash).
    pub fn crash(&self, vm_id: &str) {
        let tag = tag_for(vm_id);
        let pid = lock(&self.state)
            .processes
            .iter()
            .find(|(_, p)| p.tag == tag)
            .map(|(pid, _)| *pid);
        if let Some(pid) = pid {
            end(&self.state, pid);
        }
    }
}

/// Ends process `pid`: its guest stops answering.
fn end(state: &Mutex<State>, pid: u32) {
    let process = lock(state).processes.remove(&pid);
    if let Some(p) = process {
        for task in p.tasks {
            task.abort();
        }
        let _ = std::fs::remove_file(p.run_dir.join("agent.sock"));
    }
}

fn guest_ip(cmdline: &str) -> Option<Ipv4Addr> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("banger.ip="))
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.parse().ok())
}

impl FakeVmm {
    /// Starts a fake VMM process for `spec` (recording `call`, if any); `ram` for a
    /// saveable one.
    async fn start(
        &self,
        spec: &LaunchSpec,
        call: Option<VmmCall>,
        ram: Option<PathBuf>,
    ) -> Result<VmmHandle, VmmError> {
        let (pid, guest, fail) = {
            let mut s = lock(&self.state);
            s.calls.extend(call);
            s.next_pid += 1;
            (s.next_pid, s.guest, s.fail_launch)
        };
        let console = console_log_path(&spec.run_dir);
        std::fs::create_dir_all(&spec.run_dir).map_err(|source| VmmError::Io {
            action: format!("create {}", spec.run_dir.display()),
            source,
        })?;
        let boot_line = format!("fake guest {} booting\n", spec.vm_id);
        std::fs::write(&console, boot_line).map_err(|source| VmmError::Io {
            action: "write the console log".to_owned(),
            source,
        })?;
        if fail {
            return Err(VmmError::StartFailed {
                kind: "fake",
                status: "exit status: 1".to_owned(),
                stderr: "injected launch failure".to_owned(),
                console_log: console,
            });
        }
        let agent_path = spec.run_dir.join("agent.sock");
        let mut tasks = Vec::new();
        if guest != FakeGuest::NoAgent {
            let _ = std::fs::remove_file(&agent_path);
            let listener = tokio::net::UnixListener::bind(&agent_path)
                .map_err(VmmErrorIo::bind(&agent_path))?;
            tasks.push(tokio::spawn(serve_agent(listener, self.state.clone(), pid)));
        }
        if guest == FakeGuest::Ready
            && let Some(ip) = guest_ip(&spec.cmdline)
        {
            let addr = SocketAddr::from((ip, self.ssh_port));
            let listener = bind_retrying(addr)
                .await
                .map_err(VmmErrorIo::bind(Path::new(&addr.to_string())))?;
            tasks.push(tokio::spawn(serve_banner(listener)));
        }
        let tag = tag_for(&spec.vm_id);
        lock(&self.state).processes.insert(
            pid,
            Process {
                tag: tag.clone(),
                vm_id: spec.vm_id.clone(),
                run_dir: spec.run_dir.clone(),
                tasks,
                ram,
                paused: false,
            },
        );
        Ok(VmmHandle {
            kind: VmmKind::Qemu,
            pid,
            tag,
            control_socket: spec.run_dir.join("fake-control.sock"),
            agent: AgentEndpoint::Serial { path: agent_path },
            console_log: console,
        })
    }
}

impl Vmm for FakeVmm {
    fn kind(&self) -> Option<VmmKind> {
        Some(VmmKind::Qemu)
    }

    fn launch<'a>(&'a self, spec: &'a LaunchSpec) -> BoxFuture<'a, Result<VmmHandle, VmmError>> {
        Box::pin(self.start(spec, Some(VmmCall::Launch(spec.vm_id.clone())), None))
    }

    fn warm(&self) -> Option<&dyn WarmSnapshots> {
        self.warm_binary
            .as_ref()
            .map(|_| self as &dyn WarmSnapshots)
    }

    fn request_shutdown<'a>(
        &'a self,
        handle: &'a VmmHandle,
    ) -> BoxFuture<'a, Result<(), VmmError>> {
        Box::pin(async move {
            lock(&self.state).calls.push(VmmCall::Shutdown(handle.pid));
            end(&self.state, handle.pid);
            Ok(())
        })
    }

    fn is_running(&self, handle: &VmmHandle) -> bool {
        lock(&self.state)
            .processes
            .get(&handle.pid)
            .is_some_and(|p| p.tag == handle.tag)
    }

    fn kill(&self, handle: &VmmHandle) -> Result<(), VmmError> {
        lock(&self.state).calls.push(VmmCall::Kill(handle.pid));
        let ours = self.is_running(handle);
        if ours {
            end(&self.state, handle.pid);
        }
        Ok(())
    }

    fn tagged_pids(&self, vm_id: &str) -> Vec<u32> {
        let tag = tag_for(vm_id);
        lock(&self.state)
            .processes
            .iter()
            .filter(|(_, p)| p.tag == tag)
            .map(|(pid, _)| *pid)
            .collect()
    }

    fn release(&self, vm_id: &str) -> Result<(), VmmError> {
        let mut state = lock(&self.state);
        let tag = tag_for(vm_id);
        let while_running = state.processes.values().any(|p| p.tag == tag);
        state.calls.push(VmmCall::Release {
            vm_id: vm_id.to_owned(),
            while_running,
        });
        Ok(())
    }

    fn kill_tagged(&self, vm_id: &str, pid: u32) -> Result<(), VmmError> {
        lock(&self.state).calls.push(VmmCall::Kill(pid));
        let ours = lock(&self.state)
            .processes
            .get(&pid)
            .is_some_and(|p| p.tag == tag_for(vm_id));
        if ours {
            end(&self.state, pid);
        }
        Ok(())
    }

    fn wait_exit<'a>(&'a self, handle: &'a VmmHandle, timeout: Duration) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            while self.is_running(handle) {
                if tokio::time::Instant::now() >= deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            true
        })
    }
}

fn warm_error(action: String, why: &str) -> VmmError {
    VmmError::Io {
        action,
        source: std::io::Error::other(why.to_owned()),
    }
}

fn io(action: String) -> impl FnOnce(std::io::Error) -> VmmError {
    move |source| VmmError::Io { action, source }
}

/// Writes `path`, which must not exist yet.
fn write_new(path: &Path, text: &str) -> Result<(), VmmError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io(format!("write {}", path.display())))
}

/// Warm snapshots in the fake: the "RAM" and "device state" are small text files naming the
/// saved VM, and a restore accepts only a state file this fake wrote.
impl WarmSnapshots for FakeVmm {
    fn binary(&self) -> &Path {
        self.warm_binary
            .as_deref()
            .unwrap_or(Path::new("/nonexistent"))
    }

    fn launch_saveable<'a>(
        &'a self,
        spec: &'a LaunchSpec,
        ram: &'a Path,
    ) -> BoxFuture<'a, Result<VmmHandle, VmmError>> {
        Box::pin(async move {
            // As QEMU's file-backed memory does, the RAM file exists while the guest runs.
            std::fs::write(ram, format!("fake guest RAM of {}\n", spec.vm_id))
                .map_err(io(format!("write {}", ram.display())))?;
            let call = VmmCall::LaunchSaveable(spec.vm_id.clone());
            self.start(spec, Some(call), Some(ram.to_path_buf())).await
        })
    }

    fn save<'a>(
        &'a self,
        handle: &'a VmmHandle,
        ram: &'a Path,
        into: &'a Snapshot,
    ) -> BoxFuture<'a, Result<Duration, VmmError>> {
        Box::pin(async move {
            let vm_id = {
                let mut s = lock(&self.state);
                s.calls.push(VmmCall::Save(handle.pid));
                let process = s
                    .processes
                    .get_mut(&handle.pid)
                    .filter(|p| p.tag == handle.tag)
                    .ok_or_else(|| warm_error("save".into(), "no such fake VMM"))?;
                if process.ram.as_deref() != Some(ram) {
                    return Err(warm_error(
                        "save".into(),
                        "not launched saveably with this RAM file",
                    ));
                }
                process.paused = true;
                process.vm_id.clone()
            };
            let memory =
                std::fs::read_to_string(ram).map_err(io(format!("read {}", ram.display())))?;
            write_new(&into.memory, &memory)?;
            write_new(&into.state, &format!("{STATE_MARKER}\nvm={vm_id}\n"))?;
            Ok(Duration::from_millis(1))
        })
    }

    fn resume<'a>(&'a self, handle: &'a VmmHandle) -> BoxFuture<'a, Result<(), VmmError>> {
        Box::pin(async move {
            let mut s = lock(&self.state);
            s.calls.push(VmmCall::Resume(handle.pid));
            let process = s
                .processes
                .get_mut(&handle.pid)
                .filter(|p| p.tag == handle.tag)
                .ok_or_else(|| warm_error("resume".into(), "no such fake VMM"))?;
            process.paused = false;
            Ok(())
        })
    }

    fn restore<'a>(
        &'a self,
        spec: &'a LaunchSpec,
        snapshot: &'a Snapshot,
    ) -> BoxFuture<'a, Result<VmmHandle, VmmError>> {
        Box::pin(async move {
            let fail = {
                let mut s = lock(&self.state);
                s.calls.push(VmmCall::Restore(spec.vm_id.clone()));
                s.fail_restore
            };
            let action = format!("restore {}", snapshot.state.display());
            if fail {
                return Err(warm_error(action, "injected restore failure"));
            }
            let state = std::fs::read_to_string(&snapshot.state).map_err(io(action.clone()))?;
            if state.lines().next() != Some(STATE_MARKER) || !snapshot.memory.is_file() {
                return Err(warm_error(action, "not a snapshot of this fake VMM"));
            }
            self.start(spec, None, None).await
        })
    }
}

/// Binds `addr`, retrying for a moment while an earlier guest's listener (aborted, but not
/// yet dropped by its task) still holds it.
async fn bind_retrying(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

struct VmmErrorIo;

impl VmmErrorIo {
    fn bind(path: &Path) -> impl FnOnce(std::io::Error) -> VmmError {
        let action = format!("bind {}", path.display());
        move |source| VmmError::Io { action, source }
    }
}

/// Answers the agent protocol: blank lines are skipped, `X-Request-Id` is echoed, a body is
/// read by its `Content-Length`.
async fn serve_agent(listener: tokio::net::UnixListener, state: Arc<Mutex<State>>, pid: u32) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let Some((head, body)) = read_request(&mut stream).await else {
                return;
            };
            let mut lines = head.lines();
            let request = lines.next().unwrap_or_default().to_owned();
            let header = |name: &str| {
                head.lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_owned())
            };
            let id = header("x-request-id").unwrap_or_default();
            let (status, body) = if request.starts_with("GET /healthz") {
                ("200 OK", r#"{"ok":true}"#.to_owned())
            } else if request.starts_with("GET /ports") {
                ("200 OK", r#"{"ports":[]}"#.to_owned())
            } else if request.starts_with("POST /shutdown") {
                ("200 OK", r#"{"ok":true}"#.to_owned())
            } else if request.starts_with("POST /identity") {
                take_identity(&state, pid, &body)
            } else {
                ("404 Not Found", r#"{"error":"no such path"}"#.to_owned())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Request-Id: {id}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
            if request.starts_with("POST /shutdown") {
                // The guest powers off a moment after answering.
                tokio::time::sleep(Duration::from_millis(50)).await;
                end(&state, pid);
            }
        });
    }
}

/// Reads one request (leading blank lines skipped): its head and its body.
async fn read_request(stream: &mut tokio::net::UnixStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let start = buf.chunks(2).take_while(|c| *c == b"\r\n").count() * 2;
        let rest = &buf[start.min(buf.len())..];
        if let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&rest[..end]).into_owned();
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let mut body = rest[end + 4..].to_vec();
            while body.len() < length {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            }
            body.truncate(length);
            return Some((head, body));
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 16 * 1024 {
            return None;
        }
    }
}

/// `POST /identity`: 400 for a body [`Identity::parse`] rejects (or one without an address),
/// 500 when told to refuse, else recorded (and observed) and 200.
fn take_identity(state: &Mutex<State>, pid: u32, body: &[u8]) -> (&'static str, String) {
    let parsed = Identity::parse(&String::from_utf8_lossy(body));
    if !parsed.errors.is_empty() || parsed.identity.boot.ip.is_none() {
        let why = format!("{:?}", parsed.errors).replace('"', "'");
        return (
            "400 Bad Request",
            format!(r#"{{"error":"bad identity: {why}"}}"#),
        );
    }
    let observer = {
        let s = lock(state);
        if s.refuse_identity {
            return (
                "500 Internal Server Error",
                r#"{"error":"injected identity failure"}"#.to_owned(),
            );
        }
        s.on_identity.clone()
    };
    let post = IdentityPost {
        pid,
        identity: parsed.identity,
    };
    if let Some(observe) = observer {
        observe(&post);
    }
    lock(state).identities.push(post);
    ("200 OK", r#"{"ok":true}"#.to_owned())
}

/// Writes an SSH identification line to every connection, as sshd does first.
async fn serve_banner(listener: tokio::net::TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let _ = stream.write_all(b"SSH-2.0-FakeGuest\r\n").await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_guest_address_on_the_command_line() {
        assert_eq!(
            guest_ip("console=ttyS0 banger.ip=127.9.0.2/24 banger.gw=127.9.0.1"),
            Some(Ipv4Addr::new(127, 9, 0, 2))
        );
        assert_eq!(guest_ip("console=ttyS0"), None);
    }
}
