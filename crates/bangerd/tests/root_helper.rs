//! The real `bangerd root-helper`: who may start it, its socket, and a clean stop.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bangerd() -> Command {
    Command::new(banger_testkit::bin_path("bangerd"))
}

#[test]
#[ignore = "needs root: starts the helper and runs it as another uid"]
fn the_helper_starts_only_as_root_for_a_real_owner_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("root/helper.sock");

    let out = bangerd()
        .args(["root-helper", "--owner", "4242"])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must run as root"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (owner, says) in [("no-such-user-x", "no user named"), ("0", "not root")] {
        let out = bangerd()
            .args(["root-helper", "--owner", owner, "--socket"])
            .arg(&socket)
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{owner}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{owner}: {stderr}");
    }
    assert!(!socket.exists(), "a refused start made no socket");

    let child = bangerd()
        .args(["root-helper", "--owner", "4242", "--socket"])
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let meta = std::fs::metadata(&socket).expect("socket made");
    assert_eq!(meta.uid(), 4242, "the socket belongs to the owner");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let dir_meta = std::fs::metadata(dir.path().join("root")).expect("dir");
    assert_eq!(dir_meta.uid(), 0);
    assert_eq!(dir_meta.permissions().mode() & 0o777, 0o755);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("sigterm");
    let out = child.wait_with_output().expect("exits");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("root helper started"), "{log}");
    assert!(!socket.exists(), "the socket is removed at stop");
}
