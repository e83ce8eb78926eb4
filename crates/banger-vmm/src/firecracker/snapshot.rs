//! Warm snapshots on Firecracker ([`WarmSnapshots`] for [`FirecrackerVmm`]), through its
//! snapshot API: `PATCH /vm` to pause and resume, `PUT /snapshot/create` (`Full`) to write the
//! state and memory files, `PUT /snapshot/load` on a fresh process to start from them.
//!
//! **What a snapshot records, and how a restored VM still gets its own resources.** Firecracker
//! writes the device state with the host paths the VM was configured with: each drive's
//! `path_on_host`, the TAP name, the vsock `uds_path`. The load API can override the TAP
//! (`network_overrides`, Firecracker 1.12+) and the vsock path (`vsock_override`, 1.16+), but
//! not the drives: a restored process opens exactly the drive paths of the saved VM. Its
//! documentation asks that these resources be "accessible at the same relative paths", and
//! that is what banger does:
//!
//! - a VM that may be saved ([`WarmSnapshots::launch_saveable`]) runs with its run directory
//!   as the working directory, its drives given as `fc-disks/<drive id>` (symlinks in the run
//!   directory to the spec's disk files) and its vsock as `vsock.sock`, all **relative**;
//! - a restore starts a fresh process in the *restored* VM's run directory with the same
//!   symlinks pointing at *its* disks (copies of the snapshot's, at the same positions), so
//!   the recorded relative paths open that VM's own files and bind its own vsock socket; no
//!   vsock override is needed, so this works from Firecracker 1.12 on;
//! - its TAP is the spec's, by `network_overrides` on `eth0`; its MAC is the saved VM's (the
//!   API has no MAC override), which the daemon changes through the agent after restore;
//! - the memory file is mapped (`File` backend), so it must never change while restored VMs
//!   run: [`WarmSnapshots::save`] refuses to write over existing files.
//!
//! A restore sends only the logger, the metrics and the load (`resume_vm: true`): no boot
//! source, machine config or drives, as the API requires. When a load fails Firecracker exits;
//! the backend kills the process anyway, so a failed restore leaves none.
//!
//! **Jailed Firecracker** ([`super::JailConfig`]): [`crate::Vmm::warm`] returns `None` and the
//! daemon boots cold. Inside the jail the same relative layout would work, but the snapshot
//! files would have to be staged into each VM's chroot and the created ones moved out of it by
//! the privileged [`super::JailRunner`], which has no such operation yet.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use banger_util::chain;

use super::api::{
    MemBackend, MemBackendType, NetworkOverride, SnapshotCreate, SnapshotLoad, SnapshotType,
};
use super::backend::{
    API_CALL_TIMEOUT, FirecrackerFiles, FirecrackerVmm, KIND, SNAPSHOT_CALL_TIMEOUT, Start,
    drive_id, vm_config,
};
use super::client::{FirecrackerApiError, FirecrackerClient};
use super::config::ApiCall;
use super::short_path::VSOCK_SOCKET;
use crate::launch::{BoxFuture, LaunchSpec, VmmError, VmmHandle};
use crate::warm::{Snapshot, WarmSnapshots};

/// The directory in a VM's run directory whose symlinks name its disks to Firecracker.
pub const DISK_LINKS: &str = "fc-disks";

/// The run-directory-relative path Firecracker is given for disk `index`.
pub fn disk_link(index: usize) -> PathBuf {
    Path::new(DISK_LINKS).join(drive_id(index))
}

/// The boot plan of a VM that can be saved: as an ordinary launch, but with drives and vsock
/// relative to the run directory (the process's working directory).
pub(super) fn saveable_plan(
    spec: &LaunchSpec,
    files: &FirecrackerFiles,
) -> Result<Vec<ApiCall>, VmmError> {
    let mut config = vm_config(spec, files, Path::new(VSOCK_SOCKET))?;
    for (i, drive) in config.drives.iter_mut().enumerate() {
        drive.path_on_host = disk_link(i);
    }
    config
        .plan()
        .map_err(|e| VmmError::InvalidSpec(e.to_string()))
}

/// The restore plan: logger, metrics, then the load with `spec`'s TAP. Refuses a spec whose
/// disks or snapshot files are missing before any process exists.
pub(super) fn restore_plan(
    spec: &LaunchSpec,
    files: &FirecrackerFiles,
    snapshot: &Snapshot,
) -> Result<Vec<ApiCall>, VmmError> {
    let config = vm_config(spec, files, Path::new(VSOCK_SOCKET))?;
    for disk in &spec.disks {
        if !disk.path.exists() {
            return Err(VmmError::InvalidSpec(format!(
                "disk {} of the restored vm does not exist; copy the snapshot's disks first",
                disk.path.display()
            )));
        }
    }
    let absolute = |path: &Path| {
        if !path.is_file() {
            return Err(VmmError::InvalidSpec(format!(
                "snapshot file {} does not exist",
                path.display()
            )));
        }
        std::path::absolute(path).map_err(VmmError::io(format!("resolve {}", path.display())))
    };
    let load = SnapshotLoad {
        snapshot_path: absolute(&snapshot.state)?,
        mem_backend: MemBackend {
            backend_type: MemBackendType::File,
            backend_path: absolute(&snapshot.memory)?,
        },
        resume_vm: true,
        network_overrides: config
            .network_interfaces
            .iter()
            .map(|iface| NetworkOverride {
                iface_id: iface.iface_id.clone(),
                host_dev_name: iface.host_dev_name.clone(),
            })
            .collect(),
        vsock_override: None,
    };
    let mut plan = Vec::new();
    plan.extend(config.logger.map(ApiCall::PutLogger));
    plan.extend(config.metrics.map(ApiCall::PutMetrics));
    plan.push(ApiCall::LoadSnapshot(load));
    Ok(plan)
}

/// Makes `<run_dir>/fc-disks/<drive id>` point at `spec`'s disks, replacing earlier links.
pub(super) fn link_disks(run_dir: &Path, spec: &LaunchSpec) -> Result<(), VmmError> {
    let dir = run_dir.join(DISK_LINKS);
    std::fs::create_dir_all(&dir).map_err(VmmError::io(format!("create {}", dir.display())))?;
    let entries =
        std::fs::read_dir(&dir).map_err(VmmError::io(format!("read {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(VmmError::io(format!("read {}", dir.display())))?;
        let path = entry.path();
        if path.is_symlink() {
            std::fs::remove_file(&path)
                .map_err(VmmError::io(format!("remove {}", path.display())))?;
        }
    }
    for (i, disk) in spec.disks.iter().enumerate() {
        let target = std::path::absolute(&disk.path)
            .map_err(VmmError::io(format!("resolve {}", disk.path.display())))?;
        let link = run_dir.join(disk_link(i));
        std::os::unix::fs::symlink(&target, &link).map_err(VmmError::io(format!(
            "link {} to {}",
            link.display(),
            target.display()
        )))?;
    }
    Ok(())
}

fn control(handle: &VmmHandle, what: &str, e: &FirecrackerApiError) -> VmmError {
    VmmError::Control {
        kind: KIND,
        socket: handle.control_socket.clone(),
        message: format!("{what}: {}", chain(e)),
    }
}

impl FirecrackerVmm {
    /// [`FirecrackerVmm::start`], refused for a jailed backend (see the module docs).
    async fn start_unjailed(
        &self,
        spec: &LaunchSpec,
        how: Start<'_>,
    ) -> Result<VmmHandle, VmmError> {
        if self.jail().is_some() || self.jailer_bin().is_some() {
            return Err(VmmError::Unavailable {
                reason: "warm snapshots are not available for jailed firecracker; boot cold"
                    .to_owned(),
            });
        }
        self.start(spec, how).await
    }

    async fn save_snapshot(
        &self,
        handle: &VmmHandle,
        into: &Snapshot,
    ) -> Result<Duration, VmmError> {
        let mut paths = Vec::new();
        for path in [&into.state, &into.memory] {
            if path.exists() {
                return Err(VmmError::InvalidSpec(format!(
                    "snapshot file {} already exists; a snapshot is never written over (restored \
                     vms map its memory)",
                    path.display()
                )));
            }
            paths.push(
                std::path::absolute(path)
                    .map_err(VmmError::io(format!("resolve {}", path.display())))?,
            );
        }
        let client = FirecrackerClient::new(&handle.control_socket).with_timeout(API_CALL_TIMEOUT);
        let started = Instant::now();
        client
            .pause()
            .await
            .map_err(|e| control(handle, "pause", &e))?;
        let params = SnapshotCreate {
            snapshot_type: Some(SnapshotType::Full),
            snapshot_path: paths[0].clone(),
            mem_file_path: paths[1].clone(),
        };
        let created = client
            .clone()
            .with_timeout(SNAPSHOT_CALL_TIMEOUT)
            .create_snapshot(&params)
            .await;
        if let Err(e) = created {
            // Leave nothing half-written, and the guest running as before the save.
            for path in &paths {
                let _ = std::fs::remove_file(path);
            }
            let _ = client.resume().await;
            return Err(control(handle, "create snapshot", &e));
        }
        Ok(started.elapsed())
    }
}

impl WarmSnapshots for FirecrackerVmm {
    fn binary(&self) -> &Path {
        self.firecracker_bin()
    }

    /// Firecracker keeps guest RAM anonymous and writes it out at `PUT /snapshot/create`, so
    /// `ram` is not used.
    fn launch_saveable<'a>(
        &'a self,
        spec: &'a LaunchSpec,
        _ram: &'a Path,
    ) -> BoxFuture<'a, Result<VmmHandle, VmmError>> {
        Box::pin(self.start_unjailed(spec, Start::Saveable))
    }

    fn save<'a>(
        &'a self,
        handle: &'a VmmHandle,
        _ram: &'a Path,
        into: &'a Snapshot,
    ) -> BoxFuture<'a, Result<Duration, VmmError>> {
        Box::pin(self.save_snapshot(handle, into))
    }

    fn resume<'a>(&'a self, handle: &'a VmmHandle) -> BoxFuture<'a, Result<(), VmmError>> {
        Box::pin(async move {
            FirecrackerClient::new(&handle.control_socket)
                .with_timeout(API_CALL_TIMEOUT)
                .resume()
                .await
                .map_err(|e| control(handle, "resume", &e))
        })
    }

    fn restore<'a>(
        &'a self,
        spec: &'a LaunchSpec,
        snapshot: &'a Snapshot,
    ) -> BoxFuture<'a, Result<VmmHandle, VmmError>> {
        Box::pin(self.start_unjailed(spec, Start::Restore(snapshot)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::{DiskSpec, NetSpec};
    use serde_json::json;

    fn spec(dir: &Path) -> LaunchSpec {
        let disk = |name: &str| {
            let path = dir.join(name);
            std::fs::write(&path, b"disk").expect("write");
            DiskSpec {
                path,
                read_only: false,
            }
        };
        LaunchSpec {
            vm_id: "0123456789abcdef".to_owned(),
            vcpu: 1,
            memory_mib: 128,
            kernel: "/k/vmlinux".into(),
            initrd: None,
            cmdline: "console=ttyS0".to_owned(),
            disks: vec![disk("rootfs.ext4"), disk("work.ext4")],
            net: Some(NetSpec {
                tap: "bgr-r1".to_owned(),
                mac: "06:00:0a:00:00:09".to_owned(),
            }),
            run_dir: dir.join("vm"),
        }
    }

    #[test]
    fn a_saveable_vm_names_its_disks_and_vsock_relative_to_its_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = spec(dir.path());
        let files = FirecrackerFiles::in_dir(&s.run_dir);
        let plan = saveable_plan(&s, &files).expect("plan");
        let bodies: Vec<(String, serde_json::Value)> = plan
            .iter()
            .filter(|c| c.path().starts_with("/drives") || c.path() == "/vsock")
            .map(|c| (c.path(), serde_json::to_value(c).expect("json")))
            .collect();
        assert_eq!(
            bodies,
            vec![
                (
                    "/drives/rootfs".to_owned(),
                    json!({"drive_id": "rootfs", "path_on_host": "fc-disks/rootfs",
                           "is_root_device": true, "is_read_only": false})
                ),
                (
                    "/drives/disk1".to_owned(),
                    json!({"drive_id": "disk1", "path_on_host": "fc-disks/disk1",
                           "is_root_device": false, "is_read_only": false})
                ),
                (
                    "/vsock".to_owned(),
                    json!({"guest_cid": 3, "uds_path": "vsock.sock"})
                ),
            ]
        );
    }

    #[test]
    fn a_restore_loads_with_its_own_tap_and_configures_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = spec(dir.path());
        let snapshot = Snapshot {
            memory: dir.path().join("mem"),
            state: dir.path().join("state"),
        };
        let files = FirecrackerFiles::in_dir(&s.run_dir);
        let missing = restore_plan(&s, &files, &snapshot).expect_err("no snapshot files yet");
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        std::fs::write(&snapshot.memory, b"m").expect("write");
        std::fs::write(&snapshot.state, b"s").expect("write");
        let plan = restore_plan(&s, &files, &snapshot).expect("plan");
        let paths: Vec<String> = plan.iter().map(ApiCall::path).collect();
        assert_eq!(paths, ["/logger", "/metrics", "/snapshot/load"]);
        assert_eq!(
            serde_json::to_value(&plan[2]).expect("json"),
            json!({
                "snapshot_path": snapshot.state,
                "mem_backend": {"backend_type": "File", "backend_path": snapshot.memory},
                "resume_vm": true,
                "network_overrides": [{"iface_id": "eth0", "host_dev_name": "bgr-r1"}],
            })
        );
        let mut gone = s.clone();
        gone.disks[1].path = dir.path().join("nope.ext4");
        let err = restore_plan(&gone, &files, &snapshot).expect_err("missing disk");
        assert!(err.to_string().contains("nope.ext4"), "{err}");
    }

    #[test]
    fn disk_links_point_at_this_vms_disks_and_replace_old_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = spec(dir.path());
        std::fs::create_dir_all(&s.run_dir).expect("mkdir");
        link_disks(&s.run_dir, &s).expect("link");
        let target = |i: usize| std::fs::read_link(s.run_dir.join(disk_link(i)));
        assert_eq!(target(0).expect("link 0"), s.disks[0].path);
        assert_eq!(target(1).expect("link 1"), s.disks[1].path);
        s.disks.truncate(1);
        s.disks[0].path = dir.path().join("work.ext4");
        link_disks(&s.run_dir, &s).expect("relink");
        assert_eq!(target(0).expect("link 0"), dir.path().join("work.ext4"));
        assert!(target(1).is_err(), "a stale link is removed");
    }
}
