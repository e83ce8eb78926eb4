//! The virtio-serial transport (QEMU).
//!
//! QEMU exposes a `virtserialport` named `banger.agent` whose host end is a Unix socket of the
//! daemon. In the guest it is a character device: `/dev/virtio-ports/banger.agent` when udev
//! runs, otherwise only `/dev/vportNpM`, found by scanning `/sys/class/virtio-ports/*/name`.
//!
//! The port is **one** long-lived stream. While no host client is connected, reads return 0
//! (end of file) at once, and the host may connect, disconnect and reconnect at any time. So the
//! loop here treats end of file and I/O errors alike: drop any half-read request, sleep with
//! backoff (capped at [`MAX_IDLE_SLEEP`]) and reopen. It never exits once the port was found.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use banger_guest::agent::{VIRTIO_PORT_LINK, VIRTIO_PORT_NAME};

use crate::api::{self, Api, StreamEnd};
use crate::backoff::Backoff;
use crate::log;

/// Longest sleep between reopen attempts while the host is not connected; bounds the latency
/// between the host connecting and the agent noticing.
pub const MAX_IDLE_SLEEP: Duration = Duration::from_millis(250);

/// How many times to look for the port (with backoff) before giving up: about 30 s.
const PORT_CHECKS: u32 = 35;

/// Finds the port called `name`: the udev link `link` if it exists, else the `vport*` device in
/// `dev_dir` whose `sys_class/<dev>/name` is `name`.
pub fn find_port(link: &Path, sys_class: &Path, dev_dir: &Path, name: &str) -> Option<PathBuf> {
    if link.exists() {
        return Some(link.to_path_buf());
    }
    let mut found: Vec<String> = std::fs::read_dir(sys_class)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| std::fs::read_to_string(e.path().join("name")).is_ok_and(|n| n.trim() == name))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    found.sort();
    found.into_iter().next().map(|dev| dev_dir.join(dev))
}

/// Finds the agent port on this guest.
pub fn locate() -> Option<PathBuf> {
    find_port(
        Path::new(VIRTIO_PORT_LINK),
        Path::new("/sys/class/virtio-ports"),
        Path::new("/dev"),
        VIRTIO_PORT_NAME,
    )
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC)
        .open(path)
}

/// Finds the port (bounded wait) and serves it for the life of the agent.
pub fn run(api: Arc<Api>) {
    let mut wait = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    let mut checks = 0;
    let path = loop {
        if let Some(p) = locate() {
            break p;
        }
        checks += 1;
        if checks >= PORT_CHECKS {
            log!(
                "no virtio-serial port {}; virtio-serial transport disabled",
                VIRTIO_PORT_NAME
            );
            return;
        }
        std::thread::sleep(wait.next_delay());
    };
    log!("api serving virtio-serial port {}", path.display());
    serve_forever(&api, &path);
}

fn serve_forever(api: &Api, path: &Path) {
    let mut idle = Backoff::new(Duration::from_millis(20), MAX_IDLE_SLEEP);
    let mut open_fail = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut last_error: Option<String> = None;
    loop {
        let file = match open(path) {
            Ok(f) => {
                open_fail.reset();
                f
            }
            Err(e) => {
                let msg = format!("cannot open {}: {e}", path.display());
                if last_error.as_deref() != Some(msg.as_str()) {
                    log!("{msg}; retrying");
                    last_error = Some(msg);
                }
                std::thread::sleep(open_fail.next_delay());
                continue;
            }
        };
        let served = api::serve(api, &file, &file, false);
        drop(file);
        if served.answered > 0 {
            idle.reset();
        }
        match served.end {
            StreamEnd::Eof | StreamEnd::Closed => {}
            StreamEnd::Io(e) => {
                let msg = format!("virtio-serial i/o error: {e}");
                if last_error.as_deref() != Some(msg.as_str()) {
                    log!("{msg}; reopening");
                    last_error = Some(msg);
                }
            }
        }
        std::thread::sleep(idle.next_delay());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_port_by_sysfs_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sys = dir.path().join("sys");
        for (dev, name) in [
            ("vport0p0", "org.qemu.guest_agent.0"),
            ("vport0p1", "banger.agent"),
        ] {
            std::fs::create_dir_all(sys.join(dev)).expect("mkdir");
            std::fs::write(sys.join(dev).join("name"), format!("{name}\n")).expect("write");
        }
        let link = dir.path().join("virtio-ports/banger.agent");
        assert_eq!(
            find_port(&link, &sys, Path::new("/dev"), "banger.agent"),
            Some(PathBuf::from("/dev/vport0p1"))
        );
        assert_eq!(find_port(&link, &sys, Path::new("/dev"), "other"), None);
        assert_eq!(
            find_port(
                &link,
                &dir.path().join("missing"),
                Path::new("/dev"),
                "banger.agent"
            ),
            None
        );
        std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
        std::fs::write(&link, "").expect("link");
        assert_eq!(find_port(&link, &sys, Path::new("/dev"), "x"), Some(link));
    }
}
