//! Wire types of the banger daemon API.
//!
//! The daemon serves HTTP/1.1 with JSON bodies on a Unix socket; every route is versioned under
//! `/v1`. This crate is the single definition of what crosses that socket, shared by the daemon,
//! the CLI and any other client. `docs/openapi.json` documents the same routes for other tools;
//! a test in the daemon keeps the two in step.
#![deny(missing_docs)]

pub mod build_info;
pub mod doctor;
pub mod error;
pub mod operation;
pub mod routes;
pub mod types;

pub use build_info::BuildInfo;
pub use doctor::{Check, CheckStatus, DoctorReport};
pub use error::{ErrorBody, ErrorCode};
pub use operation::{Operation, OperationState, Stage, StageState};
pub use types::{CatalogEntry, CatalogListing, PromoteImageRequest};
pub use types::{
    CreateVmRequest, DaemonInfo, LogChunk, PullRequest, RegisterImageRequest,
    RegisterKernelRequest, SshCommandLine, SshRequest,
};
pub use types::{
    DiskUsage, HealthCheck, ListeningPort, PortProtocol, ProcessStats, PruneCacheRequest,
    PruneCacheResult, PruneFailure, PruneVmsRequest, PruneVmsResponse, SetVmRequest, SnapshotInfo,
    VmHealth, VmPorts, VmStats,
};
