//! Warm snapshots on QEMU: save a paused guest, start new guests from it instead of booting.
//!
//! The recipe is VM templating: the guest's RAM lives in a file (`memory-backend-file`).
//! The VM that is snapshotted maps it shared, so the file *is* its memory; saving is then
//! only the device state (`migrate` to a file with the `x-ignore-shared` capability, a few
//! dozen KiB, well under a second). A restored VM maps the same file **private**
//! (`share=off`): it reads the snapshot's pages through the page cache, which every clone
//! shares, and its own writes are copy-on-write in anonymous memory, so the snapshot never
//! changes and N clones cost far less than N copies of the RAM. It starts with
//! `-incoming defer`, gets the capability, loads the state with `migrate-incoming`, then `cont`.
//!
//! QEMU 7.2 (Debian 12) has no `file:` migration URI, so the stream goes through
//! `exec:cat`, with paths checked to hold nothing a shell would read specially.
//!
//! Disks are not part of the state: the caller copies them while the guest is paused and gives
//! each restored VM its own copy at the same device positions.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::qmp::{self, QmpError};

/// The QEMU object id of the file-backed RAM.
const MEMORY_ID: &str = "ram0";
/// One QMP exchange.
const QMP_STEP: Duration = Duration::from_secs(10);
/// How often migration status is polled.
const POLL: Duration = Duration::from_millis(20);

/// Where a VM's RAM comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Memory {
    /// Anonymous memory: an ordinary boot.
    #[default]
    Anonymous,
    /// RAM in `path`, mapped shared: the VM can be saved as a snapshot.
    Snapshottable {
        /// The RAM file (created or truncated to the VM's memory size by QEMU).
        path: PathBuf,
    },
    /// Restore from `snapshot`: its RAM file mapped private, its device state loaded.
    Restore(Snapshot),
}

/// The files of a saved guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Guest RAM (as many bytes as the VM's memory).
    pub memory: PathBuf,
    /// Device state (the migration stream).
    pub state: PathBuf,
}

/// Why a snapshot could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A QMP exchange failed.
    #[error("qmp {command}: {source}")]
    Qmp {
        /// The command.
        command: &'static str,
        /// Why.
        #[source]
        source: QmpError,
    },
    /// The migration ended in a state other than `completed`.
    #[error("the migration {verb} ended as {status}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Migration {
        /// `save` or `load`.
        verb: &'static str,
        /// The final status.
        status: String,
        /// QEMU's error description.
        detail: Option<String>,
    },
    /// The migration did not finish in time.
    #[error("the migration {verb} did not finish within {waited:?}")]
    Timeout {
        /// `save` or `load`.
        verb: &'static str,
        /// How long it ran.
        waited: Duration,
    },
    /// A path that cannot go into an `exec:` migration URI.
    #[error("snapshot path {} cannot be used: it holds characters a shell would interpret", .0.display())]
    UnsafePath(PathBuf),
}

/// The machine-option suffix and extra arguments for `memory` on a VM of `memory_mib`.
pub fn memory_args(memory: &Memory, memory_mib: u64) -> (Option<String>, Vec<OsString>) {
    let (path, share) = match memory {
        Memory::Anonymous => return (None, Vec::new()),
        Memory::Snapshottable { path } => (path, "on"),
        Memory::Restore(snapshot) => (&snapshot.memory, "off"),
    };
    let mut args: Vec<OsString> = vec![
        "-object".into(),
        format!(
            "memory-backend-file,id={MEMORY_ID},size={memory_mib}M,mem-path={},share={share}",
            path.display()
        )
        .into(),
    ];
    if matches!(memory, Memory::Restore(_)) {
        args.push("-incoming".into());
        args.push("defer".into());
    }
    (Some(format!("memory-backend={MEMORY_ID}")), args)
}

/// A path is safe inside `exec:cat PATH` when it is absolute and plain.
fn shell_safe(path: &Path) -> Result<String, SnapshotError> {
    let text = path.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+".contains(c);
    if path.is_absolute() && text.chars().all(plain) {
        Ok(text.into_owned())
    } else {
        Err(SnapshotError::UnsafePath(path.to_owned()))
    }
}

async fn run(
    qmp_socket: &Path,
    command: &'static str,
    args: Option<Value>,
) -> Result<Value, SnapshotError> {
    qmp::execute(qmp_socket, command, args, QMP_STEP)
        .await
        .map_err(|source| SnapshotError::Qmp { command, source })
}

async fn ignore_shared(qmp_socket: &Path) -> Result<(), SnapshotError> {
    let caps = json!({"capabilities": [{"capability": "x-ignore-shared", "state": true}]});
    run(qmp_socket, "migrate-set-capabilities", Some(caps))
        .await
        .map(drop)
}

/// Waits until the migration on `qmp_socket` leaves its active states.
async fn wait_migration(
    qmp_socket: &Path,
    verb: &'static str,
    limit: Duration,
) -> Result<(), SnapshotError> {
    let start = Instant::now();
    loop {
        let status = run(qmp_socket, "query-migrate", None).await?;
        match status["status"].as_str().unwrap_or("none") {
            "completed" => return Ok(()),
            "setup" | "active" | "device" | "pre-switchover" | "wait-unplug" => {}
            // `none` before an incoming migration has been noticed.
            "none" if verb == "load" => {}
            other => {
                return Err(SnapshotError::Migration {
                    verb,
                    status: other.to_owned(),
                    detail: status["error-desc"].as_str().map(str::to_owned),
                });
            }
        }
        if start.elapsed() > limit {
            return Err(SnapshotError::Timeout {
                verb,
                waited: start.elapsed(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Pauses the VM on `qmp_socket` (started with [`Memory::Snapshottable`]) and writes its
/// device state to `state`. The VM stays paused: copy its disks now, then resume it
/// (`cont`) or stop it. Returns how long the save took.
pub async fn save(
    qmp_socket: &Path,
    state: &Path,
    limit: Duration,
) -> Result<Duration, SnapshotError> {
    let start = Instant::now();
    let target = shell_safe(state)?;
    ignore_shared(qmp_socket).await?;
    run(qmp_socket, "stop", None).await?;
    let uri = json!({"uri": format!("exec:cat > {target}")});
    run(qmp_socket, "migrate", Some(uri)).await?;
    wait_migration(qmp_socket, "save", limit).await?;
    Ok(start.elapsed())
}

/// Resumes a paused VM.
pub async fn resume(qmp_socket: &Path) -> Result<(), SnapshotError> {
    run(qmp_socket, "cont", None).await.map(drop)
}

/// Loads `snapshot`'s device state into the VM on `qmp_socket` (started with
/// [`Memory::Restore`]) and lets it run. Returns how long the load took.
pub async fn load(
    qmp_socket: &Path,
    snapshot: &Snapshot,
    limit: Duration,
) -> Result<Duration, SnapshotError> {
    let start = Instant::now();
    let source = shell_safe(&snapshot.state)?;
    ignore_shared(qmp_socket).await?;
    let uri = json!({"uri": format!("exec:cat {source}")});
    run(qmp_socket, "migrate-incoming", Some(uri)).await?;
    wait_migration(qmp_socket, "load", limit).await?;
    resume(qmp_socket).await?;
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn anonymous_memory_adds_nothing() {
        assert_eq!(memory_args(&Memory::Anonymous, 512), (None, Vec::new()));
    }

    #[test]
    fn a_snapshottable_vm_maps_its_ram_file_shared() {
        let memory = Memory::Snapshottable {
            path: "/s/ram".into(),
        };
        let (machine, args) = memory_args(&memory, 512);
        assert_eq!(machine.as_deref(), Some("memory-backend=ram0"));
        assert_eq!(
            strings(&args),
            [
                "-object",
                "memory-backend-file,id=ram0,size=512M,mem-path=/s/ram,share=on"
            ]
        );
    }

    #[test]
    fn a_restore_maps_the_snapshot_private_and_waits_for_its_state() {
        let memory = Memory::Restore(Snapshot {
            memory: "/s/ram".into(),
            state: "/s/state".into(),
        });
        let (machine, args) = memory_args(&memory, 1024);
        assert_eq!(machine.as_deref(), Some("memory-backend=ram0"));
        assert_eq!(
            strings(&args),
            [
                "-object",
                "memory-backend-file,id=ram0,size=1024M,mem-path=/s/ram,share=off",
                "-incoming",
                "defer"
            ]
        );
    }

    #[test]
    fn only_plain_absolute_paths_reach_the_shell() {
        assert_eq!(
            shell_safe(Path::new("/var/lib/banger/snap-1/state.bin"))
                .ok()
                .as_deref(),
            Some("/var/lib/banger/snap-1/state.bin")
        );
        for bad in ["state", "/a b", "/a;rm", "/a$(x)", "/a'b", "/a\nb", "/a>b"] {
            assert!(
                matches!(
                    shell_safe(Path::new(bad)),
                    Err(SnapshotError::UnsafePath(_))
                ),
                "{bad:?}"
            );
        }
    }
}
