//! Firecracker: API client, launch plan, hybrid vsock, API-socket readiness, command line.
//!
//! The wire format follows Firecracker's swagger definition
//! (`src/firecracker/swagger/firecracker.yaml` upstream). The contract tests in
//! `tests/firecracker_contract.rs` check every call against the fake Firecracker in
//! `banger-testkit`, which enforces the same rules (pre-/post-boot, body validation,
//! `fault_message` errors).
//!
//! A typical launch: [`command_line`] to spawn the process, [`wait_for_api_socket`], then
//! [`FirecrackerClient::apply_plan`] with [`VmConfig::plan`], then [`vsock::connect`] to reach
//! the guest agent.

pub mod api;
pub mod client;
pub mod command;
pub mod config;
pub mod socket;
pub mod vsock;

pub use api::{
    Action, ActionType, BootSource, Drive, InstanceInfo, InstanceState, LogLevel, Logger,
    MachineConfig, Metrics, NetworkInterface, Vsock,
};
pub use client::{ApplyPlanError, FirecrackerApiError, FirecrackerClient};
pub use command::{FirecrackerArgs, command_line};
pub use config::{ApiCall, VmConfig, VmConfigError};
pub use socket::{WaitForSocketError, wait_for_api_socket};
