//! `banger image …`: root filesystems VMs boot from.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::common::JsonFlag;

/// One line for the group.
pub const ABOUT: &str = "Manage the images VMs boot from";

/// What the group is for, the 80% command, and what comes next.
pub const LONG_ABOUT: &str = "\
Manage the images VMs boot from.

An image is a read-only root filesystem, the kernel it boots with, and the seed of the /root \
work disk. You rarely need this group: `vm create` and `vm run` pull the default image \
(debian-bookworm) on first use. To fetch one ahead of time: `banger image pull \
debian-bookworm`. Pulls take catalog names (built in, or `[[catalog]]` entries in config) \
or any OCI / Docker image reference: `banger image pull docker.io/library/debian:bookworm`.

Next: `banger vm create --image NAME` boots it; `banger image ls` shows what you have.";

/// Examples for the group.
pub const AFTER_HELP: &str = "\
Examples:
  banger image pull debian-bookworm
  banger image ls
  banger image catalog
  banger image promote web web-golden
  banger image register --name mine --rootfs ./rootfs.ext4 --kernel debian-cloud";

/// The `image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Fetch an image from the catalog or an OCI registry
    #[command(
        long_about = "Fetch an image from the catalog or an OCI registry.\n\n\
            REF is a catalog name: debian-bookworm (built from Debian packages), or a \
            [[catalog]] entry of your config; or an OCI / Docker image reference \
            (anything with '/', ':' or '@'): docker.io/library/debian:bookworm, \
            ghcr.io/org/app@sha256:…, localhost:5000/app:1. The layers are verified, \
            flattened and turned into an ext4 root filesystem with banger's agent; the \
            image boots with the default image's kernel. Credentials come from \
            ~/.docker/config.json (docker login, credHelpers, credsStore); plain HTTP only \
            for loopback and for insecure_registries in config.toml; the unpacked size is \
            capped by oci_max_unpacked_size (default 16G). The image must have an init and \
            sshd to boot as a VM.",
        after_help = "\
Examples:
  banger image pull debian-bookworm
  banger image pull docker.io/library/debian:bookworm
  banger image pull localhost:5000/team/app:1 --name app"
    )]
    Pull(PullArgs),
    /// Register an existing root filesystem and kernel as an image
    #[command(after_help = "\
Examples:
  banger image register --name mine --rootfs ./rootfs.ext4 --kernel debian-cloud")]
    Register(RegisterArgs),
    /// Turn a stopped VM's disks into a new image
    #[command(
        long_about = "Turn a stopped VM's disks into a new image.\n\n\
            The VM's root filesystem becomes the image's root filesystem and its /root the \
            image's work seed, so VMs created from the image start with everything installed \
            and written there. The VM is copied, not changed, and keeps working. Each VM of \
            the new image still gets its own SSH host key and machine id. The image boots with \
            the kernel of the VM's image. New VMs need a disk at least as large as the \
            source VM's (--disk-size).",
        after_help = "\
Examples:
  banger vm stop web
  banger image promote web web-golden
  banger vm create --image web-golden"
    )]
    Promote(PromoteArgs),
    /// List the images `image pull NAME` can fetch
    #[command(after_help = "\
Examples:
  banger image catalog
  banger image catalog --json")]
    Catalog(JsonFlag),
    /// List images
    #[command(
        visible_alias = "ls",
        after_help = "\
Examples:
  banger image ls
  banger image ls --json"
    )]
    List(JsonFlag),
    /// Show one image in detail
    #[command(after_help = "\
Examples:
  banger image show debian-bookworm
  banger image show debian-bookworm --json")]
    Show(ShowArgs),
    /// Delete images
    #[command(
        visible_alias = "rm",
        after_help = "\
Examples:
  banger image rm web-golden
  banger image rm -f web-g       web-g is only a prefix: delete it without asking"
    )]
    Delete(DeleteArgs),
    /// List warm snapshots (saved booted guests that creates restore from)
    #[command(
        long_about = "List warm snapshots.\n\n\
            A warm snapshot is a guest of one boot class (image, kernel, memory, vCPUs, VMM \
            and agent versions) saved right after it booted. Each shows its image (\"(deleted)\" \
            if the image is gone), its class key, the guest's memory and vCPUs, and the space \
            it takes on disk. Snapshots are removed with their image (`image rm`), and all \
            of them by `banger image cache prune --snapshots`.",
        after_help = "\
Examples:
  banger image snapshots
  banger image snapshots --json
  banger image cache prune --snapshots --dry-run"
    )]
    Snapshots(JsonFlag),
    /// Manage the OCI layer cache and warm snapshots
    #[command(
        subcommand,
        subcommand_required = true,
        arg_required_else_help = true,
        after_help = "\
Examples:
  banger image cache prune --dry-run
  banger image cache prune
  banger image cache prune --snapshots"
    )]
    Cache(CacheCommand),
}

/// Arguments of `image pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Catalog name (debian-bookworm) or OCI reference (docker.io/library/debian:bookworm)
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Save an OCI image under this name (default: from the reference, e.g. debian-bookworm)
    #[arg(long)]
    pub name: Option<String>,
}

/// Arguments of `image register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Name of the new image
    #[arg(long)]
    pub name: String,
    /// ext4 root filesystem file
    #[arg(long, value_name = "FILE")]
    pub rootfs: PathBuf,
    /// Kernel to boot with (a kernel name)
    #[arg(long, value_name = "KERNEL")]
    pub kernel: String,
    /// ext4 file to seed each VM's /root with
    #[arg(long, value_name = "FILE")]
    pub work_seed: Option<PathBuf>,
}

/// Arguments of `image promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The stopped VM whose disks become the image
    #[arg(value_name = "VM")]
    pub vm: String,
    /// Name of the new image
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// Arguments of `image show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Image by id or name
    #[arg(value_name = "IMAGE")]
    pub image: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// Arguments of `image delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Images by id, name or unique prefix
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
    /// Delete an image matched only by a prefix of its name or id without asking
    #[arg(short, long)]
    pub force: bool,
}

/// The `image cache` subcommands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove cached OCI layer blobs (images already pulled keep working)
    #[command(
        long_about = "Remove cached OCI layer blobs.\n\n\
            Pulled layers are kept so a second pull of an image sharing them downloads \
            nothing; images are self-contained and keep working without them. The prune \
            waits for a running pull to finish, then empties the cache in one step.\n\n\
            Warm snapshots (`banger image snapshots`) are kept unless --snapshots is given; \
            without them the next create of each boot class boots cold and saves a new one.",
        after_help = "\
Examples:
  banger image cache prune --dry-run     say how much would be freed
  banger image cache prune
  banger image cache prune --snapshots   also remove every warm snapshot"
    )]
    Prune(PruneArgs),
}

/// Arguments of `image cache prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Only report what would be removed
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove every warm snapshot (a plain prune keeps them)
    #[arg(long)]
    pub snapshots: bool,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Group};

    use super::{CacheCommand, ImageCommand};

    fn image(args: &[&str]) -> ImageCommand {
        let cli = Cli::try_parse_from([&["banger", "image"], args].concat()).expect("parses");
        match cli.command {
            Group::Image(cmd) => cmd,
            other => panic!("not an image command: {other:?}"),
        }
    }

    #[test]
    fn snapshots_and_prune_flags_parse() {
        assert!(matches!(image(&["snapshots"]), ImageCommand::Snapshots(j) if !j.json));
        assert!(matches!(image(&["snapshots", "--json"]), ImageCommand::Snapshots(j) if j.json));
        match image(&["cache", "prune", "--snapshots", "--dry-run"]) {
            ImageCommand::Cache(CacheCommand::Prune(p)) => assert!(p.snapshots && p.dry_run),
            other => panic!("{other:?}"),
        }
        match image(&["cache", "prune"]) {
            ImageCommand::Cache(CacheCommand::Prune(p)) => assert!(!p.snapshots && !p.dry_run),
            other => panic!("{other:?}"),
        }
    }
}
