//! A running VM's transient handles: in memory, and in `<vm dir>/handles.json`.
//!
//! The store keeps intent; this file keeps what only exists while the VM runs (the VMM's pid
//! and sockets). It is written right after boot and removed after teardown, so a daemon that
//! restarts finds every running VM's process again, and a daemon that crashed mid-teardown
//! finds what is left to release. Writes go through a temp file and a rename, so a crash never
//! leaves half a file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use banger_vmm::VmmHandle;

/// File name inside the VM directory.
pub const FILE: &str = "handles.json";

/// What a running VM holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmHandles {
    /// The VMM process.
    pub vmm: VmmHandle,
    /// The TAP it uses.
    pub tap: Option<String>,
}

/// `<dir>/handles.json`.
pub fn path(vm_dir: &Path) -> PathBuf {
    vm_dir.join(FILE)
}

/// Reads the handles, if the file exists and parses.
pub fn load(vm_dir: &Path) -> Option<VmHandles> {
    let text = std::fs::read_to_string(path(vm_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes the handles atomically.
pub fn save(vm_dir: &Path, handles: &VmHandles) -> std::io::Result<()> {
    let tmp = vm_dir.join(format!("{FILE}.tmp"));
    let json = serde_json::to_vec_pretty(handles).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path(vm_dir))
}

/// Removes the handles file; a missing file is fine.
pub fn clear(vm_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path(vm_dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_vmm::{AgentEndpoint, VmmKind};

    #[test]
    fn round_trips_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_none());
        let h = VmHandles {
            vmm: VmmHandle {
                kind: VmmKind::Qemu,
                pid: 42,
                tag: "banger-x".into(),
                control_socket: "/x/qmp.sock".into(),
                agent: AgentEndpoint::Serial {
                    path: "/x/agent.sock".into(),
                },
                console_log: "/x/console.log".into(),
            },
            tap: Some("bgr-x".into()),
        };
        save(dir.path(), &h).unwrap();
        assert_eq!(load(dir.path()), Some(h));
        clear(dir.path()).unwrap();
        clear(dir.path()).unwrap();
        assert!(load(dir.path()).is_none());
    }
}
