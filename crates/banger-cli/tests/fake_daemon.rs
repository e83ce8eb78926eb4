//! The CLI's side of the API against a scripted stand-in daemon: URLs, JSON output, error
//! rendering with operation ids, and exit codes. The real daemon has its own tests; this
//! one pins what the CLI does with each kind of answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use assert_cmd::prelude::*;
use banger_model::Mode;
use banger_proto::{BuildInfo, DaemonInfo};
use banger_testkit::TestEnv;
use predicates::prelude::*;

/// Answers `(status, body)` for a method and path.
type Script = fn(&str, &str) -> (u16, String);

fn ping(socket: &Path) -> String {
    serde_json::to_string(&DaemonInfo {
        build: BuildInfo::current(),
        pid: 4242,
        mode: Mode::User,
        owner_uid: 0,
        socket: socket.to_path_buf(),
        state_dir: "/nowhere".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
    })
    .expect("encode DaemonInfo")
}

fn error(code: &str, message: &str, op: &str) -> String {
    serde_json::json!({"code": code, "message": message, "op_id": op}).to_string()
}

/// Serves `script` on the env's socket from a background thread.
fn serve(env: &TestEnv, script: Script) {
    let socket = env.layout().socket();
    let dir = socket.parent().expect("socket has a directory");
    std::fs::create_dir_all(dir).expect("create the runtime dir");
    let listener = UnixListener::bind(&socket).expect("bind the fake socket");
    let info = ping(&socket);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // A client that hangs up early only ends its own exchange.
            let _ = answer(stream, &info, script);
        }
    });
}

/// Reads one request and writes the scripted answer.
fn answer(mut stream: UnixStream, info: &str, script: Script) -> std::io::Result<()> {
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
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let (status, body) = if path == "/v1/ping" {
        (200, info.to_owned())
    } else {
        script(method, path)
    };
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn script(method: &str, path: &str) -> (u16, String) {
    match (method, path) {
        ("GET", "/v1/vms") => (200, "[]".into()),
        ("GET", "/v1/vms/ghost") => (404, error("not_found", "no vm named \"ghost\"", "op-123")),
        ("GET", "/v1/vms/twin") => (
            400,
            error(
                "bad_request",
                "\"twin\" is ambiguous: twin-a, twin-b",
                "op-124",
            ),
        ),
        ("POST", "/v1/vms") => (
            501,
            error(
                "unavailable",
                "vm create is not available yet in this build",
                "op-125",
            ),
        ),
        ("GET", "/v1/images") => (200, "this is not json".into()),
        _ => (404, String::new()),
    }
}

#[test]
fn empty_lists_are_json_arrays_or_a_hint() {
    let env = TestEnv::new().unwrap();
    serve(&env, script);
    env.command("banger")
        .args(["vm", "ls", "--json"])
        .assert()
        .success()
        .stdout("[]\n")
        .stderr("");
    env.command("banger")
        .args(["vm", "ps"])
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::str::contains("no VMs yet"));
    assert!(!env.layout().daemon_log().exists(), "a daemon was started");
}

#[test]
fn daemon_errors_carry_label_op_id_and_exit_code() {
    let env = TestEnv::new().unwrap();
    serve(&env, script);
    env.command("banger")
        .args(["vm", "show", "ghost"])
        .assert()
        .code(3)
        .stderr("banger: not found: no vm named \"ghost\" (op-123)\n");
    env.command("banger")
        .args(["vm", "show", "twin"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "ambiguous: twin-a, twin-b (op-124)",
        ));
}

#[test]
fn create_prints_the_spec_then_the_daemons_answer() {
    let env = TestEnv::new().unwrap();
    serve(&env, script);
    env.command("banger")
        .args([
            "vm", "create", "--name", "web", "--vcpu", "2", "--memory", "2G",
        ])
        .assert()
        .code(7)
        .stderr(predicate::str::starts_with(
            "spec: 2 vcpu | 2048 MiB | 8G disk\n\
             banger: vm create is not available yet in this build (op-125)\n",
        ));
}

#[test]
fn unreadable_answers_are_a_mismatch() {
    let env = TestEnv::new().unwrap();
    serve(&env, script);
    env.command("banger")
        .args(["image", "ls"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("unexpected answer from bangerd"));
    env.command("banger")
        .args(["kernel", "ls"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("another build"));
}
