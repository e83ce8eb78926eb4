//! Flags shared by several commands: `--json` and the VM spec flags.

use banger_model::{Size, SpecOverrides};
use clap::Args;

/// `--json` on read commands.
#[derive(Debug, Clone, Copy, Args)]
pub struct JsonFlag {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

/// Resource flags of a new VM. Unset flags resolve from config and the host.
#[derive(Debug, Clone, Copy, Args)]
pub struct SpecFlags {
    /// Virtual CPUs
    #[arg(long, value_name = "N")]
    pub vcpu: Option<u32>,
    /// Guest memory, e.g. 512M or 2G (a bare number means MiB)
    #[arg(long, value_name = "SIZE", value_parser = Size::parse)]
    pub memory: Option<Size>,
    /// Size of the work disk mounted at /root, e.g. 8G
    #[arg(long, value_name = "SIZE", value_parser = Size::parse)]
    pub disk_size: Option<Size>,
    /// Outbound network access for the VM, masqueraded through the host
    #[arg(long)]
    pub nat: bool,
}

impl SpecFlags {
    /// The flags as overrides for spec resolution.
    pub fn overrides(&self) -> SpecOverrides {
        SpecOverrides {
            vcpu: self.vcpu,
            memory: self.memory,
            disk_size: self.disk_size,
            nat: self.nat.then_some(true),
        }
    }
}
