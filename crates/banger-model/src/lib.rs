//! Domain model of banger.
//!
//! Everything here is pure: values, validation and resolution rules that every other crate
//! agrees on. Nothing in this crate reads the environment, the file system or the clock on its
//! own; callers pass those facts in (see [`layout::Env`] and [`spec::HostFacts`]), which keeps
//! the rules testable and identical in the CLI and the daemon.
#![deny(missing_docs)]

pub mod config;
pub mod image;
pub mod install;
pub mod jail;
pub mod kernel;
pub mod layout;
pub mod name;
pub mod shell;
pub mod size;
pub mod spec;
pub mod ssh_config;
pub mod time;
pub mod vm;

pub use config::{CatalogBundle, Config, ConfigError, FileSync, VmDefaultsConfig, VmmChoice};
pub use image::{ImageRecord, OciRunConfig};
pub use install::{InstallMetadata, InstallMetadataError};
pub use jail::{JailLaunch, JailRef};
pub use kernel::KernelRecord;
pub use layout::{Env, Layout, LayoutError, Mode};
pub use name::{NameError, VmName};
pub use size::{Size, SizeError};
pub use spec::{
    CapacityError, HostCapacity, HostFacts, Overcommit, Provenance, ResolvedSpec, SpecError,
    SpecOverrides, VmSpec,
};
pub use vm::{VmRecord, VmState, Workspace};
