//! Fixed places inside every banger guest.
//!
//! The host puts things there (the agent binary into the rootfs, the work disk as the second
//! disk, a repository copy into the workspace) and the guest finds them there, so neither side
//! may spell these paths on its own.

/// Where the agent binary lives in every image; the kernel's `init=`.
pub const AGENT_PATH: &str = "/usr/local/bin/banger-agent";

/// The root disk (the VM's copy of the image's rootfs), always the first disk.
pub const ROOT_DEVICE: &str = "/dev/vda";

/// The work disk, always the second disk.
pub const WORK_DEVICE: &str = "/dev/vdb";

/// Where the agent mounts the work disk: root's home, so it survives image changes.
pub const WORK_MOUNT: &str = "/root";

/// Where workspaces copy a repository in the guest.
pub const WORKSPACE_DIR: &str = "/root/repo";

/// Where banger puts its OpenSSH bundle in images that have no `/usr/sbin/sshd` (see
/// `banger_image::ssh_bundle`): the loader `ld.so`, `lib/`, `bin/{sshd,ssh-keygen,ip}` and
/// `sshd_config`.
pub const SSH_BUNDLE_DIR: &str = "/usr/local/lib/banger/ssh";

/// The guest's one SSH host key (ed25519; its public half beside it as `.pub`).
pub const HOST_KEY: &str = "/etc/ssh/ssh_host_ed25519_key";

/// The image's own OpenSSH server; when it is missing, banger brings [`SSH_BUNDLE_DIR`].
pub const IMAGE_SSHD: &str = "/usr/sbin/sshd";
