//! Command-line argument structs, one file per group (the youki `liboci-cli` pattern).
//!
//! These types only describe the command line and parse values (sizes, enums); they hold no
//! logic. Commands in [`crate::commands`] validate them further and act. Help texts live next
//! to the flags they describe: each group says what it is for, the 80% command and what comes
//! next, and every command ends with runnable examples.

pub mod common;
pub mod completion;
pub mod daemon;
pub mod doctor;
pub mod image;
pub mod kernel;
pub mod ssh_config;
pub mod system;
pub mod update;
pub mod version;
pub mod vm;
pub mod workspace;
