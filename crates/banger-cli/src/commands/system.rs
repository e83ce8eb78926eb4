//! `banger system install | status | restart | uninstall`: banger as two systemd services.
//!
//! Install copies the binaries, writes both units ([`crate::system::units`]) and
//! `install.toml`, reloads systemd, enables both units and restarts them (a re-install
//! upgrades in place: the daemon's `KillMode=process` keeps VMs running), then waits, bounded
//! and with progress, until the daemon answers a ping on the system socket. Restart does the
//! helper, then the daemon, and waits the same way. Uninstall stops and removes units and
//! binaries and keeps state unless `--purge`. Status reads only (no root needed): units,
//! versions, sockets and drift between them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use banger_model::InstallMetadata;
use banger_model::layout::INSTALL_METADATA;
use banger_proto::{BuildInfo, DaemonInfo};
use serde::Serialize;

use crate::args::common::JsonFlag;
use crate::args::system::{InstallArgs, SystemCommand, UninstallArgs};
use crate::client::Client;
use crate::error::CliError;
use crate::output::{self, Stdout};
use crate::system::units::{self, DAEMON_UNIT, HELPER_UNIT, JailBinaries, Owner, UnitSpec};
use crate::system::{self, paths};

/// How long install and restart wait for the daemon to answer.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// How often the wait says it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Runs a `system` subcommand.
pub async fn run(cmd: &SystemCommand) -> Result<(), CliError> {
    match cmd {
        SystemCommand::Install(args) => install(args).await,
        SystemCommand::Status(json) => status(*json).await,
        SystemCommand::Restart => restart().await,
        SystemCommand::Uninstall(args) => uninstall(args),
    }
}

fn require_root(command: &str) -> Result<(), CliError> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err(CliError::NotRoot {
        hint: format!("sudo banger system {command}"),
    })
}

fn require_systemd() -> Result<(), CliError> {
    if Path::new(paths::SYSTEMD_RUNNING).is_dir() {
        return Ok(());
    }
    Err(CliError::Failed(format!(
        "systemd is not running on this host (no {}), so banger cannot be installed as a \
         service; start the daemon by hand instead: run banger as root (`sudo banger vm ls` \
         starts one on demand)",
        paths::SYSTEMD_RUNNING
    )))
}

/// The binaries the helper runs for jailed VMs: when the owner's config sets `jailer_bin`,
/// that jailer and its Firecracker (`firecracker_bin`, else `firecracker` on `PATH`), pinned
/// in the helper's unit at install time — root decides once what it runs, the owner's later
/// config edits cannot change it.
fn jail_binaries(owner: &system::OwnerAccount) -> Result<Option<JailBinaries>, CliError> {
    let path = owner.home.join(".config/banger/config.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CliError::Io {
                what: format!("cannot read {}", path.display()),
                source,
            });
        }
    };
    let config = banger_model::Config::parse(&text)
        .map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
    let Some(jailer) = config.jailer_bin else {
        return Ok(None);
    };
    let firecracker = config
        .firecracker_bin
        .or_else(|| banger_util::find_on_path("firecracker"))
        .ok_or_else(|| {
            CliError::Failed(format!(
                "{}: jailer_bin is set but there is no Firecracker to jail: set firecracker_bin \
                 or put firecracker on PATH, or remove jailer_bin",
                path.display()
            ))
        })?;
    for (key, bin) in [("jailer_bin", &jailer), ("firecracker_bin", &firecracker)] {
        if !bin.is_file() {
            return Err(CliError::Failed(format!(
                "{}: {key}: {} is not a file; install it there or fix {key}",
                path.display(),
                bin.display()
            )));
        }
    }
    Ok(Some(JailBinaries {
        jailer: jailer.display().to_string(),
        firecracker: firecracker.display().to_string(),
    }))
}

fn unit_spec(owner: &system::OwnerAccount) -> Result<UnitSpec, CliError> {
    Ok(UnitSpec {
        owner: Owner {
            name: owner.name.clone(),
            group: owner.group.clone(),
            extra_groups: if system::group_exists("kvm") {
                vec!["kvm".to_owned()]
            } else {
                Vec::new()
            },
        },
        bangerd: paths::BANGERD.to_owned(),
        jail: jail_binaries(owner)?,
    })
}

fn unit_path(unit: &str) -> PathBuf {
    Path::new(paths::UNIT_DIR).join(unit)
}

fn read_metadata() -> Result<Option<InstallMetadata>, CliError> {
    match std::fs::read_to_string(INSTALL_METADATA) {
        Ok(text) => InstallMetadata::parse(&text)
            .map(Some)
            .map_err(|e| CliError::Failed(format!("{INSTALL_METADATA}: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CliError::Io {
            what: format!("cannot read {INSTALL_METADATA}"),
            source,
        }),
    }
}

async fn install(args: &InstallArgs) -> Result<(), CliError> {
    require_root("install")?;
    require_systemd()?;
    let owner_name = match &args.owner {
        Some(owner) => owner.clone(),
        None => std::env::var("SUDO_USER")
            .ok()
            .filter(|u| !u.is_empty() && u != "root")
            .ok_or_else(|| {
                CliError::Usage(
                    "say who will run VMs: sudo banger system install --owner USER (no \
                     SUDO_USER to default to)"
                        .to_owned(),
                )
            })?,
    };
    let owner = system::owner_account(&owner_name)?;
    let exe = std::env::current_exe().map_err(|source| CliError::Io {
        what: "cannot find the running banger binary".to_owned(),
        source,
    })?;
    let sources = system::sources(&exe)?;
    let previous = read_metadata().ok().flatten();

    let say = |line: &str| output::info(line);
    for (src, dest) in [
        (&sources.banger, paths::BANGER),
        (&sources.bangerd, paths::BANGERD),
        (&sources.agent, paths::AGENT),
    ] {
        if system::install_binary(src, Path::new(dest))? {
            say(&format!("installed {dest}"));
        }
    }
    let spec = unit_spec(&owner)?;
    system::write_atomic(
        &unit_path(DAEMON_UNIT),
        units::daemon_unit(&spec).as_bytes(),
        0o644,
    )?;
    system::write_atomic(
        &unit_path(HELPER_UNIT),
        units::helper_unit(&spec).as_bytes(),
        0o644,
    )?;
    say(&format!(
        "wrote {} and {}",
        unit_path(DAEMON_UNIT).display(),
        unit_path(HELPER_UNIT).display()
    ));
    let build = banger_proto::build_info!();
    let metadata = InstallMetadata {
        version: build.version.clone(),
        commit: build.commit.clone(),
        built_at: build.built_at.clone(),
        owner: owner.name.clone(),
        owner_uid: owner.uid,
        owner_home: owner.home.display().to_string(),
    };
    system::write_atomic(
        Path::new(INSTALL_METADATA),
        metadata.to_toml().as_bytes(),
        0o644,
    )?;
    if let Some(previous) = previous.filter(|p| p.owner != owner.name) {
        output::note(&format!(
            "the owner changes from {} to {}: {} now belongs to {}",
            previous.owner,
            owner.name,
            paths::STATE_DIR,
            owner.name
        ));
    }

    system::systemctl(&["daemon-reload"])?;
    system::systemctl(&["enable", "--quiet", HELPER_UNIT, DAEMON_UNIT])?;
    say("starting bangerd-root.service and bangerd.service");
    system::systemctl(&["restart", HELPER_UNIT])?;
    system::systemctl(&["restart", DAEMON_UNIT])?;
    let info = wait_for_daemon(Some(&build)).await?;
    let mut out = Stdout::lock();
    out.line(&format!(
        "installed banger {} for {}: bangerd answers on {} (pid {}); run banger without sudo now",
        build.version,
        owner.name,
        paths::DAEMON_SOCKET,
        info.pid
    ))?;
    out.finish()
}

async fn restart() -> Result<(), CliError> {
    require_root("restart")?;
    if read_metadata()?.is_none() {
        return Err(not_installed());
    }
    system::systemctl(&["restart", HELPER_UNIT])?;
    system::systemctl(&["restart", DAEMON_UNIT])?;
    let info = wait_for_daemon(Some(&banger_proto::build_info!())).await?;
    let mut out = Stdout::lock();
    out.line(&format!(
        "restarted bangerd-root.service and bangerd.service: bangerd answers on {} (pid {})",
        paths::DAEMON_SOCKET,
        info.pid
    ))?;
    out.finish()
}

fn not_installed() -> CliError {
    CliError::Failed(format!(
        "banger is not installed as a system service (no {INSTALL_METADATA}); install it with \
         `sudo banger system install`"
    ))
}

/// Pings the system socket until the daemon answers, saying every few seconds that it waits;
/// notes when it is not from the `expected` build (`update` checks the version itself).
pub(crate) async fn wait_for_daemon(expected: Option<&BuildInfo>) -> Result<DaemonInfo, CliError> {
    let client = Client::new(PathBuf::from(paths::DAEMON_SOCKET));
    let started = Instant::now();
    let mut next_note = started + PROGRESS_EVERY;
    loop {
        let last = match client.ping().await {
            Ok(info) => {
                if let Some(expected) = expected
                    && info.build.commit != expected.commit
                {
                    output::note(&format!(
                        "bangerd answers but is from another build (commit {})",
                        info.build.short_commit()
                    ));
                }
                return Ok(info);
            }
            Err(e) => e.to_string(),
        };
        let now = Instant::now();
        // systemd gave up restarting it: waiting longer cannot help.
        let failed = system::unit_state(DAEMON_UNIT).is_ok_and(|s| s.active == "failed");
        if failed || now >= started + READY_LIMIT {
            let state = system::unit_state(DAEMON_UNIT)
                .map(|s| format!("{} ({})", s.active, s.sub))
                .unwrap_or_else(|_| "unknown".to_owned());
            return Err(CliError::Failed(format!(
                "bangerd did not answer on {} after {}s (bangerd.service is {state}; last \
                 error: {last}); see `journalctl -u bangerd -n 50` and `journalctl -u \
                 bangerd-root -n 50`",
                paths::DAEMON_SOCKET,
                started.elapsed().as_secs()
            )));
        }
        if now >= next_note {
            output::info(&format!(
                "waiting for bangerd to answer on {} ({}s)",
                paths::DAEMON_SOCKET,
                started.elapsed().as_secs()
            ));
            next_note = now + PROGRESS_EVERY;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn uninstall(args: &UninstallArgs) -> Result<(), CliError> {
    require_root("uninstall")?;
    let mut out = Stdout::lock();
    let units_present = [DAEMON_UNIT, HELPER_UNIT]
        .iter()
        .any(|u| unit_path(u).exists());
    if units_present {
        // Stop the daemon before its helper; VMMs keep running (KillMode=process).
        system::systemctl(&["disable", "--now", "--quiet", DAEMON_UNIT])?;
        system::systemctl(&["disable", "--now", "--quiet", HELPER_UNIT])?;
    }
    let mut removed = Vec::new();
    for path in [unit_path(DAEMON_UNIT), unit_path(HELPER_UNIT)] {
        if system::remove_file(&path)? {
            removed.push(path.display().to_string());
        }
    }
    if units_present {
        system::systemctl(&["daemon-reload"])?;
    }
    for path in [
        paths::BANGER,
        paths::BANGERD,
        paths::AGENT,
        INSTALL_METADATA,
    ] {
        if system::remove_file(Path::new(path))? {
            removed.push(path.to_owned());
        }
    }
    // What `banger update` kept of the release before it.
    for path in [paths::BANGER, paths::BANGERD, paths::AGENT] {
        let previous = crate::update::swap::previous(Path::new(path));
        if system::remove_file(&previous)? {
            removed.push(previous.display().to_string());
        }
    }
    for dir in ["/usr/local/libexec/banger", paths::ETC_DIR] {
        let _ = std::fs::remove_dir(dir);
    }
    if args.purge {
        for dir in [paths::STATE_DIR, paths::CACHE_DIR, paths::ETC_DIR] {
            if system::remove_tree(Path::new(dir))? {
                removed.push(dir.to_owned());
            }
        }
    }
    for path in &removed {
        out.line(&format!("removed {path}"))?;
    }
    if removed.is_empty() {
        out.line("banger is not installed as a system service; nothing to remove")?;
    } else if !args.purge {
        out.line(&format!(
            "kept {} and {} (VMs, images, kernels, keys); `sudo banger system uninstall --purge` removes them",
            paths::STATE_DIR,
            paths::CACHE_DIR
        ))?;
    }
    out.finish()
}

/// What `system status --json` prints.
#[derive(Debug, Serialize)]
struct Status {
    installed: bool,
    install: Option<InstallMetadata>,
    daemon: system::UnitState,
    helper: system::UnitState,
    /// `bangerd --version` of the installed binary.
    bangerd_binary: Option<String>,
    /// This CLI's build.
    cli: BuildInfo,
    sockets: Sockets,
    /// Each way the parts disagree, with the fix.
    drift: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Sockets {
    daemon: PathBuf,
    daemon_exists: bool,
    /// The running daemon's answer to a ping.
    daemon_answers: Option<DaemonInfo>,
    helper: PathBuf,
    helper_exists: bool,
}

async fn status(json: JsonFlag) -> Result<(), CliError> {
    let install = read_metadata()?;
    let unit = |name: &str| {
        system::unit_state(name).unwrap_or_else(|_| system::UnitState {
            unit: name.to_owned(),
            ..Default::default()
        })
    };
    let (daemon, helper) = (unit(DAEMON_UNIT), unit(HELPER_UNIT));
    let bangerd_binary = {
        let mut cmd = std::process::Command::new(paths::BANGERD);
        cmd.arg("--version");
        system::output_bounded(cmd, Duration::from_secs(10))
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let answers = Client::new(PathBuf::from(paths::DAEMON_SOCKET))
        .ping()
        .await
        .ok();
    let sockets = Sockets {
        daemon: PathBuf::from(paths::DAEMON_SOCKET),
        daemon_exists: Path::new(paths::DAEMON_SOCKET).exists(),
        daemon_answers: answers,
        helper: PathBuf::from(paths::HELPER_SOCKET),
        helper_exists: Path::new(paths::HELPER_SOCKET).exists(),
    };
    let cli = banger_proto::build_info!();
    let drift = install.as_ref().map_or_else(Vec::new, |meta| {
        drift(
            meta,
            &daemon,
            &helper,
            bangerd_binary.as_deref(),
            &sockets,
            &cli,
        )
    });
    let status = Status {
        installed: install.is_some(),
        install,
        daemon,
        helper,
        bangerd_binary,
        cli,
        sockets,
        drift,
    };
    let mut out = Stdout::lock();
    if json.json {
        out.json(&status)?;
    } else {
        out.text(&render(&status))?;
    }
    out.finish()
}

/// Every disagreement between what install.toml says and what runs, each with its fix.
fn drift(
    meta: &InstallMetadata,
    daemon: &system::UnitState,
    helper: &system::UnitState,
    bangerd_binary: Option<&str>,
    sockets: &Sockets,
    cli: &BuildInfo,
) -> Vec<String> {
    let short = meta.commit.get(..8).unwrap_or(&meta.commit);
    let mut drift = Vec::new();
    for unit in [daemon, helper] {
        if unit.active != "active" {
            drift.push(format!(
                "{} is {} ({}): `sudo banger system restart`, or see `journalctl -u {}`",
                unit.unit,
                if unit.active.is_empty() {
                    "unknown"
                } else {
                    &unit.active
                },
                unit.sub,
                unit.unit.trim_end_matches(".service")
            ));
        }
    }
    match bangerd_binary {
        None => drift.push(format!(
            "{} is missing or does not run: `sudo banger system install`",
            paths::BANGERD
        )),
        Some(line) if !line.contains(&format!("commit {short}")) => drift.push(format!(
            "{} is `{line}` but install.toml says commit {short}: `sudo banger system install`",
            paths::BANGERD
        )),
        Some(_) => {}
    }
    if let Some(info) = &sockets.daemon_answers {
        if info.build.commit != meta.commit {
            drift.push(format!(
                "the running bangerd is commit {}, installed is {short}: `sudo banger system restart`",
                info.build.short_commit()
            ));
        }
    } else if daemon.active == "active" {
        drift.push(format!(
            "bangerd.service is active but nothing answers on {}: see `journalctl -u bangerd`",
            paths::DAEMON_SOCKET
        ));
    }
    if cli.commit != meta.commit && cli.commit != "unknown" {
        drift.push(format!(
            "this banger is commit {}, installed is {short}",
            cli.short_commit()
        ));
    }
    drift
}

fn render(s: &Status) -> String {
    let Some(meta) = &s.install else {
        return format!(
            "banger is not installed as a system service (no {INSTALL_METADATA}); \
             `sudo banger system install` installs it\n"
        );
    };
    let unit = |u: &system::UnitState| {
        format!(
            "{:<22} {} ({}), {}, pid {}",
            u.unit,
            if u.active.is_empty() {
                "unknown"
            } else {
                &u.active
            },
            u.sub,
            if u.enabled.is_empty() {
                "no unit file"
            } else {
                &u.enabled
            },
            u.pid
        )
    };
    let mut out = format!(
        "installed   banger {} (commit {}, built {}) for {}\n",
        meta.version,
        meta.commit.get(..8).unwrap_or(&meta.commit),
        meta.built_at,
        meta.owner
    );
    out.push_str(&format!("daemon      {}\n", unit(&s.daemon)));
    out.push_str(&format!("helper      {}\n", unit(&s.helper)));
    out.push_str(&format!(
        "bangerd     {}\n",
        s.bangerd_binary.as_deref().unwrap_or("missing")
    ));
    out.push_str(&format!(
        "socket      {} {}\n",
        s.sockets.daemon.display(),
        match &s.sockets.daemon_answers {
            Some(info) => format!(
                "answers (pid {}, commit {})",
                info.pid,
                info.build.short_commit()
            ),
            None if s.sockets.daemon_exists => "exists, no answer".to_owned(),
            None => "missing".to_owned(),
        }
    ));
    out.push_str(&format!(
        "helper      {} {}\n",
        s.sockets.helper.display(),
        if s.sockets.helper_exists {
            "exists"
        } else {
            "missing"
        }
    ));
    if s.drift.is_empty() {
        out.push_str("no drift: units, binaries and the running daemon agree\n");
    } else {
        for line in &s.drift {
            out.push_str(&format!("drift       {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(commit: &str) -> InstallMetadata {
        InstallMetadata {
            version: "0.1.0".into(),
            commit: commit.into(),
            built_at: "t".into(),
            owner: "tester".into(),
            owner_uid: 1000,
            owner_home: "/home/tester".into(),
        }
    }

    fn active(unit: &str) -> system::UnitState {
        system::UnitState {
            unit: unit.into(),
            active: "active".into(),
            sub: "running".into(),
            enabled: "enabled".into(),
            pid: 7,
        }
    }

    fn build(commit: &str) -> BuildInfo {
        BuildInfo {
            version: "0.1.0".into(),
            commit: commit.into(),
            built_at: "t".into(),
        }
    }

    fn sockets(running: Option<&str>) -> Sockets {
        Sockets {
            daemon: PathBuf::from(paths::DAEMON_SOCKET),
            daemon_exists: running.is_some(),
            daemon_answers: running.map(|commit| DaemonInfo {
                build: build(commit),
                pid: 9,
                mode: banger_model::Mode::System,
                owner_uid: 1000,
                socket: PathBuf::from(paths::DAEMON_SOCKET),
                state_dir: PathBuf::from(paths::STATE_DIR),
                started_at: "t".into(),
                dns: None,
                guest_dns: None,
            }),
            helper: PathBuf::from(paths::HELPER_SOCKET),
            helper_exists: true,
        }
    }

    const LINE: &str = "bangerd 0.1.0 (commit aaaaaaaa, built t)";

    #[test]
    fn everything_agreeing_is_no_drift() {
        let d = drift(
            &meta("aaaaaaaabbbb"),
            &active(DAEMON_UNIT),
            &active(HELPER_UNIT),
            Some(LINE),
            &sockets(Some("aaaaaaaabbbb")),
            &build("aaaaaaaabbbb"),
        );
        assert_eq!(d, Vec::<String>::new());
    }

    #[test]
    fn each_disagreement_is_named_with_its_fix() {
        let mut helper = active(HELPER_UNIT);
        helper.active = "failed".into();
        let d = drift(
            &meta("aaaaaaaabbbb"),
            &active(DAEMON_UNIT),
            &helper,
            Some("bangerd 0.1.0 (commit cccccccc, built t)"),
            &sockets(Some("dddddddd0000")),
            &build("eeeeeeee1111"),
        );
        assert_eq!(d.len(), 4, "{d:?}");
        assert!(d[0].contains("bangerd-root.service is failed"), "{d:?}");
        assert!(d[1].contains("install.toml says commit aaaaaaaa"), "{d:?}");
        assert!(d[2].contains("running bangerd is commit dddddddd"), "{d:?}");
        assert!(d[3].contains("this banger is commit eeeeeeee"), "{d:?}");
    }

    #[test]
    fn an_active_daemon_that_does_not_answer_is_drift() {
        let d = drift(
            &meta("aaaaaaaabbbb"),
            &active(DAEMON_UNIT),
            &active(HELPER_UNIT),
            Some(LINE),
            &sockets(None),
            &build("aaaaaaaabbbb"),
        );
        assert_eq!(d.len(), 1);
        assert!(d[0].contains("nothing answers"), "{d:?}");
    }

    #[test]
    fn not_installed_renders_the_fix() {
        let s = Status {
            installed: false,
            install: None,
            daemon: active(DAEMON_UNIT),
            helper: active(HELPER_UNIT),
            bangerd_binary: None,
            cli: build("x"),
            sockets: sockets(None),
            drift: Vec::new(),
        };
        assert!(render(&s).contains("sudo banger system install"));
    }
}
