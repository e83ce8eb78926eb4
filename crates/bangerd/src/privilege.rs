//! Which backend carries out the daemon's privileged steps.
//!
//! - running as root (euid 0): in-process, `banger_net::LinuxNet`;
//! - otherwise, when the root helper's socket exists (`BANGER_ROOT_HELPER_SOCKET`, else
//!   `/run/banger-root/helper.sock`): each step goes to the helper (`banger_helper::HelperNet`);
//! - otherwise every privileged step fails as a host problem naming
//!   `sudo banger system install` — until a helper appears: the client looks for the socket at
//!   each step, so a helper started after the daemon is picked up without a restart.
//!
//! The choice is a pure function over facts probed once, shared by the daemon and `doctor`, so
//! the two cannot disagree.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use banger_net::NetOps;
use banger_vmm::firecracker::{InProcessJail, JailRunner};

use crate::jail_runner::HelperJailRunner;

/// How privileged steps are carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privilege {
    /// The daemon is root and does them itself.
    InProcess,
    /// The root helper at this socket does them.
    Helper(PathBuf),
    /// Nobody can: the helper was looked for at this socket.
    None(PathBuf),
}

/// The fix for [`Privilege::None`].
pub const FIX: &str = "run `sudo banger system install` once (or start the helper by hand: \
                       `sudo bangerd root-helper --owner $USER`), or run the daemon as root";

impl Privilege {
    /// Chooses from the effective uid and where the helper's socket is (and whether it exists).
    pub fn choose(euid: u32, socket: PathBuf, socket_exists: bool) -> Self {
        if euid == 0 {
            Self::InProcess
        } else if socket_exists {
            Self::Helper(socket)
        } else {
            Self::None(socket)
        }
    }

    /// Probes this process and host.
    pub fn probe() -> Self {
        let socket = helper_socket(std::env::var_os(banger_helper::SOCKET_ENV));
        let exists = socket.exists();
        Self::choose(nix::unistd::geteuid().as_raw(), socket, exists)
    }

    /// The backend for this choice.
    pub fn backend(&self) -> Arc<dyn NetOps> {
        match self {
            Self::InProcess => Arc::new(banger_net::LinuxNet),
            // Without a socket the client fails each step as `NetError::Unprivileged`.
            Self::Helper(socket) | Self::None(socket) => {
                Arc::new(banger_helper::HelperNet::new(socket.clone()))
            }
        }
    }

    /// Who stages and spawns jailed Firecracker VMs for this choice (the jailer must run as
    /// root): this process when root, else the helper (failing like [`Self::backend`]'s steps
    /// when there is none).
    pub fn jail_runner(&self) -> Arc<dyn JailRunner> {
        match self {
            Self::InProcess => Arc::new(InProcessJail),
            Self::Helper(socket) | Self::None(socket) => {
                Arc::new(HelperJailRunner::new(socket.clone()))
            }
        }
    }

    /// One line for the log and `doctor`.
    pub fn describe(&self) -> String {
        match self {
            Self::InProcess => "in-process: the daemon runs as root".to_owned(),
            Self::Helper(socket) => format!("root helper at {}", socket.display()),
            Self::None(socket) => format!(
                "none: not root, and no root helper at {}, so VMs cannot get a network",
                socket.display()
            ),
        }
    }
}

/// The helper socket named by `env` (the value of `BANGER_ROOT_HELPER_SOCKET`), else the default.
pub fn helper_socket(env: Option<OsString>) -> PathBuf {
    env.filter(|v| !v.is_empty()).map_or_else(
        || Path::new(banger_helper::DEFAULT_SOCKET).to_path_buf(),
        PathBuf::from,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_runs_in_process_else_the_helper_else_none() {
        let sock = PathBuf::from("/run/banger-root/helper.sock");
        assert_eq!(
            Privilege::choose(0, sock.clone(), false),
            Privilege::InProcess
        );
        assert_eq!(
            Privilege::choose(0, sock.clone(), true),
            Privilege::InProcess
        );
        assert_eq!(
            Privilege::choose(1000, sock.clone(), true),
            Privilege::Helper(sock.clone())
        );
        assert_eq!(
            Privilege::choose(1000, sock.clone(), false),
            Privilege::None(sock.clone())
        );
        assert!(
            Privilege::None(sock)
                .describe()
                .contains("/run/banger-root/helper.sock")
        );
    }

    #[test]
    fn the_socket_comes_from_the_environment_or_the_default() {
        assert_eq!(
            helper_socket(None),
            Path::new(banger_helper::DEFAULT_SOCKET)
        );
        assert_eq!(
            helper_socket(Some("".into())),
            Path::new(banger_helper::DEFAULT_SOCKET)
        );
        assert_eq!(
            helper_socket(Some("/tmp/h.sock".into())),
            Path::new("/tmp/h.sock")
        );
    }

    #[tokio::test]
    async fn without_privilege_every_step_fails_naming_the_fix() {
        let net = Privilege::None(PathBuf::from("/nowhere.sock")).backend();
        let err = net
            .ensure_bridge("banger0", std::net::Ipv4Addr::new(172, 30, 0, 1), 24)
            .await
            .expect_err("refused");
        assert!(err.is_permission_denied(), "{err}");
        assert!(err.to_string().contains("/nowhere.sock"), "{err}");
        assert!(net.delete_link("bgr-1").await.is_err());
        assert!(net.links_with_prefix("tap-pool-").await.is_err());
    }
}
