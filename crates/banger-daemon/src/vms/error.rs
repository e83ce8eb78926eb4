//! Typed failures of the VM service: which stage failed, and why.
//!
//! A create or start moves through [`Stage`]s; whatever goes wrong in one is a [`StageError`]
//! carrying the stage and the typed cause ([`StageFailure`]). The service never builds HTTP
//! answers from these itself: the operation records the stage as failed, and [`StageError::code`]
//! is the one place that decides which error code (and so which CLI exit code) the user sees —
//! a host problem (no hypervisor, no agent, missing privileges) is told apart from a VM that
//! failed to boot.

use std::fmt;

use banger_net::NetError;
use banger_proto::ErrorCode;
use banger_vmm::VmmError;

use crate::agent_binary::AgentMissing;

/// The stages of a create (a start runs file sync and the boot part of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Building or downloading the image and kernel on first use.
    AutoPull,
    /// Choosing name, address and TAP, and writing the record.
    Reserve,
    /// The VM's root and work disks.
    PrepareDisks,
    /// banger's login, `[[file_sync]]` entries and the git identity, into the work disk.
    FileSync,
    /// Bridge and TAP.
    Network,
    /// Launching the VMM.
    Boot,
    /// Waiting until the guest agent answers.
    WaitForAgent,
    /// Saving the first VM of a boot class as its warm snapshot.
    SaveSnapshot,
    /// Starting a VM from its class's warm snapshot and giving it its own identity.
    Restore,
    /// Waiting until sshd answers.
    WaitForSsh,
    /// Hooks run after start.
    PostStartHooks,
}

impl Stage {
    /// The name the operation and the CLI show.
    pub fn name(self) -> &'static str {
        match self {
            Self::AutoPull => "auto-pull",
            Self::Reserve => "reserve",
            Self::PrepareDisks => "prepare disks",
            Self::FileSync => "file sync",
            Self::Network => "network",
            Self::Boot => "boot",
            Self::WaitForAgent => "wait for agent",
            Self::SaveSnapshot => "save warm snapshot",
            Self::Restore => "restore",
            Self::WaitForSsh => "wait for SSH",
            Self::PostStartHooks => "post-start hooks",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a stage failed.
#[derive(Debug, thiserror::Error)]
pub enum StageFailure {
    /// Host networking failed.
    #[error("host networking failed")]
    Net(#[from] NetError),
    /// The VMM failed.
    #[error("the VMM failed")]
    Vmm(#[from] VmmError),
    /// A disk could not be prepared.
    #[error("a disk could not be prepared")]
    Disk(#[from] super::disks::DiskError),
    /// The agent could not be written into the VM's disk.
    #[error("the guest agent could not be written into the VM's disk")]
    Image(#[from] crate::images::ImageError),
    /// A file could not be written into the work disk (the error names the entry).
    #[error(transparent)]
    FileSync(#[from] super::file_sync::FileSyncError),
    /// The guest agent binary is not installed.
    #[error(transparent)]
    AgentMissing(#[from] AgentMissing),
    /// The guest did not become ready in time, or stopped.
    #[error("{0}")]
    Guest(String),
    /// Anything else (store writes, lost tasks); the message says what.
    #[error("{0}")]
    Other(String),
}

/// A stage and why it failed.
#[derive(Debug)]
pub struct StageError {
    /// Where.
    pub stage: Stage,
    /// Why.
    pub failure: StageFailure,
}

impl StageError {
    /// A failure at `stage`.
    pub fn new(stage: Stage, failure: impl Into<StageFailure>) -> Self {
        Self {
            stage,
            failure: failure.into(),
        }
    }

    /// A failure at `stage` described by `message`.
    pub fn other(stage: Stage, message: impl Into<String>) -> Self {
        Self::new(stage, StageFailure::Other(message.into()))
    }

    /// A guest that did not get ready at `stage`.
    pub fn guest(stage: Stage, message: impl Into<String>) -> Self {
        Self::new(stage, StageFailure::Guest(message.into()))
    }

    /// The error code users get: `host_problem` when the host lacks something banger needs,
    /// else `operation_failed`.
    pub fn code(&self) -> ErrorCode {
        if self.host_problem_hint().is_some() {
            ErrorCode::HostProblem
        } else {
            ErrorCode::OperationFailed
        }
    }

    /// What the user must change on the host, when that is the cause.
    pub fn host_problem_hint(&self) -> Option<String> {
        match &self.failure {
            StageFailure::AgentMissing(_) => Some(String::new()),
            StageFailure::Vmm(VmmError::Unavailable { .. } | VmmError::MissingBinary { .. }) => {
                Some(String::new())
            }
            StageFailure::Net(e) if e.is_permission_denied() => Some(
                "creating bridges and TAPs needs root: run `sudo banger system install` once \
                 (or start the root helper by hand: `sudo bangerd root-helper --owner $USER`)"
                    .to_owned(),
            ),
            _ => None,
        }
    }

    /// The cause with all its sources, plus the host fix when there is one.
    pub fn describe(&self) -> String {
        let mut text = crate::api::error::chain(&self.failure);
        if let Some(hint) = self.host_problem_hint()
            && !hint.is_empty()
        {
            text.push_str("; ");
            text.push_str(&hint);
        }
        text
    }
}

crate::service_error::service_error! {
    /// Why a VM operation failed: the kinds every service error has, a failed stage of a
    /// create or start, or an image failure met on the way.
    VmError {
        /// A stage of a create or start failed.
        Stage(StageError) => StageError::code,
        /// An image or kernel operation failed.
        Image(crate::images::ImageError) => crate::images::ImageError::code,
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed at {}: {}", self.stage, self.describe())
    }
}

impl std::error::Error for StageError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_problems_get_their_own_code_and_name_the_fix() {
        let missing = StageError::new(
            Stage::PrepareDisks,
            AgentMissing {
                tried: vec!["/usr/local/bin/banger-agent".into()],
            },
        );
        assert_eq!(missing.code(), ErrorCode::HostProblem);
        assert!(
            missing.to_string().contains("/usr/local/bin/banger-agent"),
            "{missing}"
        );

        let denied = StageError::new(
            Stage::Network,
            NetError::Connect(std::io::Error::from_raw_os_error(1)),
        );
        assert_eq!(denied.code(), ErrorCode::HostProblem);
        let text = denied.to_string();
        assert!(text.starts_with("failed at network: "), "{text}");
        assert!(text.contains("sudo"), "{text}");

        // No root and no root helper: a host problem naming the install and the helper.
        let no_helper = StageError::new(
            Stage::Network,
            NetError::Unprivileged {
                socket: "/run/banger-root/helper.sock".into(),
            },
        );
        assert_eq!(no_helper.code(), ErrorCode::HostProblem);
        let text = no_helper.describe();
        assert!(text.contains("/run/banger-root/helper.sock"), "{text}");
        assert!(text.contains("sudo banger system install"), "{text}");
        assert!(text.contains("bangerd root-helper --owner"), "{text}");
        // A refusal by the helper's policy is not the host's fault.
        let refused = StageError::new(Stage::Network, NetError::Refused("\"lo\" is not".into()));
        assert_eq!(refused.code(), ErrorCode::OperationFailed);

        let no_vmm = StageError::new(
            Stage::Boot,
            VmmError::Unavailable {
                reason: "install qemu".into(),
            },
        );
        assert_eq!(no_vmm.code(), ErrorCode::HostProblem);

        let guest = StageError::guest(Stage::WaitForSsh, "sshd never answered");
        assert_eq!(guest.code(), ErrorCode::OperationFailed);
        assert_eq!(
            guest.to_string(),
            "failed at wait for SSH: sshd never answered"
        );
    }
}
