//! `banger vm …`: the VM lifecycle, sessions and workspaces.

use std::path::PathBuf;

use banger_model::Size;
use clap::{Args, Subcommand};

use super::common::{JsonFlag, SpecFlags};
use super::workspace::WorkspaceCommand;

/// One line for the group.
pub const ABOUT: &str = "Create, run and manage microVMs";

/// What the group is for, the 80% command, and what comes next.
pub const LONG_ABOUT: &str = "\
Create, run and manage microVMs.

Most of the time you want `banger vm run [PATH] [-- CMD]`: it creates a VM, copies the \
repository at PATH into /root/repo, and opens a shell there (or runs CMD and exits with its \
code). For a VM that stays around, `banger vm create --name web`, then `banger vm ssh web`.

Next: `banger vm ls` shows your VMs, `vm stop` / `vm start` park and resume them, and \
`vm rm` deletes one for good.";

/// Examples for the group.
pub const AFTER_HELP: &str = "\
Examples:
  banger vm run -- echo hi              boot a VM, run a command, print its output
  banger vm run .                       this repo in a VM, and a shell
  banger vm create --name web           a long-lived VM named web
  banger vm ssh web                     a shell inside it
  banger vm ls                          list VMs
  banger vm rm web                      delete it";

/// The `vm` subcommands.
#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Create a VM with your repo inside and open a shell or run a command
    #[command(
        long_about = "Create a VM with your repo inside and open a shell or run a command.\n\n\
            Creates and boots a VM, copies the repository at PATH (default: the current \
            directory) into /root/repo (tracked files; add --include-untracked for the rest), \
            then opens a shell or runs CMD. banger exits with CMD's exit code.\n\n\
            A repo with .mise.toml or .tool-versions wants its tools installed with mise, \
            which needs network access: it is refused unless you pass --nat (then `mise \
            install` runs) or \
            --no-bootstrap.",
        after_help = "\
Examples:
  banger vm run -- echo hi               run one command in a fresh VM
  banger vm run . --no-bootstrap         a mise repo, without installing its tools
  banger vm run . --rm -- make test      run the tests and delete the VM afterwards
  banger vm run . -d --name ci           prepare a VM in the background, attach later
  banger vm run . --branch fix --from main    a new branch fix from main in the guest repo
  banger vm run . --dry-run              list what would be copied"
    )]
    Run(RunArgs),
    /// Create and boot a VM
    #[command(after_help = "\
Examples:
  banger vm create --name web
  banger vm create --name big --vcpu 4 --memory 8G --disk-size 32G
  banger vm create --image debian-bookworm")]
    Create(CreateArgs),
    /// Start stopped VMs
    #[command(after_help = "\
Examples:
  banger vm start web
  banger vm start web db")]
    Start(RefsArgs),
    /// Stop VMs gracefully (killed after a timeout)
    #[command(after_help = "\
Examples:
  banger vm stop web
  banger vm stop web db
  banger vm stop -f w          w is only a prefix (of web): stop it without asking")]
    Stop(ForceRefsArgs),
    /// Stop and start VMs again
    #[command(after_help = "\
Examples:
  banger vm restart web")]
    Restart(RefsArgs),
    /// Force VMs off at once, like pulling the plug
    #[command(after_help = "\
Examples:
  banger vm kill web")]
    Kill(ForceRefsArgs),
    /// Delete VMs and their disks (irreversible)
    #[command(
        visible_alias = "rm",
        after_help = "\
Examples:
  banger vm rm web
  banger vm delete web db
  banger vm rm -f w            w is only a prefix (of web): delete it without asking"
    )]
    Delete(ForceRefsArgs),
    /// Delete every VM that is not running
    #[command(after_help = "\
Examples:
  banger vm prune          asks before deleting
  banger vm prune -f       no questions")]
    Prune(PruneArgs),
    /// List VMs
    #[command(
        visible_aliases = ["ls", "ps"],
        after_help = "\
Examples:
  banger vm ls
  banger vm ls --json | jq -r '.[].name'"
    )]
    List(JsonFlag),
    /// Show one VM in detail
    #[command(after_help = "\
Examples:
  banger vm show web
  banger vm show web --json")]
    Show(ShowArgs),
    /// Print a VM's console log
    #[command(after_help = "\
Examples:
  banger vm logs web
  banger vm logs -f web")]
    Logs(LogsArgs),
    /// Show CPU, memory and disk use of a VM
    #[command(after_help = "\
Examples:
  banger vm stats web
  banger vm stats web --json")]
    Stats(ShowArgs),
    /// List the ports a VM listens on
    #[command(after_help = "\
Examples:
  banger vm ports web
  banger vm ports web --json")]
    Ports(ShowArgs),
    /// Change the resources of a stopped VM
    #[command(after_help = "\
Examples:
  banger vm set web --vcpu 4 --memory 8G
  banger vm set web --disk-size 32G      disks only grow
  banger vm set web --no-nat")]
    Set(SetArgs),
    /// Check that a VM's VMM, guest agent and SSH answer (exit 1 if not)
    #[command(after_help = "\
Examples:
  banger vm health web
  until banger vm health web >/dev/null 2>&1; do sleep 1; done")]
    Health(ShowArgs),
    /// Open a shell in a VM, or run a command there
    #[command(after_help = "\
Examples:
  banger vm ssh web
  banger vm ssh web -- uname -a
  banger vm ssh web -- sh -c 'exit 42'; echo $?    prints 42")]
    Ssh(SshArgs),
    /// Relay ssh to a VM (the ProxyCommand of banger's ssh_config)
    #[command(hide = true)]
    SshProxy(super::ssh_config::SshProxyArgs),
    /// Run a command in a VM's workspace directory
    #[command(after_help = "\
Examples:
  banger vm exec web -- make test
  banger vm exec web --auto-prepare -- cargo build    re-sync the repo first")]
    Exec(ExecArgs),
    /// Copy a repository into a VM and get changes back out
    #[command(
        subcommand,
        subcommand_required = true,
        arg_required_else_help = true,
        long_about = super::workspace::LONG_ABOUT,
        after_help = super::workspace::AFTER_HELP
    )]
    Workspace(WorkspaceCommand),
}

/// Arguments of `vm run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Repository (or any directory inside one) to copy into the VM
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Name of the VM (default: a generated one)
    #[arg(long, allow_hyphen_values = true)]
    pub name: Option<String>,
    /// Image to boot (default: default_image_name from config, debian-bookworm)
    #[arg(long)]
    pub image: Option<String>,
    #[command(flatten)]
    pub spec: SpecFlags,
    /// Boot cold: skip the image's warm snapshot (and save none)
    #[arg(long)]
    pub cold: bool,
    /// Delete the VM when the session or command ends
    #[arg(long)]
    pub rm: bool,
    /// Return once the VM is ready instead of opening a shell
    #[arg(short, long, conflicts_with_all = ["rm", "command"])]
    pub detach: bool,
    /// Skip installing the repo's tools with mise
    #[arg(long)]
    pub no_bootstrap: bool,
    /// Also copy untracked files that are not ignored
    #[arg(long)]
    pub include_untracked: bool,
    /// Create this branch in the guest repo (as `vm workspace prepare --branch`)
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Start the branch from this ref instead of your work tree (needs --branch)
    #[arg(long, value_name = "REF", requires = "branch")]
    pub from: Option<String>,
    /// Print what would be copied and exit; creates nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Command to run instead of a shell
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Arguments of `vm create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the VM (default: a generated one)
    #[arg(long, allow_hyphen_values = true)]
    pub name: Option<String>,
    /// Image to boot (default: default_image_name from config, debian-bookworm)
    #[arg(long)]
    pub image: Option<String>,
    #[command(flatten)]
    pub spec: SpecFlags,
    /// Boot cold: skip the image's warm snapshot (and save none)
    #[arg(long)]
    pub cold: bool,
}

/// One or more VMs by id, name or unique prefix.
#[derive(Debug, Args)]
pub struct RefsArgs {
    /// VMs by id, name or unique prefix
    #[arg(value_name = "VM", required = true)]
    pub vms: Vec<String>,
}

/// VMs for a command that cannot be undone (stop, kill, delete).
#[derive(Debug, Args)]
pub struct ForceRefsArgs {
    /// VMs by id, name or unique prefix
    #[arg(value_name = "VM", required = true)]
    pub vms: Vec<String>,
    /// Act on a VM matched only by a prefix of its name or id without asking
    #[arg(short, long)]
    pub force: bool,
}

/// One VM by id, name or unique prefix.
#[derive(Debug, Args)]
pub struct VmArg {
    /// VM by id, name or unique prefix
    #[arg(value_name = "VM")]
    pub vm: String,
}

/// Arguments of `vm prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// One VM and `--json`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// VM by id, name or unique prefix
    #[arg(value_name = "VM")]
    pub vm: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// Arguments of `vm logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// VM by id, name or unique prefix
    #[arg(value_name = "VM")]
    pub vm: String,
    /// Keep printing new lines as they arrive
    #[arg(short, long)]
    pub follow: bool,
}

/// Arguments of `vm set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// VM by id, name or unique prefix
    #[arg(value_name = "VM")]
    pub vm: String,
    /// New number of virtual CPUs
    #[arg(long, value_name = "N")]
    pub vcpu: Option<u32>,
    /// New guest memory, e.g. 4G
    #[arg(long, value_name = "SIZE", value_parser = Size::parse)]
    pub memory: Option<Size>,
    /// New work disk size; disks only grow
    #[arg(long, value_name = "SIZE", value_parser = Size::parse)]
    pub disk_size: Option<Size>,
    /// Turn outbound NAT on (applies at the next start)
    #[arg(long, conflicts_with = "no_nat")]
    pub nat: bool,
    /// Turn outbound NAT off
    #[arg(long)]
    pub no_nat: bool,
}

/// Arguments of `vm ssh`.
#[derive(Debug, Args)]
pub struct SshArgs {
    /// VM by id, name or unique prefix
    #[arg(value_name = "VM")]
    pub vm: String,
    /// Command to run instead of a shell
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Arguments of `vm exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// VM by id, name or unique prefix
    #[arg(value_name = "VM")]
    pub vm: String,
    /// Re-sync the workspace first when the host repo moved since prepare
    #[arg(long)]
    pub auto_prepare: bool,
    /// Command to run in the workspace
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}
