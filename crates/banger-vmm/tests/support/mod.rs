//! Helpers shared by the tests that run the Firecracker backend against `fake-firecracker`:
//! a VM spec whose files exist, the backend, process lookups, the fake's API log and one raw
//! request to the agent over the hybrid vsock.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::time::Duration;

use banger_vmm::firecracker::FirecrackerVmm;
use banger_vmm::firecracker::vsock;
use banger_vmm::process::is_our_process;
use banger_vmm::{AgentEndpoint, DiskSpec, LaunchSpec, NetSpec, VmmHandle};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const BOUND: Duration = Duration::from_secs(10);

/// The fake's path, built once per test binary.
pub fn fake_bin() -> &'static Path {
    banger_testkit::fake_firecracker_bins().0
}

/// The fake jailer, built with the fake Firecracker.
pub fn jailer_bin() -> PathBuf {
    banger_testkit::fake_firecracker_bins().1.to_path_buf()
}

/// A unique VM id per test (16 hex digits, like the daemon's).
pub fn vm_id(salt: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{:08x}{:04x}{:04x}",
        nanos,
        std::process::id() & 0xffff,
        salt & 0xffff
    )
}

pub struct Vm {
    pub dir: tempfile::TempDir,
    pub spec: LaunchSpec,
}

impl Vm {
    /// A spec whose kernel, initrd and disks exist.
    pub fn new(salt: u64) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("fcb")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let file = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"not really an image").expect("write");
            path
        };
        let spec = LaunchSpec {
            vm_id: vm_id(salt),
            vcpu: 2,
            memory_mib: 256,
            kernel: file("vmlinux"),
            initrd: Some(file("initrd.img")),
            cmdline: "console=ttyS0 reboot=k panic=1 root=/dev/vda rw".to_owned(),
            disks: vec![
                DiskSpec {
                    path: file("rootfs.ext4"),
                    read_only: false,
                },
                DiskSpec {
                    path: file("work.ext4"),
                    read_only: false,
                },
            ],
            net: Some(NetSpec {
                tap: "bgr-test0".to_owned(),
                mac: "06:00:0a:00:00:02".to_owned(),
            }),
            run_dir: dir.path().join("vm"),
        };
        Self { dir, spec }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn vmm() -> FirecrackerVmm {
    FirecrackerVmm::new(fake_bin()).with_socket_link_base(None)
}

/// Kills the VM's process when a test ends, passing or not.
pub struct Reap(pub VmmHandle);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = banger_vmm::process::kill(self.0.pid, &self.0.tag);
    }
}

/// Every process whose command line carries `tag`.
pub fn processes_tagged(tag: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| is_our_process(*pid, tag))
        .collect()
}

pub fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// The API requests the fake logged, as (method, path, status, body).
pub fn api_log(console_log: &Path) -> Vec<Value> {
    std::fs::read_to_string(console_log)
        .expect("console log")
        .lines()
        .filter_map(|l| l.strip_prefix("fake-firecracker: api "))
        .map(|l| serde_json::from_str(l).expect("api log line is json"))
        .collect()
}

/// The handle's API and vsock sockets are the ones in `run` (its run directory).
pub fn assert_sockets_in(handle: &VmmHandle, run: &Path) {
    assert_eq!(handle.control_socket, run.join("fc.sock"));
    assert_eq!(
        handle.agent,
        AgentEndpoint::Vsock {
            path: run.join("vsock.sock"),
            port: 52
        }
    );
}

/// The body of the first call on `path` in an [`api_log`] (panics naming the log if none).
pub fn call_body(calls: &[Value], path: &str) -> Value {
    calls
        .iter()
        .find(|c| c["path"] == path)
        .map(|c| c["body"].clone())
        .unwrap_or_else(|| panic!("no {path} call in {calls:?}"))
}

/// One raw HTTP/1.1 request to the agent through the hybrid vsock: (status, JSON body).
pub async fn agent_call(handle: &VmmHandle, method: &str, path: &str) -> (u16, Value) {
    let AgentEndpoint::Vsock { path: uds, port } = &handle.agent else {
        panic!("firecracker agents are on vsock: {:?}", handle.agent);
    };
    let mut conn = vsock::connect(uds, *port, BOUND)
        .await
        .expect("vsock connect")
        .stream;
    conn.write_all(
        format!("{method} {path} HTTP/1.1\r\nHost: agent\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    )
    .await
    .expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 1024];
        loop {
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
            let n = conn.read(&mut chunk).await.expect("read");
            assert!(n > 0, "agent closed early: {text:?}");
            answer.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("agent answers in time");
    let text = String::from_utf8(answer).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("head");
    let status = head[9..12].parse().expect("status");
    (status, serde_json::from_str(body).expect("json body"))
}
