//! The real [`Effects`] of `banger update` on a system install: HTTP downloads into the cache
//! dir, the staged binaries run bounded, the daemon's operation list, the binary swap,
//! `systemctl`, the installed `banger doctor` and `install.toml`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use banger_model::InstallMetadata;
use banger_model::layout::INSTALL_METADATA;
use banger_proto::{BuildInfo, Operation, OperationState, routes};

use super::download::Downloader;
use super::flow::{Effects, Staged};
use super::stage;
use super::swap::Install;
use super::verify::Sums;
use crate::client::Client;
use crate::error::CliError;
use crate::system::{self, paths};

/// Where releases are downloaded and staged.
pub fn staging_dir() -> PathBuf {
    Path::new(paths::CACHE_DIR).join("updates")
}

/// Holds `/var/cache/banger/updates.lock` for the life of the returned file, so two updates
/// never stage or swap at once.
pub fn lock() -> Result<std::fs::File, CliError> {
    let path = Path::new(paths::CACHE_DIR).join("updates.lock");
    let io = |source| CliError::Io {
        what: format!("cannot open {}", path.display()),
        source,
    };
    std::fs::create_dir_all(paths::CACHE_DIR).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(CliError::Failed(
            "another `banger update` is running; wait for it to finish".to_owned(),
        )),
        Err(std::fs::TryLockError::Error(source)) => Err(CliError::Io {
            what: format!("cannot lock {}", path.display()),
            source,
        }),
    }
}

/// How long a staged binary's sanity run may take.
const SANITY_LIMIT: Duration = Duration::from_secs(60);
/// How long the new `banger doctor` may take.
const DOCTOR_LIMIT: Duration = Duration::from_secs(120);

/// Effects on this host's system install.
pub struct HostEffects {
    downloader: Downloader,
    dir: PathBuf,
    install: Install,
}

impl HostEffects {
    /// Ready to update the system install.
    pub fn new() -> Result<Self, CliError> {
        Ok(Self {
            downloader: Downloader::new()?,
            dir: staging_dir(),
            install: Install::system(),
        })
    }
}

fn run_bounded(program: &Path, args: &[&str], limit: Duration) -> Result<(i32, String), CliError> {
    let mut cmd = Command::new(program);
    // The caller's environment (root's HOME and PATH, where the CLI resolves its layout and
    // finds its tools), without colour codes in what is reported.
    cmd.args(args).env("NO_COLOR", "1");
    let out = system::output_bounded(cmd, limit).map_err(|e| {
        CliError::Failed(format!(
            "cannot run {} {}: {e}",
            program.display(),
            args.join(" ")
        ))
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Killed by a signal: no code; report it as a failure of its own.
    Ok((out.status.code().unwrap_or(-1), text))
}

impl Effects for HostEffects {
    async fn fetch(&mut self, url: &str) -> Result<Vec<u8>, CliError> {
        self.downloader.fetch(url).await
    }

    async fn download(&mut self, url: &str, name: &str) -> Result<String, CliError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| CliError::Io {
            what: format!("cannot create {}", self.dir.display()),
            source,
        })?;
        self.downloader.download(url, &self.dir.join(name)).await
    }

    fn stage(&mut self, name: &str, sums: &Sums) -> Result<Staged, CliError> {
        stage::unpack(&self.dir.join(name), &self.dir.join("staged"), sums)
    }

    fn staged_version(&mut self, staged: &Staged) -> Result<String, CliError> {
        let (code, out) = run_bounded(&staged.banger, &["--version"], SANITY_LIMIT)?;
        if code != 0 {
            return Err(CliError::Failed(format!(
                "the staged banger does not run (`banger --version` exited {code}): {}",
                out.trim()
            )));
        }
        Ok(out)
    }

    fn check_migrations(&mut self, staged: &Staged) -> Result<(i32, String), CliError> {
        run_bounded(
            &staged.bangerd,
            &["--check-migrations", "--system"],
            SANITY_LIMIT,
        )
    }

    async fn running_operations(&mut self) -> Result<Vec<String>, CliError> {
        let client = Client::new(PathBuf::from(paths::DAEMON_SOCKET));
        if client.ping().await.is_err() {
            crate::output::note("bangerd does not answer, so no operation can be running");
            return Ok(Vec::new());
        }
        let ops: Vec<Operation> = client.get(routes::LIST_OPERATIONS, &[]).await?;
        Ok(ops
            .into_iter()
            .filter(|op| op.state == OperationState::Running)
            .map(|op| match op.target {
                Some(t) => format!("{} {} {t}", op.id, op.kind),
                None => format!("{} {}", op.id, op.kind),
            })
            .collect())
    }

    fn swap(&mut self, staged: &Staged) -> Result<(), CliError> {
        self.install.swap(staged)
    }

    fn restore(&mut self) -> Result<(), CliError> {
        self.install.restore()
    }

    fn restart(&mut self, unit: &str) -> Result<(), CliError> {
        // A unit that failed repeatedly (a broken release) is start-limited: clear that first.
        let _ = system::systemctl(&["reset-failed", unit]);
        system::systemctl(&["restart", unit]).map(|_| ())
    }

    async fn wait_daemon(&mut self) -> Result<BuildInfo, CliError> {
        crate::commands::system::wait_for_daemon(None)
            .await
            .map(|info| info.build)
    }

    fn doctor(&mut self) -> Result<(), CliError> {
        let (code, out) = run_bounded(Path::new(paths::BANGER), &["doctor"], DOCTOR_LIMIT)?;
        if code != 0 {
            return Err(CliError::Failed(format!(
                "the new `banger doctor` failed (exit {code}): {}",
                out.trim()
            )));
        }
        Ok(())
    }

    fn record(&mut self, build: &BuildInfo) -> Result<(), CliError> {
        let text = std::fs::read_to_string(INSTALL_METADATA).map_err(|source| CliError::Io {
            what: format!("cannot read {INSTALL_METADATA}"),
            source,
        })?;
        let mut meta = InstallMetadata::parse(&text)
            .map_err(|e| CliError::Failed(format!("{INSTALL_METADATA}: {e}")))?;
        meta.version.clone_from(&build.version);
        meta.commit.clone_from(&build.commit);
        meta.built_at.clone_from(&build.built_at);
        system::write_atomic(
            Path::new(INSTALL_METADATA),
            meta.to_toml().as_bytes(),
            0o644,
        )
    }

    fn say(&mut self, line: &str) {
        crate::output::info(line);
    }
}
