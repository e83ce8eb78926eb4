//! `banger update`: checks who asks and what for, then runs [`crate::update::flow`] with the
//! host's effects and prints its one-line outcome.
//!
//! `--check` needs no root (it only reads the manifest). Everything else updates the system
//! install, so it needs root and an install (`/etc/banger/install.toml`). The hidden
//! `--manifest-url` and `--pubkey-file` redirect where releases come from and which key is
//! trusted, so they are refused for anyone but root, even with `--check`.

use banger_model::layout::INSTALL_METADATA;

use crate::args::update::UpdateArgs;
use crate::error::CliError;
use crate::output::Stdout;
use crate::update::flow::{self, Request};
use crate::update::host::HostEffects;
use crate::update::verify::ReleaseKey;
use crate::update::version::Version;
use crate::validate;

/// The release manifest this build reads, set at build time (`BANGER_RELEASE_MANIFEST_URL`).
const MANIFEST_URL: Option<&str> = option_env!("BANGER_RELEASE_MANIFEST_URL");

/// Runs `banger update`.
pub async fn run(args: &UpdateArgs) -> Result<(), CliError> {
    let to = args
        .to
        .as_deref()
        .map(validate::release_version)
        .transpose()?;
    let root = nix::unistd::geteuid().is_root();
    if !root && (args.manifest_url.is_some() || args.pubkey_file.is_some()) {
        return Err(CliError::Usage(
            "--manifest-url and --pubkey-file change what banger trusts, so only root may \
             pass them: run `sudo banger update …`; nothing was changed"
                .to_owned(),
        ));
    }
    if !root && !args.check {
        return Err(CliError::NotRoot {
            hint: "sudo banger update".to_owned(),
        });
    }
    if !args.check && !std::path::Path::new(INSTALL_METADATA).exists() {
        return Err(CliError::Failed(format!(
            "banger update updates a system install, and there is none here (no \
             {INSTALL_METADATA}); install one with `sudo banger system install`, or update a \
             user install with install.sh"
        )));
    }
    let manifest_url = match (&args.manifest_url, MANIFEST_URL) {
        (Some(url), _) => url.clone(),
        (None, Some(url)) => url.to_owned(),
        (None, None) => {
            return Err(CliError::Failed(
                "this build of banger names no release manifest (it was built without \
                 BANGER_RELEASE_MANIFEST_URL), so it cannot look for updates; install new \
                 releases with install.sh"
                    .to_owned(),
            ));
        }
    };
    let build = banger_proto::build_info!();
    let current = Version::parse(&build.version).ok_or_else(|| {
        CliError::Failed(format!(
            "this banger's version {:?} is not a release version, so it cannot be compared \
             with releases; install one with install.sh",
            build.version
        ))
    })?;
    let request = Request {
        manifest_url,
        to,
        check: args.check,
        dry_run: args.dry_run,
        force: args.force,
        current,
    };
    let pubkey = args.pubkey_file.clone();
    let key = move || -> Result<ReleaseKey, CliError> {
        let key = match &pubkey {
            Some(path) => {
                let pem = std::fs::read_to_string(path).map_err(|source| CliError::Io {
                    what: format!("cannot read the release public key {}", path.display()),
                    source,
                })?;
                ReleaseKey::from_pem(&pem)
            }
            None => ReleaseKey::embedded(),
        };
        key.map_err(|e| CliError::Failed(format!("{e}; nothing was changed")))
    };
    let _lock = if args.check {
        None
    } else {
        Some(crate::update::host::lock()?)
    };
    let mut effects = HostEffects::new()?;
    let outcome = flow::run(&mut effects, &request, key).await?;
    let mut out = Stdout::lock();
    out.line(&outcome.to_string())?;
    out.finish()
}
