//! `banger kernel …`: guest kernels.

use clap::{Args, Subcommand};

use super::common::JsonFlag;

/// One line for the group.
pub const ABOUT: &str = "Manage guest kernels";

/// What the group is for, the 80% command, and what comes next.
pub const LONG_ABOUT: &str = "\
Manage guest kernels.

Images name the kernel they boot with, and pulling an image pulls its kernel, so this group \
is mostly for looking: `banger kernel ls`. To fetch one from the catalog ahead of time: \
`banger kernel pull debian-cloud`.

Next: `banger image register --kernel NAME` pairs a kernel with your own root filesystem.";

/// Examples for the group.
pub const AFTER_HELP: &str = "\
Examples:
  banger kernel ls
  banger kernel show debian-cloud
  banger kernel pull debian-cloud";

/// The `kernel` subcommands.
#[derive(Debug, Subcommand)]
pub enum KernelCommand {
    /// List kernels
    #[command(
        visible_alias = "ls",
        after_help = "\
Examples:
  banger kernel ls
  banger kernel ls --json"
    )]
    List(JsonFlag),
    /// Show one kernel in detail
    #[command(after_help = "\
Examples:
  banger kernel show debian-cloud
  banger kernel show debian-cloud --json")]
    Show(ShowArgs),
    /// List the kernels `kernel pull NAME` can fetch
    #[command(after_help = "\
Examples:
  banger kernel catalog
  banger kernel catalog --json")]
    Catalog(JsonFlag),
    /// Fetch a kernel from the catalog
    #[command(after_help = "\
Examples:
  banger kernel pull debian-cloud")]
    Pull(NameArgs),
    /// Register an existing kernel (and initramfs) under a name
    #[command(after_help = "\
Examples:
  banger kernel register my-kernel --vmlinux ./vmlinux --initrd ./initrd.img")]
    Register(RegisterArgs),
    /// Delete a kernel no image uses
    #[command(
        visible_alias = "delete",
        after_help = "\
Examples:
  banger kernel rm old-kernel
  banger kernel rm -f old        old is only a prefix: delete it without asking"
    )]
    Rm(RmArgs),
}

/// Arguments of `kernel show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Kernel by id or name
    #[arg(value_name = "KERNEL")]
    pub kernel: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// One kernel by name.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// Kernel name
    #[arg(value_name = "KERNEL")]
    pub kernel: String,
}

/// Arguments of `kernel rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kernel by id, name or unique prefix
    #[arg(value_name = "KERNEL")]
    pub kernel: String,
    /// Delete a kernel matched only by a prefix of its name or id without asking
    #[arg(short, long)]
    pub force: bool,
}

/// Arguments of `kernel register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Name of the new kernel
    #[arg(value_name = "KERNEL")]
    pub kernel: String,
    /// Kernel image (an ELF vmlinux; QEMU also boots a bzImage)
    #[arg(long, value_name = "FILE")]
    pub vmlinux: std::path::PathBuf,
    /// Initramfs to boot with
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<std::path::PathBuf>,
}
