//! The agent's HTTP API: routes, bodies and the per-stream serve loop.
//!
//! | request | response |
//! |---|---|
//! | `GET /healthz` | 200 `{"status":"ok","hostname":…,"uptime_ms":…,"boot_id":…,"version":…,"mode":…,"settled":…}` |
//! | `GET /ports` | 200 `{"ports":[{"protocol":"tcp","address":"0.0.0.0","port":22},…]}` (see [`crate::ports`]) |
//! | `POST /shutdown` | 202 `{"status":"shutting_down"}`, then the machine powers off |
//! | `POST /identity` | as init: 200 `{"status":"ok","applied":N}` once a restored guest took the body's identity and a new host key (500 naming the failed steps); 409 in service mode |
//! | anything else | 404 `{"error":"not_found","message":…}` |
//! | unparsable input | 400/413/431/501/505 `{"error":…,"message":…}` |
//!
//! Every response echoes the request's `X-Request-Id` header (1–128 visible ASCII characters).
//! A host client of the shared virtio-serial stream should, after each (re)connect, send
//! `\r\n\r\n` (this terminates any half-request a predecessor left behind; on a clean stream
//! the empty lines are skipped) and then skip every response whose `X-Request-Id` is not the
//! one it sent: those answer a predecessor, or its leftover bytes (400).
//!
//! Routing and body rendering are pure ([`route`], [`HealthReport::to_json`]); [`serve`] runs
//! the request loop over any stream, answering every request in order and calling the shutdown
//! hook only after the 202 has been written and flushed.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use banger_guest::agent::{HEALTHZ, IDENTITY, PORTS, SHUTDOWN};

use crate::http::{self, Next, Rejection, Request, RequestReader, Response};
use crate::json::Object;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`.
    Healthz,
    /// `GET /ports`.
    Ports,
    /// `POST /shutdown`.
    Shutdown,
    /// `POST /identity`.
    Identity,
    /// Anything else.
    NotFound,
}

/// Maps a request to its route.
pub fn route(req: &Request) -> Route {
    match (req.method.as_str(), req.path()) {
        ("GET", HEALTHZ) => Route::Healthz,
        ("GET", PORTS) => Route::Ports,
        ("POST", SHUTDOWN) => Route::Shutdown,
        ("POST", IDENTITY) => Route::Identity,
        _ => Route::NotFound,
    }
}

/// The body of `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The guest's hostname.
    pub hostname: String,
    /// Milliseconds since the guest kernel booted (or since the agent started, if unknown).
    pub uptime_ms: u64,
    /// The kernel's boot id; changes on every boot, so the host can tell a reboot happened.
    pub boot_id: Option<String>,
    /// The agent's version.
    pub version: String,
    /// `init` or `service`.
    pub mode: &'static str,
    /// Whether the agent has finished setting the guest up and only supervises it now (see
    /// [`Settled`]); a warm snapshot is taken only then, so a restore starts idle.
    pub settled: bool,
}

impl HealthReport {
    /// The JSON body.
    pub fn to_json(&self) -> String {
        Object::new()
            .str("status", "ok")
            .str("hostname", &self.hostname)
            .num("uptime_ms", self.uptime_ms)
            .opt_str("boot_id", self.boot_id.as_deref())
            .str("version", &self.version)
            .str("mode", self.mode)
            .bool("settled", self.settled)
            .finish()
    }
}

/// Parses `/proc/uptime` ("12345.67 890.12") into milliseconds.
pub fn parse_uptime_ms(text: &str) -> Option<u64> {
    let first = text.split_whitespace().next()?;
    let (secs, frac) = first.split_once('.').unwrap_or((first, ""));
    let secs: u64 = secs.parse().ok()?;
    let mut ms = 0u64;
    for (i, d) in frac.bytes().take(3).enumerate() {
        if !d.is_ascii_digit() {
            return None;
        }
        ms += u64::from(d - b'0') * 10u64.pow(2 - i as u32);
    }
    secs.checked_mul(1000)?.checked_add(ms)
}

/// An error JSON body.
pub fn error_body(code: &str, message: &str) -> String {
    Object::new()
        .str("error", code)
        .str("message", message)
        .finish()
}

fn rejection_code(status: u16) -> &'static str {
    match status {
        413 => "body_too_large",
        431 => "head_too_large",
        501 => "not_implemented",
        505 => "version_not_supported",
        _ => "bad_request",
    }
}

/// Where the facts for `/healthz` come from (`/proc` by default; a temp dir in tests).
/// Whether boot-time setup is over: shared by init's main loop (which marks it once the
/// guest is configured and sshd is started) and the health report. A service-mode agent has
/// nothing to set up and is settled from the start.
#[derive(Debug, Clone)]
pub struct Settled(Arc<AtomicBool>);

impl Settled {
    /// Not settled yet.
    pub fn pending() -> Self {
        Self(Arc::new(AtomicBool::new(false)))
    }

    /// Settled already.
    pub fn done() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    /// Marks setup as over.
    pub fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether setup is over.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Where the health report's facts come from.
#[derive(Debug, Clone)]
pub struct SystemInfo {
    proc_root: PathBuf,
    started: Instant,
    mode: &'static str,
    settled: Settled,
}

impl SystemInfo {
    /// Reads from the real `/proc`.
    pub fn new(mode: &'static str) -> Self {
        Self::with_proc_root("/proc", mode)
    }

    /// Reads from `proc_root` instead of `/proc`.
    pub fn with_proc_root(proc_root: impl Into<PathBuf>, mode: &'static str) -> Self {
        Self {
            proc_root: proc_root.into(),
            started: Instant::now(),
            mode,
            settled: Settled::done(),
        }
    }

    /// Reports `settled` instead of "settled from the start".
    pub fn with_settled(mut self, settled: Settled) -> Self {
        self.settled = settled;
        self
    }

    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.proc_root.join(rel))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// The guest's listening sockets, as the body of `GET /ports`.
    pub fn ports_json(&self) -> String {
        crate::ports::to_json(&crate::ports::collect(&self.proc_root))
    }

    /// Gathers the current health report.
    pub fn report(&self) -> HealthReport {
        let uptime_ms = self
            .read("uptime")
            .and_then(|u| parse_uptime_ms(&u))
            .unwrap_or_else(|| {
                u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
            });
        HealthReport {
            hostname: self
                .read("sys/kernel/hostname")
                .unwrap_or_else(|| "localhost".into()),
            uptime_ms,
            boot_id: self.read("sys/kernel/random/boot_id"),
            version: crate::VERSION.to_owned(),
            mode: self.mode,
            settled: self.settled.is_set(),
        }
    }
}

/// The API: health facts plus what to do on `POST /shutdown`.
pub struct Api {
    info: SystemInfo,
    on_shutdown: Box<dyn Fn() + Send + Sync>,
    on_identity: Option<IdentityHook>,
}

/// Applies a `POST /identity` body and answers it (init only).
pub type IdentityHook = Box<dyn Fn(&[u8]) -> Response + Send + Sync>;

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("info", &self.info).finish()
    }
}

/// What [`Api::respond`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The response to write.
    pub response: Response,
    /// Whether to run the shutdown hook once the response is out.
    pub shutdown: bool,
}

impl Api {
    /// An API reporting `info`, calling `on_shutdown` after acknowledging `POST /shutdown`.
    pub fn new(info: SystemInfo, on_shutdown: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            info,
            on_shutdown: Box::new(on_shutdown),
            on_identity: None,
        }
    }

    /// Serves `POST /identity` with `hook` (without one it answers 409).
    pub fn with_identity(
        mut self,
        hook: impl Fn(&[u8]) -> Response + Send + Sync + 'static,
    ) -> Self {
        self.on_identity = Some(Box::new(hook));
        self
    }

    /// Answers one request.
    pub fn respond(&self, req: &Request) -> Reply {
        match route(req) {
            Route::Healthz => Reply {
                response: Response::json(200, self.info.report().to_json()),
                shutdown: false,
            },
            Route::Ports => Reply {
                response: Response::json(200, self.info.ports_json()),
                shutdown: false,
            },
            Route::Shutdown => Reply {
                response: Response::json(
                    202,
                    Object::new().str("status", "shutting_down").finish(),
                ),
                shutdown: true,
            },
            Route::Identity => Reply {
                response: match &self.on_identity {
                    Some(hook) => hook(&req.body),
                    None => Response::json(
                        409,
                        error_body(
                            "not_init",
                            "only the agent running as init can change the guest's identity",
                        ),
                    ),
                },
                shutdown: false,
            },
            Route::NotFound => Reply {
                response: Response::json(
                    404,
                    error_body(
                        "not_found",
                        &format!("no route for {} {}", req.method, req.path()),
                    ),
                ),
                shutdown: false,
            },
        }
    }

    /// Runs the shutdown hook.
    pub fn shutdown(&self) {
        (self.on_shutdown)();
    }
}

/// The response to input the parser rejected.
pub fn reject_response(r: &Rejection) -> Response {
    Response::json(r.status, error_body(rejection_code(r.status), &r.message))
}

/// How a stream ended.
#[derive(Debug)]
pub enum StreamEnd {
    /// The peer closed its side (or the stream hit end of file).
    Eof,
    /// A request asked to close and `honor_close` was set.
    Closed,
    /// Reading or writing failed.
    Io(io::Error),
}

/// The outcome of [`serve`].
#[derive(Debug)]
pub struct Served {
    /// Why serving stopped.
    pub end: StreamEnd,
    /// How many responses were written (requests and rejections).
    pub answered: u64,
}

/// Serves requests from `reader`, answering on `writer`, until the stream ends.
///
/// With `honor_close` false (virtio-serial, where the stream cannot be closed from our side)
/// `Connection: close` is ignored and every response says keep-alive.
pub fn serve<R: Read, W: Write>(api: &Api, reader: R, mut writer: W, honor_close: bool) -> Served {
    let mut reader = RequestReader::new(reader);
    let mut answered = 0;
    let end = loop {
        let (response, shutdown) = match reader.read_next() {
            Ok(Next::Eof) => break StreamEnd::Eof,
            Err(e) => break StreamEnd::Io(e),
            Ok(Next::Reject(r)) => (reject_response(&r), false),
            Ok(Next::Request(req)) => {
                let mut reply = api.respond(&req);
                reply.response.close = honor_close && !req.keep_alive();
                reply.response.request_id = http::request_id(&req).map(str::to_owned);
                (reply.response, reply.shutdown)
            }
        };
        if let Err(e) = http::write_response(&mut writer, &response) {
            break StreamEnd::Io(e);
        }
        answered += 1;
        if shutdown {
            api.shutdown();
        }
        if response.close {
            break StreamEnd::Closed;
        }
    };
    Served { end, answered }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn api(proc_root: &std::path::Path) -> (Api, Arc<AtomicUsize>) {
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        let api = Api::new(
            SystemInfo::with_proc_root(proc_root, "service"),
            move || {
                n2.fetch_add(1, Ordering::SeqCst);
            },
        );
        (api, n)
    }

    fn fake_proc() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("sys/kernel/random")).expect("mkdir");
        std::fs::write(dir.path().join("uptime"), "12.345 1.0\n").expect("write");
        std::fs::write(dir.path().join("sys/kernel/hostname"), "box\n").expect("write");
        std::fs::write(dir.path().join("sys/kernel/random/boot_id"), "0f0e-boot\n").expect("write");
        dir
    }

    #[test]
    fn uptime_parsing() {
        assert_eq!(parse_uptime_ms("12.34 5.00"), Some(12_340));
        assert_eq!(parse_uptime_ms("7 1"), Some(7000));
        assert_eq!(parse_uptime_ms("1.23456"), Some(1234));
        assert_eq!(parse_uptime_ms("x"), None);
        assert_eq!(parse_uptime_ms("1.2x"), None);
        assert_eq!(parse_uptime_ms(""), None);
    }

    #[test]
    fn health_report_json() {
        let dir = fake_proc();
        let r = SystemInfo::with_proc_root(dir.path(), "init").report();
        assert_eq!(r.hostname, "box");
        assert_eq!(r.uptime_ms, 12_345);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("json");
        assert_eq!(v["status"], "ok");
        assert_eq!(v["hostname"], "box");
        assert_eq!(v["uptime_ms"], 12_345);
        assert_eq!(v["boot_id"], "0f0e-boot");
        assert_eq!(v["version"], crate::VERSION);
        assert_eq!(v["mode"], "init");
        assert_eq!(v["settled"], true, "settled unless told otherwise");
    }

    #[test]
    fn settled_is_reported_once_marked() {
        let dir = fake_proc();
        let settled = Settled::pending();
        let info = SystemInfo::with_proc_root(dir.path(), "init").with_settled(settled.clone());
        assert!(!info.report().settled);
        assert!(info.report().to_json().contains(r#""settled":false"#));
        settled.mark();
        assert!(info.report().settled);
        assert!(info.report().to_json().contains(r#""settled":true"#));
    }

    #[test]
    fn missing_proc_falls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = SystemInfo::with_proc_root(dir.path(), "service").report();
        assert_eq!(r.hostname, "localhost");
        assert_eq!(r.boot_id, None);
        assert!(r.to_json().contains(r#""boot_id":null"#));
    }

    #[test]
    fn serve_answers_in_order_and_shuts_down_after_reply() {
        let dir = fake_proc();
        let (api, shutdowns) = api(dir.path());
        let input: &[u8] =
            b"GET /healthz HTTP/1.1\r\n\r\nnonsense\r\n\r\nGET /nope HTTP/1.1\r\nX-Request-Id: r7\r\n\r\n\
                             POST /shutdown HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        let mut out = Vec::new();
        let served = serve(&api, input, &mut out, true);
        assert!(matches!(served.end, StreamEnd::Eof), "{served:?}");
        assert_eq!(served.answered, 4);
        let out = String::from_utf8(out).expect("utf8");
        let statuses: Vec<&str> = out.split("HTTP/1.1 ").skip(1).map(|s| &s[..3]).collect();
        assert_eq!(statuses, vec!["200", "400", "404", "202"]);
        assert!(out.contains(
            "X-Request-Id: r7\r\nConnection: keep-alive\r\n\r\n\
             {\"error\":\"not_found\",\"message\":\"no route for GET /nope\"}"
        ));
        assert_eq!(out.matches("X-Request-Id").count(), 1);
        assert!(out.ends_with(r#"{"status":"shutting_down"}"#));
        assert_eq!(shutdowns.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn ports_are_served_from_proc() {
        let dir = fake_proc();
        std::fs::create_dir(dir.path().join("net")).expect("mkdir");
        std::fs::write(
            dir.path().join("net/tcp"),
            "  sl  local_address rem_address   st\n   0: 00000000:0016 00000000:0000 0A 0\n",
        )
        .expect("write");
        let (api, _) = api(dir.path());
        let input: &[u8] = b"GET /ports HTTP/1.1\r\nX-Request-Id: p1\r\n\r\n";
        let mut out = Vec::new();
        serve(&api, input, &mut out, true);
        let out = String::from_utf8(out).expect("utf8");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(
            out.ends_with(r#"{"ports":[{"protocol":"tcp","address":"0.0.0.0","port":22}]}"#),
            "{out}"
        );
    }

    #[test]
    fn connection_close_is_honored_only_when_asked() {
        let dir = fake_proc();
        let (api, _) = api(dir.path());
        let input: &[u8] =
            b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n";
        let mut out = Vec::new();
        assert!(matches!(
            serve(&api, input, &mut out, true).end,
            StreamEnd::Closed
        ));
        assert_eq!(
            String::from_utf8_lossy(&out)
                .matches("HTTP/1.1 200")
                .count(),
            1
        );
        let mut out = Vec::new();
        assert!(matches!(
            serve(&api, input, &mut out, false).end,
            StreamEnd::Eof
        ));
        let out = String::from_utf8_lossy(&out).into_owned();
        assert_eq!(out.matches("HTTP/1.1 200").count(), 2);
        assert!(!out.contains("Connection: close"));
    }

    #[test]
    fn routes() {
        let req = |m: &str, t: &str| Request {
            method: m.into(),
            target: t.into(),
            version: http::Version::Http11,
            headers: vec![],
            body: vec![],
        };
        assert_eq!(route(&req("GET", "/healthz")), Route::Healthz);
        assert_eq!(route(&req("GET", "/healthz?verbose=1")), Route::Healthz);
        assert_eq!(route(&req("POST", "/shutdown")), Route::Shutdown);
        assert_eq!(route(&req("GET", "/ports")), Route::Ports);
        assert_eq!(route(&req("POST", "/ports")), Route::NotFound);
        assert_eq!(route(&req("GET", "/shutdown")), Route::NotFound);
        assert_eq!(route(&req("POST", "/healthz")), Route::NotFound);
        assert_eq!(route(&req("GET", "/")), Route::NotFound);
        assert_eq!(route(&req("POST", "/identity")), Route::Identity);
        assert_eq!(route(&req("GET", "/identity")), Route::NotFound);
    }

    #[test]
    fn identity_goes_to_the_init_hook_with_its_body_and_is_refused_without_one() {
        let proc_root = fake_proc();
        let request = |body: &[u8]| Request {
            method: "POST".into(),
            target: "/identity".into(),
            version: http::Version::Http11,
            headers: vec![],
            body: body.to_vec(),
        };
        let (service, _) = api(proc_root.path());
        let reply = service.respond(&request(b"banger.hostname=web"));
        assert_eq!(reply.response.status, 409);
        assert!(
            reply.response.body.contains("not_init"),
            "{}",
            reply.response.body
        );

        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let (init, _) = api(proc_root.path());
        let init = init.with_identity(move |body| {
            seen2.lock().expect("lock").push(body.to_vec());
            Response::json(200, Object::new().str("status", "ok").finish())
        });
        let reply = init.respond(&request(b"banger.hostname=web"));
        assert_eq!(reply.response.status, 200);
        assert!(!reply.shutdown);
        assert_eq!(
            *seen.lock().expect("lock"),
            vec![b"banger.hostname=web".to_vec()]
        );
    }
}
