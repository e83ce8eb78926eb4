//! A scripted stand-in daemon on a [`TestEnv`]'s socket, shared by the CLI tests that need
//! a daemon to answer: it answers `/v1/ping` itself, every other request from a script, and
//! records every request so a test can say what never reached the daemon.
//!
//! Not every test file uses every helper.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use banger_model::Mode;
use banger_proto::DaemonInfo;
use banger_testkit::TestEnv;

/// One request as the fake daemon saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path with its query string.
    pub path: String,
    /// The body, as text.
    pub body: String,
}

/// Answers `(status, body)` for a request. Status [`HANG_UP`] closes the connection without
/// an answer, as a daemon that dies in the middle of a request does.
pub type Script = Arc<dyn Fn(&Request) -> (u16, String) + Send + Sync>;

/// The status that makes the fake hang up instead of answering.
pub const HANG_UP: u16 = 0;

/// A running fake daemon; it lives as long as the test process, or until [`FakeDaemon::stop`].
#[derive(Clone)]
pub struct FakeDaemon {
    seen: Arc<Mutex<Vec<Request>>>,
    socket: std::path::PathBuf,
}

impl FakeDaemon {
    /// Takes the fake off its socket, as a daemon that died: new connections find no
    /// socket, and a new fake can be served on the same path.
    pub fn stop(&self) {
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Every request after the pings, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().expect("request log").clone()
    }

    /// Whether any request matched `method` and a path starting with `prefix`.
    pub fn saw(&self, method: &str, prefix: &str) -> bool {
        self.requests()
            .iter()
            .any(|r| r.method == method && r.path.starts_with(prefix))
    }
}

/// The ping answer of a daemon from this very build.
pub fn ping(socket: &Path) -> String {
    serde_json::to_string(&DaemonInfo {
        build: banger_proto::build_info!(),
        pid: 4242,
        mode: Mode::User,
        owner_uid: 0,
        socket: socket.to_path_buf(),
        state_dir: "/nowhere".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        dns: None,
        guest_dns: None,
    })
    .expect("encode DaemonInfo")
}

/// An error envelope.
pub fn error(code: &str, message: &str, op: &str) -> String {
    serde_json::json!({"code": code, "message": message, "op_id": op}).to_string()
}

/// Serves `script` on the env's socket from a background thread.
pub fn serve(
    env: &TestEnv,
    script: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static,
) -> FakeDaemon {
    let socket = env.layout().socket();
    let dir = socket.parent().expect("socket has a directory");
    std::fs::create_dir_all(dir).expect("create the runtime dir");
    let listener = UnixListener::bind(&socket).expect("bind the fake socket");
    let info = ping(&socket);
    let script: Script = Arc::new(script);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // A client that hangs up early only ends its own exchange.
            let _ = answer(stream, &info, &script, &log);
        }
    });
    FakeDaemon { seen, socket }
}

/// Reads one request and writes the scripted answer.
fn answer(
    mut stream: UnixStream,
    info: &str,
    script: &Script,
    log: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let request = Request {
        method: parts.next().unwrap_or_default().to_owned(),
        path: parts.next().unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (status, body) = if request.path == "/v1/ping" {
        (200, info.to_owned())
    } else {
        if let Ok(mut seen) = log.lock() {
            seen.push(request.clone());
        }
        script(&request)
    };
    if status == HANG_UP {
        return Ok(());
    }
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A running VM record named `name`, as JSON.
pub fn vm_record(name: &str, nat: bool) -> String {
    serde_json::to_string(&record(name, nat)).expect("encode VmRecord")
}

/// A VM record named `name` in `state` with `last_error`, as JSON.
pub fn vm_record_in(name: &str, state: banger_model::VmState, last_error: Option<&str>) -> String {
    let mut vm = record(name, false);
    vm.state = state;
    vm.last_error = last_error.map(String::from);
    serde_json::to_string(&vm).expect("encode VmRecord")
}

/// A running VM record named `name` with a workspace prepared at commit `aaaa…`, as JSON.
pub fn vm_record_prepared(name: &str) -> String {
    let mut vm = record(name, false);
    vm.workspace = Some(banger_model::Workspace {
        guest_path: "/root/repo".into(),
        host_path: "/nowhere/repo".into(),
        head: "a".repeat(40),
        prepared_at: "2026-01-02T03:04:05Z".into(),
    });
    serde_json::to_string(&vm).expect("encode VmRecord")
}

fn record(name: &str, nat: bool) -> banger_model::VmRecord {
    banger_model::VmRecord {
        id: format!("{name}-0123456789abcdef"),
        name: banger_model::VmName::parse(name).expect("test vm name"),
        image_id: "feedfacecafe0000".into(),
        spec: banger_model::VmSpec {
            vcpu: 1,
            memory_mib: 1024,
            disk_size: banger_model::Size::from_gib(8),
            nat,
        },
        state: banger_model::VmState::Running,
        guest_ip: Some("172.30.0.2".into()),
        tap_name: None,
        dir: "/s/vms/0123".into(),
        last_error: None,
        created_at: "2026-01-02T03:04:05Z".into(),
        updated_at: "2026-01-02T03:04:05Z".into(),
        workspace: None,
    }
}

/// A health answer for `name`: up (VMM and agent answer) or powered off.
pub fn vm_health(name: &str, up: bool) -> String {
    serde_json::json!({
        "vm": name,
        "state": if up { "running" } else { "stopped" },
        "vmm_alive": up,
        "agent": {"ok": up, "detail": "x"},
        "ssh": {"ok": up, "detail": "x"},
    })
    .to_string()
}

/// An ssh command line that runs `script` locally with `sh -c` instead of reaching a guest.
pub fn ssh_line(script: &str) -> String {
    serde_json::json!({
        "program": "sh",
        "args": ["-c", script],
        "known_hosts": "/nowhere/known_hosts",
    })
    .to_string()
}

/// A finished, successful `vm.create` operation for `name`.
pub fn created(name: &str) -> String {
    serde_json::json!({
        "id": "op-1", "kind": "vm.create", "target": name, "state": "succeeded",
        "stages": [{"name": "boot", "state": "done", "duration_ms": 120}],
        "started_at": "2026-01-01T00:00:00Z", "duration_ms": 850,
    })
    .to_string()
}
