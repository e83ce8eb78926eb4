//! The real `bangerd` binary on a temp layout: version, schema checks, single instance,
//! clean shutdown.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use banger_testkit::{DaemonGuard, TestEnv};

fn git_head() -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .expect("git runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn check_migrations(env: &TestEnv) -> (i32, String) {
    let out = env
        .command("bangerd")
        .arg("--check-migrations")
        .output()
        .expect("bangerd runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Starts `bangerd` and waits (bounded) until its socket exists.
fn start_daemon(env: &TestEnv) -> Child {
    let mut child = env
        .command("bangerd")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bangerd starts");
    let socket = env.layout().socket();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("bangerd exited early: {status}");
        }
        assert!(Instant::now() < deadline, "bangerd never bound {socket:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "bangerd ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn version_line_names_the_real_commit() {
    let out = Command::new(banger_testkit::bin_path("bangerd"))
        .arg("--version")
        .output()
        .expect("bangerd runs");
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let head = git_head();
    let expected_prefix = format!(
        "bangerd {} (commit {}, built ",
        env!("BANGER_VERSION"),
        &head[..8]
    );
    assert!(
        line.starts_with(&expected_prefix),
        "{line} vs {expected_prefix}"
    );
    assert!(line.ends_with("Z)"), "{line}");
}

#[test]
fn check_migrations_follows_the_0_1_2_contract() {
    let env = TestEnv::new().expect("env");
    let _guard = DaemonGuard::new(&env);

    let (code, line) = check_migrations(&env);
    assert_eq!(code, 1, "{line}");
    assert!(line.starts_with("migrations needed"), "{line}");
    assert!(env.files().is_empty(), "created {:?}", env.files());

    let mut daemon = start_daemon(&env);
    let status = terminate(&mut daemon);
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(!env.layout().socket().exists(), "socket removed on exit");

    let before = env.files();
    let (code, line) = check_migrations(&env);
    assert_eq!(code, 0, "{line}");
    assert!(line.starts_with("compatible"), "{line}");
    assert_eq!(env.files(), before, "check created or removed files");

    let db = rusqlite::Connection::open(env.layout().db_file()).expect("open db");
    db.execute(
        "INSERT INTO schema_migrations (id, name, applied_at) VALUES (99, 'from_the_future', '2030-01-01T00:00:00Z')",
        [],
    )
    .expect("insert");
    drop(db);
    let (code, line) = check_migrations(&env);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("99"), "{line}");

    // A store from a newer banger (as after a rolled-back update) is still served: the
    // unknown row stays, and this binary's own tables work.
    let mut daemon = start_daemon(&env);
    let (status, body) = get(&env, "/v1/vms");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.trim(), "[]");
    assert!(terminate(&mut daemon).success());
    let db = rusqlite::Connection::open(env.layout().db_file()).expect("open db");
    let name: String = db
        .query_row(
            "SELECT name FROM schema_migrations WHERE id = 99",
            [],
            |r| r.get(0),
        )
        .expect("row 99 is still there");
    assert_eq!(name, "from_the_future");
    drop(db);
    let (code, line) = check_migrations(&env);
    assert_eq!(
        code, 2,
        "an upgrade check still calls it incompatible: {line}"
    );
}

/// One `GET` over the daemon's socket: (status, body).
fn get(env: &TestEnv, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream =
        std::os::unix::net::UnixStream::connect(env.layout().socket()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn corrupt_store_fails_cleanly_and_is_left_untouched() {
    let env = TestEnv::new().expect("env");
    let _guard = DaemonGuard::new(&env);
    let db = env.layout().db_file();
    std::fs::create_dir_all(db.parent().expect("parent")).expect("state dir");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 37 % 251) as u8).collect();
    std::fs::write(&db, &garbage).expect("write garbage");

    let (code, line) = check_migrations(&env);
    assert_eq!(code, 2, "{line}");
    let out = env.command("bangerd").output().expect("bangerd runs");
    assert!(!out.status.success(), "daemon must refuse a corrupt store");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("state.db"), "{err}");
    assert_eq!(std::fs::read(&db).expect("read"), garbage, "bytes changed");
    let leftovers: Vec<_> = env
        .files()
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("state.db-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn only_one_daemon_per_layout() {
    let env = TestEnv::new().expect("env");
    let _guard = DaemonGuard::new(&env);
    let mut first = start_daemon(&env);
    let out = env.command("bangerd").output().expect("bangerd runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains(&first.id().to_string()), "{err}");
    assert!(
        env.layout().socket().exists(),
        "the loser must not remove the socket"
    );
    assert!(terminate(&mut first).success());
}

#[test]
fn relative_xdg_paths_are_refused() {
    let env = TestEnv::new().expect("env");
    let out = env
        .command("bangerd")
        .arg("--check-migrations")
        .env("XDG_STATE_HOME", "relative/state")
        .output()
        .expect("bangerd runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("XDG_STATE_HOME"));
    let out = env
        .command("bangerd")
        .env("XDG_STATE_HOME", "relative/state")
        .output()
        .expect("bangerd runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("XDG_STATE_HOME"));
    assert!(env.files().is_empty());
}

#[test]
fn a_loose_state_dir_is_made_private_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new().expect("env");
    let _guard = DaemonGuard::new(&env);
    let state = env.layout().state_dir;
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut daemon = start_daemon(&env);
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&env.layout().db_file()), 0o600);
    assert_eq!(mode(&env.layout().runtime_dir), 0o700);
    assert!(terminate(&mut daemon).success());
}
