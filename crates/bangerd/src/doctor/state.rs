//! Checks of banger's own state and settings: the config file, the store (opened read-only,
//! never created), the VM defaults and where each came from, the ssh_config include, and the
//! guest agent the daemon would inject.
//!
//! A missing store is "no state yet", not an error: the first daemon start creates it. A store
//! that cannot be read is a failure, and it is left exactly as it was.

use std::path::{Path, PathBuf};

use banger_model::{ImageRecord, KernelRecord, ResolvedSpec};
use banger_proto::Check;
use banger_store::{SchemaStatus, StoreError};

/// What the config file looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigState {
    /// Absent: built-in defaults.
    Absent,
    /// Present and valid.
    Valid,
    /// Present but unreadable or invalid (the message names the field).
    Invalid(String),
}

/// `config`: where it is and whether it parses.
pub fn config(path: &Path, state: &ConfigState) -> Check {
    let path = path.display();
    match state {
        ConfigState::Absent => Check::ok("config", format!("{path} (absent: built-in defaults)")),
        ConfigState::Valid => Check::ok("config", path.to_string()),
        ConfigState::Invalid(message) => Check::fail(
            "config",
            message.clone(),
            format!("fix {path}: the daemon refuses to start with an invalid config"),
        ),
    }
}

/// What the store looked like, read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreState {
    /// No database file yet.
    Missing,
    /// Opened read-only.
    Open {
        /// Schema against this binary's migrations.
        schema: SchemaStatus,
        /// Record counts: VMs, images, kernels.
        counts: (usize, usize, usize),
    },
    /// Not a SQLite database, or damaged.
    Corrupt(String),
    /// Could not be opened or read for another reason.
    Unreadable(String),
}

/// The store's state plus the records the image checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFacts {
    /// The database file.
    pub path: PathBuf,
    /// How it opened.
    pub state: StoreState,
    /// The images registered (empty unless open).
    pub images: Vec<ImageRecord>,
    /// The kernels registered (empty unless open).
    pub kernels: Vec<KernelRecord>,
}

impl StoreFacts {
    /// Opens the store at `path` read-only (never creating it) and reads what doctor needs.
    pub fn probe(path: &Path) -> Self {
        let mut facts = Self {
            path: path.to_path_buf(),
            state: StoreState::Missing,
            images: Vec::new(),
            kernels: Vec::new(),
        };
        let store = match banger_store::open_read_only(path) {
            Ok(store) => store,
            Err(StoreError::Missing(_)) => return facts,
            Err(e @ StoreError::Corrupt { .. }) => {
                facts.state = StoreState::Corrupt(banger_daemon::api::error::chain(&e));
                return facts;
            }
            Err(e) => {
                facts.state = StoreState::Unreadable(banger_daemon::api::error::chain(&e));
                return facts;
            }
        };
        let read = || -> Result<_, StoreError> {
            let applied = store.applied_migrations()?;
            Ok((
                SchemaStatus::classify(&applied, banger_store::MIGRATIONS),
                store.vms().list()?.len(),
                store.images().list()?,
                store.kernels().list()?,
            ))
        };
        match read() {
            Ok((schema, vms, images, kernels)) => {
                facts.state = StoreState::Open {
                    schema,
                    counts: (vms, images.len(), kernels.len()),
                };
                facts.images = images;
                facts.kernels = kernels;
            }
            Err(e) => {
                let message = banger_daemon::api::error::chain(&e);
                facts.state = match e {
                    StoreError::Corrupt { .. } => StoreState::Corrupt(message),
                    _ => StoreState::Unreadable(message),
                };
            }
        }
        facts
    }
}

/// `store`: no state yet (warn), readable (with its schema and counts), or broken (fail).
pub fn store(f: &StoreFacts) -> Check {
    let path = f.path.display();
    match &f.state {
        StoreState::Missing => Check::warn(
            "store",
            format!("no state yet: {path} does not exist"),
            "nothing to do: the daemon creates it on its first start (any banger VM command)",
        ),
        StoreState::Open {
            schema,
            counts: (vms, images, kernels),
        } => {
            let what = format!("{path}: {vms} VMs, {images} images, {kernels} kernels");
            match schema {
                SchemaStatus::Compatible => Check::ok("store", what),
                SchemaStatus::MigrationsNeeded { pending } => Check::info(
                    "store",
                    format!(
                        "{what}; migrations {pending:?} will be applied when the daemon starts"
                    ),
                ),
                SchemaStatus::Incompatible { unknown } => Check::warn(
                    "store",
                    format!("{what}; it has migrations {unknown:?} from a newer banger"),
                    "install that newer banger again, or expect its data to be left alone",
                ),
            }
        }
        StoreState::Corrupt(message) => Check::fail(
            "store",
            message.clone(),
            format!(
                "move {path} aside (it was not modified) and let the daemon create a new one; \
                 keep the old file for recovery"
            ),
        ),
        StoreState::Unreadable(message) => Check::fail(
            "store",
            message.clone(),
            format!("check the permissions of {path} and its directory"),
        ),
    }
}

/// `vm-defaults`: the spec a plain `vm create` gets, each field with its provenance.
pub fn vm_defaults(resolved: &ResolvedSpec, config_file: &Path) -> Check {
    let s = &resolved.spec;
    let detail = format!(
        "{} vcpu ({}), {} MiB ({}), {} disk ({}), nat {} ({})",
        s.vcpu,
        resolved.vcpu_from,
        s.memory_mib,
        resolved.memory_from,
        s.disk_size,
        resolved.disk_from,
        if s.nat { "on" } else { "off" },
        resolved.nat_from,
    );
    if let Err(e) = s.validate() {
        return Check::fail(
            "vm-defaults",
            format!("{detail}: {e}"),
            format!("fix [vm_defaults] in {}", config_file.display()),
        );
    }
    let from_config = [
        resolved.vcpu_from,
        resolved.memory_from,
        resolved.disk_from,
        resolved.nat_from,
    ]
    .contains(&banger_model::Provenance::Config);
    if from_config {
        Check::ok(
            "vm-defaults",
            format!("{detail}; config: {}", config_file.display()),
        )
    } else {
        Check::ok("vm-defaults", detail)
    }
}

/// What the ssh_config include looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfigFacts {
    /// `~/.ssh/config`.
    pub user_config: PathBuf,
    /// Its bytes, when it exists and is readable.
    pub user_text: Option<Vec<u8>>,
    /// banger's own ssh_config.
    pub banger_config: PathBuf,
    /// Whether banger's own file exists.
    pub banger_config_exists: bool,
}

/// `ssh-config`: installed (and pointing at a file that exists) or not.
pub fn ssh_config(f: &SshConfigFacts) -> Check {
    let user = f.user_config.display();
    let not_installed = || {
        Check::info(
            "ssh-config",
            format!(
                "banger's Include is not in {user}: plain `ssh NAME.vm` needs it (`banger vm \
                 ssh NAME` works without)"
            ),
        )
        .with_fix("banger ssh-config --install")
    };
    let Some(text) = &f.user_text else {
        return not_installed();
    };
    match banger_model::ssh_config::uninstall_text(text) {
        Err(e) => Check::warn(
            "ssh-config",
            format!("{user}: {e}"),
            "fix the banger block by hand, then `banger ssh-config --install`",
        ),
        Ok(found) if !found.found => not_installed(),
        Ok(_) if !f.banger_config_exists => Check::warn(
            "ssh-config",
            format!(
                "{user} includes {}, which does not exist",
                f.banger_config.display()
            ),
            "banger ssh-config (writes it again)",
        ),
        Ok(_) => Check::ok(
            "ssh-config",
            format!("{user} includes {}", f.banger_config.display()),
        ),
    }
}

/// `guest-agent`: the binary the daemon injects into every VM, where the daemon looks for it.
pub fn guest_agent(found: &Result<PathBuf, banger_daemon::agent_binary::AgentMissing>) -> Check {
    match found {
        Ok(path) => Check::ok("guest-agent", path.display().to_string()),
        Err(missing) => Check::fail(
            "guest-agent",
            "banger-agent is not where the daemon looks for it",
            missing.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_model::{Config, HostFacts, SpecOverrides};
    use banger_proto::CheckStatus::{Fail, Info, Ok, Warn};

    fn store_facts(state: StoreState) -> StoreFacts {
        StoreFacts {
            path: PathBuf::from("/s/state.db"),
            state,
            images: Vec::new(),
            kernels: Vec::new(),
        }
    }

    #[test]
    fn config_absent_valid_invalid() {
        let p = Path::new("/c/config.toml");
        assert!(config(p, &ConfigState::Absent).detail.contains("absent"));
        assert_eq!(config(p, &ConfigState::Valid).status, Ok);
        let bad = config(p, &ConfigState::Invalid("vmm: unknown variant".into()));
        assert_eq!(bad.status, Fail);
        assert_eq!(bad.detail, "vmm: unknown variant");
    }

    #[test]
    fn store_missing_warns_broken_fails() {
        let c = store(&store_facts(StoreState::Missing));
        assert_eq!(c.status, Warn);
        assert!(c.detail.starts_with("no state yet"), "{}", c.detail);
        let open = |schema| StoreState::Open {
            schema,
            counts: (2, 1, 1),
        };
        let c = store(&store_facts(open(SchemaStatus::Compatible)));
        assert_eq!(c.status, Ok);
        assert!(
            c.detail.ends_with("2 VMs, 1 images, 1 kernels"),
            "{}",
            c.detail
        );
        let c = store(&store_facts(open(SchemaStatus::MigrationsNeeded {
            pending: vec![3],
        })));
        assert_eq!(c.status, Info);
        let c = store(&store_facts(open(SchemaStatus::Incompatible {
            unknown: vec![9001],
        })));
        assert_eq!(c.status, Warn);
        let c = store(&store_facts(StoreState::Corrupt("garbage".into())));
        assert_eq!(c.status, Fail);
        assert!(
            c.fix
                .as_deref()
                .unwrap_or_default()
                .contains("not modified")
        );
        assert_eq!(
            store(&store_facts(StoreState::Unreadable("denied".into()))).status,
            Fail
        );
    }

    #[test]
    fn store_probe_never_creates_and_tells_corrupt_from_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("state.db");
        assert_eq!(StoreFacts::probe(&db).state, StoreState::Missing);
        assert!(
            std::fs::read_dir(dir.path())
                .expect("list")
                .next()
                .is_none()
        );
        std::fs::write(&db, vec![0x5a; 8192]).expect("garbage");
        assert!(matches!(
            StoreFacts::probe(&db).state,
            StoreState::Corrupt(_)
        ));
        assert_eq!(std::fs::read(&db).expect("read"), vec![0x5a; 8192]);
        std::fs::remove_file(&db).expect("rm");
        drop(banger_store::Store::open(&db).expect("real store"));
        let facts = StoreFacts::probe(&db);
        assert!(
            matches!(
                facts.state,
                StoreState::Open {
                    schema: SchemaStatus::Compatible,
                    counts: (0, 0, 0)
                }
            ),
            "{facts:?}"
        );
    }

    #[test]
    fn vm_defaults_show_provenance() {
        let host = HostFacts {
            cpus: Some(8),
            mem_bytes: Some(16 << 30),
        };
        let r = ResolvedSpec::resolve(
            SpecOverrides::default(),
            &Config::default().vm_defaults,
            host,
        );
        let c = vm_defaults(&r, Path::new("/c/config.toml"));
        assert_eq!(c.status, Ok);
        assert_eq!(
            c.detail,
            "2 vcpu (auto), 2048 MiB (auto), 8G disk (builtin), nat off (builtin)"
        );
        let config = Config::parse("[vm_defaults]\nvcpu = 3\n").expect("config");
        let r = ResolvedSpec::resolve(SpecOverrides::default(), &config.vm_defaults, host);
        let c = vm_defaults(&r, Path::new("/c/config.toml"));
        assert!(c.detail.starts_with("3 vcpu (config)"), "{}", c.detail);
        assert!(c.detail.ends_with("config: /c/config.toml"), "{}", c.detail);
    }

    #[test]
    fn ssh_config_installed_or_not() {
        let base = SshConfigFacts {
            user_config: PathBuf::from("/h/.ssh/config"),
            user_text: None,
            banger_config: PathBuf::from("/s/ssh_config"),
            banger_config_exists: true,
        };
        let c = ssh_config(&base);
        assert_eq!(c.status, Info);
        assert_eq!(c.fix.as_deref(), Some("banger ssh-config --install"));
        let include = banger_model::ssh_config::include_line(&base.banger_config).expect("line");
        let installed =
            banger_model::ssh_config::install_text(b"Host x\n", &include, false).expect("install");
        let with = SshConfigFacts {
            user_text: Some(installed),
            ..base.clone()
        };
        assert_eq!(ssh_config(&with).status, Ok);
        let dangling = SshConfigFacts {
            banger_config_exists: false,
            ..with
        };
        assert_eq!(ssh_config(&dangling).status, Warn);
        let other = SshConfigFacts {
            user_text: Some(b"Host x\n".to_vec()),
            ..base.clone()
        };
        assert_eq!(ssh_config(&other).status, Info);
        let broken = SshConfigFacts {
            user_text: Some(b"# >>> banger >>>\nInclude x\n".to_vec()),
            ..base
        };
        assert_eq!(ssh_config(&broken).status, Warn);
    }

    #[test]
    fn guest_agent_found_or_named_with_the_paths_tried() {
        assert_eq!(
            guest_agent(&std::result::Result::Ok(PathBuf::from(
                "/usr/local/bin/banger-agent"
            )))
            .status,
            Ok
        );
        let missing = banger_daemon::agent_binary::AgentLocator::at("/nowhere/banger-agent").find();
        let c = guest_agent(&missing);
        assert_eq!(c.status, Fail);
        assert!(
            c.fix
                .as_deref()
                .unwrap_or_default()
                .contains("/nowhere/banger-agent")
        );
    }
}
