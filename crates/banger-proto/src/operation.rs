//! Long operations: an id returned at once, then stages with timings.
//!
//! A create takes seconds to minutes. The daemon registers an [`Operation`], answers with its
//! id, and updates its stages as work proceeds; clients poll `GET /v1/operations/{id}` or list
//! everything in flight with `GET /v1/operations`.

use serde::{Deserialize, Serialize};

use crate::error::ErrorBody;

/// Overall state of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Still working.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error; see [`Operation::error`].
    Failed,
}

/// State of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// In progress.
    Running,
    /// Completed.
    Done,
    /// Failed; the operation fails with it.
    Failed,
    /// Not needed this time (e.g. no auto-pull because the image is cached).
    Skipped,
}

/// One named step of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Short name, e.g. `prepare disks`.
    pub name: String,
    /// Where the stage is.
    pub state: StageState,
    /// Optional detail (bytes downloaded, the path of a log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Wall time spent, once the stage ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Things the user should know although the stage succeeded (a skipped file_sync entry);
    /// absent from older daemons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A long-running piece of work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Unique id (`op-…`).
    pub id: String,
    /// What it does, e.g. `vm.create`.
    pub kind: String,
    /// What it acts on, e.g. a VM name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Overall state.
    pub state: OperationState,
    /// Stages so far, in order.
    pub stages: Vec<Stage>,
    /// The error, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// Total wall time, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}
