//! A fake Firecracker for contract tests of banger's Firecracker client and supervisor.
//!
//! Why: no real Firecracker runs on our machines (no usable KVM, no download), yet the client
//! must speak exactly the API of `src/firecracker/swagger/firecracker.yaml`. This fake serves
//! the subset banger uses over HTTP/1.1 on a Unix socket, following the swagger and
//! Firecracker's own request parsers (`src/firecracker/src/api_server/`,
//! `src/vmm/src/rpc_interface.rs`), and records every call so tests can assert the wire format.
//!
//! It is deliberately independent of `banger-vmm`: its request models are its own, written from
//! the spec, so a client bug cannot hide behind a shared type.
//!
//! Rules it enforces (each answered with `400` and `{"fault_message": "..."}`, messages copied
//! from Firecracker where it has one):
//! - bodies: JSON of the right shape, required fields present, types right, unknown fields
//!   rejected (every modelled request except `PUT /metrics`, which upstream does not
//!   `deny_unknown_fields`); `PUT` without a body; `GET` with a body; unknown method/path;
//! - ids: `/drives/{id}` and `/network-interfaces/{id}` ids non-empty, alphanumeric or `_`, and
//!   equal to the id in the body;
//! - pre-boot only: `PUT /machine-config`, `/boot-source`, `/logger`, `/metrics`, `/vsock`,
//!   `InstanceStart`; `PUT /drives/{id}` and `/network-interfaces/{id}` after boot fail as on a
//!   process without `--enable-pci` (no hotplug);
//! - post-boot only: `SendCtrlAltDel`, `FlushMetrics`;
//! - values: vCPUs 1..=32 (1 or even with SMT), memory non-zero (even with `2M` huge pages),
//!   the kernel and initrd files must open at `PUT /boot-source`, a drive's `path_on_host` must
//!   open (read-only or read-write as asked) and only one drive may be root, MACs well formed and
//!   unique, TAP names under 16 bytes, `guest_cid >= 3` (the swagger's minimum), `/metrics`
//!   accepted once, the log and metrics files are created as Firecracker does;
//! - `InstanceStart` needs a boot source (machine config has defaults: 1 vCPU, 128 MiB);
//! - `PUT /vsock` binds `uds_path` (failing if it exists) and serves the hybrid vsock handshake
//!   there once the VM runs (see [`FakeVsock`]);
//! - snapshots: `PATCH /vm` (pause, resume), `PUT /snapshot/create` (only while paused) and
//!   `PUT /snapshot/load` (only on a fresh process), with files in the fake's own format that a
//!   load checks; the rules are in the `snapshot` submodule's docs.
//!
//! **Jailed** ([`FakeFirecracker::start_jailed`], used by the `fake-jailer` binary): every
//! path a request names (kernel, initrd, drives, vsock, log, metrics) is a path *inside the
//! jail* and is resolved under the jail's root, as a chrooted Firecracker sees it; a relative
//! path, a `..` component or a symlink that leads outside the root is refused as a file that
//! cannot be opened. So a launcher that forgot to stage a file into the jail, or passed a host
//! path, fails here as it would against the real jailer.
//!
//! Not modelled: TAP devices are not opened (tests run without root), vhost-user drives, rate
//! limiters beyond "is an object", diff snapshots and the `Uffd` memory backend, the other
//! endpoints (balloon, MMDS, …).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::fs::OpenOptions;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, SERVER};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;

mod snapshot;

/// `vmm_version` the fake reports: the swagger version it was written against.
pub const FAKE_VMM_VERSION: &str = "1.17.0-dev";

/// Firecracker's instance id when `--id` is not given.
pub const FAKE_INSTANCE_ID: &str = "anonymous-instance";

/// Firecracker's default `--http-api-max-payload-size`.
pub const MAX_PAYLOAD: usize = 51_200;

/// First host port the hybrid vsock hands out, as Firecracker's muxer does (`1 << 30`).
pub const FIRST_HOST_PORT: u32 = 1 << 30;

const MAX_VCPUS: u8 = 32;
const NOT_SUPPORTED_POST_BOOT: &str =
    "The requested operation is not supported after starting the microVM.";
const NOT_SUPPORTED_PRE_BOOT: &str =
    "The requested operation is not supported before starting the microVM.";

/// One request the fake received, and the status it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    /// `GET`, `PUT`, …
    pub method: String,
    /// Request path, e.g. `/drives/rootfs`.
    pub path: String,
    /// The body as JSON (`None` when empty; a JSON string holding the raw text when the body
    /// was not JSON).
    pub body: Option<Value>,
    /// Status the fake answered.
    pub status: u16,
}

/// Something the fake did, reported to the hook of [`FakeFirecracker::on_event`] after the
/// fake's state changed and before the answer is written.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeEvent {
    /// A request was answered (every request, in order, as [`FakeFirecracker::calls`] records
    /// it).
    Request(RecordedCall),
    /// `InstanceStart` succeeded: the microVM "runs" and the vsock accepts connections.
    InstanceStarted,
    /// `SendCtrlAltDel` succeeded: a real guest with `reboot=k` would now reboot, which makes
    /// Firecracker exit.
    CtrlAltDel,
    /// `PUT /snapshot/load` succeeded.
    SnapshotLoaded {
        /// Whether the VM runs (`resume_vm`) or waits paused.
        resumed: bool,
        /// Each drive id with the host file it opened (symlinks resolved).
        drives: Vec<(String, PathBuf)>,
        /// The vsock socket it bound (host path).
        vsock: Option<PathBuf>,
    },
    /// `PUT /snapshot/load` failed: Firecracker ends the process after answering.
    SnapshotLoadFailed,
}

/// The callback of [`FakeFirecracker::on_event`].
pub type EventHook = Arc<dyn Fn(FakeEvent) + Send + Sync>;

/// Lifecycle of the fake microVM, as `GET /` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeState {
    /// Before a successful `InstanceStart`.
    NotStarted,
    /// After it (or after a snapshot load with `resume_vm`, or `PATCH /vm` `Resumed`).
    Running,
    /// After `PATCH /vm` `Paused`, or a snapshot load without `resume_vm`.
    Paused,
}

impl FakeState {
    /// The spec's spelling (`InstanceInfo.state`).
    pub fn as_spec_str(self) -> &'static str {
        match self {
            Self::NotStarted => "Not started",
            Self::Running => "Running",
            Self::Paused => "Paused",
        }
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type PortHandler = Arc<dyn Fn(UnixStream) -> BoxFuture + Send + Sync>;

/// The guest side of a hybrid vsock: which guest ports accept connections, and what happens on
/// them. Shared by [`FakeFirecracker`] and [`FakeVsock`].
#[derive(Default)]
struct VsockPorts {
    handlers: Mutex<HashMap<u32, PortHandler>>,
    requested: Mutex<Vec<u32>>,
    next_host_port: AtomicU32,
}

impl VsockPorts {
    fn serve(&self, port: u32, handler: PortHandler) {
        lock(&self.handlers).insert(port, handler);
    }

    fn host_port(&self) -> u32 {
        FIRST_HOST_PORT + self.next_host_port.fetch_add(1, Ordering::Relaxed)
    }
}

/// Locks a mutex, ignoring poisoning: a panicking test thread must not cascade into the fake.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn boxed_handler<F, Fut>(handler: F) -> PortHandler
where
    F: Fn(UnixStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |stream| Box::pin(handler(stream)) as BoxFuture)
}

async fn echo(mut stream: UnixStream) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads `CONNECT <port>\n` the way Firecracker's muxer does: at least 10 bytes, then byte by
/// byte up to a newline or 32 bytes; the verb is case-insensitive.
async fn read_connect(stream: &mut UnixStream) -> Option<u32> {
    let mut buf = [0u8; 32];
    stream.read_exact(&mut buf[..10]).await.ok()?;
    let mut len = 10;
    while buf[len - 1] != b'\n' && len < buf.len() {
        stream.read_exact(&mut buf[len..=len]).await.ok()?;
        len += 1;
    }
    let text = std::str::from_utf8(&buf[..len]).ok()?;
    let mut words = text.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("connect") {
        return None;
    }
    words.next()?.parse().ok()
}

async fn vsock_accept_loop(listener: UnixListener, ports: Arc<VsockPorts>, open: Arc<AtomicBool>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let ports = ports.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let Some(port) = read_connect(&mut stream).await else {
                return;
            };
            lock(&ports.requested).push(port);
            if !open.load(Ordering::SeqCst) {
                return;
            }
            let handler = lock(&ports.handlers).get(&port).cloned();
            let Some(handler) = handler else {
                return;
            };
            let reply = format!("OK {}\n", ports.host_port());
            if stream.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            handler(stream).await;
        });
    }
}

/// A background thread running one current-thread tokio runtime until dropped.
struct Background {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    fn spawn<F, Fut>(name: &str, make: F) -> io::Result<Self>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        () = make() => {}
                        _ = rx => {}
                    }
                });
            })?;
        Ok(Self {
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The environment variable through which `fake-jailer` tells `fake-firecracker` its jail's
/// root (the fake does not `chroot`: the fake binary is not static, see `fake-jailer`).
pub const JAIL_ROOT_ENV: &str = "BANGER_FAKE_JAIL_ROOT";

/// `path` (absolute, inside the jail) as a host path under `root`. Refused: relative paths,
/// `..`, and an existing path whose real location (symlinks followed) is outside the root.
pub fn in_jail(root: &Path, path: &Path) -> io::Result<PathBuf> {
    use std::path::Component;
    let escape = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a path inside the jail", path.display()),
        )
    };
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err(escape());
    }
    let rel = path.strip_prefix("/").map_err(|_| escape())?;
    let host = root.join(rel);
    let real_root = std::fs::canonicalize(root)?;
    // The deepest existing ancestor must resolve inside the root (a symlink in the jail that
    // points at the host's files is what a chroot would not follow out of).
    let mut probe = host.as_path();
    loop {
        match std::fs::canonicalize(probe) {
            Ok(real) if real.starts_with(&real_root) => return Ok(host),
            Ok(_) => return Err(escape()),
            Err(_) => match probe.parent() {
                Some(parent) => probe = parent,
                None => return Err(escape()),
            },
        }
    }
}

fn bind_std(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A standalone hybrid vsock endpoint: the host side of Firecracker's vsock Unix socket, with
/// the guest's listening ports played by test closures.
///
/// Accepts `CONNECT <port>\n`; if a handler serves `port` it answers `OK <host_port>\n` (host
/// ports count up from [`FIRST_HOST_PORT`]) and hands the stream to the handler; otherwise it
/// closes the stream without a reply, as Firecracker does when the guest resets the connection.
pub struct FakeVsock {
    ports: Arc<VsockPorts>,
    path: PathBuf,
    _background: Background,
}

impl FakeVsock {
    /// Binds `uds_path` and serves it on a background thread until dropped.
    pub fn bind(uds_path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = uds_path.into();
        let ports = Arc::new(VsockPorts::default());
        let listener = bind_std(&path)?;
        let loop_ports = ports.clone();
        let background = Background::spawn("fake-vsock", move || async move {
            if let Ok(listener) = UnixListener::from_std(listener) {
                vsock_accept_loop(listener, loop_ports, Arc::new(AtomicBool::new(true))).await;
            }
        })?;
        Ok(Self {
            ports,
            path,
            _background: background,
        })
    }

    /// Serves guest `port` with `handler`, which receives the stream right after `OK`.
    pub fn serve<F, Fut>(&self, port: u32, handler: F)
    where
        F: Fn(UnixStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.ports.serve(port, boxed_handler(handler));
    }

    /// Serves guest `port` with an echo.
    pub fn echo(&self, port: u32) {
        self.serve(port, echo);
    }

    /// Every port a `CONNECT` asked for, in order, accepted or not.
    pub fn requested_ports(&self) -> Vec<u32> {
        lock(&self.ports.requested).clone()
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FakeVsock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The fake Firecracker process: an API server on a Unix socket plus, once configured, a hybrid
/// vsock socket. Runs on a background thread; stops and removes its sockets when dropped.
pub struct FakeFirecracker {
    shared: Arc<Shared>,
    socket: PathBuf,
    _background: Background,
}

struct Shared {
    inner: Mutex<Inner>,
    hook: Mutex<Option<EventHook>>,
    ports: Arc<VsockPorts>,
    vsock_open: Arc<AtomicBool>,
}

struct Fault {
    path: String,
    status: u16,
    message: String,
}

struct Inner {
    id: String,
    events: Vec<FakeEvent>,
    state: FakeState,
    machine: MachineCfg,
    boot_source: Option<BootSourceCfg>,
    drives: Vec<DriveCfg>,
    nets: Vec<NetCfg>,
    vsock: Option<(String, tokio::task::JoinHandle<()>)>,
    /// The vsock as requested (`guest_cid`, `uds_path` as given), recorded in snapshots.
    vsock_cfg: Option<(u32, String)>,
    /// Whether `PUT /machine-config` was accepted (a snapshot load is refused after it).
    machine_configured: bool,
    logger: bool,
    metrics: Option<PathBuf>,
    calls: Vec<RecordedCall>,
    faults: VecDeque<Fault>,
    /// The jail's root when jailed: request paths resolve under it.
    root: Option<PathBuf>,
}

impl FakeFirecracker {
    /// Binds `api_socket_path` (which must not exist, as with `--api-sock`) and serves the API
    /// on a background thread.
    pub fn start(api_socket_path: impl Into<PathBuf>) -> io::Result<Self> {
        Self::start_with(api_socket_path, FAKE_INSTANCE_ID, None)
    }

    /// Like [`FakeFirecracker::start`], with the instance id and the event hook in place
    /// before the first request can arrive (a client may connect the moment the socket
    /// exists, so setting them afterwards would race).
    pub fn start_with(
        api_socket_path: impl Into<PathBuf>,
        id: &str,
        hook: Option<EventHook>,
    ) -> io::Result<Self> {
        Self::start_in(api_socket_path.into(), id, hook, None)
    }

    /// Like [`FakeFirecracker::start_with`], jailed in `root`: `api_socket_path` and every path
    /// in a request are paths inside the jail (see the module docs).
    pub fn start_jailed(
        root: &Path,
        api_socket_path: &Path,
        id: &str,
        hook: Option<EventHook>,
    ) -> io::Result<Self> {
        let socket = in_jail(root, api_socket_path)?;
        Self::start_in(socket, id, hook, Some(root.to_path_buf()))
    }

    fn start_in(
        socket: PathBuf,
        id: &str,
        hook: Option<EventHook>,
        root: Option<PathBuf>,
    ) -> io::Result<Self> {
        let listener = bind_std(&socket)?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                id: id.to_owned(),
                events: Vec::new(),
                state: FakeState::NotStarted,
                machine: MachineCfg::default(),
                boot_source: None,
                drives: Vec::new(),
                nets: Vec::new(),
                vsock: None,
                vsock_cfg: None,
                machine_configured: false,
                logger: false,
                metrics: None,
                calls: Vec::new(),
                faults: VecDeque::new(),
                root,
            }),
            hook: Mutex::new(hook),
            ports: Arc::new(VsockPorts::default()),
            vsock_open: Arc::new(AtomicBool::new(false)),
        });
        let server_shared = shared.clone();
        let background = Background::spawn("fake-firecracker", move || async move {
            let Ok(listener) = UnixListener::from_std(listener) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                let shared = server_shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })?;
        Ok(Self {
            shared,
            socket,
            _background: background,
        })
    }

    /// The API socket path.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// Every request received so far, in order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.shared.inner).calls.clone()
    }

    /// Sets the instance id `GET /` reports (what `--id` does; default
    /// [`FAKE_INSTANCE_ID`]).
    pub fn set_instance_id(&self, id: impl Into<String>) {
        lock(&self.shared.inner).id = id.into();
    }

    /// Calls `hook` for every [`FakeEvent`] from now on (replacing an earlier hook). It runs on
    /// the fake's server thread, outside the fake's lock, before the answer is written.
    pub fn on_event(&self, hook: impl Fn(FakeEvent) + Send + Sync + 'static) {
        *lock(&self.shared.hook) = Some(Arc::new(hook));
    }

    /// The microVM's state.
    pub fn state(&self) -> FakeState {
        lock(&self.shared.inner).state
    }

    /// Makes the next request on `path` (any method) fail with `status` and `fault_message`,
    /// without touching the fake's state. Injections queue up in order.
    pub fn fail_next(&self, path: &str, status: u16, fault_message: &str) {
        lock(&self.shared.inner).faults.push_back(Fault {
            path: path.to_owned(),
            status,
            message: fault_message.to_owned(),
        });
    }

    /// Serves guest vsock `port` with `handler` (the stream right after `OK`). Connections
    /// succeed only after `PUT /vsock` and `InstanceStart`.
    pub fn vsock_serve<F, Fut>(&self, port: u32, handler: F)
    where
        F: Fn(UnixStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shared.ports.serve(port, boxed_handler(handler));
    }

    /// Serves guest vsock `port` with an echo.
    pub fn vsock_echo(&self, port: u32) {
        self.vsock_serve(port, echo);
    }

    /// Every port a vsock `CONNECT` asked for, accepted or not.
    pub fn vsock_requested_ports(&self) -> Vec<u32> {
        lock(&self.shared.ports.requested).clone()
    }
}

impl Drop for FakeFirecracker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        if let Some((path, task)) = lock(&self.shared.inner).vsock.take() {
            task.abort();
            let _ = std::fs::remove_file(path);
        }
    }
}

type Answer = (StatusCode, Option<Value>);

fn fault(message: impl Into<String>) -> Answer {
    (
        StatusCode::BAD_REQUEST,
        Some(json!({ "fault_message": message.into() })),
    )
}

fn no_content() -> Answer {
    (StatusCode::NO_CONTENT, None)
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let body = match Limited::new(req.into_body(), MAX_PAYLOAD).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(e.to_string()),
    };

    let (status, answer, events) = {
        let mut inner = lock(&shared.inner);
        let (answer, recorded_body) = match &body {
            Err(e) => (
                fault(format!(
                    "Cannot read the request payload (limit {MAX_PAYLOAD} bytes): {e}"
                )),
                None,
            ),
            Ok(bytes) => {
                let recorded = record_body(bytes);
                let injected = inner
                    .faults
                    .iter()
                    .position(|f| f.path == path)
                    .and_then(|i| inner.faults.remove(i));
                let answer = match injected {
                    Some(f) => (
                        StatusCode::from_u16(f.status).unwrap_or(StatusCode::BAD_REQUEST),
                        Some(json!({ "fault_message": f.message })),
                    ),
                    None => inner.route(shared, &method, &path, bytes),
                };
                (answer, recorded)
            }
        };
        let call = RecordedCall {
            method: method.to_string(),
            path: path.clone(),
            body: recorded_body,
            status: answer.0.as_u16(),
        };
        inner.calls.push(call.clone());
        let mut events = vec![FakeEvent::Request(call)];
        events.append(&mut inner.events);
        (answer.0, answer.1, events)
    };
    let hook = lock(&shared.hook).clone();
    if let Some(hook) = hook {
        for event in events {
            hook(event);
        }
    }

    let mut builder = Response::builder()
        .status(status)
        .header(SERVER, "Firecracker API");
    let bytes = match answer {
        Some(value) => {
            builder = builder.header(CONTENT_TYPE, "application/json");
            Bytes::from(value.to_string())
        }
        None => Bytes::new(),
    };
    builder
        .body(Full::new(bytes))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn record_body(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    Some(
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
    )
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| {
        fault(format!(
            "An error occurred when deserializing the json body of a request: {e}."
        ))
    })
}

/// Firecracker's `checked_id`.
fn checked_id(id: Option<&str>) -> Result<&str, Answer> {
    match id {
        None | Some("") => Err(fault("The ID cannot be empty.")),
        Some(id) if !id.chars().all(|c| c == '_' || c.is_alphanumeric()) => Err(fault(
            "API Resource IDs can only contain alphanumeric characters and underscores.",
        )),
        Some(id) => Ok(id),
    }
}

impl Inner {
    fn route(&mut self, shared: &Shared, method: &Method, path: &str, body: &[u8]) -> Answer {
        let mut tokens = path.trim_start_matches('/').split_terminator('/');
        let first = tokens.next().unwrap_or("");
        let has_body = !body.is_empty();
        let result = match (method.as_str(), first, has_body) {
            ("GET", "", false) => Ok(self.instance_info()),
            ("GET", "machine-config", false) => Ok((StatusCode::OK, Some(self.machine.to_json()))),
            ("GET", _, true) => Err(fault("GET request cannot have a body.")),
            ("PUT", "actions", true) => self.put_actions(shared, body),
            ("PUT", "boot-source", true) => self.put_boot_source(body),
            ("PUT", "drives", true) => self.put_drive(tokens.next(), body),
            ("PUT", "logger", true) => self.put_logger(body),
            ("PUT", "machine-config", true) => self.put_machine_config(body),
            ("PUT", "metrics", true) => self.put_metrics(body),
            ("PUT", "network-interfaces", true) => self.put_net(tokens.next(), body),
            ("PUT", "vsock", true) => self.put_vsock(shared, body),
            ("PATCH", "vm", true) => self.patch_vm(shared, body),
            ("PUT", "snapshot", true) => match tokens.next() {
                Some("create") => self.put_snapshot_create(body),
                Some("load") => self.put_snapshot_load(shared, body),
                Some(other) => Err(fault(format!(
                    "Invalid request method and/or path: PUT /snapshot/{other}."
                ))),
                None => Err(fault("Missing snapshot operation type.")),
            },
            ("PATCH", _, false) => Err(fault("Empty PATCH request.")),
            ("PUT", _, false) => Err(fault("Empty PUT request.")),
            (m, p, _) => Err(fault(format!(
                "Invalid request method and/or path: {m} {p}."
            ))),
        };
        result.unwrap_or_else(|answer| answer)
    }

    fn pre_boot_only(&self) -> Result<(), Answer> {
        match self.state {
            FakeState::NotStarted => Ok(()),
            FakeState::Running | FakeState::Paused => Err(fault(NOT_SUPPORTED_POST_BOOT)),
        }
    }

    fn instance_info(&self) -> Answer {
        (
            StatusCode::OK,
            Some(json!({
                "id": self.id,
                "state": self.state.as_spec_str(),
                "vmm_version": FAKE_VMM_VERSION,
                "app_name": "Firecracker",
            })),
        )
    }

    fn put_actions(&mut self, shared: &Shared, body: &[u8]) -> Result<Answer, Answer> {
        let action: ActionBody = parse(body)?;
        // A paused VM takes the post-boot actions as a running one does.
        let booted = self.state != FakeState::NotStarted;
        match (action.action_type, booted) {
            (ActionType::InstanceStart, true)
            | (ActionType::SendCtrlAltDel | ActionType::FlushMetrics, false) => {
                Err(fault(if booted {
                    NOT_SUPPORTED_POST_BOOT
                } else {
                    NOT_SUPPORTED_PRE_BOOT
                }))
            }
            (ActionType::InstanceStart, false) => {
                if self.boot_source.is_none() {
                    return Err(fault(
                        "Start microvm error: Cannot start microvm without kernel configuration.",
                    ));
                }
                self.state = FakeState::Running;
                shared.vsock_open.store(true, Ordering::SeqCst);
                self.events.push(FakeEvent::InstanceStarted);
                Ok(no_content())
            }
            (ActionType::SendCtrlAltDel, true) => {
                self.events.push(FakeEvent::CtrlAltDel);
                Ok(no_content())
            }
            (ActionType::FlushMetrics, true) => {
                if let Some(path) = &self.metrics {
                    let line = format!("{}\n", json!({ "fake_firecracker": { "flush": true } }));
                    let written = OpenOptions::new()
                        .append(true)
                        .open(path)
                        .and_then(|mut f| io::Write::write_all(&mut f, line.as_bytes()));
                    if let Err(e) = written {
                        return Err(fault(format!(
                            "Internal VMM error: Failed to write metrics: {e}"
                        )));
                    }
                }
                Ok(no_content())
            }
        }
    }

    fn put_machine_config(&mut self, body: &[u8]) -> Result<Answer, Answer> {
        let cfg: MachineCfg = parse(body)?;
        self.pre_boot_only()?;
        if cfg.vcpu_count == 0
            || cfg.vcpu_count > MAX_VCPUS
            || (cfg.smt && cfg.vcpu_count > 1 && cfg.vcpu_count % 2 == 1)
        {
            return Err(fault(format!(
                "Machine config error: The number of vCPUs must be greater than 0, less than \
                 {MAX_VCPUS} and must be 1 or an even number if SMT is enabled."
            )));
        }
        if cfg.mem_size_mib == 0
            || (cfg.huge_pages == HugePages::Huge2M && !cfg.mem_size_mib.is_multiple_of(2))
        {
            return Err(fault(
                "Machine config error: The memory size (MiB) is either 0, or not a multiple of \
                 the configured page size.",
            ));
        }
        self.machine = cfg;
        self.machine_configured = true;
        Ok(no_content())
    }

    /// A request's path as a host path: itself unjailed, resolved under the root when jailed.
    fn host_path(&self, path: impl AsRef<Path>) -> io::Result<PathBuf> {
        match &self.root {
            None => Ok(path.as_ref().to_path_buf()),
            Some(root) => in_jail(root, path.as_ref()),
        }
    }

    fn put_boot_source(&mut self, body: &[u8]) -> Result<Answer, Answer> {
        let cfg: BootSourceCfg = parse(body)?;
        self.pre_boot_only()?;
        if let Err(e) = self
            .host_path(&cfg.kernel_image_path)
            .and_then(std::fs::File::open)
        {
            return Err(fault(format!(
                "Boot source error: The kernel file cannot be opened: {e}"
            )));
        }
        if let Some(initrd) = &cfg.initrd_path
            && let Err(e) = self.host_path(initrd).and_then(std::fs::File::open)
        {
            return Err(fault(format!(
                "Boot source error: The initrd file cannot be opened due to invalid path or \
                 invalid permissions. {e}"
            )));
        }
        if let Some(args) = &cfg.boot_args
            && args.contains('\0')
        {
            return Err(fault(
                "Boot source error: The kernel command line is invalid: String contains a null character",
            ));
        }
        self.boot_source = Some(cfg);
        Ok(no_content())
    }

    fn put_drive(&mut self, id: Option<&str>, body: &[u8]) -> Result<Answer, Answer> {
        let id = checked_id(id)?;
        let cfg: DriveCfg = parse(body)?;
        if id != cfg.drive_id {
            return Err(fault(
                "The id from the path does not match the id from the body!",
            ));
        }
        if self.state != FakeState::NotStarted {
            return Err(fault("PCI is not enabled"));
        }
        let (Some(path), None) = (&cfg.path_on_host, &cfg.socket) else {
            return Err(fault(
                "Drive config error: Unable to create the virtio block device: Invalid block config.",
            ));
        };
        let position = self.drives.iter().position(|d| d.drive_id == cfg.drive_id);
        let root_position = self.drives.iter().position(|d| d.is_root_device);
        if cfg.is_root_device && root_position.is_some() && root_position != position {
            return Err(fault(
                "Drive config error: A root block device already exists!",
            ));
        }
        let read_only = cfg.is_read_only.unwrap_or(false);
        if let Err(e) = self
            .host_path(path)
            .and_then(|p| OpenOptions::new().read(true).write(!read_only).open(p))
        {
            return Err(fault(format!(
                "Drive config error: Unable to create the virtio block device: Virtio backend \
                 error: Error manipulating the backing file: {e} {path}"
            )));
        }
        match position {
            Some(i) => self.drives[i] = cfg,
            None => self.drives.push(cfg),
        }
        Ok(no_content())
    }

    fn put_net(&mut self, id: Option<&str>, body: &[u8]) -> Result<Answer, Answer> {
        let id = checked_id(id)?;
        let cfg: NetCfg = parse(body)?;
        if id != cfg.iface_id {
            return Err(fault(format!(
                "The id from the path [{id}] does not match the id from the body [{}]!",
                cfg.iface_id
            )));
        }
        if self.state != FakeState::NotStarted {
            return Err(fault("PCI is not enabled"));
        }
        if let Some(mac) = &cfg.guest_mac
            && self
                .nets
                .iter()
                .any(|n| n.iface_id != cfg.iface_id && n.guest_mac.as_ref() == Some(mac))
        {
            return Err(fault(format!(
                "Network config error: The MAC address is already in use: {}",
                mac.0
            )));
        }
        if cfg.host_dev_name.is_empty() || cfg.host_dev_name.len() >= 16 {
            return Err(fault(
                "Network config error: Could not create the network device: Open tap device \
                 failed: Invalid interface name",
            ));
        }
        if let Some(mtu) = cfg.mtu
            && mtu < 68
        {
            return Err(fault(format!(
                "Network config error: Could not create the network device: invalid mtu {mtu}"
            )));
        }
        match self.nets.iter().position(|n| n.iface_id == cfg.iface_id) {
            Some(i) => self.nets[i] = cfg,
            None => self.nets.push(cfg),
        }
        Ok(no_content())
    }

    fn put_vsock(&mut self, shared: &Shared, body: &[u8]) -> Result<Answer, Answer> {
        let cfg: VsockCfg = parse(body)?;
        self.pre_boot_only()?;
        if cfg.guest_cid < 3 {
            return Err(fault(format!(
                "Vsock config error: guest_cid {} is below the minimum of 3",
                cfg.guest_cid
            )));
        }
        if let Some((old, task)) = self.vsock.take() {
            task.abort();
            if let Err(e) = std::fs::remove_file(&old) {
                return Err(fault(format!(
                    "Vsock config error: Cannot create backend for vsock device: Error binding \
                     to the host-side Unix socket: {e}"
                )));
            }
        }
        let bind_error = |e: io::Error| {
            fault(format!(
                "Vsock config error: Cannot create backend for vsock device: Error binding to \
                 the host-side Unix socket: {e}"
            ))
        };
        let host = self.host_path(&cfg.uds_path).map_err(bind_error)?;
        let listener = bind_std(&host)
            .and_then(UnixListener::from_std)
            .map_err(bind_error)?;
        let task = tokio::spawn(vsock_accept_loop(
            listener,
            shared.ports.clone(),
            shared.vsock_open.clone(),
        ));
        self.vsock = Some((host.to_string_lossy().into_owned(), task));
        self.vsock_cfg = Some((cfg.guest_cid, cfg.uds_path));
        Ok(no_content())
    }

    fn put_logger(&mut self, body: &[u8]) -> Result<Answer, Answer> {
        let cfg: LoggerCfg = parse(body)?;
        self.pre_boot_only()?;
        if let Some(path) = &cfg.log_path
            && let Err(e) = self.host_path(path).and_then(|p| open_like_firecracker(&p))
        {
            return Err(fault(format!(
                "Logger error: Failed to open target file: {e}"
            )));
        }
        self.logger = true;
        Ok(no_content())
    }

    fn put_metrics(&mut self, body: &[u8]) -> Result<Answer, Answer> {
        let cfg: MetricsCfg = parse(body)?;
        self.pre_boot_only()?;
        let prefix = "Metrics error: Cannot initialize the metrics system due to bad user input:";
        if let Err(e) = self
            .host_path(&cfg.metrics_path)
            .and_then(|p| open_like_firecracker(&p))
        {
            return Err(fault(format!("{prefix} {e}")));
        }
        if self.metrics.is_some() {
            return Err(fault(format!(
                "{prefix} Reinitialization of metrics not allowed."
            )));
        }
        self.metrics = Some(PathBuf::from(cfg.metrics_path));
        Ok(no_content())
    }
}

/// Firecracker's `open_file_nonblock`: read-write, created if missing.
fn open_like_firecracker(path: &Path) -> io::Result<std::fs::File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
}

// ---- request models, written from the swagger and Firecracker's `vmm_config` structs ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    action_type: ActionType,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
enum ActionType {
    FlushMetrics,
    InstanceStart,
    SendCtrlAltDel,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Default)]
enum HugePages {
    #[default]
    None,
    Transparent,
    #[serde(rename = "2M")]
    Huge2M,
}

impl HugePages {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Transparent => "Transparent",
            Self::Huge2M => "2M",
        }
    }
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
enum CpuTemplate {
    C3,
    T2,
    T2S,
    T2CL,
    T2A,
    V1N1,
    None,
}

impl CpuTemplate {
    fn as_str(self) -> &'static str {
        match self {
            Self::C3 => "C3",
            Self::T2 => "T2",
            Self::T2S => "T2S",
            Self::T2CL => "T2CL",
            Self::T2A => "T2A",
            Self::V1N1 => "V1N1",
            Self::None => "None",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MachineCfg {
    vcpu_count: u8,
    mem_size_mib: usize,
    #[serde(default)]
    smt: bool,
    #[serde(default)]
    cpu_template: Option<CpuTemplate>,
    #[serde(default)]
    track_dirty_pages: bool,
    #[serde(default)]
    huge_pages: HugePages,
}

impl Default for MachineCfg {
    /// Firecracker's defaults before any `PUT /machine-config`.
    fn default() -> Self {
        Self {
            vcpu_count: 1,
            mem_size_mib: 128,
            smt: false,
            cpu_template: None,
            track_dirty_pages: false,
            huge_pages: HugePages::None,
        }
    }
}

impl MachineCfg {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "vcpu_count": self.vcpu_count,
            "mem_size_mib": self.mem_size_mib,
            "smt": self.smt,
            "track_dirty_pages": self.track_dirty_pages,
            "huge_pages": self.huge_pages.as_str(),
        });
        if let (Some(t), Some(obj)) = (self.cpu_template, v.as_object_mut())
            && t != CpuTemplate::None
        {
            obj.insert("cpu_template".to_owned(), json!(t.as_str()));
        }
        v
    }
}

#[allow(dead_code)] // parsed to validate the request; not every field is used
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BootSourceCfg {
    kernel_image_path: String,
    initrd_path: Option<String>,
    boot_args: Option<String>,
}

#[allow(dead_code)] // parsed to validate the request; not every field is used
#[derive(Deserialize, Clone, Copy)]
enum CacheType {
    Unsafe,
    Writeback,
}

#[allow(dead_code)] // parsed to validate the request; not every field is used
#[derive(Deserialize, Clone, Copy)]
enum IoEngine {
    Sync,
    Async,
}

#[allow(dead_code)] // parsed to validate the request; not every field is used
/// `RateLimiter`: checked only for shape (`bandwidth`/`ops` token buckets).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimiterCfg {
    bandwidth: Option<TokenBucketCfg>,
    ops: Option<TokenBucketCfg>,
}

#[allow(dead_code)] // parsed to validate the request; not every field is used
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBucketCfg {
    size: u64,
    one_time_burst: Option<u64>,
    refill_time: u64,
}

#[allow(dead_code)] // parsed to validate the request; not every field is used
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DriveCfg {
    drive_id: String,
    partuuid: Option<String>,
    is_root_device: bool,
    cache_type: Option<CacheType>,
    is_read_only: Option<bool>,
    path_on_host: Option<String>,
    rate_limiter: Option<RateLimiterCfg>,
    io_engine: Option<IoEngine>,
    socket: Option<String>,
}

/// A MAC as Firecracker's `MacAddr` parses it: six `:`-separated two-digit hex octets.
#[derive(PartialEq, Eq)]
struct Mac(String);

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let octets: Vec<&str> = s.split(':').collect();
        let ok = octets.len() == 6
            && octets
                .iter()
                .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(serde::de::Error::custom(format!(
                "The provided MAC address is invalid: {s}"
            )));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }
}

#[allow(dead_code)] // parsed to validate the request; not every field is used
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetCfg {
    iface_id: String,
    host_dev_name: String,
    guest_mac: Option<Mac>,
    mtu: Option<u16>,
    rx_rate_limiter: Option<RateLimiterCfg>,
    tx_rate_limiter: Option<RateLimiterCfg>,
}

#[allow(dead_code)] // parsed to validate the request; not every field is used
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VsockCfg {
    vsock_id: Option<String>,
    guest_cid: u32,
    uds_path: String,
}

/// Log level, case-insensitive as Firecracker's `LevelFilter` deserializer.
struct Level;

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_lowercase().as_str() {
            "off" | "trace" | "debug" | "info" | "warn" | "warning" | "error" => Ok(Self),
            _ => Err(serde::de::Error::custom("Invalid LevelFilter")),
        }
    }
}

#[allow(dead_code)] // parsed to validate the request; not every field is used
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoggerCfg {
    log_path: Option<String>,
    level: Option<Level>,
    show_level: Option<bool>,
    show_log_origin: Option<bool>,
    module: Option<String>,
}

#[allow(dead_code)] // parsed to validate the request; not every field is used
/// Upstream's `MetricsConfig` has no `deny_unknown_fields`: unknown keys are ignored.
#[derive(Deserialize)]
struct MetricsCfg {
    metrics_path: String,
    #[serde(default)]
    emit_id: bool,
    properties: Option<BTreeMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Duration;

    /// One raw HTTP/1.1 exchange, independent of any client crate: (status, fault_message).
    fn raw(socket: &Path, method: &str, path: &str, body: &str) -> (u16, Option<String>) {
        let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let (_, payload) = answer.split_once("\r\n\r\n").unwrap();
        let fault = serde_json::from_str::<Value>(payload)
            .ok()
            .and_then(|v| v["fault_message"].as_str().map(str::to_owned));
        (status, fault)
    }

    fn started() -> (tempfile::TempDir, FakeFirecracker) {
        let dir = tempfile::Builder::new()
            .prefix("ff")
            .tempdir_in("/tmp")
            .unwrap();
        let fake = FakeFirecracker::start(dir.path().join("api.sock")).unwrap();
        (dir, fake)
    }

    #[test]
    fn http_level_rules() {
        let (dir, fake) = started();
        let sock = fake.socket_path().to_path_buf();
        let kernel = dir.path().join("vmlinux");
        std::fs::write(&kernel, b"k").unwrap();
        let kernel = kernel.to_str().unwrap();

        let (status, fault) = raw(
            &sock,
            "PUT",
            "/boot-source",
            &format!(r#"{{"kernel_image_path":"{kernel}","bootargs":"x"}}"#),
        );
        assert_eq!(status, 400);
        assert!(fault.unwrap().contains("unknown field `bootargs`"));

        let (status, fault) = raw(&sock, "PUT", "/machine-config", r#"{"vcpu_count":2}"#);
        assert_eq!(status, 400);
        assert!(fault.unwrap().contains("missing field `mem_size_mib`"));

        let (_, fault) = raw(&sock, "PUT", "/machine-config", "");
        assert_eq!(fault.as_deref(), Some("Empty PUT request."));
        let (_, fault) = raw(&sock, "GET", "/", "{}");
        assert_eq!(fault.as_deref(), Some("GET request cannot have a body."));
        let (_, fault) = raw(&sock, "PATCH", "/machine-config", r#"{"vcpu_count":2}"#);
        assert_eq!(
            fault.as_deref(),
            Some("Invalid request method and/or path: PATCH machine-config.")
        );
        let (_, fault) = raw(&sock, "PATCH", "/vm", r#"{"state":"Paused"}"#);
        assert_eq!(fault.as_deref(), Some(NOT_SUPPORTED_PRE_BOOT));

        let drive = r#"{"drive_id":"a","path_on_host":"/dev/null","is_root_device":false}"#;
        let (_, fault) = raw(&sock, "PUT", "/drives/b", drive);
        assert_eq!(
            fault.as_deref(),
            Some("The id from the path does not match the id from the body!")
        );
        let (_, fault) = raw(&sock, "PUT", "/drives/a-b", drive);
        assert!(fault.unwrap().starts_with("API Resource IDs"));

        let (status, fault) = raw(
            &sock,
            "PUT",
            "/metrics",
            &format!(
                r#"{{"metrics_path":"{}","future_field":1}}"#,
                dir.path().join("m").display()
            ),
        );
        assert_eq!((status, fault), (204, None));

        let (status, _) = raw(
            &sock,
            "PUT",
            "/boot-source",
            &format!(r#"{{"kernel_image_path":"{kernel}"}}"#),
        );
        assert_eq!(status, 204);
        let (status, _) = raw(
            &sock,
            "PUT",
            "/actions",
            r#"{"action_type":"InstanceStart"}"#,
        );
        assert_eq!(status, 204);
        assert_eq!(fake.state(), FakeState::Running);

        let statuses: Vec<u16> = fake.calls().iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [400, 400, 400, 400, 400, 400, 400, 400, 204, 204, 204]
        );
        assert_eq!(
            fake.calls()[8].body,
            Some(json!({
                "metrics_path": dir.path().join("m").to_str().unwrap(),
                "future_field": 1
            }))
        );
    }

    #[test]
    fn snapshot_bodies_follow_the_swagger() {
        let (dir, fake) = started();
        let sock = fake.socket_path().to_path_buf();
        let p = |name: &str| dir.path().join(name).display().to_string();
        let both = format!(
            r#"{{"snapshot_path":"{}","mem_file_path":"{}","mem_backend":{{"backend_type":"File","backend_path":"{}"}}}}"#,
            p("s"),
            p("m"),
            p("m")
        );
        let (status, fault) = raw(&sock, "PUT", "/snapshot/load", &both);
        assert_eq!(status, 400);
        assert!(fault.unwrap_or_default().contains("too many fields"));
        let neither = format!(r#"{{"snapshot_path":"{}"}}"#, p("s"));
        let (_, fault) = raw(&sock, "PUT", "/snapshot/load", &neither);
        assert!(fault.unwrap_or_default().contains("missing field"));
        let unknown = format!(
            r#"{{"snapshot_path":"{}","mem_file_path":"{}","x":1}}"#,
            p("s"),
            p("m")
        );
        let (_, fault) = raw(&sock, "PUT", "/snapshot/load", &unknown);
        assert!(fault.unwrap_or_default().contains("unknown field"));
        let (_, fault) = raw(
            &sock,
            "PUT",
            "/snapshot/create",
            r#"{"snapshot_path":"/s"}"#,
        );
        assert!(fault.unwrap_or_default().contains("mem_file_path"));
        let (_, fault) = raw(&sock, "PATCH", "/vm", r#"{"state":"Stopped"}"#);
        assert!(fault.unwrap_or_default().contains("unknown variant"));
        let (_, fault) = raw(&sock, "PUT", "/snapshot/other", "{}");
        assert!(fault.unwrap_or_default().contains("/snapshot/other"));
        // A missing snapshot file fails the load and is reported as fatal.
        let missing = format!(
            r#"{{"snapshot_path":"{}","mem_file_path":"{}"}}"#,
            p("s"),
            p("m")
        );
        let (status, fault) = raw(&sock, "PUT", "/snapshot/load", &missing);
        assert_eq!(status, 400);
        assert!(fault.unwrap_or_default().starts_with("Load snapshot error"));
        assert_eq!(fake.state(), FakeState::NotStarted);
    }

    #[test]
    fn machine_config_values() {
        let (_dir, fake) = started();
        let sock = fake.socket_path().to_path_buf();
        for (body, ok) in [
            (r#"{"vcpu_count":0,"mem_size_mib":128}"#, false),
            (r#"{"vcpu_count":33,"mem_size_mib":128}"#, false),
            (r#"{"vcpu_count":3,"mem_size_mib":128,"smt":true}"#, false),
            (r#"{"vcpu_count":1,"mem_size_mib":0}"#, false),
            (
                r#"{"vcpu_count":1,"mem_size_mib":129,"huge_pages":"2M"}"#,
                false,
            ),
            (
                r#"{"vcpu_count":1,"mem_size_mib":128,"huge_pages":"1G"}"#,
                false,
            ),
            (
                r#"{"vcpu_count":3,"mem_size_mib":130,"huge_pages":"2M"}"#,
                true,
            ),
            (
                r#"{"vcpu_count":4,"mem_size_mib":256,"smt":true,"cpu_template":"T2"}"#,
                true,
            ),
        ] {
            let (status, _) = raw(&sock, "PUT", "/machine-config", body);
            assert_eq!(status == 204, ok, "{body}");
        }
    }

    #[test]
    fn request_models_reject_unknown_fields_like_firecracker() {
        assert!(parse::<BootSourceCfg>(br#"{"kernel_image_path":"/k","bootargs":"x"}"#).is_err());
        assert!(parse::<MachineCfg>(br#"{"vcpu_count":1}"#).is_err());
        assert!(parse::<MachineCfg>(br#"{"vcpu_count":"1","mem_size_mib":128}"#).is_err());
        assert!(parse::<MetricsCfg>(br#"{"metrics_path":"/m","extra":1}"#).is_ok());
        assert!(
            parse::<NetCfg>(br#"{"iface_id":"e","host_dev_name":"t","guest_mac":"zz"}"#).is_err()
        );
        assert!(parse::<LoggerCfg>(br#"{"level":"WARN"}"#).is_ok());
        assert!(parse::<LoggerCfg>(br#"{"level":"loud"}"#).is_err());
    }

    #[test]
    fn reports_its_instance_id_and_events() {
        let (dir, fake) = started();
        let sock = fake.socket_path().to_path_buf();
        fake.set_instance_id("banger-0123");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        fake.on_event(move |e| lock(&sink).push(e));

        let kernel = dir.path().join("vmlinux");
        std::fs::write(&kernel, b"k").unwrap();
        let boot = format!(r#"{{"kernel_image_path":"{}"}}"#, kernel.display());
        assert_eq!(raw(&sock, "PUT", "/boot-source", &boot).0, 204);
        let start = r#"{"action_type":"InstanceStart"}"#;
        assert_eq!(raw(&sock, "PUT", "/actions", start).0, 204);
        let cad = r#"{"action_type":"SendCtrlAltDel"}"#;
        assert_eq!(raw(&sock, "PUT", "/actions", cad).0, 204);

        let mut stream = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        write!(
            stream,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.contains(r#""id":"banger-0123""#), "{answer}");

        let events = lock(&events).clone();
        let kinds: Vec<String> = events
            .iter()
            .map(|e| match e {
                FakeEvent::Request(c) => format!("{} {} {}", c.method, c.path, c.status),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "PUT /boot-source 204",
                "PUT /actions 204",
                "InstanceStarted",
                "PUT /actions 204",
                "CtrlAltDel",
                "GET / 200",
            ]
        );
        assert_eq!(
            events[3],
            FakeEvent::Request(fake.calls()[2].clone()),
            "request events carry the recorded call"
        );
    }

    #[test]
    fn ids_follow_checked_id() {
        assert!(checked_id(Some("root_fs1")).is_ok());
        assert!(checked_id(Some("")).is_err());
        assert!(checked_id(None).is_err());
        assert!(checked_id(Some("a-b")).is_err());
    }

    #[test]
    fn jailed_paths_resolve_inside_the_root_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("run")).expect("mkdir");
        std::fs::write(dir.path().join("host-kernel"), b"k").expect("write");
        std::os::unix::fs::symlink(dir.path().join("host-kernel"), root.join("escape"))
            .expect("symlink");
        assert_eq!(
            in_jail(&root, Path::new("/run/fc.sock")).expect("inside"),
            root.join("run/fc.sock")
        );
        assert_eq!(
            in_jail(&root, Path::new("/not/yet")).expect("a new path inside"),
            root.join("not/yet")
        );
        for refused in ["run/fc.sock", "/run/../../host-kernel", "/escape"] {
            assert!(in_jail(&root, Path::new(refused)).is_err(), "{refused}");
        }
    }
}
