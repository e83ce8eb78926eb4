//! The jail step through the root helper: `banger_helper::HelperJail` as the Firecracker
//! backend's `JailRunner`.
//!
//! It lives here because the daemon binary is where the VMM adapter and the helper's client
//! meet (neither crate may depend on the other). Errors keep their meaning: no helper, or a
//! refusal (a jailer or Firecracker other than the helper's, say), is a host problem whose
//! message names the fix; a broken exchange or a failed step is reported as the helper's.

use std::fs::File;
use std::path::PathBuf;

use banger_helper::{HelperJail, JailCallError};
use banger_model::jail::{JailLaunch, JailRef};
use banger_net::NetError;
use banger_vmm::VmmError;
use banger_vmm::firecracker::JailRunner;

/// Jails staged and spawned by the root helper.
#[derive(Debug, Clone)]
pub struct HelperJailRunner {
    client: HelperJail,
}

impl HelperJailRunner {
    /// Through the helper at `socket`.
    pub fn new(socket: PathBuf) -> Self {
        Self {
            client: HelperJail::new(socket),
        }
    }

    fn error(&self, error: JailCallError) -> VmmError {
        match error {
            JailCallError::NoHelper { .. } | JailCallError::Helper(NetError::Refused(_)) => {
                VmmError::Unavailable {
                    reason: error.to_string(),
                }
            }
            JailCallError::Helper(NetError::HelperUnreachable { source, .. }) => VmmError::Io {
                action: format!(
                    "jail step through the root helper at {}",
                    self.client.socket().display()
                ),
                source,
            },
            JailCallError::Helper(other) => VmmError::Control {
                kind: "jailer",
                socket: self.client.socket().to_path_buf(),
                message: other.to_string(),
            },
        }
    }
}

impl JailRunner for HelperJailRunner {
    fn launch(&self, request: &JailLaunch, console: File) -> Result<u32, VmmError> {
        self.client
            .launch(request, &console)
            .map_err(|e| self.error(e))
    }

    fn release(&self, jail: &JailRef) -> Result<(), VmmError> {
        self.client.release(jail).map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_helper_the_jail_step_is_a_host_problem_naming_the_install() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let runner = HelperJailRunner::new(tmp.path().join("none.sock"));
        let jail = JailRef {
            vm_id: "0123456789abcdef".into(),
            exec_file: "/usr/bin/firecracker".into(),
            chroot_base: tmp.path().join("jailer"),
        };
        let err = runner.release(&jail).expect_err("no helper");
        assert!(matches!(err, VmmError::Unavailable { .. }), "{err:?}");
        assert!(
            err.to_string().contains("sudo banger system install"),
            "{err}"
        );
    }
}
