//! Warm snapshots in the daemon (issue 13, in progress): which VMs share a snapshot
//! ([`class`]) and where snapshots live ([`store`]). Saving the first VM of a class and restoring the next ones build on
//! `banger_vmm::warm`; until they are wired every VM boots cold.

pub mod class;
pub mod flow;
pub mod store;
