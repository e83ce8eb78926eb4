//! Any OCI / Docker image as a banger image: registry → verified blobs → flattened tree →
//! `rootfs.ext4` + `work-seed.ext4`.
//!
//! 1. [`registry::fetch`]: the platform manifest (an index is resolved to this host's
//!    OS/architecture), the config, every layer blob; digests verified; blobs shared through a
//!    content-addressed cache, new ones held in the pull's scratch dir until it succeeds.
//! 2. [`build`] (blocking): the layers are applied bottom-up by [`unpack::Flattener`], which
//!    treats every entry as hostile (no `..`, no absolute paths, nothing written or deleted
//!    through a symlink, hard links only inside the tree, a cap on the unpacked size); each
//!    blob is hashed again before it is read, so a corrupted cache entry fails the pull too
//!    (and is removed from the cache).
//!    Then the tree is made an image (per-VM SSH host keys removed, the caller's extra files
//!    such as the agent installed, `/root` moved into the work seed) and `mkfs.ext4 -d` builds
//!    both disks. Ownership: as root the tree already carries the image's uids (`lchown`);
//!    otherwise they are set in the finished image with one `debugfs` script.
//!
//! Everything is written under the caller's work directory; nothing is moved into place here.

pub mod auth;
pub mod config;
pub mod registry;
pub mod unpack;

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ext4::{self, Ext4Error};
use crate::fsutil::{self, FsError};
use crate::image::{ExtraFile, split_root_home};
use crate::{Progress, ProgressFn};
pub use config::ImageConfig;
pub use registry::{FetchError, FetchProgress, FetchSpec, Fetched, LayerBlob, fetch};
pub use unpack::UnpackError;

/// Free space left in an OCI root filesystem.
const ROOTFS_HEADROOM: u64 = 64 << 20;
/// Free space in the work seed (it is grown per VM anyway).
const SEED_HEADROOM: u64 = 32 << 20;
/// Smallest work seed.
const SEED_MIN: u64 = 64 << 20;

/// Building the image from fetched blobs failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A layer was refused or is broken.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// A blob's bytes do not match its digest (a corrupted cache entry).
    #[error(
        "layer {layer} ({digest}) does not match its digest; it was removed from the cache, pull again"
    )]
    Digest {
        /// 1-based layer.
        layer: usize,
        /// Expected digest.
        digest: String,
    },
    /// The image is for another platform.
    #[error("{0}")]
    Platform(String),
    /// Making the tree an image failed.
    #[error("cannot prepare the root filesystem tree")]
    Tree(#[source] FsError),
    /// mkfs or debugfs failed.
    #[error("cannot build the ext4 images")]
    Ext4(#[source] Ext4Error),
    /// Host I/O.
    #[error("i/o error on {}", path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}

/// What [`build`] produced inside `out`.
#[derive(Debug, Clone)]
pub struct Built {
    /// `out/rootfs.ext4`.
    pub rootfs_ext4: PathBuf,
    /// `out/work-seed.ext4`.
    pub work_seed_ext4: PathBuf,
    /// Bytes charged against the unpacked-size cap.
    pub unpacked: u64,
    /// Device nodes that could not be created without root.
    pub skipped_devices: Vec<PathBuf>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether the file at `path` hashes to `digest` (`sha256:<hex>`).
fn matches_digest(path: &Path, digest: &str) -> Result<bool, BuildError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", crate::catalog::hex(&hasher.finalize())) == digest)
}

/// Applies `layers` into `work/rootfs` (at most `max_unpacked` bytes), installs `extra_files`,
/// and builds `out/rootfs.ext4` and `out/work-seed.ext4`. `work` and `out` must exist.
pub fn build(
    fetched: &Fetched,
    work: &Path,
    out: &Path,
    max_unpacked: u64,
    extra_files: &[ExtraFile],
    progress: &mut ProgressFn<'_>,
) -> Result<Built, BuildError> {
    fetched
        .config
        .check_platform()
        .map_err(BuildError::Platform)?;
    let root = work.join("rootfs");
    std::fs::create_dir(&root).map_err(io(&root))?;
    fsutil::set_mode(&root, 0o755).map_err(BuildError::Tree)?;
    let mut flattener = unpack::Flattener::new(&root, max_unpacked);
    let count = fetched.layers.len();
    for (i, layer) in fetched.layers.iter().enumerate() {
        let index = i + 1;
        progress(Progress::Stage(&format!("unpack layer {index}/{count}")));
        // Checked again here, before a byte of it is parsed: a cached blob may have rotted.
        if !matches_digest(&layer.path, &layer.digest)? {
            let _ = std::fs::remove_file(&layer.path);
            return Err(BuildError::Digest {
                layer: index,
                digest: layer.digest.clone(),
            });
        }
        let file = std::fs::File::open(&layer.path).map_err(io(&layer.path))?;
        flattener.apply_layer(index, std::io::BufReader::new(file))?;
    }
    let flattened = flattener.finish()?;

    progress(Progress::Stage("prepare tree"));
    prepare_tree(&root).map_err(BuildError::Tree)?;
    for f in extra_files {
        fsutil::install_file(&root, &f.guest_path, &f.host_path, f.mode & 0o7777)
            .map_err(BuildError::Tree)?;
    }
    let seed = work.join("work-seed");
    split_root_home(&root, &seed).map_err(BuildError::Tree)?;

    progress(Progress::Stage("mkfs rootfs"));
    let rootfs_ext4 = out.join("rootfs.ext4");
    let usage = ext4::usage(&root).map_err(BuildError::Ext4)?;
    ext4::mkfs(
        Some(&root),
        &rootfs_ext4,
        ext4::image_size(usage, ROOTFS_HEADROOM, 0),
        "banger-root",
    )
    .map_err(BuildError::Ext4)?;
    progress(Progress::Stage("mkfs work seed"));
    let work_seed_ext4 = out.join("work-seed.ext4");
    let usage = ext4::usage(&seed).map_err(BuildError::Ext4)?;
    ext4::mkfs(
        Some(&seed),
        &work_seed_ext4,
        ext4::image_size(usage, SEED_HEADROOM, SEED_MIN),
        "banger-work",
    )
    .map_err(BuildError::Ext4)?;
    ext4::set_root_mode(&work_seed_ext4, 0o700).map_err(BuildError::Ext4)?;

    if !flattened.owners.is_empty() {
        progress(Progress::Stage("set owners"));
        let (mut in_root, mut in_seed) = (Vec::new(), Vec::new());
        for o in flattened.owners {
            match o.path.strip_prefix("root") {
                Ok(rest) if !rest.as_os_str().is_empty() => {
                    in_seed.push((Path::new("/").join(rest), o.uid, o.gid))
                }
                Ok(_) => {}
                Err(_) if o.path.as_os_str().is_empty() => {}
                Err(_) => in_root.push((Path::new("/").join(&o.path), o.uid, o.gid)),
            }
        }
        ext4::set_owners(&rootfs_ext4, &in_root).map_err(BuildError::Ext4)?;
        ext4::set_owners(&work_seed_ext4, &in_seed).map_err(BuildError::Ext4)?;
    }
    Ok(Built {
        rootfs_ext4,
        work_seed_ext4,
        unpacked: flattened.charged,
        skipped_devices: flattened.skipped_devices,
    })
}

/// Makes a flattened tree an image: `/root` a real directory (a symlink there is replaced, so
/// the split below never leaves the tree), no SSH host keys (every VM gets its own).
fn prepare_tree(root: &Path) -> Result<(), FsError> {
    let home = root.join("root");
    match std::fs::symlink_metadata(&home) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            std::fs::remove_file(&home).map_err(fsutil::io_err(&home))?;
            std::fs::create_dir(&home).map_err(fsutil::io_err(&home))?;
        }
        Err(_) => std::fs::create_dir(&home).map_err(fsutil::io_err(&home))?,
    }
    let ssh = root.join("etc/ssh");
    if std::fs::symlink_metadata(&ssh).is_ok_and(|m| m.is_dir()) {
        for e in std::fs::read_dir(&ssh).map_err(fsutil::io_err(&ssh))? {
            let e = e.map_err(fsutil::io_err(&ssh))?;
            let is_key = e
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("ssh_host_"));
            if is_key && !e.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_file(e.path()).map_err(fsutil::io_err(&e.path()))?;
            }
        }
    }
    Ok(())
}
