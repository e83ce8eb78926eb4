//! The boot class of a VM: everything that makes two guests identical right after boot.
//!
//! A warm snapshot is only a faithful start for a VM whose guest would have booted into the
//! very same state: the same root filesystem and work seed, kernel and initramfs, vCPUs,
//! memory and work-disk size (virtio-blk's capacity is part of the saved device state), the same
//! VMM build and the same agent. Each of these goes into the key, by content identity (size
//! and modification time of each file, which every rewrite of banger's own files changes, plus
//! the image digest when there is one), so any change starts a new class and the stale
//! snapshot is simply never used again. Per-VM values (name, address, MAC, host key) are not
//! part of it: they are applied after a restore.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

/// Bumped whenever what a snapshot holds, or how it is restored, changes.
pub const RECIPE: u32 = 1;

/// The inputs of a class key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootClass {
    /// Image id and its OCI digest, if any.
    pub image: (String, Option<String>),
    /// The image's root filesystem and work seed.
    pub image_files: Vec<PathBuf>,
    /// The kernel's id.
    pub kernel: String,
    /// Kernel image and initramfs.
    pub kernel_files: Vec<PathBuf>,
    /// vCPUs.
    pub vcpu: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Work disk size in bytes.
    pub disk_bytes: u64,
    /// The VMM kind (`qemu`) and its binary.
    pub vmm: (String, PathBuf),
    /// The agent binary every VM gets.
    pub agent: PathBuf,
    /// What the file sync stage writes into every work disk (banger's public key, the host's
    /// git identity): a change means the saved guest's disk is no longer what a cold boot
    /// would give.
    pub login: String,
}

/// Why a class key could not be computed (a file is gone: no snapshot for this VM).
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct ClassError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl BootClass {
    /// The key: 16 hex digits of a SHA-256 over every input, in a fixed order.
    pub fn key(&self) -> Result<String, ClassError> {
        let mut h = Sha256::new();
        let mut field = |name: &str, value: &str| {
            h.update(name.as_bytes());
            h.update(b"=");
            h.update(value.as_bytes());
            h.update(b"\n");
        };
        field("recipe", &RECIPE.to_string());
        field("image", &self.image.0);
        field("digest", self.image.1.as_deref().unwrap_or("-"));
        for file in &self.image_files {
            field("image-file", &identity(file)?);
        }
        field("kernel", &self.kernel);
        for file in &self.kernel_files {
            field("kernel-file", &identity(file)?);
        }
        field("vcpu", &self.vcpu.to_string());
        field("memory-mib", &self.memory_mib.to_string());
        field("disk-bytes", &self.disk_bytes.to_string());
        field("vmm", &self.vmm.0);
        field("vmm-binary", &identity(&self.vmm.1)?);
        field("agent", &identity(&self.agent)?);
        field("login", &self.login);
        let digest = h.finalize();
        Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
    }
}

/// A file's identity for the key: its path, size and modification time.
fn identity(path: &Path) -> Result<String, ClassError> {
    let meta = std::fs::metadata(path).map_err(|source| ClassError {
        path: path.to_owned(),
        source,
    })?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{}:{}:{modified}", path.display(), meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(dir: &Path) -> BootClass {
        for f in ["rootfs", "seed", "vmlinux", "initrd", "qemu", "agent"] {
            std::fs::write(dir.join(f), f).expect("write");
        }
        BootClass {
            image: ("img1".into(), Some("sha256:ab".into())),
            image_files: vec![dir.join("rootfs"), dir.join("seed")],
            kernel: "k1".into(),
            kernel_files: vec![dir.join("vmlinux"), dir.join("initrd")],
            vcpu: 1,
            memory_mib: 512,
            disk_bytes: 8 << 30,
            vmm: ("qemu".into(), dir.join("qemu")),
            agent: dir.join("agent"),
            login: "ssh-ed25519 AAAA banger".into(),
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = class(dir.path());
        let key = c.key().expect("key");
        assert_eq!(key.len(), 16);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(c.key().expect("key"), key);
    }

    #[test]
    fn every_input_changes_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = class(dir.path());
        let key = base.key().expect("key");
        let mut variants: Vec<BootClass> = Vec::new();
        let mut v = base.clone();
        v.image.1 = None;
        variants.push(v);
        let mut v = base.clone();
        v.kernel = "k2".into();
        variants.push(v);
        let mut v = base.clone();
        v.vcpu = 2;
        variants.push(v);
        let mut v = base.clone();
        v.memory_mib = 1024;
        variants.push(v);
        let mut v = base.clone();
        v.disk_bytes = 4 << 30;
        variants.push(v);
        let mut v = base.clone();
        v.vmm.0 = "firecracker".into();
        variants.push(v);
        let mut v = base.clone();
        v.login.push_str("\n[user]\n\tname = Someone\n");
        variants.push(v);
        for v in &variants {
            assert_ne!(v.key().expect("key"), key, "{v:?}");
        }
        // A rebuilt agent (another size) is another class.
        std::fs::write(dir.path().join("agent"), "a newer agent").expect("write");
        assert_ne!(base.key().expect("key"), key);
    }

    #[test]
    fn a_missing_file_has_no_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = class(dir.path());
        std::fs::remove_file(dir.path().join("initrd")).expect("rm");
        let err = c.key().expect_err("missing initrd");
        assert!(err.path.ends_with("initrd"), "{err}");
    }
}
