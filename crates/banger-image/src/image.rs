//! Building an image (`rootfs.ext4` + `work-seed.ext4`) from a recipe.
//!
//! Steps, all inside a hidden staging directory next to the destination:
//! 1. [`crate::debootstrap`] the recipe's suite and packages into `rootfs/`;
//! 2. make the tree an *image* rather than a copy of the build host: drop downloaded `.deb`s and
//!    apt lists, the SSH host keys debootstrap generated (every VM must get its own; the daemon
//!    writes them before boot), the host's `resolv.conf` and hostname debootstrap copied in, and
//!    the machine id; write apt sources for the mirror used;
//! 3. install the caller's [`ExtraFile`]s (the agent, an init), resolving guest paths inside the
//!    tree so that merged-/usr symlinks are followed and nothing escapes it;
//! 4. move `/root`'s contents into `work-seed/` (SPEC §5: the work disk, mounted on `/root`, is
//!    seeded from it) and leave `/root` an empty mount point;
//! 5. `mkfs.ext4 -d` both trees ([`crate::ext4`]), write the manifest, rename into place.
//!
//! The manifest records a digest of the recipe *and* of every extra file's path, mode and
//! contents, so a new agent binary rebuilds the image while an identical second call is a no-op.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::{ImageRecipe, hex};
use crate::debootstrap::{self, DebootstrapError};
use crate::ext4::{self, Ext4Error};
use crate::fsutil::{self, FsError};
use crate::mirror::Mirror;
use crate::{Progress, ProgressFn, apt};

/// Manifest format version.
pub const MANIFEST_FORMAT: u32 = 1;
/// Bumped whenever this module's output changes for the same inputs, to invalidate caches.
const BUILD_REVISION: u32 = 2;
/// Free space in the work seed (it is grown per VM anyway).
const SEED_HEADROOM: u64 = 32 << 20;
/// Smallest work seed.
const SEED_MIN: u64 = 64 << 20;

/// A host file to place in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// Absolute path inside the guest (`/usr/local/bin/banger-agent`). Files under `/root`
    /// end up in the work seed.
    pub guest_path: PathBuf,
    /// File on the host to copy.
    pub host_path: PathBuf,
    /// Permission bits (`0o755`).
    pub mode: u32,
}

/// An extra file as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraFileRecord {
    /// Guest path.
    pub guest_path: PathBuf,
    /// Permission bits.
    pub mode: u32,
    /// SHA-256 of the contents.
    pub sha256: String,
}

/// What was built, recorded in `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// Recipe name.
    pub recipe: String,
    /// Digest of the recipe, the builder revision and the extra files: the cache key.
    pub inputs_digest: String,
    /// Kernel recipe the image boots with.
    pub kernel: String,
    /// Mirror it came from.
    pub mirror: Mirror,
    /// Installed packages and versions, from the image's dpkg status.
    pub packages: Vec<(String, String)>,
    /// Extra files installed.
    pub extra_files: Vec<ExtraFileRecord>,
    /// Size of `rootfs.ext4`, bytes.
    pub rootfs_size: u64,
    /// Size of `work-seed.ext4`, bytes.
    pub work_seed_size: u64,
}

/// A complete image on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageArtifact {
    /// Destination directory.
    pub dir: PathBuf,
    /// Root filesystem (`root=/dev/vda`).
    pub rootfs_ext4: PathBuf,
    /// Seed of the work disk (`/dev/vdb`, mounted on `/root`).
    pub work_seed_ext4: PathBuf,
    /// Its manifest.
    pub manifest: ImageManifest,
}

/// An image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildImageError {
    /// The destination is relative or has no parent.
    #[error("image destination {0} must be an absolute path with a parent")]
    BadDestination(String),
    /// An extra file's host path cannot be read.
    #[error("cannot read extra file {path}")]
    ExtraFile {
        /// Host path.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Host I/O.
    #[error("i/o error on {path}")]
    Io {
        /// Path.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// debootstrap failed.
    #[error("cannot bootstrap the root filesystem")]
    Debootstrap(#[source] DebootstrapError),
    /// Preparing the tree failed.
    #[error("cannot prepare the root filesystem tree")]
    Tree(#[source] FsError),
    /// Building an ext4 image failed.
    #[error("cannot build the ext4 images")]
    Ext4(#[source] Ext4Error),
    /// The manifest could not be written.
    #[error("cannot write the image manifest")]
    Manifest(#[source] serde_json::Error),
    /// The staging tree or the previous artifact could not be removed.
    #[error("cannot clean up")]
    Cleanup(#[source] FsError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildImageError + '_ {
    move |source| BuildImageError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Hashes the extra files and combines them with the recipe into the cache key.
fn inputs(
    recipe: &ImageRecipe,
    extra_files: &[ExtraFile],
) -> Result<(String, Vec<ExtraFileRecord>), BuildImageError> {
    let mut records = Vec::new();
    for f in extra_files {
        fsutil::check_guest_path(&f.guest_path).map_err(BuildImageError::Tree)?;
        let data = std::fs::read(&f.host_path).map_err(|source| BuildImageError::ExtraFile {
            path: f.host_path.display().to_string(),
            source,
        })?;
        records.push(ExtraFileRecord {
            guest_path: f.guest_path.clone(),
            mode: f.mode & 0o7777,
            sha256: hex(&Sha256::digest(&data)),
        });
    }
    let mut h = Sha256::new();
    h.update(recipe.digest().as_bytes());
    h.update(BUILD_REVISION.to_le_bytes());
    for r in &records {
        h.update(r.guest_path.as_os_str().as_encoded_bytes());
        h.update([0]);
        h.update(r.mode.to_le_bytes());
        h.update(r.sha256.as_bytes());
    }
    Ok((hex(&h.finalize()), records))
}

/// `(package, version)` of every installed package in dpkg `status` text.
pub fn installed_packages(status: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for stanza in status.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::trim))
        };
        if let (Some(p), Some(v), Some(s)) = (field("Package"), field("Version"), field("Status"))
            && s.ends_with(" installed")
        {
            out.push((p.to_owned(), v.to_owned()));
        }
    }
    out.sort();
    out
}

fn artifact(dir: &Path, manifest: ImageManifest) -> ImageArtifact {
    ImageArtifact {
        dir: dir.to_path_buf(),
        rootfs_ext4: dir.join("rootfs.ext4"),
        work_seed_ext4: dir.join("work-seed.ext4"),
        manifest,
    }
}

/// The image at `dir` if it is complete and was built from these inputs.
pub fn load_cached(
    dir: &Path,
    recipe: &ImageRecipe,
    extra_files: &[ExtraFile],
) -> Result<Option<ImageArtifact>, BuildImageError> {
    let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else {
        return Ok(None);
    };
    let Ok(manifest) = serde_json::from_str::<ImageManifest>(&text) else {
        return Ok(None);
    };
    let (digest, _) = inputs(recipe, extra_files)?;
    if manifest.format != MANIFEST_FORMAT || manifest.inputs_digest != digest {
        return Ok(None);
    }
    let a = artifact(dir, manifest);
    Ok((a.rootfs_ext4.is_file() && a.work_seed_ext4.is_file()).then_some(a))
}

/// Removes files in `dir` matching `keep_dirs == false` semantics: every non-directory entry.
fn clear_files(dir: &Path, pred: impl Fn(&str) -> bool) -> Result<(), FsError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir && e.file_name().to_str().is_some_and(&pred) {
            std::fs::remove_file(&path).map_err(fsutil::io_err(&path))?;
        }
    }
    Ok(())
}

/// Step 2: turn a fresh debootstrap tree into an image tree.
pub(crate) fn scrub_tree(
    root: &Path,
    recipe: &ImageRecipe,
    mirror: &Mirror,
) -> Result<(), FsError> {
    clear_files(&root.join("var/cache/apt/archives"), |n| {
        n.ends_with(".deb")
    })?;
    clear_files(&root.join("var/cache/apt"), |n| n.ends_with(".bin"))?;
    clear_files(&root.join("var/lib/apt/lists"), |n| n != "lock")?;
    clear_files(&root.join("etc/ssh"), |n| n.starts_with("ssh_host_"))?;
    let w = |guest: &str, text: &str, mode| {
        fsutil::write_guest_file(root, Path::new(guest), text.as_bytes(), mode)
    };
    w("/etc/hostname", "banger\n", 0o644)?;
    w(
        "/etc/hosts",
        "127.0.0.1\tlocalhost\n127.0.1.1\tbanger\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        0o644,
    )?;
    w("/etc/resolv.conf", "", 0o644)?;
    w("/etc/machine-id", "", 0o444)?;
    let dbus_id = root.join("var/lib/dbus/machine-id");
    if std::fs::symlink_metadata(&dbus_id).is_ok_and(|m| m.is_file()) {
        std::fs::remove_file(&dbus_id).map_err(fsutil::io_err(&dbus_id))?;
    }
    let sources = apt::sources_list(
        mirror,
        &recipe.suite,
        &recipe.components,
        apt::DEBIAN_KEYRING,
    );
    w("/etc/apt/sources.list", &sources, 0o644)?;
    Ok(())
}

/// Step 4: moves the entries of `root/root` into `seed` (created, mode 0700).
pub(crate) fn split_root_home(root: &Path, seed: &Path) -> Result<(), FsError> {
    let home = root.join("root");
    std::fs::create_dir_all(seed).map_err(fsutil::io_err(seed))?;
    fsutil::set_mode(seed, 0o700)?;
    if !home.is_dir() {
        std::fs::create_dir(&home).map_err(fsutil::io_err(&home))?;
    }
    for e in std::fs::read_dir(&home).map_err(fsutil::io_err(&home))? {
        let e = e.map_err(fsutil::io_err(&home))?;
        let to = seed.join(e.file_name());
        std::fs::rename(e.path(), &to).map_err(fsutil::io_err(&to))?;
    }
    fsutil::set_mode(&home, 0o700)
}

/// Builds (or returns the cached) image for `recipe` into `dest`.
pub fn build_image(
    recipe: &ImageRecipe,
    mirror: &Mirror,
    dest: &Path,
    extra_files: &[ExtraFile],
    progress: &mut ProgressFn<'_>,
) -> Result<ImageArtifact, BuildImageError> {
    let parent = dest
        .parent()
        .filter(|_| dest.is_absolute())
        .ok_or_else(|| BuildImageError::BadDestination(dest.display().to_string()))?;
    if let Some(cached) = load_cached(dest, recipe, extra_files)? {
        progress(Progress::Stage("image up to date"));
        return Ok(cached);
    }
    let (inputs_digest, extra_records) = inputs(recipe, extra_files)?;
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    // Not a TempDir: removal must go through `remove_tree`, which refuses to cross mounts.
    let work = tempfile::Builder::new()
        .prefix(".banger-image-")
        .tempdir_in(parent)
        .map_err(io(parent))?
        .keep();
    let result = build_in(
        recipe,
        mirror,
        dest,
        extra_files,
        &work,
        inputs_digest,
        extra_records,
        progress,
    );
    let cleanup = fsutil::remove_tree(&work);
    let artifact = result?;
    cleanup.map_err(BuildImageError::Cleanup)?;
    Ok(artifact)
}

#[allow(clippy::too_many_arguments)]
fn build_in(
    recipe: &ImageRecipe,
    mirror: &Mirror,
    dest: &Path,
    extra_files: &[ExtraFile],
    work: &Path,
    inputs_digest: String,
    extra_records: Vec<ExtraFileRecord>,
    progress: &mut ProgressFn<'_>,
) -> Result<ImageArtifact, BuildImageError> {
    let rootfs = work.join("rootfs");
    debootstrap::run(recipe, mirror, &rootfs, progress).map_err(BuildImageError::Debootstrap)?;

    progress(Progress::Stage("prepare tree"));
    scrub_tree(&rootfs, recipe, mirror).map_err(BuildImageError::Tree)?;
    for f in extra_files {
        fsutil::install_file(&rootfs, &f.guest_path, &f.host_path, f.mode & 0o7777)
            .map_err(BuildImageError::Tree)?;
    }
    let status_path = rootfs.join("var/lib/dpkg/status");
    let packages =
        installed_packages(&std::fs::read_to_string(&status_path).map_err(io(&status_path))?);
    let seed = work.join("work-seed");
    split_root_home(&rootfs, &seed).map_err(BuildImageError::Tree)?;

    let out = work.join("out");
    std::fs::create_dir(&out).map_err(io(&out))?;
    progress(Progress::Stage("mkfs rootfs"));
    let rootfs_size = ext4::image_size(
        ext4::usage(&rootfs).map_err(BuildImageError::Ext4)?,
        recipe.rootfs_headroom_mib << 20,
        0,
    );
    ext4::mkfs(
        Some(&rootfs),
        &out.join("rootfs.ext4"),
        rootfs_size,
        "banger-root",
    )
    .map_err(BuildImageError::Ext4)?;
    progress(Progress::Stage("mkfs work seed"));
    let seed_size = ext4::image_size(
        ext4::usage(&seed).map_err(BuildImageError::Ext4)?,
        SEED_HEADROOM,
        SEED_MIN,
    );
    ext4::mkfs(
        Some(&seed),
        &out.join("work-seed.ext4"),
        seed_size,
        "banger-work",
    )
    .map_err(BuildImageError::Ext4)?;
    // mkfs.ext4 -d leaves `/` at 0755; the disk is mounted on /root.
    ext4::set_root_mode(&out.join("work-seed.ext4"), 0o700).map_err(BuildImageError::Ext4)?;

    let manifest = ImageManifest {
        format: MANIFEST_FORMAT,
        recipe: recipe.name.clone(),
        inputs_digest,
        kernel: recipe.kernel.clone(),
        mirror: mirror.clone(),
        packages,
        extra_files: extra_records,
        rootfs_size: std::fs::metadata(out.join("rootfs.ext4"))
            .map_err(io(&out))?
            .len(),
        work_seed_size: std::fs::metadata(out.join("work-seed.ext4"))
            .map_err(io(&out))?
            .len(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(BuildImageError::Manifest)?;
    let manifest_path = out.join("manifest.json");
    std::fs::write(&manifest_path, json).map_err(io(&manifest_path))?;

    progress(Progress::Stage("install"));
    fsutil::remove_tree(dest).map_err(BuildImageError::Cleanup)?;
    std::fs::rename(&out, dest).map_err(io(dest))?;
    Ok(artifact(dest, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn recipe() -> ImageRecipe {
        Catalog::builtin().expect("catalog").images.remove(0)
    }

    fn mirror() -> Mirror {
        Mirror {
            archive: "http://deb.debian.org/debian".into(),
            security: Some("http://deb.debian.org/debian-security".into()),
        }
    }

    #[test]
    fn dpkg_status_parsing() {
        let status = "\
Package: zlib1g
Status: install ok installed
Version: 1:1.2.13.dfsg-1

Package: gone
Status: deinstall ok config-files
Version: 1.0

Package: bash
Status: install ok installed
Priority: required
Version: 5.2.15-2+b7
";
        assert_eq!(
            installed_packages(status),
            [
                ("bash".to_owned(), "5.2.15-2+b7".to_owned()),
                ("zlib1g".to_owned(), "1:1.2.13.dfsg-1".to_owned())
            ]
        );
    }

    #[test]
    fn scrub_and_split_a_fake_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("rootfs");
        for d in [
            "var/cache/apt/archives/partial",
            "var/lib/apt/lists/partial",
            "etc/ssh",
            "root/.ssh",
            "var/lib/dbus",
        ] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        let touch = |p: &str, c: &str| std::fs::write(root.join(p), c).expect("write");
        touch("var/cache/apt/archives/bash_5.2_amd64.deb", "deb");
        touch("var/cache/apt/pkgcache.bin", "bin");
        touch("var/lib/apt/lists/deb.debian.org_Packages", "idx");
        touch("var/lib/apt/lists/lock", "");
        touch("etc/ssh/ssh_host_ed25519_key", "secret");
        touch("etc/ssh/sshd_config", "cfg");
        touch("etc/hostname", "buildhost\n");
        touch("var/lib/dbus/machine-id", "abc");
        touch("root/.bashrc", "rc");
        touch("root/.ssh/authorized_keys", "key");
        std::os::unix::fs::symlink(
            "/run/systemd/resolve/stub-resolv.conf",
            root.join("etc/resolv.conf"),
        )
        .expect("symlink");

        scrub_tree(&root, &recipe(), &mirror()).expect("scrub");
        assert!(
            !root
                .join("var/cache/apt/archives/bash_5.2_amd64.deb")
                .exists()
        );
        assert!(root.join("var/cache/apt/archives/partial").is_dir());
        assert!(!root.join("var/cache/apt/pkgcache.bin").exists());
        assert!(
            !root
                .join("var/lib/apt/lists/deb.debian.org_Packages")
                .exists()
        );
        assert!(root.join("var/lib/apt/lists/lock").exists());
        assert!(!root.join("etc/ssh/ssh_host_ed25519_key").exists());
        assert!(root.join("etc/ssh/sshd_config").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hostname")).expect("read"),
            "banger\n"
        );
        let resolv = std::fs::symlink_metadata(root.join("etc/resolv.conf")).expect("meta");
        assert!(resolv.is_file() && resolv.len() == 0);
        assert!(!root.join("var/lib/dbus/machine-id").exists());
        let sources = std::fs::read_to_string(root.join("etc/apt/sources.list")).expect("read");
        assert!(sources.contains("bookworm-security"), "{sources}");

        let seed = dir.path().join("seed");
        split_root_home(&root, &seed).expect("split");
        assert_eq!(
            std::fs::read_dir(root.join("root")).expect("read").count(),
            0
        );
        assert_eq!(
            std::fs::read_to_string(seed.join(".ssh/authorized_keys")).expect("read"),
            "key"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&seed).expect("meta").permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn inputs_digest_tracks_extra_file_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let agent = dir.path().join("agent");
        std::fs::write(&agent, b"v1").expect("write");
        let extra = [ExtraFile {
            guest_path: "/usr/local/bin/banger-agent".into(),
            host_path: agent.clone(),
            mode: 0o755,
        }];
        let (a, records) = inputs(&recipe(), &extra).expect("inputs");
        assert_eq!(records[0].mode, 0o755);
        let (b, _) = inputs(&recipe(), &extra).expect("inputs");
        assert_eq!(a, b);
        std::fs::write(&agent, b"v2").expect("write");
        let (c, _) = inputs(&recipe(), &extra).expect("inputs");
        assert_ne!(a, c);
        let (d, _) = inputs(&recipe(), &[]).expect("inputs");
        assert_ne!(c, d);
        let bad = [ExtraFile {
            guest_path: "relative/x".into(),
            host_path: agent,
            mode: 0o644,
        }];
        assert!(matches!(
            inputs(&recipe(), &bad),
            Err(BuildImageError::Tree(_))
        ));
    }

    #[test]
    fn cached_image_is_returned_without_work() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("images/debian-bookworm");
        std::fs::create_dir_all(&dest).expect("mkdir");
        let (inputs_digest, extra_files) = inputs(&recipe(), &[]).expect("inputs");
        let manifest = ImageManifest {
            format: MANIFEST_FORMAT,
            recipe: "debian-bookworm".into(),
            inputs_digest,
            kernel: "debian-cloud".into(),
            mirror: mirror(),
            packages: vec![],
            extra_files,
            rootfs_size: 1,
            work_seed_size: 1,
        };
        std::fs::write(
            dest.join("manifest.json"),
            serde_json::to_vec(&manifest).expect("json"),
        )
        .expect("write");
        std::fs::write(dest.join("rootfs.ext4"), b"x").expect("write");
        std::fs::write(dest.join("work-seed.ext4"), b"x").expect("write");
        let mut stages = Vec::new();
        let a = build_image(&recipe(), &mirror(), &dest, &[], &mut |p| {
            if let Progress::Stage(s) = p {
                stages.push(s.to_owned());
            }
        })
        .expect("cached");
        assert_eq!(stages, ["image up to date"]);
        assert_eq!(a.manifest, manifest);
    }
}
