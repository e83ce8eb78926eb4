//! The top of the command tree: groups, the quick start and the exit codes in `--help`.
//!
//! [`command`] builds the clap command and, when the caller could resolve them, writes this
//! host's resolved VM defaults into the help of the spec flags of `vm create` and `vm run`, so
//! `--help` shows what a create would actually use.

use std::sync::LazyLock;

use banger_model::ResolvedSpec;
use clap::{CommandFactory, Parser, Subcommand};

use crate::args::common::JsonFlag;
use crate::args::completion::{CompleteArgs, CompletionArgs};
use crate::args::daemon::{self, DaemonCommand};
use crate::args::doctor::DoctorArgs;
use crate::args::image::{self, ImageCommand};
use crate::args::kernel::{self, KernelCommand};
use crate::args::ssh_config::SshConfigArgs;
use crate::args::system::{self, SystemCommand};
use crate::args::update::UpdateArgs;
use crate::args::version::VersionArgs;
use crate::args::vm::{self, VmCommand};

/// `v0.1.0 (commit 1a2b3c4d, built …)`: clap prefixes the program name.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let line = banger_proto::build_info!().version_line("banger");
    line.strip_prefix("banger ").unwrap_or(&line).to_owned()
});

const LONG_ABOUT: &str = "\
Disposable or long-lived Linux microVMs with your repository inside, in one command.

banger boots microVMs with Firecracker (or QEMU where Firecracker cannot run) on this host. \
A background daemon, bangerd, does the work; the CLI starts it on demand.";

const AFTER_HELP: &str = "\
Quick start:
  banger vm run -- echo hi          boot a VM and run one command in it
  banger vm create --name web       create a long-lived VM named web
  banger vm ssh web                 open a shell in it

Examples:
  banger vm run .                   this repo in a VM, and a shell
  banger vm ls                      list your VMs
  banger doctor                     check that this host can run VMs
  banger completion bash > ~/.local/share/bash-completion/completions/banger

";

/// The parsed command line.
#[derive(Debug, Parser)]
#[command(
    name = "banger",
    bin_name = "banger",
    version = VERSION.as_str(),
    about = "Disposable or long-lived Linux microVMs with your repository inside",
    long_about = LONG_ABOUT,
    after_help = after_help(),
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// The group or command to run.
    #[command(subcommand)]
    pub command: Group,
}

fn after_help() -> String {
    format!("{AFTER_HELP}{}", crate::exit::HELP)
}

/// Top-level groups and commands.
#[derive(Debug, Subcommand)]
pub enum Group {
    /// Create, run and manage microVMs
    #[command(
        subcommand,
        about = vm::ABOUT,
        long_about = vm::LONG_ABOUT,
        after_help = vm::AFTER_HELP,
        subcommand_required = true,
        arg_required_else_help = true
    )]
    Vm(VmCommand),
    /// List VMs (the same as `banger vm list`)
    #[command(after_help = "\
Examples:
  banger ps
  banger ps --json | jq -r '.[].name'")]
    Ps(JsonFlag),
    /// Manage the images VMs boot from
    #[command(
        subcommand,
        about = image::ABOUT,
        long_about = image::LONG_ABOUT,
        after_help = image::AFTER_HELP,
        subcommand_required = true,
        arg_required_else_help = true
    )]
    Image(ImageCommand),
    /// Manage guest kernels
    #[command(
        subcommand,
        about = kernel::ABOUT,
        long_about = kernel::LONG_ABOUT,
        after_help = kernel::AFTER_HELP,
        subcommand_required = true,
        arg_required_else_help = true
    )]
    Kernel(KernelCommand),
    /// Inspect and control bangerd
    #[command(
        subcommand,
        about = daemon::ABOUT,
        long_about = daemon::LONG_ABOUT,
        after_help = daemon::AFTER_HELP,
        subcommand_required = true,
        arg_required_else_help = true
    )]
    Daemon(DaemonCommand),
    /// Check that this host can run VMs, and say how to fix what is missing
    #[command(
        long_about = "Check that this host can run VMs, and say how to fix what is missing.\n\n\
            Checks KVM (and PVM-only KVM), the VMMs and their versions and which one `vmm` \
            picks and why, the jailer, vhost-vsock, the bridge, NAT tooling, the DNS listener, \
            the default image and kernel, disk and image-build tools, the overlay strategy, \
            the store (opened read-only), the VM defaults and where each comes from, the \
            ssh_config include, the guest agent, and whether banger, bangerd and a running \
            daemon come from one build. Features not built yet (jailer, NAT, DNS) are listed \
            as info, not passed off as working.\n\n\
            A healthy host prints one line; otherwise only warnings and failures are shown, \
            each with its fix, and a summary (-v shows every check). --json prints every \
            check as an array of {name, status, detail, fix}; status is ok, info, warn or \
            fail. Exits 9 when a check fails, 0 otherwise.\n\n\
            It creates and changes nothing, and never starts the daemon: the checks run in \
            `bangerd doctor --json`, with the bangerd that banger would start.\n\n\
            Next: fix what it reports, then `banger vm run -- echo hi`.",
        after_help = "\
Examples:
  banger doctor
  banger doctor -v
  banger doctor --json | jq -r '.[] | select(.status == \"fail\") | .fix'"
    )]
    Doctor(DoctorArgs),
    /// Let plain `ssh NAME.vm` reach your VMs
    #[command(
        long_about = "Let plain `ssh NAME.vm` reach your VMs.\n\n\
            Prints the path of banger's ssh_config and the Include line that uses it. \
            --install adds a marker-fenced Include block to ~/.ssh/config (idempotent); \
            --uninstall removes it. Nothing else ever writes to ~/.ssh/config.\n\n\
            Next: `ssh web.vm`.",
        after_help = "\
Examples:
  banger ssh-config
  banger ssh-config --install && ssh web.vm
  banger ssh-config --uninstall"
    )]
    SshConfig(SshConfigArgs),
    /// Install banger as system services (root)
    #[command(
        subcommand,
        about = system::ABOUT,
        long_about = system::LONG_ABOUT,
        after_help = system::AFTER_HELP,
        subcommand_required = true,
        arg_required_else_help = true
    )]
    System(SystemCommand),
    /// Update a system install to a newer signed release (root), rolling back on failure
    #[command(
        long_about = "Update a system install to a newer signed release, rolling back on \
            failure.\n\n\
            Reads the release manifest and picks the latest stable release (or --to VERSION). \
            --check only says whether one is newer and needs no root. Otherwise, as root: \
            downloads SHA256SUMS, its signature and the tarball into /var/cache/banger/updates \
            (with progress; a cut-off download starts again cleanly), verifies the signature \
            with the release key built into this banger, then every file's SHA-256, stages \
            the binaries, and checks that the staged `banger --version` names the release and \
            that the staged `bangerd --check-migrations --system` accepts this install's \
            state. It refuses while the daemon runs operations (--force updates anyway). \
            --dry-run stops here, having changed nothing.\n\n\
            Only then are the binaries in /usr/local swapped (the old ones are kept as \
            *.previous), bangerd-root.service and bangerd.service restarted, the daemon \
            waited for until it answers with the new version, and the new `banger doctor` \
            run; /etc/banger/install.toml then records the new version. If anything after the \
            swap fails, the previous binaries are put back and restarted, and the error ends \
            with \"(rolled back to VERSION)\". Running VMs keep running throughout.\n\n\
            A build without a real release key (the placeholder) refuses every update and \
            says so; install new releases with install.sh then.",
        after_help = "\
Examples:
  banger update --check
  sudo banger update --dry-run
  sudo banger update
  sudo banger update --to v0.2.0"
    )]
    Update(UpdateArgs),
    /// Print a shell completion script
    #[command(
        long_about = "Print a shell completion script.\n\n\
            Writes the script to stdout. Besides commands and flags, the script completes \
            the names of your VMs, images and kernels (and catalog names for `image pull` \
            and `--image`) by asking a daemon that is already running; completion never \
            starts one, and without one it offers no names. Install it where your shell \
            looks for completions (see the examples).",
        after_help = "\
Examples:
  banger completion bash > ~/.local/share/bash-completion/completions/banger
  banger completion zsh > \"${fpath[1]}/_banger\"
  banger completion fish > ~/.config/fish/completions/banger.fish
  banger completion powershell >> $PROFILE"
    )]
    Completion(CompletionArgs),
    /// Live names for the completion scripts (never starts the daemon)
    #[command(name = "__complete", hide = true)]
    Complete(CompleteArgs),
    /// Print version, commit and build time
    #[command(after_help = "\
Examples:
  banger version
  banger version --json")]
    Version(VersionArgs),
}

/// The clap command; `defaults`, when known, is shown in the help of the spec flags.
pub fn command(defaults: Option<&ResolvedSpec>) -> clap::Command {
    let cmd = Cli::command();
    let Some(r) = defaults else {
        return cmd;
    };
    let spec = r.spec;
    let vcpu = format!("Virtual CPUs [here: {} ({})]", spec.vcpu, r.vcpu_from);
    let memory = format!(
        "Guest memory, e.g. 512M or 2G; a bare number means MiB [here: {} MiB ({})]",
        spec.memory_mib, r.memory_from
    );
    let disk = format!(
        "Size of the work disk mounted at /root [here: {} ({})]",
        spec.disk_size, r.disk_from
    );
    let nat = format!(
        "Outbound network access for the VM, masqueraded through the host [here: {} ({})]",
        if spec.nat { "on" } else { "off" },
        r.nat_from,
    );
    cmd.mut_subcommand("vm", |vm| {
        ["create", "run"].into_iter().fold(vm, |vm, name| {
            vm.mut_subcommand(name, |c| {
                c.mut_arg("vcpu", |a| a.help(vcpu.clone()))
                    .mut_arg("memory", |a| a.help(memory.clone()))
                    .mut_arg("disk_size", |a| a.help(disk.clone()))
                    .mut_arg("nat", |a| a.help(nat.clone()))
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_model::{Config, HostFacts, SpecOverrides};

    #[test]
    fn command_tree_is_consistent() {
        command(None).debug_assert();
    }

    #[test]
    fn help_shows_resolved_defaults() {
        let host = HostFacts {
            cpus: Some(8),
            mem_bytes: Some(16 << 30),
        };
        let r = ResolvedSpec::resolve(
            SpecOverrides::default(),
            &Config::default().vm_defaults,
            host,
        );
        let mut cmd = command(Some(&r));
        let vm = cmd.find_subcommand_mut("vm").unwrap();
        let create = vm.find_subcommand_mut("create").unwrap();
        let help = create.render_long_help().to_string();
        assert!(help.contains("[here: 2 (auto)]"), "{help}");
        assert!(help.contains("[here: 2048 MiB (auto)]"), "{help}");
        assert!(help.contains("[here: 8G (builtin)]"), "{help}");
    }

    #[test]
    fn version_has_no_program_prefix() {
        assert!(!VERSION.starts_with("banger"), "{}", *VERSION);
        assert!(VERSION.contains("(commit "), "{}", *VERSION);
    }
}
