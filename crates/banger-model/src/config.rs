//! `config.toml`: the user's settings.
//!
//! Parsing is strict (unknown keys are errors, so a typo never silently does nothing) and
//! validation errors name the offending entry, e.g. `file_sync[2].guest`. A missing file means
//! all defaults; the binaries decide where the file lives (see [`crate::layout`]).

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::size::Size;

/// Default image used by `vm create`/`vm run` without `--image`.
pub const DEFAULT_IMAGE_NAME: &str = "debian-bookworm";

/// Which VMM boots guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmmChoice {
    /// Firecracker when it and a usable `/dev/kvm` are present, QEMU otherwise.
    #[default]
    Auto,
    /// Always Firecracker.
    Firecracker,
    /// Always QEMU.
    Qemu,
}

/// `[vm_defaults]`: per-field defaults for new VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmDefaultsConfig {
    /// Default vCPUs.
    pub vcpu: Option<u32>,
    /// Default memory (`2G`, `2048M`, or a bare number of MiB).
    pub memory: Option<Size>,
    /// Default work disk size.
    pub disk_size: Option<Size>,
    /// Default NAT setting.
    pub nat: Option<bool>,
}

/// One `[[file_sync]]` entry: a host file or directory copied into every new VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSync {
    /// Host path: absolute, or `~/…` for the owner's home.
    pub host: String,
    /// Guest path: under `~/` or `/root/`.
    pub guest: String,
    /// Octal mode for files, e.g. `"0644"`. Default 0600; directories keep their modes.
    pub mode: Option<String>,
}

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// VMM selection.
    #[serde(default)]
    pub vmm: VmmChoice,
    /// Daemon log level (`error`, `warn`, `info`, `debug`, `trace`).
    pub log_level: Option<String>,
    /// Image used when `--image` is not given.
    pub default_image_name: Option<String>,
    /// Debian archive to build images and kernels from (default: the host's apt sources).
    pub debian_mirror: Option<String>,
    /// The SSH private key banger uses for guests (its `.pub` beside it), instead of the key
    /// banger generates under its state dir. Absolute or `~/…`.
    pub ssh_key_path: Option<String>,
    /// The Firecracker binary, instead of `firecracker` on `PATH`. Absolute.
    pub firecracker_bin: Option<PathBuf>,
    /// Firecracker's `jailer`. Absolute. Set, Firecracker VMs run under it: each in its own
    /// chroot, as the daemon's user (the daemon checks it is an executable file).
    pub jailer_bin: Option<PathBuf>,
    /// Allow VMs more memory than the host's RAM.
    #[serde(default)]
    pub allow_memory_overcommit: bool,
    /// Allow work disks (sparse) larger than the free space for VM disks.
    #[serde(default)]
    pub allow_disk_overcommit: bool,
    /// Defaults for new VMs.
    #[serde(default)]
    pub vm_defaults: VmDefaultsConfig,
    /// Files copied into every new VM.
    #[serde(default)]
    pub file_sync: Vec<FileSync>,
    /// Extra catalog entries: prebuilt image bundles served over HTTP.
    #[serde(default)]
    pub catalog: Vec<CatalogBundle>,
    /// Registries (`host` or `host:port`) `image pull` may reach over plain HTTP. Loopback
    /// registries always may; every other registry is HTTPS only.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Cap on the unpacked size of an OCI image (`16G`): a pull that would unpack more fails.
    pub oci_max_unpacked_size: Option<Size>,
}

/// Default for `oci_max_unpacked_size`.
pub const DEFAULT_OCI_MAX_UNPACKED: Size = Size::from_bytes(16 << 30);
/// Smallest `oci_max_unpacked_size` accepted.
pub const MIN_OCI_MAX_UNPACKED: Size = Size::from_bytes(16 << 20);

/// One `[[catalog]]` entry: an image (with its kernel) published as a bundle.
///
/// `source` is the URL of the bundle's `manifest.json`; `digest` is that manifest's SHA-256,
/// and the manifest lists every file with its own SHA-256, so the whole bundle is pinned by
/// the one digest written here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogBundle {
    /// Image name (`vm create --image NAME`); the kernel is registered under the same name.
    pub name: String,
    /// `http://…/manifest.json`.
    pub source: String,
    /// `sha256:<hex>` of the manifest.
    pub digest: String,
}

/// Why a config was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The TOML did not parse or did not match the schema.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A field has a value outside its rules.
    #[error("invalid config: {field}: {reason}")]
    Invalid {
        /// Dotted path of the field, with indices (`file_sync[1].guest`).
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

impl Config {
    /// Parses and validates a config file's text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The image to use when none is named.
    pub fn default_image(&self) -> &str {
        self.default_image_name
            .as_deref()
            .unwrap_or(DEFAULT_IMAGE_NAME)
    }

    /// Checks every field; errors name the field and entry index.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(level) = &self.log_level
            && !LOG_LEVELS.contains(&level.as_str())
        {
            return Err(invalid(
                "log_level",
                format!("{level:?} is not one of {}", LOG_LEVELS.join(", ")),
            ));
        }
        if let Some(key) = &self.ssh_key_path
            && !(key.starts_with('/') || key.starts_with("~/"))
        {
            return Err(invalid(
                "ssh_key_path",
                format!("{key:?} must be absolute or start with ~/"),
            ));
        }
        if let Some(bin) = &self.firecracker_bin
            && !bin.is_absolute()
        {
            return Err(invalid(
                "firecracker_bin",
                format!("{} must be an absolute path", bin.display()),
            ));
        }
        if let Some(bin) = &self.jailer_bin
            && !bin.is_absolute()
        {
            return Err(invalid(
                "jailer_bin",
                format!(
                    "{} must be an absolute path (Firecracker's jailer, e.g. \
                     /usr/local/bin/jailer)",
                    bin.display()
                ),
            ));
        }
        let d = &self.vm_defaults;
        if let Some(v) = d.vcpu {
            let (lo, hi) = crate::spec::VCPU_RANGE;
            if v < lo || v > hi {
                return Err(invalid(
                    "vm_defaults.vcpu",
                    format!("must be between {lo} and {hi}, got {v}"),
                ));
            }
        }
        if let Some(m) = d.memory
            && m.mib() < crate::spec::MIN_MEMORY_MIB
        {
            return Err(invalid(
                "vm_defaults.memory",
                format!(
                    "must be at least {} MiB, got {m}",
                    crate::spec::MIN_MEMORY_MIB
                ),
            ));
        }
        if let Some(s) = d.disk_size
            && s < crate::spec::MIN_DISK
        {
            return Err(invalid(
                "vm_defaults.disk_size",
                format!("must be at least {}, got {s}", crate::spec::MIN_DISK),
            ));
        }
        for (i, entry) in self.catalog.iter().enumerate() {
            let field = |f: &str| format!("catalog[{i}].{f}");
            if entry.name.is_empty()
                || !entry.name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
                })
            {
                return Err(ConfigError::Invalid {
                    field: field("name"),
                    reason: format!(
                        "{:?} must be lowercase letters, digits, '-', '.' or '_'",
                        entry.name
                    ),
                });
            }
            if !entry.source.starts_with("http://") {
                return Err(ConfigError::Invalid {
                    field: field("source"),
                    reason: format!(
                        "{:?} must be an http:// URL of a manifest.json",
                        entry.source
                    ),
                });
            }
            let hex = entry.digest.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::Invalid {
                    field: field("digest"),
                    reason: "must be sha256:<64 hex digits>".to_owned(),
                });
            }
        }
        for (i, entry) in self.insecure_registries.iter().enumerate() {
            if let Err(reason) = check_registry_host(entry) {
                return Err(invalid(&format!("insecure_registries[{i}]"), reason));
            }
        }
        if let Some(cap) = self.oci_max_unpacked_size
            && cap < MIN_OCI_MAX_UNPACKED
        {
            return Err(invalid(
                "oci_max_unpacked_size",
                format!("must be at least {MIN_OCI_MAX_UNPACKED}, got {cap}"),
            ));
        }
        for (i, entry) in self.file_sync.iter().enumerate() {
            entry
                .validate()
                .map_err(|(field, reason)| ConfigError::Invalid {
                    field: format!("file_sync[{i}].{field}"),
                    reason,
                })?;
        }
        Ok(())
    }
}

/// `host` or `host:port` (a DNS name, IPv4, or `[IPv6]`), as a registry appears in an image
/// reference: no scheme, no path.
fn check_registry_host(entry: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{entry:?} {why}; write host or host:port, e.g. \"registry.lan:5000\""
        ))
    };
    if entry.contains("://") {
        return bad("has a scheme");
    }
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, tail)) if h.parse::<std::net::Ipv6Addr>().is_ok() => {
                (h, tail.strip_prefix(':'))
            }
            _ => return bad("is not a valid [IPv6] address"),
        }
    } else {
        match entry.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (entry, None),
        }
    };
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |p| p == 0)
    {
        return bad("has an invalid port");
    }
    let name_ok = entry.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            }));
    if name_ok {
        Ok(())
    } else {
        bad("is not a host name")
    }
}

fn invalid(field: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        reason,
    }
}

impl Config {
    /// Which host limits a spec may exceed.
    pub fn overcommit(&self) -> crate::spec::Overcommit {
        crate::spec::Overcommit {
            memory: self.allow_memory_overcommit,
            disk: self.allow_disk_overcommit,
        }
    }

    /// `ssh_key_path` with `~/` expanded against `home`.
    pub fn ssh_key_path(&self, home: &Path) -> Option<PathBuf> {
        let key = self.ssh_key_path.as_deref()?;
        Some(match key.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => PathBuf::from(key),
        })
    }
}

impl FileSync {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        let host = self.host.as_str();
        if host.starts_with('~') && !(host == "~" || host.starts_with("~/")) {
            return Err((
                "host",
                format!("{host:?}: only ~/ (your own home) is supported, not ~user"),
            ));
        }
        if !(host.starts_with('/') || host.starts_with("~/") || host == "~") {
            return Err((
                "host",
                format!("{host:?} must be absolute or start with ~/"),
            ));
        }
        if has_parent_component(host) {
            return Err(("host", format!("{host:?} must not contain '..'")));
        }
        let guest = self.guest.as_str();
        let under_home = guest
            .strip_prefix("~/")
            .or_else(|| guest.strip_prefix("/root/"));
        match under_home {
            Some(rest) if !rest.trim_matches('/').is_empty() => {}
            _ => {
                return Err((
                    "guest",
                    format!("{guest:?} must be a path under ~/ or /root/"),
                ));
            }
        }
        if has_parent_component(guest) {
            return Err(("guest", format!("{guest:?} must not contain '..'")));
        }
        if let Some(mode) = &self.mode {
            parse_mode(mode).map_err(|reason| ("mode", reason))?;
        }
        Ok(())
    }

    /// The file mode to apply (default 0600).
    pub fn file_mode(&self) -> u32 {
        self.mode
            .as_deref()
            .and_then(|m| parse_mode(m).ok())
            .unwrap_or(0o600)
    }

    /// The guest path with `~/` spelled as `/root/`.
    pub fn guest_path(&self) -> PathBuf {
        match self.guest.strip_prefix("~/") {
            Some(rest) => Path::new("/root").join(rest),
            None => PathBuf::from(&self.guest),
        }
    }

    /// The host path, with `~` expanded against `home`.
    pub fn host_path(&self, home: &Path) -> PathBuf {
        if self.host == "~" {
            return home.to_path_buf();
        }
        match self.host.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => PathBuf::from(&self.host),
        }
    }
}

fn has_parent_component(path: &str) -> bool {
    Path::new(path)
        .components()
        .any(|c| matches!(c, Component::ParentDir))
}

fn parse_mode(mode: &str) -> Result<u32, String> {
    let digits = mode.strip_prefix("0o").unwrap_or(mode);
    if digits.is_empty() || digits.len() > 4 {
        return Err(format!("{mode:?} is not an octal mode like \"0644\""));
    }
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{mode:?} is not an octal mode like \"0644\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_pull_settings_are_checked() {
        let c = Config::parse(
            "insecure_registries = [\"registry.lan:5000\", \"10.0.0.5\", \"[fd00::1]:443\"]\n\
             oci_max_unpacked_size = \"2G\"",
        )
        .unwrap();
        assert_eq!(c.insecure_registries.len(), 3);
        assert_eq!(c.oci_max_unpacked_size, Some(Size::from_bytes(2 << 30)));
        for (entry, needle) in [
            ("http://registry.lan", "scheme"),
            ("registry.lan/path", "host name"),
            ("registry.lan:0", "port"),
            ("registry.lan:99999", "port"),
            ("", "host name"),
            ("[nope]:5000", "IPv6"),
            ("-bad.lan", "host name"),
        ] {
            let text = format!("insecure_registries = [\"ok.lan\", {entry:?}]");
            let err = Config::parse(&text).unwrap_err().to_string();
            assert!(err.contains("insecure_registries[1]"), "{entry}: {err}");
            assert!(err.contains(needle), "{entry}: {err}");
        }
        let err = Config::parse("oci_max_unpacked_size = \"1M\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("oci_max_unpacked_size") && err.contains("at least"),
            "{err}"
        );
        assert!(Config::parse("oci_max_unpacked_size = \"lots\"").is_err());
    }

    #[test]
    fn empty_config_is_all_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.default_image(), "debian-bookworm");
        assert_eq!(c.vmm, VmmChoice::Auto);
    }

    #[test]
    fn full_config_parses() {
        let c = Config::parse(
            r#"
vmm = "qemu"
log_level = "debug"
default_image_name = "mine"
[vm_defaults]
vcpu = 2
memory = "2G"
disk_size = 16384
nat = true
[[file_sync]]
host = "~/.gitconfig"
guest = "~/.gitconfig"
mode = "0644"
[[file_sync]]
host = "/etc/hosts"
guest = "/root/hosts"
"#,
        )
        .unwrap();
        assert_eq!(c.vmm, VmmChoice::Qemu);
        assert_eq!(c.vm_defaults.memory, Some(Size::from_gib(2)));
        assert_eq!(c.vm_defaults.disk_size, Some(Size::from_gib(16)));
        assert_eq!(c.file_sync[0].file_mode(), 0o644);
        assert_eq!(c.file_sync[1].file_mode(), 0o600);
        assert_eq!(c.file_sync[0].guest_path(), Path::new("/root/.gitconfig"));
        assert_eq!(
            c.file_sync[0].host_path(Path::new("/home/u")),
            Path::new("/home/u/.gitconfig")
        );
    }

    #[test]
    fn binary_and_key_paths_are_checked() {
        let c = Config::parse(
            "ssh_key_path = \"~/.ssh/id_banger\"\nfirecracker_bin = \"/opt/fc/firecracker\"\n",
        )
        .unwrap();
        assert_eq!(
            c.ssh_key_path(Path::new("/home/u")),
            Some(PathBuf::from("/home/u/.ssh/id_banger"))
        );
        assert_eq!(
            c.firecracker_bin.as_deref(),
            Some(Path::new("/opt/fc/firecracker"))
        );
        let err = Config::parse("ssh_key_path = \"id\"").unwrap_err();
        assert!(err.to_string().contains("ssh_key_path"), "{err}");
        let err = Config::parse("firecracker_bin = \"firecracker\"").unwrap_err();
        assert!(err.to_string().contains("firecracker_bin"), "{err}");
        let c = Config::parse("jailer_bin = \"/usr/bin/jailer\"").expect("jailer accepted");
        assert_eq!(c.jailer_bin.as_deref(), Some(Path::new("/usr/bin/jailer")));
        let err = Config::parse("jailer_bin = \"jailer\"").unwrap_err();
        assert!(err.to_string().contains("jailer_bin"), "{err}");
        assert!(err.to_string().contains("absolute"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::parse("vmm = \"qemu\"\nvcpus = 2\n").unwrap_err();
        assert!(err.to_string().contains("vcpus"), "{err}");
        let err = Config::parse("[vm_defaults]\nmem = 2\n").unwrap_err();
        assert!(err.to_string().contains("mem"), "{err}");
    }

    #[test]
    fn errors_name_the_entry_index() {
        let base = "[[file_sync]]\nhost = \"/a\"\nguest = \"~/a\"\n";
        let cases = [
            (
                "host = \"~bob/x\"\nguest = \"~/x\"",
                "file_sync[1].host",
                "~user",
            ),
            (
                "host = \"rel/x\"\nguest = \"~/x\"",
                "file_sync[1].host",
                "absolute",
            ),
            (
                "host = \"/x\"\nguest = \"/etc/x\"",
                "file_sync[1].guest",
                "under ~/",
            ),
            (
                "host = \"/x\"\nguest = \"~/\"",
                "file_sync[1].guest",
                "under ~/",
            ),
            (
                "host = \"/x\"\nguest = \"~/a/../../etc\"",
                "file_sync[1].guest",
                "..",
            ),
            (
                "host = \"/x\"\nguest = \"~/x\"\nmode = \"0999\"",
                "file_sync[1].mode",
                "octal",
            ),
        ];
        for (entry, field, needle) in cases {
            let text = format!("{base}[[file_sync]]\n{entry}\n");
            let err = Config::parse(&text).unwrap_err().to_string();
            assert!(err.contains(field), "{entry}: {err}");
            assert!(err.contains(needle), "{entry}: {err}");
        }
    }

    #[test]
    fn catalog_bundles_are_checked() {
        let ok = format!(
            "[[catalog]]\nname = \"mine\"\nsource = \"http://127.0.0.1:1/manifest.json\"\ndigest = \"sha256:{}\"\n",
            "a".repeat(64)
        );
        assert_eq!(Config::parse(&ok).unwrap().catalog[0].name, "mine");
        let bad = ok.replace("http://", "ftp://");
        let err = Config::parse(&bad).unwrap_err().to_string();
        assert!(err.contains("catalog[0].source"), "{err}");
        let bad = ok.replace("sha256:", "md5:");
        assert!(
            Config::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("catalog[0].digest")
        );
    }

    #[test]
    fn vm_defaults_are_checked() {
        let err = Config::parse("[vm_defaults]\nvcpu = 0\n").unwrap_err();
        assert!(err.to_string().contains("vm_defaults.vcpu"), "{err}");
        let err = Config::parse("[vm_defaults]\nmemory = \"1M\"\n").unwrap_err();
        assert!(err.to_string().contains("vm_defaults.memory"), "{err}");
        let err = Config::parse("log_level = \"loud\"\n").unwrap_err();
        assert!(err.to_string().contains("log_level"), "{err}");
    }
}
