//! Helpers shared by the store's integration tests: sample records and directory snapshots.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use banger_model::{ImageRecord, KernelRecord, Size, VmName, VmRecord, VmSpec, VmState};

/// Every file in `dir` (not recursive) with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read the test dir")
        .map(|e| {
            let e = e.expect("read a dir entry");
            let bytes = if e.path().is_file() {
                std::fs::read(e.path()).expect("read a file")
            } else {
                b"<dir>".to_vec()
            };
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// The file names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    snapshot(dir).into_keys().collect()
}

/// A timestamp `secs` seconds after 2026-01-01.
pub fn at(secs: u64) -> String {
    banger_model::time::rfc3339(1_767_225_600 + secs)
}

pub fn kernel(id: &str, name: &str) -> KernelRecord {
    KernelRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        version: Some("6.1.0-27-cloud-amd64".to_owned()),
        source: "catalog:debian-cloud".to_owned(),
        vmlinux_path: PathBuf::from(format!("/var/lib/banger/kernels/{name}/vmlinux")),
        initrd_path: None,
        created_at: at(0),
    }
}

pub fn image(id: &str, name: &str) -> ImageRecord {
    ImageRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        source: format!("docker.io/library/{name}:latest"),
        digest: Some("sha256:0123".to_owned()),
        rootfs_path: PathBuf::from(format!("/var/lib/banger/images/{id}/rootfs.ext4")),
        work_seed_path: Some(PathBuf::from(format!(
            "/var/lib/banger/images/{id}/work-seed.ext4"
        ))),
        kernel_name: Some("debian-cloud".to_owned()),
        created_at: at(0),
        oci_config: None,
    }
}

pub fn vm(id: &str, name: &str, image_id: &str) -> VmRecord {
    VmRecord {
        id: id.to_owned(),
        name: VmName::parse(name).expect("a valid vm name"),
        image_id: image_id.to_owned(),
        spec: VmSpec {
            vcpu: 2,
            memory_mib: 2048,
            disk_size: Size::from_gib(8),
            nat: true,
        },
        state: VmState::Running,
        guest_ip: Some("172.16.0.2".to_owned()),
        tap_name: Some("bgr-0a1b2c".to_owned()),
        dir: PathBuf::from(format!("/var/lib/banger/vms/{id}")),
        last_error: None,
        created_at: at(0),
        updated_at: at(0),
        workspace: None,
    }
}
