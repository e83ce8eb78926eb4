//! What a jailed Firecracker launch asks for: the types the daemon and the root helper share.
//!
//! Why here: under a system install the daemon runs unprivileged and asks the root helper to
//! stage and spawn the jailer (which must run as root); a root daemon does the same
//! in-process. Both sides name a jail with these types, so the helper's policy checks exactly
//! what the VMM backend would do. They carry only data: the mechanics are `banger_jail`, the
//! policy is the helper's.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The prefix of a VM's jail id (and of its VMM's liveness tag): `banger-<vm id>`.
pub const JAIL_ID_PREFIX: &str = "banger-";

/// The jailer's `--id` for VM `vm_id`.
pub fn jail_id(vm_id: &str) -> String {
    format!("{JAIL_ID_PREFIX}{vm_id}")
}

/// Which jail: `<chroot_base>/<exec_file's name>/banger-<vm_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JailRef {
    /// The VM's id.
    pub vm_id: String,
    /// The Firecracker binary the jailer copies in (its name is a path component).
    pub exec_file: PathBuf,
    /// The jailer's `--chroot-base-dir`.
    pub chroot_base: PathBuf,
}

/// Stage a VM's jail and start the jailer in it: everything the privileged step needs. The
/// in-jail names (`/vmlinux`, `/initrd`, `/disk<N>`, the API socket) are fixed, so nothing of
/// the request's host paths reaches the jail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JailLaunch {
    /// The jail.
    pub jail: JailRef,
    /// The `jailer` binary.
    pub jailer_bin: PathBuf,
    /// The uid Firecracker drops to (the owner).
    pub uid: u32,
    /// The gid Firecracker drops to.
    pub gid: u32,
    /// The kernel, hard-linked (or copied) in as `/vmlinux`.
    pub kernel: PathBuf,
    /// The initrd, hard-linked (or copied) in as `/initrd`.
    pub initrd: Option<PathBuf>,
    /// The disks in drive order, hard-linked in as `/disk0`, `/disk1`, ….
    pub disks: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jail_id_is_the_vm_tag_and_unknown_fields_are_refused() {
        assert_eq!(jail_id("0123abcd"), "banger-0123abcd");
        let json = r#"{"vm_id":"a","exec_file":"/f","chroot_base":"/b","extra":1}"#;
        assert!(serde_json::from_str::<JailRef>(json).is_err());
        let ok = r#"{"vm_id":"a","exec_file":"/f","chroot_base":"/b"}"#;
        let jail: JailRef = serde_json::from_str(ok).expect("parses");
        assert_eq!(jail.exec_file, PathBuf::from("/f"));
    }
}
