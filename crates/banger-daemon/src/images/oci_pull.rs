//! `image pull REF`: any OCI / Docker image becomes a managed image.
//!
//! A pull is an operation under the pull lock (one build at a time). Its files live in two
//! private dirs under `<state>/staging/`: a scratch dir (new blobs, the flattened tree), always
//! removed, and an output dir (`rootfs.ext4`, `work-seed.ext4`) that — under the registry
//! lock — is renamed to `images/<id>/` as the record is written. Only after that are the new
//! blobs moved into the shared cache (`<cache>/oci/blobs/sha256/`), so a failed pull leaves
//! nothing behind: no record, no image dir, no cache entry, no scratch file. The kernel is the
//! default image's catalog kernel (an OCI image carries none), pulled first if missing.

use std::path::{Path, PathBuf};

use banger_image::oci::{self, FetchProgress, FetchSpec};
use banger_model::ImageRecord;
use banger_model::config::DEFAULT_OCI_MAX_UNPACKED;
use banger_proto::{ErrorCode, Operation};

use super::pull::{catalog, ensure_kernel, image_recipe};
use super::{ImageError, check_name, staging};
use crate::api::error::chain;
use crate::context::DaemonContext;
use crate::ids;
use crate::operations::OperationHandle;

type StepResult<T> = Result<T, (ErrorCode, String)>;

/// `<cache>/oci`: the blob cache root.
pub fn oci_cache_dir(ctx: &DaemonContext) -> PathBuf {
    ctx.layout().cache_dir.join("oci")
}

/// An image name from a reference: the repository's last component and the tag (or the
/// first 12 digits of the digest), lowercased, other characters turned into `-`.
pub fn default_name(reference: &oci::registry::Reference) -> String {
    let repo = reference.repository().rsplit('/').next().unwrap_or("image");
    let suffix = match (reference.tag(), reference.digest()) {
        (Some(tag), _) => tag.to_owned(),
        (None, Some(d)) => d.split(':').nth(1).unwrap_or(d).chars().take(12).collect(),
        (None, None) => "latest".to_owned(),
    };
    let mut name: String = format!("{repo}-{suffix}")
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(63);
    name
}

fn human(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    format!("{:.1} MiB", bytes as f64 / MIB)
}

/// `POST /v1/images/pull` with an OCI reference: validates, then pulls in the background.
pub async fn pull_oci(
    ctx: &DaemonContext,
    reference: &str,
    name: Option<String>,
) -> Result<Operation, ImageError> {
    let parsed = oci::registry::parse_reference(reference)
        .map_err(|e| ImageError::invalid(e.to_string()))?;
    let name = name.unwrap_or_else(|| default_name(&parsed));
    check_name("image", &name)?;
    if ctx.store().images().get_by_name(&name)?.is_some() {
        return Err(ImageError::new(
            ErrorCode::AlreadyExists,
            format!(
                "an image named {name} already exists; delete it (`banger image rm {name}`) or pull with --name NEW"
            ),
        ));
    }
    let agent = ctx
        .agent_binary()
        .map_err(|e| ImageError::new(ErrorCode::HostProblem, e.to_string()))?;
    let catalog = catalog()?;
    let default_image = ctx.config().default_image().to_owned();
    let kernel_name = image_recipe(&catalog, &default_image)
        .map(|r| r.kernel)
        .or_else(|| catalog.kernels.first().map(|k| k.name.clone()))
        .ok_or_else(|| {
            ImageError::not_found("the catalog has no kernel to boot OCI images with")
        })?;
    let kernel = catalog.kernel(&kernel_name).cloned().ok_or_else(|| {
        ImageError::not_found(format!("kernel {kernel_name} is not in the catalog"))
    })?;

    let op = ctx.operations().begin("image.pull", Some(&name));
    let snapshot = op.snapshot();
    let ctx = ctx.clone();
    let reference = reference.to_owned();
    tokio::spawn(async move {
        let _lock = ctx.pull_lock().lock().await;
        let (op, kernel) = ensure_kernel(&ctx, &kernel, op).await;
        let result = match kernel {
            Ok(k) => pull_into_store(&ctx, &reference, &name, &k.name, agent, &op).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => op.succeed(),
            Err((code, message)) => op.fail(code, &message),
        }
    });
    Ok(snapshot)
}

async fn pull_into_store(
    ctx: &DaemonContext,
    reference: &str,
    name: &str,
    kernel_name: &str,
    agent: PathBuf,
    op: &OperationHandle,
) -> StepResult<ImageRecord> {
    let failed = |e: &dyn std::error::Error| (ErrorCode::OperationFailed, chain(e));
    let state = ctx.layout().state_dir.clone();
    let scratch = staging::Staging::new(&state).map_err(|e| failed(&e))?;
    let out = staging::Staging::new(&state).map_err(|e| failed(&e))?;
    let blobs = scratch.path().join("blobs");
    let work = scratch.path().join("work");
    for dir in [&blobs, &work] {
        std::fs::create_dir(dir).map_err(|e| failed(&e))?;
    }
    let config = ctx.config();
    let max_unpacked = config
        .oci_max_unpacked_size
        .unwrap_or(DEFAULT_OCI_MAX_UNPACKED)
        .bytes();
    let spec = FetchSpec {
        reference: reference.to_owned(),
        insecure_registries: config.insecure_registries.clone(),
        docker_config: ctx.docker_config(),
        cache_dir: oci_cache_dir(ctx),
        scratch_dir: blobs,
        max_blob: max_unpacked,
    };

    op.stage(&format!("fetch {reference}"));
    let progress_op = op.clone();
    let progress = move |p: FetchProgress| match p {
        FetchProgress::Layer {
            index,
            count,
            digest,
            size,
            cached,
        } => {
            let short: String = digest.chars().skip(7).take(12).collect();
            progress_op.stage(&format!("layer {index}/{count} {short}"));
            progress_op.detail(&if cached {
                format!("{} (cached)", human(size))
            } else {
                format!("0 of {}", human(size))
            });
        }
        FetchProgress::Bytes { done, total, .. } => {
            progress_op.detail(&format!("{} of {}", human(done), human(total)));
        }
    };
    let fetched = oci::fetch(&spec, &progress).await.map_err(|e| {
        let code = match &e {
            oci::FetchError::BadReference { .. } => ErrorCode::BadRequest,
            _ => ErrorCode::OperationFailed,
        };
        (code, chain(&e))
    })?;

    let worker = op.clone();
    let fetched2 = fetched.clone();
    let out_dir = out.path().to_path_buf();
    let agent_for_ssh = agent.clone();
    let built = tokio::task::spawn_blocking(move || {
        let extra = [banger_image::ExtraFile {
            guest_path: banger_guest::paths::AGENT_PATH.into(),
            host_path: agent,
            mode: 0o755,
        }];
        let mut progress = |p: banger_image::Progress<'_>| match p {
            banger_image::Progress::Stage(s) => worker.stage(s),
            banger_image::Progress::Line(s) => worker.detail(s),
        };
        oci::build(
            &fetched2,
            &work,
            &out_dir,
            max_unpacked,
            &extra,
            &mut progress,
        )
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "OCI build task panicked");
        (
            ErrorCode::OperationFailed,
            "the image build crashed; see the daemon log".to_owned(),
        )
    })?
    .map_err(|e| failed(&e))?;
    op.stage("ssh server");
    let (rootfs, ssh_cache) = (built.rootfs_ext4.clone(), super::ssh_inject::cache_dir(ctx));
    let ssh = tokio::task::spawn_blocking(move || {
        super::ssh_inject::ensure_ssh(&rootfs, &ssh_cache, &agent_for_ssh)
    })
    .await
    .map_err(|e| {
        (
            ErrorCode::OperationFailed,
            format!("the ssh server step crashed: {e}"),
        )
    })?
    .map_err(|e| (e.code(), e.to_string()))?;
    op.detail(match ssh {
        super::ssh_inject::SshSource::Image => "the image's own sshd",
        super::ssh_inject::SshSource::Bundle => "banger's OpenSSH bundle (the image has no sshd)",
    });
    if !built.skipped_devices.is_empty() {
        tracing::warn!(
            count = built.skipped_devices.len(),
            "device nodes in the image were skipped (the daemon is not root)"
        );
    }

    op.stage("register");
    let id = ids::record_id();
    let dest = ctx.layout().images_dir().join(&id);
    let record = ImageRecord {
        id,
        name: name.to_owned(),
        source: fetched.reference.clone(),
        digest: Some(fetched.manifest_digest.clone()),
        rootfs_path: dest.join("rootfs.ext4"),
        work_seed_path: Some(dest.join("work-seed.ext4")),
        kernel_name: Some(kernel_name.to_owned()),
        created_at: ids::now_rfc3339(),
        oci_config: Some(fetched.config.run.clone()),
    };
    let ctx2 = ctx.clone();
    let record = tokio::task::spawn_blocking(move || {
        let _registry = ctx2.registry_lock();
        if matches!(ctx2.store().images().get_by_name(&record.name), Ok(Some(_))) {
            return Err((
                ErrorCode::AlreadyExists,
                format!("an image named {} already exists", record.name),
            ));
        }
        out.commit(&dest).map_err(|e| failed(&e))?;
        if let Err(e) = ctx2.store().images().insert(&record) {
            if let Err(rm) = std::fs::remove_dir_all(&dest) {
                tracing::warn!(dir = %dest.display(), error = %rm, "could not remove pulled files");
            }
            return Err(failed(&e));
        }
        Ok(record)
    })
    .await
    .map_err(|e| {
        (
            ErrorCode::OperationFailed,
            format!("the registration crashed: {e}"),
        )
    })??;
    for (from, to) in &fetched.new_blobs {
        if let Err(e) = cache_blob(from, to) {
            tracing::warn!(blob = %to.display(), error = %e, "could not cache a layer blob");
        }
    }
    drop(scratch);
    Ok(record)
}

/// Moves a verified blob into the cache: a rename, or a copy and rename across file systems.
fn cache_blob(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if to.exists() {
        return Ok(());
    }
    if let Some(dir) = to.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(18) => {
            let tmp = to.with_file_name(format!(".partial-{}", ids::random_hex(6)));
            std::fs::copy(from, &tmp)?;
            std::fs::rename(&tmp, to).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_valid_image_names() {
        let name = |r: &str| default_name(&oci::registry::parse_reference(r).expect("parse"));
        assert_eq!(name("docker.io/library/debian:bookworm"), "debian-bookworm");
        assert_eq!(name("localhost:5000/test/app:1"), "app-1");
        assert_eq!(name("python:3.12-slim"), "python-3.12-slim");
        assert_eq!(name("ghcr.io/o/i:V1_X"), "i-v1_x");
        let pinned = format!("ghcr.io/o/i@sha256:{}", "ab".repeat(32));
        assert_eq!(name(&pinned), "i-abababababab");
        for r in ["debian", "a/b/c:d", "localhost:5000/x"] {
            check_name("image", &name(r)).expect(r);
        }
    }
}
