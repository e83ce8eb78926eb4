//! Checks of what a first `vm create` boots: the default image and its kernel (registered
//! here, or pullable from a config bundle or the built-in catalog), and the tools that build
//! the catalog's image and kernel on this host.
//!
//! An image that is not pulled yet is fine: `vm create` pulls it on first use. Only an image
//! that is neither here nor pullable fails.

use banger_model::{ImageRecord, KernelRecord};
use banger_proto::Check;

use super::probe::Found;

/// Programs the catalog builds run (busybox and the initramfs come from Debian packages and
/// banger itself, so the host needs neither `busybox-static` nor `cpio`).
pub const BUILD_TOOLS: &[&str] = &["debootstrap", "dpkg-deb", "apt-get"];

/// What this group looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// `default_image_name` (or the built-in default).
    pub name: String,
    /// The image registered under that name, if any.
    pub local: Option<ImageRecord>,
    /// A `[[catalog]]` bundle of that name in config.
    pub bundle: bool,
    /// The built-in catalog has a recipe of that name; its kernel's name.
    pub recipe_kernel: Option<String>,
    /// Kernel recipe names in the built-in catalog.
    pub catalog_kernels: Vec<String>,
    /// The kernels registered here.
    pub kernels: Vec<KernelRecord>,
}

/// Where the default image will come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Registered here.
    Local,
    /// Downloaded from a config bundle on first use.
    Bundle,
    /// Built from the built-in catalog on first use.
    Catalog,
    /// Nowhere.
    None,
}

impl ImageFacts {
    /// Where the default image comes from (the order `vm create` tries).
    pub fn source(&self) -> Source {
        if self.local.as_ref().is_some_and(|i| i.rootfs_path.exists()) {
            Source::Local
        } else if self.bundle {
            Source::Bundle
        } else if self.recipe_kernel.is_some() {
            Source::Catalog
        } else {
            Source::None
        }
    }

    /// The kernel the default image boots with, when known.
    fn kernel_name(&self) -> Option<&str> {
        match self.source() {
            Source::Local => self.local.as_ref().and_then(|i| i.kernel_name.as_deref()),
            Source::Catalog => self.recipe_kernel.as_deref(),
            Source::Bundle | Source::None => None,
        }
    }

    /// Whether a first create would build something from Debian packages on this host.
    pub fn builds_on_first_use(&self) -> bool {
        match self.source() {
            Source::Catalog => true,
            Source::Local => self.kernel_name().is_some_and(|k| {
                !self.kernel_here(k) && self.catalog_kernels.iter().any(|c| c == k)
            }),
            Source::Bundle | Source::None => false,
        }
    }

    fn kernel_here(&self, name: &str) -> bool {
        self.kernels
            .iter()
            .any(|k| k.name == name && k.vmlinux_path.exists())
    }
}

/// `default-image`: registered, pullable, or nowhere.
pub fn default_image(f: &ImageFacts) -> Check {
    let name = &f.name;
    match f.source() {
        Source::Local => {
            let id = f.local.as_ref().map_or("", |i| i.id.as_str());
            Check::ok("default-image", format!("{name} is registered (id {id})"))
        }
        Source::Bundle => Check::ok(
            "default-image",
            format!("{name} is not pulled yet; the first `vm create` downloads its config bundle"),
        ),
        Source::Catalog => Check::ok(
            "default-image",
            format!(
                "{name} is not pulled yet; the first `vm create` builds it from the built-in \
                 catalog (about a minute)"
            ),
        ),
        Source::None => Check::fail(
            "default-image",
            format!("{name} is not registered, and neither a config bundle nor the catalog has it"),
            "set default_image_name to a registered image (`banger image list`) or a catalog \
             name, or register one with `banger image register`",
        ),
    }
}

/// `default-kernel`: the kernel the default image boots with.
pub fn default_kernel(f: &ImageFacts) -> Check {
    if f.source() == Source::Bundle {
        return Check::ok("default-kernel", "comes with the default image's bundle");
    }
    let Some(kernel) = f.kernel_name() else {
        return match f.source() {
            Source::Local => Check::fail(
                "default-kernel",
                format!("image {} names no kernel", f.name),
                "register the image again with --kernel NAME",
            ),
            _ => Check::info("default-kernel", "unknown until the default image exists"),
        };
    };
    if f.kernel_here(kernel) {
        Check::ok("default-kernel", format!("{kernel} is registered"))
    } else if f.catalog_kernels.iter().any(|c| c == kernel) {
        Check::ok(
            "default-kernel",
            format!(
                "{kernel} is not pulled yet; it is built from the built-in catalog on first use"
            ),
        )
    } else {
        Check::fail(
            "default-kernel",
            format!(
                "{kernel} (the default image's kernel) is not registered and not in the catalog"
            ),
            format!("register it: `banger kernel register {kernel} --vmlinux FILE --initrd FILE`"),
        )
    }
}

/// `image-tools`: what building the catalog's image and kernel runs, and whether that matters.
pub fn image_tools(tools: &[(&'static str, Found)], needed: bool) -> Check {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(_, f)| *f == Found::Missing)
        .map(|(n, _)| *n)
        .collect();
    let names: Vec<&str> = tools.iter().map(|(n, _)| *n).collect();
    if missing.is_empty() {
        return Check::ok(
            "image-tools",
            format!(
                "{} found (busybox and the initramfs come from Debian packages and banger: no \
                 busybox-static or cpio needed)",
                names.join(", ")
            ),
        );
    }
    let detail = format!("missing: {}", missing.join(", "));
    let fix = "install them: `sudo apt install debootstrap dpkg apt` (Debian)";
    if needed {
        Check::warn(
            "image-tools",
            format!("{detail}; the first `vm create` builds the default image or kernel with them"),
            fix,
        )
    } else {
        Check::info(
            "image-tools",
            format!("{detail}; only needed to build catalog images and kernels"),
        )
        .with_fix(fix)
    }
}

/// `ssh-bundle`: whether banger can bring OpenSSH into images that have none (from the host's
/// programs; `files` is the bundle's file count, or why it cannot be made). Images with their
/// own sshd do not need it, so a problem is a warning.
pub fn ssh_bundle(files: &Result<usize, String>) -> Check {
    match files {
        Ok(n) => Check::ok(
            "ssh-bundle",
            format!("images without sshd get the host's OpenSSH ({n} files with their loader)"),
        ),
        Err(e) => Check::warn(
            "ssh-bundle",
            format!("images without sshd cannot be pulled: {e}"),
            "install openssh-server and openssh-client on the host (banger only copies their \
             binaries; `systemctl disable --now ssh` if you want no host sshd)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_proto::CheckStatus::{Fail, Info, Ok, Warn};
    use std::path::PathBuf;

    fn facts() -> ImageFacts {
        ImageFacts {
            name: "debian-bookworm".into(),
            local: None,
            bundle: false,
            recipe_kernel: Some("debian-cloud".into()),
            catalog_kernels: vec!["debian-cloud".into()],
            kernels: Vec::new(),
        }
    }

    fn image(rootfs: PathBuf, kernel: Option<&str>) -> ImageRecord {
        ImageRecord {
            id: "abcd".into(),
            name: "debian-bookworm".into(),
            source: "catalog".into(),
            digest: None,
            rootfs_path: rootfs,
            work_seed_path: None,
            kernel_name: kernel.map(str::to_owned),
            created_at: "2026-01-01T00:00:00Z".into(),
            oci_config: None,
        }
    }

    fn kernel(name: &str, vmlinux: PathBuf) -> KernelRecord {
        KernelRecord {
            id: "k1".into(),
            name: name.into(),
            version: None,
            source: "catalog".into(),
            vmlinux_path: vmlinux,
            initrd_path: None,
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn catalog_image_not_pulled_is_fine() {
        let f = facts();
        assert_eq!(f.source(), Source::Catalog);
        let c = default_image(&f);
        assert_eq!(c.status, Ok);
        assert!(c.detail.contains("not pulled yet"), "{}", c.detail);
        let k = default_kernel(&f);
        assert_eq!(k.status, Ok);
        assert!(
            k.detail.starts_with("debian-cloud is not pulled yet"),
            "{}",
            k.detail
        );
        assert!(f.builds_on_first_use());
    }

    #[test]
    fn registered_image_and_kernel_are_ok() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        let f = ImageFacts {
            local: Some(image(file.clone(), Some("mine"))),
            kernels: vec![kernel("mine", file)],
            recipe_kernel: None,
            ..facts()
        };
        assert_eq!(f.source(), Source::Local);
        assert!(default_image(&f).detail.contains("registered (id abcd)"));
        assert_eq!(default_kernel(&f).detail, "mine is registered");
        assert!(!f.builds_on_first_use());

        let lost = ImageFacts {
            kernels: Vec::new(),
            ..f.clone()
        };
        assert_eq!(default_kernel(&lost).status, Fail);
        let no_kernel = ImageFacts {
            local: Some(image(dir.path().join("f"), None)),
            ..f
        };
        assert_eq!(default_kernel(&no_kernel).status, Fail);
    }

    #[test]
    fn unknown_image_fails_and_bundles_are_pullable() {
        let f = ImageFacts {
            name: "nope".into(),
            recipe_kernel: None,
            ..facts()
        };
        assert_eq!(default_image(&f).status, Fail);
        assert_eq!(default_kernel(&f).status, Info);
        // A record whose files are gone counts as not here.
        let gone = ImageFacts {
            local: Some(image(
                PathBuf::from("/nowhere/rootfs.ext4"),
                Some("debian-cloud"),
            )),
            ..facts()
        };
        assert_eq!(gone.source(), Source::Catalog);
        let bundle = ImageFacts { bundle: true, ..f };
        assert_eq!(default_image(&bundle).status, Ok);
        assert_eq!(default_kernel(&bundle).status, Ok);
        assert!(!bundle.builds_on_first_use());
    }

    #[test]
    fn build_tools_matter_only_when_a_build_is_ahead() {
        let found = |n: &'static str| (n, Found::Path(PathBuf::from(format!("/usr/bin/{n}"))));
        let all: Vec<_> = BUILD_TOOLS.iter().map(|n| found(n)).collect();
        assert_eq!(image_tools(&all, true).status, Ok);
        let mut some = all;
        some[0] = ("debootstrap", Found::Missing);
        let c = image_tools(&some, true);
        assert_eq!(c.status, Warn);
        assert!(c.detail.starts_with("missing: debootstrap"), "{}", c.detail);
        assert_eq!(image_tools(&some, false).status, Info);
    }

    #[test]
    fn ssh_bundle_ok_or_warns_with_the_fix() {
        let ok = ssh_bundle(&std::result::Result::Ok(31));
        assert_eq!(ok.status, Ok);
        assert!(ok.detail.contains("31 files"), "{}", ok.detail);
        let w = ssh_bundle(&Err("/usr/sbin/sshd is missing".into()));
        assert_eq!(w.status, Warn);
        assert!(w.detail.contains("/usr/sbin/sshd is missing"));
        assert!(w.fix.unwrap().contains("openssh-server"));
    }
}
