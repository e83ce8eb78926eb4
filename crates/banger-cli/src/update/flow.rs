//! The order of `banger update`, with every side effect behind [`Effects`].
//!
//! The sequence is the contract, so it lives here alone and is tested with a fake:
//!
//! 1. manifest → pick the release (`--to` or latest stable); `--check` ends here;
//! 2. `SHA256SUMS` and its signature → verified with the release key before anything else is
//!    read; the tarball → its sha256 against the verified sums; staged (each file checked);
//! 3. the staged `banger --version` names the release; the staged `bangerd
//!    --check-migrations --system` exits 0 or 1 (2: the new daemon cannot use this state);
//! 4. no daemon operation running (unless `--force`); `--dry-run` ends here;
//! 5. swap (keeping `.previous`), restart helper then daemon, wait until the daemon answers
//!    with the new version, run the new `banger doctor`, record `install.toml`.
//!
//! Nothing in the install's bin dir changes before step 5. A failure in step 5 restores
//! `.previous`, restarts the old services and reports the failure followed by
//! "(rolled back to vX)".

use std::path::PathBuf;

use banger_proto::BuildInfo;

use super::manifest::{Manifest, Selected};
use super::verify::{ReleaseKey, Sums};
use super::version::Version;
use crate::error::CliError;

/// The daemon's unit.
pub const DAEMON: &str = crate::system::units::DAEMON_UNIT;
/// The root helper's unit.
pub const HELPER: &str = crate::system::units::HELPER_UNIT;

/// The staged release: the three binaries, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// `bin/banger`.
    pub banger: PathBuf,
    /// `bin/bangerd`.
    pub bangerd: PathBuf,
    /// `libexec/banger/banger-agent`.
    pub agent: PathBuf,
}

/// Everything `update` does to the world.
#[allow(async_fn_in_trait)]
pub trait Effects {
    /// The whole body at `url` (the manifest, `SHA256SUMS`, the signature).
    async fn fetch(&mut self, url: &str) -> Result<Vec<u8>, CliError>;
    /// Downloads `url` into the staging area as `name`; returns its sha256 (lowercase hex).
    async fn download(&mut self, url: &str, name: &str) -> Result<String, CliError>;
    /// Unpacks the downloaded tarball `name` and checks each file against `sums`.
    fn stage(&mut self, name: &str, sums: &Sums) -> Result<Staged, CliError>;
    /// The staged `banger --version` line.
    fn staged_version(&mut self, staged: &Staged) -> Result<String, CliError>;
    /// The staged `bangerd --check-migrations --system`: its exit code and output.
    fn check_migrations(&mut self, staged: &Staged) -> Result<(i32, String), CliError>;
    /// Ids and kinds of the daemon's running operations.
    async fn running_operations(&mut self) -> Result<Vec<String>, CliError>;
    /// Puts the staged binaries in place, keeping the installed ones as `.previous`.
    fn swap(&mut self, staged: &Staged) -> Result<(), CliError>;
    /// Puts `.previous` back.
    fn restore(&mut self) -> Result<(), CliError>;
    /// `systemctl restart UNIT`.
    fn restart(&mut self, unit: &str) -> Result<(), CliError>;
    /// Waits (bounded) until the daemon answers; returns the build it reports.
    async fn wait_daemon(&mut self) -> Result<BuildInfo, CliError>;
    /// The installed (new) `banger doctor`.
    fn doctor(&mut self) -> Result<(), CliError>;
    /// Records `build` in `install.toml`.
    fn record(&mut self, build: &BuildInfo) -> Result<(), CliError>;
    /// Tells the user how it goes (stderr).
    fn say(&mut self, line: &str);
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The manifest's URL.
    pub manifest_url: String,
    /// `--to`.
    pub to: Option<Version>,
    /// `--check`.
    pub check: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--force`.
    pub force: bool,
    /// The running version.
    pub current: Version,
}

/// How an update ended (the one line for stdout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `--check`: nothing newer.
    UpToDate(Version),
    /// `--check`: this one is available.
    Available {
        /// Installed.
        current: Version,
        /// Available.
        latest: Version,
    },
    /// Nothing to do: this version is installed.
    AlreadyInstalled(Version),
    /// `--dry-run`: everything checked, nothing changed.
    DryRun(Version),
    /// Updated.
    Updated {
        /// Before.
        from: Version,
        /// Now.
        to: Version,
    },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UpToDate(v) => write!(f, "banger {v} is up to date"),
            Self::Available { current, latest } => write!(
                f,
                "update available: {current} -> {latest} (install it with `sudo banger update`)"
            ),
            Self::AlreadyInstalled(v) => write!(
                f,
                "banger {v} is already installed; nothing to do (--to {v} --force reinstalls it)"
            ),
            Self::DryRun(v) => write!(
                f,
                "dry run: {v} is downloaded, verified and staged, and its daemon can use this \
                 install's state; nothing was changed (run without --dry-run to install it)"
            ),
            Self::Updated { from, to } => write!(
                f,
                "updated banger {from} -> {to}: the daemon answers, doctor passed, running VMs \
                 kept running"
            ),
        }
    }
}

fn failed(text: String) -> CliError {
    CliError::Failed(text)
}

/// Runs `update` as far as `req` asks. `key` is needed only past `--check`.
pub async fn run<E: Effects>(
    fx: &mut E,
    req: &Request,
    key: impl FnOnce() -> Result<ReleaseKey, CliError>,
) -> Result<Outcome, CliError> {
    let url = &req.manifest_url;
    let text = fx.fetch(url).await?;
    let text = String::from_utf8(text)
        .map_err(|_| failed(format!("the release manifest {url} is not UTF-8 text")))?;
    let manifest = Manifest::parse(url, &text).map_err(|e| failed(e.to_string()))?;
    let selected = manifest
        .select(url, req.to.as_ref())
        .map_err(|e| failed(e.to_string()))?;
    if req.check {
        return Ok(if selected.version > req.current || req.to.is_some() {
            if selected.version == req.current {
                Outcome::UpToDate(req.current.clone())
            } else {
                Outcome::Available {
                    current: req.current.clone(),
                    latest: selected.version,
                }
            }
        } else {
            Outcome::UpToDate(req.current.clone())
        });
    }
    if selected.version == req.current && !req.force {
        return Ok(Outcome::AlreadyInstalled(req.current.clone()));
    }
    if req.to.is_none() && selected.version < req.current {
        return Ok(Outcome::UpToDate(req.current.clone()));
    }
    if selected.version.is_prerelease() {
        fx.say(&format!("{} is a pre-release", selected.version));
    }
    let key = key()?;
    let staged = fetch_and_verify(fx, &selected, &key).await?;
    preflight(fx, &selected.version, &staged)?;
    let running = fx.running_operations().await?;
    if !running.is_empty() && !req.force {
        return Err(failed(format!(
            "the daemon is running {} operation(s) ({}); wait for them to finish, or pass \
             --force to update anyway",
            running.len(),
            running.join(", ")
        )));
    }
    if req.dry_run {
        return Ok(Outcome::DryRun(selected.version));
    }
    swap_and_restart(fx, &req.current, &selected.version, &staged).await?;
    Ok(Outcome::Updated {
        from: req.current.clone(),
        to: selected.version,
    })
}

/// Step 2: signature first, then the tarball's digest, then each staged file.
async fn fetch_and_verify<E: Effects>(
    fx: &mut E,
    selected: &Selected,
    key: &ReleaseKey,
) -> Result<Staged, CliError> {
    let v = &selected.version;
    fx.say(&format!("fetching release {v}"));
    let sums_body = fx.fetch(&selected.sums_url).await?;
    let signature = fx.fetch(&selected.signature_url).await?;
    let signature = String::from_utf8_lossy(&signature);
    let refused = |e: &dyn std::fmt::Display| failed(format!("release {v} refused: {e}"));
    key.verify(&sums_body, &signature)
        .map_err(|e| refused(&e))?;
    let sums = Sums::parse(&String::from_utf8_lossy(&sums_body)).map_err(|e| refused(&e))?;
    fx.say("SHA256SUMS: signature verified");
    let digest = fx
        .download(&selected.tarball_url, &selected.tarball_name)
        .await?;
    sums.check(&selected.tarball_name, &digest)
        .map_err(|e| refused(&e))?;
    let staged = fx.stage(&selected.tarball_name, &sums)?;
    fx.say(&format!(
        "{}: sha256 verified, staged",
        selected.tarball_name
    ));
    Ok(staged)
}

/// Step 3: the staged binaries run and accept this install's state.
fn preflight<E: Effects>(fx: &mut E, version: &Version, staged: &Staged) -> Result<(), CliError> {
    let line = fx.staged_version(staged)?;
    let names_it = line
        .split_whitespace()
        .nth(1)
        .and_then(Version::parse)
        .is_some_and(|v| &v == version);
    if !names_it {
        return Err(failed(format!(
            "release {version} refused: its banger says `{}`, not {version}",
            line.trim()
        )));
    }
    let (code, out) = fx.check_migrations(staged)?;
    match code {
        0 | 1 => {
            fx.say(&format!(
                "staged bangerd can use this install's state: {}",
                out.trim()
            ));
            Ok(())
        }
        2 => Err(failed(format!(
            "release {version} refused before any change: its bangerd cannot use this \
             install's state ({}); nothing was swapped",
            out.trim()
        ))),
        other => Err(failed(format!(
            "release {version} refused: its `bangerd --check-migrations --system` exited \
             {other}: {}",
            out.trim()
        ))),
    }
}

/// Step 5, with rollback on any failure.
async fn swap_and_restart<E: Effects>(
    fx: &mut E,
    from: &Version,
    to: &Version,
    staged: &Staged,
) -> Result<(), CliError> {
    if let Err(e) = fx.swap(staged) {
        // A partial swap: put back whatever was replaced; the old services never stopped.
        return Err(rolled_back(fx, e, from, false).await);
    }
    fx.say(&format!(
        "installed {to}; restarting bangerd-root.service and bangerd.service"
    ));
    match activate(fx, to).await {
        Ok(build) => {
            if let Err(e) = fx.record(&build) {
                return Err(rolled_back(fx, e, from, true).await);
            }
            Ok(())
        }
        Err(e) => Err(rolled_back(fx, e, from, true).await),
    }
}

/// Restart helper then daemon, wait for the new version, doctor.
async fn activate<E: Effects>(fx: &mut E, to: &Version) -> Result<BuildInfo, CliError> {
    fx.restart(HELPER)?;
    fx.restart(DAEMON)?;
    let build = fx.wait_daemon().await?;
    if Version::parse(&build.version).as_ref() != Some(to) {
        return Err(failed(format!(
            "the restarted daemon reports {}, not {to}",
            build.version
        )));
    }
    fx.doctor()?;
    Ok(build)
}

/// Restores `.previous` (and restarts the services when they were restarted), and returns
/// the original failure with what the rollback did.
async fn rolled_back<E: Effects>(
    fx: &mut E,
    cause: CliError,
    from: &Version,
    restart: bool,
) -> CliError {
    fx.say(&format!("update failed: {cause}; rolling back to {from}"));
    let mut problems = Vec::new();
    if let Err(e) = fx.restore() {
        problems.push(format!("restoring the previous binaries failed: {e}"));
    }
    if restart && problems.is_empty() {
        for unit in [HELPER, DAEMON] {
            if let Err(e) = fx.restart(unit) {
                problems.push(format!("restarting {unit} failed: {e}"));
            }
        }
        if problems.is_empty()
            && let Err(e) = fx.wait_daemon().await
        {
            problems.push(format!("the old daemon does not answer: {e}"));
        }
    }
    if problems.is_empty() {
        failed(format!("{cause} (rolled back to {from})"))
    } else {
        failed(format!(
            "{cause}; the rollback to {from} failed too: {}; restore by hand: move each \
             /usr/local/bin/*.previous and /usr/local/libexec/banger/banger-agent.previous \
             back and run `sudo banger system restart`",
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::verify::sha256_hex as digest;

    const URL: &str = "http://127.0.0.1:1/m/manifest.json";
    const TARBALL: &str = "banger-v0.2.0-x86_64-linux.tar.gz";

    /// A key pair made with p256 directly (the openssl interop is tested in `verify`).
    fn keys() -> (p256::ecdsa::SigningKey, ReleaseKey) {
        use p256::pkcs8::EncodePublicKey as _;
        let signing = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("key");
        let pem = signing
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .expect("pem");
        (signing, ReleaseKey::from_pem(&pem).expect("public key"))
    }

    fn sign(key: &p256::ecdsa::SigningKey, body: &[u8]) -> String {
        use base64::Engine as _;
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = key.sign(body);
        base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
    }

    /// Records every effect; each knob makes one step fail.
    struct Fake {
        calls: Vec<String>,
        files: std::collections::BTreeMap<String, Vec<u8>>,
        tarball: Vec<u8>,
        version_line: String,
        migrations: i32,
        operations: Vec<String>,
        fail: Vec<&'static str>,
        daemon_version: String,
        restarts: usize,
    }

    impl Fake {
        fn new(signer: &p256::ecdsa::SigningKey) -> Self {
            let tarball = b"the tarball".to_vec();
            let sums = format!("{}  {TARBALL}\n", digest(&tarball));
            let sig = sign(signer, sums.as_bytes());
            let manifest = format!(
                r#"{{"schema": 1, "latest_stable": "v0.2.0", "releases": {{
                  "v0.1.0": {{"tarball": {{"x86_64-linux": "v0.1.0/banger-v0.1.0-x86_64-linux.tar.gz"}},
                             "sha256sums": "v0.1.0/SHA256SUMS", "signature": "v0.1.0/SHA256SUMS.sig"}},
                  "v0.2.0": {{"tarball": {{"x86_64-linux": "v0.2.0/{TARBALL}"}},
                             "sha256sums": "v0.2.0/SHA256SUMS", "signature": "v0.2.0/SHA256SUMS.sig"}}}}}}"#
            );
            let mut files = std::collections::BTreeMap::new();
            files.insert(URL.to_owned(), manifest.into_bytes());
            files.insert(
                "http://127.0.0.1:1/m/v0.2.0/SHA256SUMS".to_owned(),
                sums.into_bytes(),
            );
            files.insert(
                "http://127.0.0.1:1/m/v0.2.0/SHA256SUMS.sig".to_owned(),
                sig.into_bytes(),
            );
            Self {
                calls: Vec::new(),
                files,
                tarball,
                version_line: "banger v0.2.0 (commit abc, built t)".into(),
                migrations: 0,
                operations: Vec::new(),
                fail: Vec::new(),
                daemon_version: "v0.2.0".into(),
                restarts: 0,
            }
        }

        fn step(&mut self, name: &str) -> Result<(), CliError> {
            self.calls.push(name.to_owned());
            // Each knob fails once: the rollback's own calls succeed unless listed again.
            if let Some(i) = self.fail.iter().position(|f| *f == name) {
                self.fail.remove(i);
                return Err(CliError::Failed(format!("{name} broke")));
            }
            Ok(())
        }

        fn staged() -> Staged {
            Staged {
                banger: "/s/bin/banger".into(),
                bangerd: "/s/bin/bangerd".into(),
                agent: "/s/libexec/banger/banger-agent".into(),
            }
        }
    }

    impl Effects for Fake {
        async fn fetch(&mut self, url: &str) -> Result<Vec<u8>, CliError> {
            self.calls
                .push(format!("fetch {}", url.rsplit('/').next().unwrap_or(url)));
            self.files
                .get(url)
                .cloned()
                .ok_or_else(|| CliError::Failed(format!("404 {url}")))
        }
        async fn download(&mut self, _url: &str, name: &str) -> Result<String, CliError> {
            self.step(&format!("download {name}"))?;
            Ok(digest(&self.tarball))
        }
        fn stage(&mut self, _name: &str, _sums: &Sums) -> Result<Staged, CliError> {
            self.step("stage")?;
            Ok(Self::staged())
        }
        fn staged_version(&mut self, _staged: &Staged) -> Result<String, CliError> {
            self.step("staged --version")?;
            Ok(self.version_line.clone())
        }
        fn check_migrations(&mut self, _staged: &Staged) -> Result<(i32, String), CliError> {
            self.step("check-migrations")?;
            Ok((self.migrations, format!("exit {}", self.migrations)))
        }
        async fn running_operations(&mut self) -> Result<Vec<String>, CliError> {
            self.step("operations")?;
            Ok(self.operations.clone())
        }
        fn swap(&mut self, _staged: &Staged) -> Result<(), CliError> {
            self.step("swap")
        }
        fn restore(&mut self) -> Result<(), CliError> {
            self.step("restore")
        }
        fn restart(&mut self, unit: &str) -> Result<(), CliError> {
            self.restarts += 1;
            self.step(&format!("restart {unit}"))
        }
        async fn wait_daemon(&mut self) -> Result<BuildInfo, CliError> {
            self.step("wait")?;
            Ok(BuildInfo {
                version: self.daemon_version.clone(),
                commit: "abc".into(),
                built_at: "t".into(),
            })
        }
        fn doctor(&mut self) -> Result<(), CliError> {
            self.step("doctor")
        }
        fn record(&mut self, build: &BuildInfo) -> Result<(), CliError> {
            self.step(&format!("record {}", build.version))
        }
        fn say(&mut self, _line: &str) {}
    }

    fn req() -> Request {
        Request {
            manifest_url: URL.into(),
            to: None,
            check: false,
            dry_run: false,
            force: false,
            current: Version::parse("v0.1.0").expect("version"),
        }
    }

    fn go(fx: &mut Fake, req: &Request) -> Result<Outcome, CliError> {
        let (_, key) = keys();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(run(fx, req, || Ok(key)))
    }

    const VERIFIED: &[&str] = &[
        "fetch manifest.json",
        "fetch SHA256SUMS",
        "fetch SHA256SUMS.sig",
        "download banger-v0.2.0-x86_64-linux.tar.gz",
        "stage",
        "staged --version",
        "check-migrations",
        "operations",
    ];

    fn calls(extra: &[&str]) -> Vec<String> {
        VERIFIED
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect()
    }

    #[test]
    fn a_good_update_runs_every_step_in_order() {
        let (signer, _) = keys();
        let mut fx = Fake::new(&signer);
        let out = go(&mut fx, &req()).expect("updates");
        assert_eq!(
            out.to_string(),
            "updated banger v0.1.0 -> v0.2.0: the daemon answers, doctor passed, running VMs kept running"
        );
        assert_eq!(
            fx.calls,
            calls(&[
                "swap",
                "restart bangerd-root.service",
                "restart bangerd.service",
                "wait",
                "doctor",
                "record v0.2.0"
            ])
        );
    }

    #[test]
    fn check_reads_only_the_manifest() {
        let (signer, _) = keys();
        let mut fx = Fake::new(&signer);
        let out = go(
            &mut fx,
            &Request {
                check: true,
                ..req()
            },
        )
        .expect("checks");
        assert!(out.to_string().contains("v0.1.0 -> v0.2.0"), "{out}");
        assert_eq!(fx.calls, vec!["fetch manifest.json"]);
        let current = Request {
            check: true,
            current: Version::parse("v0.2.0").expect("v"),
            ..req()
        };
        let out = go(&mut fx, &current).expect("checks");
        assert_eq!(out, Outcome::UpToDate(current.current.clone()));
    }

    #[test]
    fn an_unknown_version_fails_before_any_download() {
        let (signer, _) = keys();
        let mut fx = Fake::new(&signer);
        let err = go(
            &mut fx,
            &Request {
                to: Version::parse("v9.9.8"),
                ..req()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("v9.9.8 is not published"), "{err}");
        assert_eq!(fx.calls, vec!["fetch manifest.json"]);
    }

    #[test]
    fn the_key_is_asked_for_only_past_check_and_refuses_first() {
        let (signer, _) = keys();
        let mut fx = Fake::new(&signer);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let err = rt
            .block_on(run(&mut fx, &req(), || {
                Err(CliError::Failed("placeholder key".into()))
            }))
            .unwrap_err();
        assert!(err.to_string().contains("placeholder"), "{err}");
        assert_eq!(fx.calls, vec!["fetch manifest.json"]);
    }

    #[test]
    fn a_bad_signature_or_digest_refuses_before_staging() {
        let (signer, _) = keys();
        let other = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).expect("key");
        let sig_url = "http://127.0.0.1:1/m/v0.2.0/SHA256SUMS.sig";
        let sums_url = "http://127.0.0.1:1/m/v0.2.0/SHA256SUMS";
        let mut by_other = Fake::new(&signer);
        let body = by_other.files[sums_url].clone();
        by_other
            .files
            .insert(sig_url.into(), sign(&other, &body).into_bytes());
        let mut malformed = Fake::new(&signer);
        malformed
            .files
            .insert(sig_url.into(), b"not base64!".to_vec());
        let mut tampered_sums = Fake::new(&signer);
        tampered_sums.files.insert(
            sums_url.into(),
            format!("{}  {TARBALL}\n", "0".repeat(64)).into_bytes(),
        );
        for (mut fx, needle) in [
            (by_other, "not signed by the release key"),
            (malformed, "malformed"),
            (tampered_sums, "not signed by the release key"),
        ] {
            let err = go(&mut fx, &req()).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
            assert_eq!(fx.calls, calls(&[])[..3].to_vec(), "{err}");
        }
        let mut tampered_tarball = Fake::new(&signer);
        tampered_tarball.tarball = b"evil".to_vec();
        let err = go(&mut tampered_tarball, &req()).unwrap_err().to_string();
        assert!(err.contains("but SHA256SUMS says"), "{err}");
        assert_eq!(tampered_tarball.calls, calls(&[])[..4].to_vec());
    }

    #[test]
    fn preflight_refusals_change_nothing() {
        let (signer, _) = keys();
        let mut wrong = Fake::new(&signer);
        wrong.version_line = "banger v0.1.0 (commit x, built t)".into();
        let err = go(&mut wrong, &req()).unwrap_err().to_string();
        assert!(err.contains("says `banger v0.1.0"), "{err}");
        assert!(!wrong.calls.iter().any(|c| c == "swap"));

        let mut incompatible = Fake::new(&signer);
        incompatible.migrations = 2;
        let err = go(&mut incompatible, &req()).unwrap_err().to_string();
        assert!(err.contains("refused before any change"), "{err}");
        assert_eq!(incompatible.calls, calls(&[])[..7].to_vec());

        let mut pending = Fake::new(&signer);
        pending.migrations = 1;
        assert!(go(&mut pending, &req()).is_ok(), "1 = will migrate: fine");
    }

    #[test]
    fn running_operations_refuse_unless_forced() {
        let (signer, _) = keys();
        let mut busy = Fake::new(&signer);
        busy.operations = vec!["op-1 vm.create".into()];
        let err = go(&mut busy, &req()).unwrap_err().to_string();
        assert!(
            err.contains("op-1 vm.create") && err.contains("--force"),
            "{err}"
        );
        assert_eq!(busy.calls, calls(&[]));
        let mut forced = Fake::new(&signer);
        forced.operations = vec!["op-1 vm.create".into()];
        assert!(
            go(
                &mut forced,
                &Request {
                    force: true,
                    ..req()
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn dry_run_stops_before_the_swap() {
        let (signer, _) = keys();
        let mut fx = Fake::new(&signer);
        let out = go(
            &mut fx,
            &Request {
                dry_run: true,
                ..req()
            },
        )
        .expect("dry run");
        assert!(matches!(out, Outcome::DryRun(_)), "{out}");
        assert_eq!(fx.calls, calls(&[]));
    }

    #[test]
    fn a_failure_after_the_swap_rolls_back_and_restarts_the_old_services() {
        for step in [
            "restart bangerd-root.service",
            "restart bangerd.service",
            "wait",
            "doctor",
            "record v0.2.0",
        ] {
            let (signer, _) = keys();
            let mut fx = Fake::new(&signer);
            fx.fail = vec![step];
            let err = go(&mut fx, &req()).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{step} broke"))
                    && err.ends_with("(rolled back to v0.1.0)"),
                "{step}: {err}"
            );
            let tail = fx
                .calls
                .iter()
                .skip_while(|c| *c != "restore")
                .cloned()
                .collect::<Vec<_>>();
            assert_eq!(
                tail,
                vec![
                    "restore",
                    "restart bangerd-root.service",
                    "restart bangerd.service",
                    "wait"
                ],
                "{step}: {:?}",
                fx.calls
            );
        }
    }

    #[test]
    fn a_daemon_of_another_version_rolls_back() {
        let (signer, _) = keys();
        let mut fx = Fake::new(&signer);
        fx.daemon_version = "v0.1.0".into();
        let err = go(&mut fx, &req()).unwrap_err().to_string();
        assert!(err.contains("reports v0.1.0, not v0.2.0"), "{err}");
        assert!(err.ends_with("(rolled back to v0.1.0)"), "{err}");
    }

    #[test]
    fn a_failed_swap_restores_without_restarting() {
        let (signer, _) = keys();
        let mut fx = Fake::new(&signer);
        fx.fail = vec!["swap"];
        let err = go(&mut fx, &req()).unwrap_err().to_string();
        assert!(err.ends_with("(rolled back to v0.1.0)"), "{err}");
        assert_eq!(fx.calls, calls(&["swap", "restore"]));
        assert_eq!(fx.restarts, 0);
    }

    #[test]
    fn a_failed_rollback_says_how_to_restore_by_hand() {
        let (signer, _) = keys();
        let mut fx = Fake::new(&signer);
        fx.fail = vec!["doctor", "restore"];
        let err = go(&mut fx, &req()).unwrap_err().to_string();
        assert!(err.starts_with("doctor broke"), "{err}");
        assert!(err.contains("rollback to v0.1.0 failed too"), "{err}");
        assert!(err.contains("by hand"), "{err}");
    }
}
