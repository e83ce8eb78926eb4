//! `fake-firecracker`: the fake Firecracker of `banger_testkit::fake_firecracker` as a process,
//! so banger's Firecracker *backend* (spawning, detaching, pid files, socket readiness, kill on
//! failure, liveness by tag, shutdown) can be tested where no real Firecracker or KVM exists.
//!
//! It takes the real binary's flags that banger passes (`--api-sock`, `--id`, the logging
//! flags, `--enable-pci`) and rejects unknown ones as the real one does (exit 153), serves the
//! spec-following fake API on `--api-sock`, and logs every API request it answered to stdout as
//! a line `fake-firecracker: api {json}` so tests can assert the exact calls from the outside.
//!
//! After `InstanceStart` it "boots": it prints console lines to stdout (which is where a real
//! guest's serial console goes) and plays the guest agent on vsock port 52 of the hybrid vsock
//! socket: `GET /healthz` answers 200 with JSON, `POST /shutdown` answers 202 and then the
//! process exits, as Firecracker does when its guest powers off. `SendCtrlAltDel` makes it exit
//! too (a real guest booted with `reboot=k` reboots, and Firecracker exits on reboot).
//!
//! Snapshots: `PATCH /vm`, `PUT /snapshot/create` and `/snapshot/load` as the library fake
//! models them. A loaded VM prints the host files of its drives and its vsock socket
//! (`fake-firecracker: restored drive <id> from <path>`) and serves the agent like a booted one;
//! a failed load makes the process exit (status 1), as Firecracker does.
//!
//! Started by `fake-jailer`, it finds the jail's root in [`JAIL_ROOT_ENV`] and resolves
//! `--api-sock`, `--log-path` and every path in an API request inside it, as a chrooted
//! Firecracker would (see `banger_testkit::fake_firecracker::in_jail`).
//!
//! A fake must never outlive a failed test: it exits on its own after [`MAX_LIFETIME`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use banger_guest::agent::{HEALTHZ, SHUTDOWN};
use banger_testkit::fake_firecracker::{
    EventHook, FAKE_INSTANCE_ID, FAKE_VMM_VERSION, FakeEvent, FakeFirecracker, JAIL_ROOT_ENV,
    in_jail,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// The guest agent's vsock port.
const AGENT_PORT: u32 = banger_guest::agent::VSOCK_PORT;

/// The fake exits on its own after this long, whatever happens.
const MAX_LIFETIME: Duration = Duration::from_secs(600);

/// How long it lingers after a shutdown request, so the answer reaches the client first.
const EXIT_DELAY: Duration = Duration::from_millis(200);

/// Firecracker's exit code for argument errors (`FcExitCode::ArgParsing`).
const EXIT_ARG_PARSING: u8 = 153;

/// Firecracker's default `--api-sock`.
const DEFAULT_API_SOCK: &str = "/run/firecracker.socket";

/// Flags of the real binary that take a value.
const VALUE_FLAGS: &[&str] = &[
    "api-sock",
    "id",
    "log-path",
    "level",
    "module",
    "metrics-path",
    "seccomp-filter",
    "start-time-us",
    "start-time-cpu-us",
    "parent-cpu-time-us",
    "http-api-max-payload-size",
    "mmds-size-limit",
];

/// Flags of the real binary without a value.
const SWITCH_FLAGS: &[&str] = &[
    "show-level",
    "show-log-origin",
    "boot-timer",
    "no-seccomp",
    "enable-pci",
    "version",
    "help",
];

/// Real flags this fake does not implement.
const UNSUPPORTED_FLAGS: &[&str] = &[
    "config-file",
    "no-api",
    "metadata",
    "describe-snapshot",
    "snapshot-version",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Args {
    api_sock: PathBuf,
    id: String,
    log_path: Option<PathBuf>,
    version: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ArgError {
    /// Exit 153, as the real binary does.
    Parse(String),
    /// The fake cannot do this.
    Unsupported(String),
}

fn parse_args(argv: impl IntoIterator<Item = OsString>) -> Result<Args, ArgError> {
    let mut args = Args {
        api_sock: DEFAULT_API_SOCK.into(),
        id: FAKE_INSTANCE_ID.to_owned(),
        log_path: None,
        version: false,
    };
    let mut it = argv.into_iter();
    while let Some(raw) = it.next() {
        let text = raw.to_string_lossy().into_owned();
        let unexpected = || {
            ArgError::Parse(format!(
                "Found argument '{text}' which wasn't expected, or isn't valid in this context."
            ))
        };
        let Some(flag) = text.strip_prefix("--") else {
            return Err(unexpected());
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(OsString::from(value))),
            None => (flag, None),
        };
        if UNSUPPORTED_FLAGS.contains(&name) {
            return Err(ArgError::Unsupported(format!(
                "fake-firecracker does not implement --{name}"
            )));
        }
        if SWITCH_FLAGS.contains(&name) {
            if inline.is_some() {
                return Err(unexpected());
            }
            if name == "version" || name == "help" {
                args.version = true;
            }
            continue;
        }
        if !VALUE_FLAGS.contains(&name) {
            return Err(unexpected());
        }
        let value = match inline.or_else(|| it.next()) {
            Some(value) => value,
            None => {
                return Err(ArgError::Parse(format!(
                    "The argument '--{name}' requires a value, but none was supplied"
                )));
            }
        };
        match name {
            "api-sock" => args.api_sock = value.into(),
            "id" => args.id = value.to_string_lossy().into_owned(),
            "log-path" => args.log_path = Some(value.into()),
            _ => {}
        }
    }
    let id_ok = (1..=64).contains(&args.id.len())
        && args.id.chars().all(|c| c == '-' || c.is_alphanumeric());
    if !id_ok {
        return Err(ArgError::Parse(format!("Invalid instance ID: {}", args.id)));
    }
    Ok(args)
}

/// What the main thread waits for.
#[derive(Debug)]
enum Exit {
    CtrlAltDel,
    AgentShutdown,
    /// Firecracker ends the process after a failed snapshot load.
    LoadFailed,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(ArgError::Parse(message)) => {
            eprintln!("Arguments parsing error: {message}");
            return ExitCode::from(EXIT_ARG_PARSING);
        }
        Err(ArgError::Unsupported(message)) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    if args.version {
        println!("Firecracker v{FAKE_VMM_VERSION}");
        return ExitCode::SUCCESS;
    }
    let jail = std::env::var_os(JAIL_ROOT_ENV).map(PathBuf::from);
    let log_path = match (&jail, &args.log_path) {
        (Some(root), Some(log)) => match in_jail(root, log) {
            Ok(host) => Some(host),
            Err(e) => {
                eprintln!("Failed to open the log file {}: {e}", log.display());
                return ExitCode::FAILURE;
            }
        },
        (_, log) => log.clone(),
    };
    if let Some(log) = &log_path
        && let Err(e) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    {
        eprintln!("Failed to open the log file {}: {e}", log.display());
        return ExitCode::FAILURE;
    }
    let (tx, rx) = mpsc::channel::<Exit>();
    let events_tx = tx.clone();
    let id = args.id.clone();
    // The hook must be in place before the socket exists: the VMM's client connects at once.
    let hook: EventHook = Arc::new(move |event| match event {
        FakeEvent::Request(call) => {
            let line = json!({
                "method": call.method,
                "path": call.path,
                "status": call.status,
                "body": call.body,
            });
            println!("fake-firecracker: api {line}");
        }
        FakeEvent::InstanceStarted => {
            println!("[    0.000000] Linux version 6.1.0-fake (fake-firecracker)");
            println!("fake-firecracker: guest {id} booted; agent on vsock port {AGENT_PORT}");
        }
        FakeEvent::CtrlAltDel => {
            let _ = events_tx.send(Exit::CtrlAltDel);
        }
        FakeEvent::SnapshotLoaded {
            resumed,
            drives,
            vsock,
        } => {
            for (drive, path) in drives {
                println!(
                    "fake-firecracker: restored drive {drive} from {}",
                    path.display()
                );
            }
            if let Some(vsock) = vsock {
                println!("fake-firecracker: restored vsock on {}", vsock.display());
            }
            let state = if resumed { "running" } else { "paused" };
            println!("fake-firecracker: guest {id} restored from a snapshot, {state}");
        }
        FakeEvent::SnapshotLoadFailed => {
            let _ = events_tx.send(Exit::LoadFailed);
        }
    });
    let started = match &jail {
        Some(root) => FakeFirecracker::start_jailed(root, &args.api_sock, &args.id, Some(hook)),
        None => FakeFirecracker::start_with(&args.api_sock, &args.id, Some(hook)),
    };
    let fake = match started {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!(
                "Failed to open the API socket at: {}. Check that it is not already used. ({e})",
                args.api_sock.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let hostname = args.id.clone();
    let started = Instant::now();
    fake.vsock_serve(AGENT_PORT, move |stream| {
        agent(stream, hostname.clone(), started, tx.clone())
    });
    println!(
        "fake-firecracker v{FAKE_VMM_VERSION}: instance {} serving its API on {}",
        args.id,
        args.api_sock.display()
    );

    let exit = rx.recv_timeout(MAX_LIFETIME);
    match exit {
        Ok(Exit::CtrlAltDel) => println!("reboot: Restarting system"),
        Ok(Exit::AgentShutdown) => println!("reboot: Power down"),
        Ok(Exit::LoadFailed) => {
            eprintln!("fake-firecracker: the snapshot did not load; exiting as firecracker does");
            std::thread::sleep(EXIT_DELAY);
            drop(fake);
            return ExitCode::FAILURE;
        }
        Err(_) => eprintln!("fake-firecracker: lifetime of {MAX_LIFETIME:?} over; exiting"),
    }
    std::thread::sleep(EXIT_DELAY);
    drop(fake);
    ExitCode::SUCCESS
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// The guest agent's HTTP/1.1, enough for `GET /healthz` and `POST /shutdown`: requests in
/// order on one stream, blank lines between them skipped (the daemon sends one first), the
/// `X-Request-Id` header echoed.
async fn agent(
    mut stream: UnixStream,
    hostname: String,
    started: Instant,
    exit: mpsc::Sender<Exit>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let skip = buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        buf.drain(..skip);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = header(&head, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf.drain(..end + 4 + length);
            let mut words = head.lines().next().unwrap_or_default().split_whitespace();
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let (status, reason, body, shutdown) = match (method, path) {
                ("GET", HEALTHZ) => (
                    200,
                    "OK",
                    json!({
                        "status": "ok",
                        "hostname": hostname,
                        "uptime_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                        "version": format!("fake-firecracker {FAKE_VMM_VERSION}"),
                        "mode": "init",
                    }),
                    false,
                ),
                ("POST", SHUTDOWN) => (202, "Accepted", json!({"status": "shutting_down"}), true),
                _ => (
                    404,
                    "Not Found",
                    json!({"error": "not_found", "message": format!("no route {method} {path}")}),
                    false,
                ),
            };
            let body = body.to_string();
            let request_id = header(&head, "x-request-id")
                .map(|id| format!("X-Request-Id: {id}\r\n"))
                .unwrap_or_default();
            let response = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n{request_id}\r\n{body}",
                body.len()
            );
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
            let _ = stream.flush().await;
            if shutdown {
                let _ = stream.shutdown().await;
                let _ = exit.send(Exit::AgentShutdown);
                return;
            }
            continue;
        }
        if buf.len() > 16 * 1024 {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, ArgError> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn takes_the_flags_banger_passes() {
        let args = parse(&["--api-sock", "/r/fc.sock", "--id", "banger-0123"]).expect("ok");
        assert_eq!(args.api_sock, PathBuf::from("/r/fc.sock"));
        assert_eq!(args.id, "banger-0123");
        let args = parse(&[
            "--id=x-1",
            "--show-level",
            "--level",
            "Debug",
            "--enable-pci",
        ])
        .expect("ok");
        assert_eq!(args.api_sock, PathBuf::from(DEFAULT_API_SOCK));
        assert_eq!(args.id, "x-1");
    }

    #[test]
    fn rejects_what_the_real_binary_rejects() {
        assert!(matches!(parse(&["--bogus"]), Err(ArgError::Parse(_))));
        assert!(matches!(parse(&["positional"]), Err(ArgError::Parse(_))));
        assert!(matches!(parse(&["--api-sock"]), Err(ArgError::Parse(_))));
        assert!(matches!(parse(&["--id", "a_b"]), Err(ArgError::Parse(_))));
        assert!(matches!(
            parse(&["--show-level=1"]),
            Err(ArgError::Parse(_))
        ));
        assert!(matches!(
            parse(&["--no-api"]),
            Err(ArgError::Unsupported(_))
        ));
    }

    #[test]
    fn finds_headers_case_insensitively() {
        let head = "GET / HTTP/1.1\r\nX-Request-ID: r7\r\ncontent-length: 3";
        assert_eq!(header(head, "x-request-id"), Some("r7"));
        assert_eq!(header(head, "Content-Length"), Some("3"));
        assert_eq!(header(head, "host"), None);
    }
}
