//! `bangerd doctor [--json]`: the host checks behind `banger doctor`.
//!
//! They live in the daemon binary because they need what only the daemon composes: the store
//! opened read-only, the daemon's own VMM choice ([`crate::backends::choose`]) and agent lookup.
//! `banger doctor` runs this with `--json`, adds its own checks (a `bangerd` to run, build
//! drift) and renders the result.
//!
//! Invariant: doctor creates and changes nothing: no state dir, no store, no key, no socket,
//! no log. It reads files, opens `/dev/kvm` and the store read-only, and runs tools'
//! `--version`. Each group of checks is a file of pure functions over facts probed once here,
//! so every branch is unit-tested without the host having or lacking anything.

mod disks;
mod images;
mod network;
mod probe;
mod state;
mod vmm;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use banger_model::{Config, Layout, ResolvedSpec, SpecOverrides};
use banger_proto::{Check, CheckStatus, DoctorReport};

use crate::setup;

/// Runs the checks, prints the report (JSON or one row per check) and returns 0, or 1 when a
/// check failed.
pub fn main(system: bool, json: bool) -> ExitCode {
    let report = match setup::layout(system) {
        Ok(layout) => run(&layout),
        Err(e) => DoctorReport {
            build: banger_proto::build_info!(),
            summary: "layout unresolved".to_owned(),
            checks: vec![Check::fail(
                "layout",
                format!("{e:#}"),
                "set HOME (and XDG_RUNTIME_DIR) to absolute paths",
            )],
        },
    };
    let text = if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("bangerd: cannot encode the doctor report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        rows(&report.checks)
    };
    let mut out = std::io::stdout().lock();
    // A closed stdout leaves nobody to tell.
    let _ = writeln!(out, "{text}");
    if report.checks.iter().any(|c| c.status == CheckStatus::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Plain rows, for a person running `bangerd doctor` by hand.
fn rows(checks: &[Check]) -> String {
    let mut out = Vec::new();
    for c in checks {
        out.push(format!(
            "{:<4}  {}: {}",
            c.status.as_str(),
            c.name,
            c.detail
        ));
        if let Some(fix) = &c.fix {
            out.push(format!("      fix: {fix}"));
        }
    }
    out.join("\n")
}

/// Probes the host for `layout` and runs every check.
pub fn run(layout: &Layout) -> DoctorReport {
    let (config, config_state) = read_config(&layout.config_file);
    let facts = Facts::probe(layout, &config, config_state);
    DoctorReport {
        build: banger_proto::build_info!(),
        summary: vmm::summary(&facts.vmm),
        checks: checks(&facts, layout),
    }
}

/// Everything doctor probed, in one place.
struct Facts {
    config: Config,
    config_state: state::ConfigState,
    vmm: vmm::VmmFacts,
    net: network::NetFacts,
    store: state::StoreFacts,
    images: images::ImageFacts,
    build_tools: Vec<(&'static str, probe::Found)>,
    disk_tools: Vec<(&'static str, probe::Found)>,
    host: banger_model::HostFacts,
    ssh: state::SshConfigFacts,
    agent: Result<PathBuf, banger_daemon::agent_binary::AgentMissing>,
    ssh_bundle: Result<usize, String>,
}

impl Facts {
    fn probe(layout: &Layout, config: &Config, config_state: state::ConfigState) -> Self {
        let store = state::StoreFacts::probe(&layout.db_file());
        let name = config.default_image().to_owned();
        let catalog = banger_daemon::images::pull::catalog().ok();
        let images = images::ImageFacts {
            local: store.images.iter().find(|i| i.name == name).cloned(),
            bundle: config.catalog.iter().any(|b| b.name == name),
            recipe_kernel: catalog
                .as_ref()
                .and_then(|c| banger_daemon::images::pull::image_recipe(c, &name))
                .map(|r| r.kernel),
            catalog_kernels: catalog
                .map(|c| c.kernels.into_iter().map(|k| k.name).collect())
                .unwrap_or_default(),
            kernels: store.kernels.clone(),
            name,
        };
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|h| h.is_absolute())
            .unwrap_or_else(|| PathBuf::from("/root"));
        let user_config = banger_model::ssh_config::user_config_path(&home);
        let banger_config = layout.state_dir.join("ssh_config");
        Self {
            vmm: vmm::VmmFacts::probe(
                config.vmm,
                config.firecracker_bin.as_deref(),
                config.jailer_bin.as_deref(),
            ),
            net: network::NetFacts::probe(),
            images,
            store,
            build_tools: disks::probe_tools(images::BUILD_TOOLS),
            disk_tools: disks::probe_tools(disks::DISK_TOOLS),
            host: host_facts(),
            ssh: state::SshConfigFacts {
                user_text: std::fs::read(&user_config).ok(),
                user_config,
                banger_config_exists: banger_config.is_file(),
                banger_config,
            },
            agent: crate::backends::agent_locator().find(),
            // Planned, not built: doctor changes nothing.
            ssh_bundle: banger_daemon::images::ssh_inject::plan_host_bundle(),
            config: config.clone(),
            config_state,
        }
    }
}

/// Every check, in display order.
fn checks(f: &Facts, layout: &Layout) -> Vec<Check> {
    let resolved = ResolvedSpec::resolve(SpecOverrides::default(), &f.config.vm_defaults, f.host);
    vec![
        vmm::kvm(f.vmm.kvm),
        vmm::binary(vmm::Which::Qemu, &f.vmm),
        vmm::binary(vmm::Which::Firecracker, &f.vmm),
        vmm::vmm(&f.vmm),
        vmm::jailer(&f.vmm),
        vmm::vhost_vsock(f.vmm.vhost_vsock),
        network::privileges(&f.net.privilege, f.net.tun_opens),
        network::bridge(&f.net),
        network::nat(f.net.nft.as_ref()),
        network::dns(f.net.dns),
        network::guest_dns(f.net.guest_dns),
        network::resolver_routing(&f.net.resolver),
        state::config(&layout.config_file, &f.config_state),
        state::store(&f.store),
        images::default_image(&f.images),
        images::default_kernel(&f.images),
        images::image_tools(&f.build_tools, f.images.builds_on_first_use()),
        disks::disk_tools(&f.disk_tools),
        disks::overlay(banger_daemon::vms::disks::OVERLAY_STRATEGY),
        state::vm_defaults(&resolved, &layout.config_file),
        state::ssh_config(&f.ssh),
        state::guest_agent(&f.agent),
        images::ssh_bundle(&f.ssh_bundle),
    ]
}

/// The config, and how reading it went; an invalid config falls back to defaults so the other
/// checks still run.
fn read_config(path: &Path) -> (Config, state::ConfigState) {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (Config::default(), state::ConfigState::Absent)
        }
        Err(e) => (
            Config::default(),
            state::ConfigState::Invalid(format!("cannot read {}: {e}", path.display())),
        ),
        Ok(text) => match Config::parse(&text) {
            Ok(config) => (config, state::ConfigState::Valid),
            Err(e) => (
                Config::default(),
                state::ConfigState::Invalid(format!("{}: {e}", path.display())),
            ),
        },
    }
}

/// CPU count and RAM, read the way the CLI reads them for its spec defaults.
fn host_facts() -> banger_model::HostFacts {
    banger_model::HostFacts {
        cpus: std::thread::available_parallelism()
            .ok()
            .and_then(|n| u32::try_from(n.get()).ok()),
        mem_bytes: std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| mem_total_bytes(&text)),
    }
}

fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let rest = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let mut words = rest.split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then(|| kib.checked_mul(1024))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_status_name_detail_and_fix() {
        let text = rows(&[
            Check::ok("kvm", "usable"),
            Check::fail("vmm", "none", "install QEMU"),
        ]);
        assert_eq!(
            text,
            "ok    kvm: usable\nfail  vmm: none\n      fix: install QEMU"
        );
    }

    #[test]
    fn mem_total_is_read_in_kib() {
        assert_eq!(mem_total_bytes("MemTotal: 2 kB\n"), Some(2048));
        assert_eq!(mem_total_bytes("MemTotal: 2 MB\n"), None);
        assert_eq!(mem_total_bytes(""), None);
    }

    #[test]
    fn invalid_config_is_reported_and_defaults_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        assert_eq!(read_config(&path).1, state::ConfigState::Absent);
        std::fs::write(&path, "vmm = \"nope\"\n").expect("write");
        let (config, st) = read_config(&path);
        assert_eq!(config, Config::default());
        assert!(matches!(st, state::ConfigState::Invalid(m) if m.contains("config.toml")));
        std::fs::write(&path, "vmm = \"qemu\"\n").expect("write");
        assert_eq!(read_config(&path).1, state::ConfigState::Valid);
    }
}
