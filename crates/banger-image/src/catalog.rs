//! Declarative recipes for the images and kernels banger can build itself.
//!
//! The built-in catalog is a TOML document embedded in the binary (`catalog.toml`), so the
//! default image and kernel are reproducible from Debian's archive alone. Configuration may add
//! or replace entries with the same schema through [`Catalog::merge`]. Every string in a recipe
//! ends up in an argument vector (`debootstrap`, `apt-get`) or a file banger writes, so
//! [`Catalog::parse`] validates each one against a strict character set: a recipe can never
//! smuggle an option (`-o…`) or a path into a tool.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The embedded catalog.
const BUILTIN: &str = include_str!("catalog.toml");

/// How to build an image from Debian packages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRecipe {
    /// Catalog name (`debian-bookworm`).
    pub name: String,
    /// Debian suite passed to debootstrap (`bookworm`).
    pub suite: String,
    /// Debian architecture (`amd64`).
    pub arch: String,
    /// debootstrap variant (`minbase` or `buildd`).
    pub variant: String,
    /// Archive components (`main`).
    pub components: Vec<String>,
    /// Extra packages (`--include`).
    pub packages: Vec<String>,
    /// Name of the kernel recipe the image boots with.
    pub kernel: String,
    /// Free space added to the root filesystem, MiB.
    pub rootfs_headroom_mib: u64,
}

/// How to build a kernel (vmlinux + initramfs) from a Debian kernel package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelRecipe {
    /// Catalog name (`debian-cloud`).
    pub name: String,
    /// Debian suite the package comes from (`bookworm`); its `-updates` and `-security`
    /// suites are searched too.
    pub suite: String,
    /// Debian architecture (`amd64`).
    pub arch: String,
    /// Kernel meta package (`linux-image-cloud-amd64`).
    pub package: String,
    /// Package providing a static `busybox` for the initramfs.
    pub busybox_package: String,
    /// Modules the initramfs loads (with their dependencies).
    pub modules: Vec<String>,
}

/// The set of known recipes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Image recipes.
    #[serde(default, rename = "image")]
    pub images: Vec<ImageRecipe>,
    /// Kernel recipes.
    #[serde(default, rename = "kernel")]
    pub kernels: Vec<KernelRecipe>,
}

/// A catalog document is malformed or holds an invalid recipe.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Not valid TOML for the catalog schema.
    #[error("catalog is not valid")]
    Parse(#[source] toml::de::Error),
    /// A field holds characters outside its allowed set.
    #[error("catalog entry `{entry}`: invalid {field} `{value}`")]
    InvalidField {
        /// Recipe name.
        entry: String,
        /// Field name.
        field: &'static str,
        /// Offending value.
        value: String,
    },
    /// Two recipes of the same kind share a name.
    #[error("catalog has two entries named `{0}`")]
    Duplicate(String),
    /// An image names a kernel the catalog does not have.
    #[error("image `{image}` refers to unknown kernel `{kernel}`")]
    UnknownKernel {
        /// Image name.
        image: String,
        /// Kernel name.
        kernel: String,
    },
}

impl Catalog {
    /// The catalog embedded in the binary.
    pub fn builtin() -> Result<Self, CatalogError> {
        Self::parse(BUILTIN)
    }

    /// Parses and validates a catalog document.
    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let catalog: Catalog = toml::from_str(text).map_err(CatalogError::Parse)?;
        catalog.validate()?;
        Ok(catalog)
    }

    /// Adds `other`'s recipes, replacing same-named ones, and validates the result.
    pub fn merge(mut self, other: Catalog) -> Result<Self, CatalogError> {
        for image in other.images {
            self.images.retain(|i| i.name != image.name);
            self.images.push(image);
        }
        for kernel in other.kernels {
            self.kernels.retain(|k| k.name != kernel.name);
            self.kernels.push(kernel);
        }
        self.validate()?;
        Ok(self)
    }

    /// The image recipe called `name`.
    pub fn image(&self, name: &str) -> Option<&ImageRecipe> {
        self.images.iter().find(|i| i.name == name)
    }

    /// The kernel recipe called `name`.
    pub fn kernel(&self, name: &str) -> Option<&KernelRecipe> {
        self.kernels.iter().find(|k| k.name == name)
    }

    fn validate(&self) -> Result<(), CatalogError> {
        let mut seen = std::collections::BTreeSet::new();
        for k in &self.kernels {
            k.validate()?;
            if !seen.insert(("kernel", k.name.as_str())) {
                return Err(CatalogError::Duplicate(k.name.clone()));
            }
        }
        for i in &self.images {
            i.validate()?;
            if !seen.insert(("image", i.name.as_str())) {
                return Err(CatalogError::Duplicate(i.name.clone()));
            }
            if self.kernel(&i.kernel).is_none() {
                return Err(CatalogError::UnknownKernel {
                    image: i.name.clone(),
                    kernel: i.kernel.clone(),
                });
            }
        }
        Ok(())
    }
}

impl ImageRecipe {
    fn validate(&self) -> Result<(), CatalogError> {
        let e = &self.name;
        check(e, "name", &self.name, is_name)?;
        check(e, "suite", &self.suite, is_suite)?;
        check(e, "arch", &self.arch, is_suite)?;
        check(e, "kernel", &self.kernel, is_name)?;
        if !matches!(self.variant.as_str(), "minbase" | "buildd") {
            return Err(invalid(e, "variant", &self.variant));
        }
        if self.components.is_empty() {
            return Err(invalid(e, "components", ""));
        }
        for c in &self.components {
            check(e, "component", c, is_suite)?;
        }
        for p in &self.packages {
            check(e, "package", p, is_package)?;
        }
        Ok(())
    }

    /// A stable digest of the recipe, recorded in manifests to detect a changed recipe.
    pub fn digest(&self) -> String {
        digest_of(self)
    }
}

impl KernelRecipe {
    fn validate(&self) -> Result<(), CatalogError> {
        let e = &self.name;
        check(e, "name", &self.name, is_name)?;
        check(e, "suite", &self.suite, is_suite)?;
        check(e, "arch", &self.arch, is_suite)?;
        check(e, "package", &self.package, is_package)?;
        check(e, "busybox_package", &self.busybox_package, is_package)?;
        for m in &self.modules {
            check(e, "module", m, is_module)?;
        }
        Ok(())
    }

    /// A stable digest of the recipe, recorded in manifests to detect a changed recipe.
    pub fn digest(&self) -> String {
        digest_of(self)
    }
}

fn digest_of(value: &impl Serialize) -> String {
    // Serializing plain strings, lists and integers cannot fail; an empty document would only
    // make the digest constant, never wrong in a way that loses data.
    let json = serde_json::to_vec(value).unwrap_or_default();
    hex(&Sha256::digest(&json))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn invalid(entry: &str, field: &'static str, value: &str) -> CatalogError {
    CatalogError::InvalidField {
        entry: entry.to_owned(),
        field,
        value: value.to_owned(),
    }
}

fn check(
    entry: &str,
    field: &'static str,
    value: &str,
    ok: fn(&str) -> bool,
) -> Result<(), CatalogError> {
    if ok(value) {
        Ok(())
    } else {
        Err(invalid(entry, field, value))
    }
}

fn starts_alnum(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Catalog names: `[a-z0-9][a-z0-9.-]*`, at most 64 bytes.
pub(crate) fn is_name(s: &str) -> bool {
    s.len() <= 64
        && starts_alnum(s)
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// Suites, components, architectures: `[a-z0-9][a-z0-9-]*`.
pub(crate) fn is_suite(s: &str) -> bool {
    s.len() <= 64
        && starts_alnum(s)
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Debian package names (Policy §5.6.1): `[a-z0-9][a-z0-9+.-]+`.
pub(crate) fn is_package(s: &str) -> bool {
    s.len() >= 2
        && s.len() <= 128
        && starts_alnum(s)
        && s.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '+' || c == '-' || c == '.'
        })
}

/// Kernel module names: `[A-Za-z0-9_-]+`.
pub(crate) fn is_module(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses_and_has_defaults() {
        let c = Catalog::builtin().expect("builtin catalog is valid");
        let img = c.image("debian-bookworm").expect("default image");
        assert_eq!(img.suite, "bookworm");
        assert_eq!(img.variant, "minbase");
        assert!(img.packages.iter().any(|p| p == "openssh-server"));
        let k = c.kernel(&img.kernel).expect("its kernel");
        assert_eq!(k.package, "linux-image-cloud-amd64");
        assert!(k.modules.iter().any(|m| m == "virtio_blk"));
    }

    #[test]
    fn rejects_option_like_package() {
        let text = BUILTIN.replace("\"git\"", "\"-oDebug=1\"");
        let err = Catalog::parse(&text).expect_err("must reject");
        assert!(
            matches!(
                err,
                CatalogError::InvalidField {
                    field: "package",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_unknown_kernel_and_unknown_field() {
        let text = BUILTIN.replace("kernel = \"debian-cloud\"", "kernel = \"nope\"");
        assert!(matches!(
            Catalog::parse(&text),
            Err(CatalogError::UnknownKernel { .. })
        ));
        let text = format!("{BUILTIN}\n[[kernel]]\nname = \"x\"\nbogus = 1\n");
        assert!(matches!(Catalog::parse(&text), Err(CatalogError::Parse(_))));
    }

    #[test]
    fn merge_replaces_same_name_and_rejects_duplicates() {
        let base = Catalog::builtin().expect("builtin");
        let mut img = base.image("debian-bookworm").expect("image").clone();
        img.packages.push("curl".into());
        let merged = base
            .clone()
            .merge(Catalog {
                images: vec![img.clone()],
                kernels: vec![],
            })
            .expect("merge");
        assert_eq!(merged.images.len(), 1);
        assert_eq!(merged.image("debian-bookworm"), Some(&img));
        assert_ne!(
            img.digest(),
            base.image("debian-bookworm").expect("image").digest()
        );
        let text = format!(
            "{BUILTIN}\n{}",
            &BUILTIN[BUILTIN.find("[[image]]").unwrap_or(0)..]
        );
        assert!(matches!(
            Catalog::parse(&text),
            Err(CatalogError::Duplicate(_))
        ));
    }

    #[test]
    fn character_classes() {
        assert!(is_package("linux-image-6.1.0-56-cloud-amd64"));
        assert!(is_package("libstdc++6"));
        assert!(!is_package("Foo"));
        assert!(!is_package("a b"));
        assert!(is_module("virtio-rng"));
        assert!(!is_module("../x"));
        assert!(is_suite("bookworm-security"));
        assert!(!is_suite("bookworm/updates"));
        assert!(is_name("debian-bookworm"));
        assert!(!is_name("-x"));
    }
}
