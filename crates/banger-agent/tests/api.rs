//! Runs the real `banger-agent` binary in service mode on a Unix socket in a temp dir and talks
//! HTTP to it, as the host does over vsock or virtio-serial. No root needed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_banger-agent");
const TIMEOUT: Duration = Duration::from_secs(10);

/// A running agent; killed on drop, printing its log if the test failed.
struct Agent {
    child: Child,
    dir: tempfile::TempDir,
    sock: PathBuf,
}

impl Agent {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("agent.sock");
        let log = std::fs::File::create(dir.path().join("agent.log")).expect("log file");
        let child = Command::new(BIN)
            .arg("--listen-unix")
            .arg(&sock)
            .arg("--exit-on-shutdown")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn banger-agent");
        let agent = Self { child, dir, sock };
        let deadline = Instant::now() + TIMEOUT;
        while UnixStream::connect(&agent.sock).is_err() {
            assert!(
                Instant::now() < deadline,
                "agent did not listen within {TIMEOUT:?}; log:\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    fn connect(&self) -> Conn {
        let s = UnixStream::connect(&self.sock).expect("connect");
        s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        Conn {
            reader: BufReader::new(s.try_clone().expect("clone")),
            writer: s,
        }
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            assert!(Instant::now() < deadline, "agent did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- agent log ---\n{}", self.log());
        }
    }
}

struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

impl Conn {
    fn send(&mut self, raw: &[u8]) {
        self.writer.write_all(raw).expect("write");
    }

    fn read_response(&mut self) -> Resp {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let mut parts = line.trim_end().splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {line:?}");
        let status = parts.next().and_then(|s| s.parse().ok()).expect("status");
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).expect("header");
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').expect("header colon");
            headers.push((n.to_owned(), v.trim().to_owned()));
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .expect("content-length");
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).expect("body");
        Resp {
            status,
            headers,
            body: String::from_utf8(body).expect("utf8 body"),
        }
    }

    fn get(&mut self, path: &str) -> Resp {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: agent\r\n\r\n").as_bytes());
        self.read_response()
    }

    fn at_eof(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }
}

fn read_trimmed(p: &str) -> String {
    std::fs::read_to_string(Path::new(p))
        .expect("read")
        .trim()
        .to_owned()
}

#[test]
fn healthz_reports_status_hostname_uptime_boot_id_version() {
    let agent = Agent::start();
    let mut c = agent.connect();
    let r = c.get("/healthz");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["hostname"], read_trimmed("/proc/sys/kernel/hostname"));
    assert!(v["uptime_ms"].as_u64().is_some_and(|u| u > 0), "{v}");
    assert_eq!(
        v["boot_id"],
        read_trimmed("/proc/sys/kernel/random/boot_id")
    );
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["mode"], "service");
    // Keep-alive: the same connection serves another request.
    assert_eq!(c.get("/healthz").status, 200);
}

#[test]
fn unknown_route_is_404_json() {
    let agent = Agent::start();
    let mut c = agent.connect();
    let r = c.get("/nope");
    assert_eq!(r.status, 404);
    let v = r.json();
    assert_eq!(v["error"], "not_found");
    assert_eq!(v["message"], "no route for GET /nope");
    c.send(b"DELETE /healthz HTTP/1.1\r\n\r\n");
    assert_eq!(c.read_response().status, 404);
}

#[test]
fn garbage_then_valid_request_on_one_connection() {
    let agent = Agent::start();
    let mut c = agent.connect();
    c.send(b"\x16\x03\x01 not http at all\r\nmore junk\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json()["error"], "bad_request");
    assert_eq!(r.header("x-request-id"), None);
    // A half request left by a previous client, then the reconnect recipe: blank lines first,
    // then a tagged request; the leftover gets an untagged 400, ours a tagged 200.
    c.send(b"GET /heal");
    c.send(b"\r\n\r\nGET /healthz HTTP/1.1\r\nX-Request-Id: host-1\r\n\r\n");
    let r = c.read_response();
    assert_eq!((r.status, r.header("x-request-id")), (400, None));
    let r = c.read_response();
    assert_eq!((r.status, r.header("x-request-id")), (200, Some("host-1")));
    assert_eq!(r.json()["status"], "ok");
}

#[test]
fn pipelined_and_trickled_requests() {
    let agent = Agent::start();
    let mut c = agent.connect();
    c.send(b"GET /healthz HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n");
    let statuses: Vec<u16> = (0..3).map(|_| c.read_response().status).collect();
    assert_eq!(statuses, vec![200, 404, 200]);
    for chunk in [
        &b"GET /hea"[..],
        b"lthz HTTP/1.",
        b"1\r\nHost: a\r",
        b"\n\r\n",
    ] {
        c.send(chunk);
        std::thread::sleep(Duration::from_millis(30));
    }
    assert_eq!(c.read_response().status, 200);
}

#[test]
fn connection_close_is_honoured() {
    let agent = Agent::start();
    let mut c = agent.connect();
    c.send(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.at_eof());
}

#[test]
fn concurrent_connections() {
    let agent = Agent::start();
    let mut conns: Vec<Conn> = (0..4).map(|_| agent.connect()).collect();
    for c in conns.iter_mut().rev() {
        assert_eq!(c.get("/healthz").status, 200);
    }
}

#[test]
fn shutdown_is_acknowledged_before_acting() {
    let mut agent = Agent::start();
    let mut c = agent.connect();
    c.send(b"POST /shutdown HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["status"], "shutting_down");
    let st = agent.wait_exit();
    assert!(st.success(), "{st:?}");
}

#[test]
fn cli_usage_errors_and_version() {
    let out = Command::new(BIN).arg("--frobnicate").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("banger-agent: unknown arguments: --frobnicate"),
        "{err}"
    );
    let out = Command::new(BIN).arg("--version").output().expect("run");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("banger-agent {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(BIN).arg("--help").output().expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("--listen-unix PATH"));
}
