//! Guest artifacts for banger, built from Debian packages on the host.
//!
//! banger's default image (`debian-bookworm`) and kernel (`debian-cloud`) must be obtainable
//! with no banger-hosted service (SPEC §8). This crate turns the declarative recipes of the
//! embedded [`catalog`] into files the VMMs can boot:
//!
//! - [`kernel::build_kernel`]: Debian's cloud kernel package → an uncompressed `vmlinux` ELF
//!   (what Firecracker boots, extracted from the bzImage by [`bzimage`]), the bzImage itself,
//!   the modules tree and an initramfs ([`initramfs`]) that loads the virtio drivers the cloud
//!   kernel builds as modules, mounts `root=` and hands over to the real init;
//! - [`image::build_image`]: `debootstrap` ([`debootstrap`]) → a read-only `rootfs.ext4` and a
//!   `work-seed.ext4` holding the image's `/root` ([`ext4`]).
//!
//! Both are cached by a manifest written last: a second call with a complete manifest for the
//! same recipe is a no-op. Every external tool runs through [`std::process::Command`] with a fixed
//! argument vector; strings that reach an argument vector (package names, suites, mirror URLs,
//! labels) are validated first and paths must be absolute, so nothing can turn into an option.
//!
//! `docs/guest-boot.md` records the measurements behind these choices.
#![deny(missing_docs)]

pub mod apt;
pub mod bzimage;
pub mod catalog;
mod cmd;
pub mod cpio;
pub mod debootstrap;
pub mod elf;
pub mod ext4;
mod fsutil;
pub mod guest_init;
pub mod image;
pub mod initramfs;
pub mod kernel;
pub mod mirror;
pub mod modules;
pub mod oci;
pub mod ssh_bundle;

pub use catalog::{Catalog, CatalogError, ImageRecipe, KernelRecipe};
pub use cmd::CommandError;
pub use image::{BuildImageError, ExtraFile, ImageArtifact, build_image};
pub use kernel::{BuildKernelError, KernelArtifact, build_kernel};
pub use mirror::{Mirror, MirrorError};

/// A progress event from a long-running build, forwarded to the caller's callback.
///
/// Stages are short fixed phrases (`"debootstrap"`, `"extract vmlinux"`); lines are raw output
/// of the tool running in the current stage, for a log or a verbose display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A new stage begins.
    Stage(&'a str),
    /// One line of output from the tool running in the current stage.
    Line(&'a str),
}

/// The callback type every builder takes.
pub type ProgressFn<'a> = dyn FnMut(Progress<'_>) + 'a;
