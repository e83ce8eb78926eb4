//! ext4 images with e2fsprogs: the one place banger runs `mkfs.ext4`, `e2fsck`, `resize2fs`,
//! `debugfs` and `dumpe2fs`.
//!
//! The image builder fills root filesystems and work seeds from directories; the daemon grows
//! work disks and writes banger's key and the agent into images before boot. Both go through
//! this module, so every e2fsprogs call has one argument vector, one exit-code rule and one
//! typed error that carries the tool's stderr.
//!
//! There is no mature pure-Rust ext4 writer, and `mkfs.ext4 -d DIR` (e2fsprogs ≥ 1.43) fills a
//! new filesystem from a directory without mounting anything (no loop device, no root needed
//! beyond reading the tree), copying ownership, modes, device nodes and symlinks. Measured
//! here: a 261 MB debootstrap tree → 1 GiB image in ~1.7 s. Growing a disk is `e2fsck -fy`
//! (resize2fs insists on a freshly checked fs), a sparse `set_len` and `resize2fs`. Files go
//! into an existing image with one `debugfs -w` script ([`Edits`], [`apply`]); debugfs reports
//! most failures only on stderr and exits 0, so [`apply`] reads every change back and fails
//! with debugfs's stderr when one did not take.
//!
//! All images use 4 KiB blocks: mke2fs picks 1 KiB blocks for small images (its "small" type),
//! which would stay with the work disk after it is grown to gigabytes. Reserved blocks are 0:
//! these are single-user VM disks. Host paths must be absolute so no argument can read as an
//! option; paths inside an image must be absolute, without `..`, whitespace or quotes, so no
//! path can change the meaning of a debugfs script line.

use std::path::{Path, PathBuf};

use crate::cmd::{self, CommandError};

/// Block size of every image; sizes are rounded up to it.
pub const BLOCK_SIZE: u64 = 4096;
/// Bytes of inode table per inode that mke2fs uses by default (`inode_ratio`).
const INODE_RATIO: u64 = 16384;
/// [`image_size`] rounds up to this.
const ROUND: u64 = 4 << 20;

/// An ext4 operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    /// A host path argument is relative.
    #[error("path {0} must be absolute")]
    RelativePath(String),
    /// A label is too long or has unsafe characters.
    #[error("invalid filesystem label `{0}` (at most 16 of [A-Za-z0-9_-])")]
    InvalidLabel(String),
    /// A path inside the image that a debugfs script cannot carry safely.
    #[error(
        "invalid path `{0}` inside the filesystem (absolute, no `..`, no whitespace or quotes)"
    )]
    InvalidGuestPath(String),
    /// Growing would shrink the image.
    #[error("cannot grow {path} to {requested} bytes: it already has {current}")]
    Shrink {
        /// Image.
        path: String,
        /// Current size.
        current: u64,
        /// Requested size.
        requested: u64,
    },
    /// File-system I/O on the host.
    #[error("i/o error on {path}")]
    Io {
        /// Path.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `mkfs.ext4` failed.
    #[error("cannot create an ext4 filesystem in {image}")]
    Mkfs {
        /// Image.
        image: String,
        /// The tool's failure, with its stderr.
        #[source]
        source: CommandError,
    },
    /// `e2fsck` found errors it could not fix, or failed to run.
    #[error("cannot check the filesystem in {image}")]
    Fsck {
        /// Image.
        image: String,
        /// The tool's failure, with its stderr.
        #[source]
        source: CommandError,
    },
    /// `resize2fs` failed.
    #[error("cannot resize the filesystem in {image}")]
    Resize {
        /// Image.
        image: String,
        /// The tool's failure, with its stderr.
        #[source]
        source: CommandError,
    },
    /// `debugfs` failed to run or exited unsuccessfully.
    #[error("cannot read or edit {image} with debugfs")]
    Debugfs {
        /// Image.
        image: String,
        /// The tool's failure, with its stderr.
        #[source]
        source: CommandError,
    },
    /// `dumpe2fs` failed.
    #[error("cannot read the superblock of {image}")]
    Dumpe2fs {
        /// Image.
        image: String,
        /// The tool's failure, with its stderr.
        #[source]
        source: CommandError,
    },
    /// A host file path that a debugfs script line cannot carry, even after copying it to a
    /// temporary directory (whose own path has whitespace or quotes).
    #[error("host path {0} cannot appear in a debugfs script (whitespace or quotes)")]
    UnsafeHostPath(String),
    /// `dumpe2fs -h` printed no block size or count.
    #[error("dumpe2fs printed no block size or count for {image}")]
    Superblock {
        /// Image.
        image: String,
    },
    /// debugfs exited 0 but a change did not take (read back afterwards).
    #[error("debugfs did not {what} {path} in {image}: {stderr}")]
    NotApplied {
        /// Image.
        image: String,
        /// Path inside the image.
        path: String,
        /// The change, e.g. `write` or `set mode 0700 on`.
        what: String,
        /// What debugfs said on stderr (or that it said nothing).
        stderr: String,
    },
}

fn absolute(path: &Path) -> Result<&Path, Ext4Error> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(Ext4Error::RelativePath(path.display().to_string()))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Ext4Error + '_ {
    move |source| Ext4Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn shown(image: &Path) -> String {
    image.display().to_string()
}

/// Space a tree needs on ext4: data rounded to blocks, plus its inode count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of data and directory blocks.
    pub bytes: u64,
    /// Files, directories, symlinks and other nodes.
    pub inodes: u64,
}

/// Measures the tree at `dir` without following symlinks.
pub fn usage(dir: &Path) -> Result<Usage, Ext4Error> {
    let mut total = Usage::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        total.inodes += 1;
        let ft = meta.file_type();
        if ft.is_dir() {
            total.bytes += BLOCK_SIZE;
            for entry in std::fs::read_dir(&path).map_err(io(&path))? {
                stack.push(entry.map_err(io(&path))?.path());
            }
        } else if ft.is_file() || (ft.is_symlink() && meta.len() >= 60) {
            // Symlinks shorter than 60 bytes live inside the inode.
            total.bytes += meta.len().div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
        }
    }
    Ok(total)
}

/// Image size for `usage` plus `headroom` bytes: 10% slack for metadata and the journal,
/// at least `min`, rounded up to 4 MiB.
pub fn image_size(usage: Usage, headroom: u64, min: u64) -> u64 {
    let raw = usage.bytes + usage.bytes / 10 + usage.inodes * 256 + (16 << 20) + headroom;
    raw.max(min).div_ceil(ROUND) * ROUND
}

/// Inode count for an image of `size` holding `usage`: mke2fs's default ratio, or twice the
/// tree's inodes if that is more (trees of many small files).
pub fn inode_count(usage: Usage, size: u64) -> u64 {
    (size / INODE_RATIO).max(usage.inodes * 2).max(1024)
}

fn check_label(label: &str) -> Result<(), Ext4Error> {
    let ok = !label.is_empty()
        && label.len() <= 16
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Ext4Error::InvalidLabel(label.to_owned()))
    }
}

/// The argument vector of `mkfs.ext4` (after the program name).
fn mkfs_args(
    dir: Option<&Path>,
    image: &Path,
    size: u64,
    label: &str,
    inodes: u64,
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = [
        "-q",
        "-F",
        "-t",
        "ext4",
        "-b",
        "4096",
        "-m",
        "0",
        "-E",
        "root_owner=0:0",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push("-L".into());
    args.push(label.into());
    args.push("-N".into());
    args.push(inodes.to_string().into());
    if let Some(dir) = dir {
        args.push("-d".into());
        args.push(dir.into());
    }
    args.push(image.into());
    args.push(format!("{}k", size / 1024).into());
    args
}

/// Creates `image` (a new regular file of `size` bytes, rounded up to [`BLOCK_SIZE`]) holding
/// the tree at `dir`, or an empty filesystem when `dir` is `None`.
pub fn mkfs(dir: Option<&Path>, image: &Path, size: u64, label: &str) -> Result<(), Ext4Error> {
    absolute(image)?;
    if let Some(dir) = dir {
        absolute(dir)?;
    }
    check_label(label)?;
    let usage = match dir {
        Some(d) => usage(d)?,
        None => Usage::default(),
    };
    let size = size.div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
    let fail = |source| Ext4Error::Mkfs {
        image: shown(image),
        source,
    };
    let mut c = cmd::command("mkfs.ext4").map_err(fail)?;
    c.args(mkfs_args(dir, image, size, label, inode_count(usage, size)));
    // Creation/modification times come from this variable when set, for reproducible images.
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        c.env("E2FSPROGS_FAKE_TIME", epoch);
    }
    cmd::run(&mut c, &[0]).map_err(fail)?;
    Ok(())
}

/// Checks and repairs `image` (`e2fsck -fy`). Exit codes 0–2 (clean or repaired) are success.
pub fn fsck(image: &Path) -> Result<(), Ext4Error> {
    absolute(image)?;
    let fail = |source| Ext4Error::Fsck {
        image: shown(image),
        source,
    };
    let mut c = cmd::command("e2fsck").map_err(fail)?;
    c.args(["-f", "-y"]).arg(image);
    cmd::run(&mut c, &[0, 1, 2]).map_err(fail)?;
    Ok(())
}

/// Grows `image` to `size` bytes (rounded up to [`BLOCK_SIZE`]) and its filesystem to fill it:
/// check, extend the file (sparse), `resize2fs`. The same size is a no-op; a smaller one is
/// [`Ext4Error::Shrink`], because shrinking could cut off data.
pub fn grow(image: &Path, size: u64) -> Result<(), Ext4Error> {
    absolute(image)?;
    let size = size.div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
    let current = std::fs::metadata(image).map_err(io(image))?.len();
    if size < current {
        return Err(Ext4Error::Shrink {
            path: shown(image),
            current,
            requested: size,
        });
    }
    if size == current {
        return Ok(());
    }
    fsck(image)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(image)
        .map_err(io(image))?;
    file.set_len(size).map_err(io(image))?;
    let fail = |source| Ext4Error::Resize {
        image: shown(image),
        source,
    };
    let mut c = cmd::command("resize2fs").map_err(fail)?;
    c.arg(image);
    cmd::run(&mut c, &[0]).map_err(fail)?;
    Ok(())
}

/// Block size and count of a filesystem, from its superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per block.
    pub block_size: u64,
    /// Blocks in the filesystem.
    pub block_count: u64,
}

impl Geometry {
    /// Bytes the filesystem spans.
    pub fn bytes(&self) -> u64 {
        self.block_size * self.block_count
    }
}

/// Reads the superblock of `image` (`dumpe2fs -h`).
pub fn geometry(image: &Path) -> Result<Geometry, Ext4Error> {
    absolute(image)?;
    let fail = |source| Ext4Error::Dumpe2fs {
        image: shown(image),
        source,
    };
    let mut c = cmd::command("dumpe2fs").map_err(fail)?;
    c.arg("-h").arg(image);
    let out = cmd::run(&mut c, &[0]).map_err(fail)?;
    let text = String::from_utf8_lossy(&out);
    parse_geometry(&text).ok_or_else(|| Ext4Error::Superblock {
        image: shown(image),
    })
}

fn parse_geometry(text: &str) -> Option<Geometry> {
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(Geometry {
        block_size: field("Block size:")?,
        block_count: field("Block count:")?,
    })
}

/// What an inode is, for [`Edits::mode`] (debugfs sets the whole `i_mode`, type bits included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

impl Kind {
    fn type_bits(self) -> u32 {
        match self {
            Self::File => 0o100_000,
            Self::Dir => 0o040_000,
        }
    }
}

/// An inode as `debugfs -R "stat PATH"` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InodeStat {
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Mkdir(String),
    Put {
        host: PathBuf,
        guest: String,
    },
    Mode {
        guest: String,
        kind: Kind,
        mode: u32,
    },
    Owner {
        guest: String,
        uid: u32,
        gid: u32,
    },
    Remove(String),
}

/// Changes to an existing image, applied with one `debugfs -w` run by [`apply`] and read back.
/// Paths are inside the image (`/` is its root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    steps: Vec<Step>,
}

impl Edits {
    /// No changes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when there is nothing to apply ([`apply`] then leaves the image untouched).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Creates `guest` and its missing parents (existing directories are left as they are).
    pub fn mkdir_p(&mut self, guest: &str) -> &mut Self {
        let mut path = String::new();
        for part in guest.split('/').filter(|p| !p.is_empty()) {
            path.push('/');
            path.push_str(part);
            self.steps.push(Step::Mkdir(path.clone()));
        }
        self
    }

    /// Writes host file `host` at `guest`, replacing what is there.
    pub fn put(&mut self, host: &Path, guest: &str) -> &mut Self {
        self.steps.push(Step::Put {
            host: host.to_path_buf(),
            guest: guest.to_owned(),
        });
        self
    }

    /// Sets the permission bits of `guest`, a `kind`.
    pub fn mode(&mut self, guest: &str, kind: Kind, mode: u32) -> &mut Self {
        self.steps.push(Step::Mode {
            guest: guest.to_owned(),
            kind,
            mode: mode & 0o7777,
        });
        self
    }

    /// Sets the owner and group of `guest`.
    pub fn owner(&mut self, guest: &str, uid: u32, gid: u32) -> &mut Self {
        self.steps.push(Step::Owner {
            guest: guest.to_owned(),
            uid,
            gid,
        });
        self
    }

    /// Removes the file (not directory) at `guest`; nothing there is fine.
    pub fn remove(&mut self, guest: &str) -> &mut Self {
        self.steps.push(Step::Remove(guest.to_owned()));
        self
    }

    /// The debugfs script; `hosts[i]` is the host file of the i-th `put`.
    fn script(&self, hosts: &[PathBuf]) -> String {
        let mut out = String::new();
        let mut puts = hosts.iter();
        for step in &self.steps {
            match step {
                Step::Mkdir(guest) => out.push_str(&format!("mkdir {guest}\n")),
                Step::Put { guest, .. } => {
                    let host = puts.next().map(|h| h.display().to_string());
                    let host = host.unwrap_or_default();
                    out.push_str(&format!("rm {guest}\nwrite {host} {guest}\n"));
                }
                Step::Mode { guest, kind, mode } => {
                    let full = kind.type_bits() | mode;
                    out.push_str(&format!("sif {guest} mode 0{full:o}\n"));
                }
                Step::Owner { guest, uid, gid } => {
                    out.push_str(&format!("sif {guest} uid {uid}\nsif {guest} gid {gid}\n"));
                }
                Step::Remove(guest) => out.push_str(&format!("rm {guest}\n")),
            }
        }
        out
    }
}

/// Whether `text` can stand as one word of a debugfs script line.
fn script_safe(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'')
}

fn check_guest(guest: &str) -> Result<(), Ext4Error> {
    let ok = guest.starts_with('/') && script_safe(guest) && !guest.split('/').any(|c| c == "..");
    if ok {
        Ok(())
    } else {
        Err(Ext4Error::InvalidGuestPath(guest.to_owned()))
    }
}

/// Applies `edits` to `image` with one `debugfs -w` run, then reads every change back: a file
/// that is missing or of the wrong size, a mode or owner that did not take, a directory that
/// does not exist, is [`Ext4Error::NotApplied`] with debugfs's stderr.
pub fn apply(image: &Path, edits: &Edits) -> Result<(), Ext4Error> {
    absolute(image)?;
    if edits.is_empty() {
        return Ok(());
    }
    for step in &edits.steps {
        match step {
            Step::Mkdir(g)
            | Step::Mode { guest: g, .. }
            | Step::Owner { guest: g, .. }
            | Step::Remove(g) => check_guest(g)?,
            Step::Put { host, guest } => {
                absolute(host)?;
                check_guest(guest)?;
            }
        }
    }
    let dir = tempfile::tempdir().map_err(io(Path::new("/tmp")))?;
    // Host files whose path a script line cannot carry are copied under a plain name first.
    let mut hosts = Vec::new();
    for (i, step) in edits.steps.iter().enumerate() {
        if let Step::Put { host, .. } = step {
            if host.to_str().is_some_and(script_safe) {
                hosts.push(host.clone());
            } else {
                let copy = dir.path().join(format!("put-{i}"));
                std::fs::copy(host, &copy).map_err(io(host))?;
                hosts.push(copy);
            }
        }
    }
    if let Some(unsafe_host) = hosts.iter().find(|h| !h.to_str().is_some_and(script_safe)) {
        return Err(Ext4Error::UnsafeHostPath(unsafe_host.display().to_string()));
    }
    let script = dir.path().join("script");
    std::fs::write(&script, edits.script(&hosts)).map_err(io(&script))?;
    let fail = |source| Ext4Error::Debugfs {
        image: shown(image),
        source,
    };
    let mut c = cmd::command("debugfs").map_err(fail)?;
    c.arg("-w").arg("-f").arg(&script).arg(image);
    let out = cmd::output(&mut c).map_err(fail)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(fail(CommandError::Failed {
            program: "debugfs".to_owned(),
            status: out.status,
            stderr: cmd::tail(&stderr),
        }));
    }
    verify(image, edits, &cmd::tail(&stderr))
}

fn verify(image: &Path, edits: &Edits, stderr: &str) -> Result<(), Ext4Error> {
    let not_applied = |what: String, path: &str| Ext4Error::NotApplied {
        image: shown(image),
        path: path.to_owned(),
        what,
        stderr: if stderr.is_empty() {
            "it said nothing".to_owned()
        } else {
            stderr.to_owned()
        },
    };
    for step in &edits.steps {
        match step {
            Step::Mkdir(guest) => {
                if !stat(image, guest)?.is_some_and(|s| s.is_dir) {
                    return Err(not_applied("create directory".to_owned(), guest));
                }
            }
            Step::Put { host, guest } => {
                let len = std::fs::metadata(host).map_err(io(host))?.len();
                if stat(image, guest)?.map(|s| s.size) != Some(len) {
                    return Err(not_applied("write".to_owned(), guest));
                }
            }
            Step::Mode { guest, mode, .. } => {
                if stat(image, guest)?.map(|s| s.mode) != Some(*mode) {
                    return Err(not_applied(format!("set mode {mode:04o} on"), guest));
                }
            }
            Step::Owner { guest, uid, gid } => {
                if stat(image, guest)?.map(|s| (s.uid, s.gid)) != Some((*uid, *gid)) {
                    return Err(not_applied(format!("set owner {uid}:{gid} on"), guest));
                }
            }
            Step::Remove(guest) => {
                if stat(image, guest)?.is_some() {
                    return Err(not_applied("remove".to_owned(), guest));
                }
            }
        }
    }
    Ok(())
}

/// Runs one read-only debugfs request (`-R`) and returns its stdout.
fn request(image: &Path, request: &str) -> Result<Vec<u8>, Ext4Error> {
    let fail = |source| Ext4Error::Debugfs {
        image: shown(image),
        source,
    };
    let mut c = cmd::command("debugfs").map_err(fail)?;
    c.arg("-R").arg(request).arg(image);
    cmd::run(&mut c, &[0]).map_err(fail)
}

/// The inode at `guest`, or `None` when there is none.
pub fn stat(image: &Path, guest: &str) -> Result<Option<InodeStat>, Ext4Error> {
    absolute(image)?;
    check_guest(guest)?;
    let out = request(image, &format!("stat {guest}"))?;
    Ok(parse_stat(&String::from_utf8_lossy(&out)))
}

/// The contents of the file at `guest` (empty when there is none: debugfs cannot tell).
pub fn read_file(image: &Path, guest: &str) -> Result<Vec<u8>, Ext4Error> {
    absolute(image)?;
    check_guest(guest)?;
    request(image, &format!("cat {guest}"))
}

/// The names in directory `guest` (without `.` and `..`); empty when there is no such
/// directory. Names debugfs cannot print plainly (with `/` in its parsable listing) are
/// skipped.
pub fn list_dir(image: &Path, guest: &str) -> Result<Vec<String>, Ext4Error> {
    absolute(image)?;
    check_guest(guest)?;
    let out = request(image, &format!("ls -p {guest}"))?;
    Ok(parse_listing(&String::from_utf8_lossy(&out)))
}

/// `ls -p` lines: `/inode/mode/uid/gid/name/size/`.
fn parse_listing(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim().split('/').collect();
            (fields.len() == 8 && fields[0].is_empty() && fields[7].is_empty())
                .then(|| fields[5].to_owned())
        })
        .filter(|name| !name.is_empty() && name != "." && name != "..")
        .collect()
}

/// The word after `key` in debugfs `stat` output (`Mode:  0700` → `0700`).
fn stat_field<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    text.split(key).nth(1)?.split_whitespace().next()
}

fn parse_stat(text: &str) -> Option<InodeStat> {
    Some(InodeStat {
        is_dir: stat_field(text, "Type:")? == "directory",
        mode: u32::from_str_radix(stat_field(text, "Mode:")?, 8).ok()?,
        uid: stat_field(text, "User:")?.parse().ok()?,
        gid: stat_field(text, "Group:")?.parse().ok()?,
        size: stat_field(text, "Size:")?.parse().ok()?,
    })
}

/// Sets the permission bits of the filesystem's root directory.
///
/// `mkfs.ext4 -d` (1.47.0) copies ownership and modes of everything *inside* the tree but
/// leaves `/` at 0755; a work disk mounted on `/root` must be 0700.
pub fn set_root_mode(image: &Path, mode: u32) -> Result<(), Ext4Error> {
    apply(image, Edits::new().mode("/", Kind::Dir, mode))
}

/// Sets the owner of many paths in one `debugfs -w` run: how a tree unpacked by a non-root
/// process gets the uids and gids it should have (`mkfs.ext4 -d` copies the unpacking user's).
/// Paths are inside the image; each is quoted on its script line, so spaces are fine, but a
/// path with a double quote, a newline or non-UTF-8 bytes is refused. Any complaint debugfs
/// prints fails the call.
pub fn set_owners(image: &Path, owners: &[(PathBuf, u32, u32)]) -> Result<(), Ext4Error> {
    absolute(image)?;
    if owners.is_empty() {
        return Ok(());
    }
    let mut script = String::new();
    for (guest, uid, gid) in owners {
        let text = guest
            .to_str()
            .filter(|t| t.starts_with('/') && !t.contains(['"', '\n', '\r', '\\']))
            .ok_or_else(|| Ext4Error::InvalidGuestPath(guest.display().to_string()))?;
        script.push_str(&format!(
            "sif \"{text}\" uid {uid}\nsif \"{text}\" gid {gid}\n"
        ));
    }
    let dir = tempfile::tempdir().map_err(io(Path::new("/tmp")))?;
    let path = dir.path().join("script");
    std::fs::write(&path, script).map_err(io(&path))?;
    let fail = |source| Ext4Error::Debugfs {
        image: shown(image),
        source,
    };
    let mut c = cmd::command("debugfs").map_err(fail)?;
    c.arg("-w").arg("-f").arg(&path).arg(image);
    let out = cmd::output(&mut c).map_err(fail)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("debugfs "))
        .collect();
    if !out.status.success() || !complaints.is_empty() {
        return Err(Ext4Error::NotApplied {
            image: shown(image),
            path: owners[0].0.display().to_string(),
            what: "set the owners of the unpacked files, starting at".to_owned(),
            stderr: cmd::tail(&complaints.join("\n")),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let u = Usage {
            bytes: 300 << 20,
            inodes: 10_000,
        };
        let s = image_size(u, 1 << 30, 0);
        assert_eq!(s % (4 << 20), 0);
        assert!(s > (300 << 20) + (1 << 30));
        assert_eq!(image_size(Usage::default(), 0, 64 << 20), 64 << 20);
        assert_eq!(inode_count(u, 1 << 30), 65_536);
        assert_eq!(
            inode_count(
                Usage {
                    bytes: 0,
                    inodes: 100_000
                },
                1 << 30
            ),
            200_000
        );
    }

    #[test]
    fn no_edits_run_nothing() {
        // debugfs would fail on a missing image: reaching it is the bug this catches.
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.ext4");
        apply(&missing, &Edits::new()).expect("nothing to do");
        assert!(!missing.exists());
        assert!(matches!(
            apply(Path::new("relative.ext4"), &Edits::new()),
            Err(Ext4Error::RelativePath(_))
        ));
    }

    #[test]
    fn argv_is_fixed_and_paths_absolute() {
        let args = mkfs_args(
            Some(Path::new("/t/root")),
            Path::new("/t/img"),
            64 << 20,
            "banger-root",
            4096,
        );
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "-q",
                "-F",
                "-t",
                "ext4",
                "-b",
                "4096",
                "-m",
                "0",
                "-E",
                "root_owner=0:0",
                "-L",
                "banger-root",
                "-N",
                "4096",
                "-d",
                "/t/root",
                "/t/img",
                "65536k"
            ]
        );
        assert!(matches!(
            mkfs(None, Path::new("rel.img"), 1 << 20, "x"),
            Err(Ext4Error::RelativePath(_))
        ));
        assert!(matches!(
            mkfs(None, Path::new("/x.img"), 1 << 20, "-bad label"),
            Err(Ext4Error::InvalidLabel(_))
        ));
        assert!(matches!(
            mkfs(None, Path::new("/x.img"), 1 << 20, "much-too-long-label"),
            Err(Ext4Error::InvalidLabel(_))
        ));
    }

    #[test]
    fn debugfs_stat_parsing() {
        let stat = "Inode: 12   Type: regular    Mode:  0600   Flags: 0x80000\n\
                    Generation: 0    Version: 0x00000000:00000001\n\
                    User:     0   Group:     0   Project:     0   Size: 27\n";
        assert_eq!(
            parse_stat(stat),
            Some(InodeStat {
                is_dir: false,
                mode: 0o600,
                uid: 0,
                gid: 0,
                size: 27
            })
        );
        let dir = "Inode: 2   Type: directory    Mode:  0700   Flags: 0x80000\n\
                   User:  1000   Group:  1000   Size: 4096\n";
        assert_eq!(
            parse_stat(dir).map(|s| (s.is_dir, s.mode, s.uid)),
            Some((true, 0o700, 1000))
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(
            parse_geometry("Block count:              16384\nBlock size:               4096\n"),
            Some(Geometry {
                block_size: 4096,
                block_count: 16384
            })
        );
        assert_eq!(parse_geometry("Block size: 4096\n"), None);
    }

    #[test]
    fn edits_make_one_fixed_script() {
        let mut edits = Edits::new();
        edits
            .mkdir_p("/usr/local/bin")
            .put(Path::new("/h/agent"), "/usr/local/bin/banger-agent")
            .mode("/usr/local/bin/banger-agent", Kind::File, 0o755)
            .owner("/usr/local/bin/banger-agent", 0, 0)
            .mode("/", Kind::Dir, 0o700);
        assert_eq!(
            edits.script(&[PathBuf::from("/h/agent")]),
            "mkdir /usr\nmkdir /usr/local\nmkdir /usr/local/bin\n\
             rm /usr/local/bin/banger-agent\nwrite /h/agent /usr/local/bin/banger-agent\n\
             sif /usr/local/bin/banger-agent mode 0100755\n\
             sif /usr/local/bin/banger-agent uid 0\nsif /usr/local/bin/banger-agent gid 0\n\
             sif / mode 040700\n"
        );
    }

    #[test]
    fn removals_are_one_line_and_listings_parse() {
        let mut edits = Edits::new();
        edits.remove("/etc/ssh/ssh_host_ed25519_key");
        assert_eq!(edits.script(&[]), "rm /etc/ssh/ssh_host_ed25519_key\n");
        let listing = "/13/040755/0/0/.//\n/12/040755/0/0/..//\n\
                       /12/100600/0/0/ssh_host_ed25519_key/411/\n/13/100644/0/0/sshd_config/3223/\n";
        assert_eq!(
            parse_listing(listing),
            ["ssh_host_ed25519_key", "sshd_config"]
        );
        assert!(parse_listing("/etc/ssh: File not found by ext2_lookup\n").is_empty());
    }

    #[test]
    fn script_paths_cannot_change_the_script() {
        for bad in ["relative", "/a b", "/a\nrm /etc", "/x\"y", "/a/../b", ""] {
            let mut edits = Edits::new();
            edits.mode(bad, Kind::File, 0o600);
            assert!(
                matches!(
                    apply(Path::new("/nonexistent.img"), &edits),
                    Err(Ext4Error::InvalidGuestPath(_))
                ),
                "{bad:?}"
            );
        }
        let mut edits = Edits::new();
        edits.put(Path::new("rel"), "/x");
        assert!(matches!(
            apply(Path::new("/nonexistent.img"), &edits),
            Err(Ext4Error::RelativePath(_))
        ));
    }

    #[test]
    fn usage_counts_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("d")).expect("mkdir");
        std::fs::write(dir.path().join("d/f"), vec![1u8; 5000]).expect("write");
        std::os::unix::fs::symlink("f", dir.path().join("d/l")).expect("symlink");
        let u = usage(dir.path()).expect("usage");
        assert_eq!(u.inodes, 4);
        assert_eq!(u.bytes, 2 * BLOCK_SIZE + 2 * BLOCK_SIZE);
    }

    /// Real e2fsprogs: owners set after mkfs (how a non-root OCI pull keeps them), paths with
    /// spaces included; a path a script line cannot carry is refused.
    #[test]
    #[ignore = "needs e2fsprogs (mkfs.ext4, debugfs)"]
    fn set_owners_real() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("etc")).expect("mkdir");
        std::fs::write(tree.join("etc/plain"), b"x").expect("write");
        std::fs::write(tree.join("etc/a b"), b"x").expect("write");
        let img = dir.path().join("root.ext4");
        mkfs(Some(&tree), &img, 16 << 20, "banger-root").expect("mkfs");
        set_owners(
            &img,
            &[
                (PathBuf::from("/etc/plain"), 1234, 4321),
                (PathBuf::from("/etc/a b"), 77, 88),
                (PathBuf::from("/etc"), 5, 6),
            ],
        )
        .expect("set owners");
        let plain = stat(&img, "/etc/plain").expect("stat").expect("exists");
        assert_eq!((plain.uid, plain.gid), (1234, 4321));
        let etc = stat(&img, "/etc").expect("stat").expect("exists");
        assert_eq!((etc.uid, etc.gid), (5, 6));
        let out = std::process::Command::new("debugfs")
            .args(["-R", "ls -l /etc"])
            .arg(&img)
            .output()
            .expect("debugfs");
        let listing = String::from_utf8_lossy(&out.stdout);
        let spaced = listing
            .lines()
            .find(|l| l.ends_with("a b"))
            .expect("listed");
        let fields: Vec<&str> = spaced.split_whitespace().collect();
        assert_eq!((fields[3], fields[4]), ("77", "88"), "{spaced}");
        assert!(matches!(
            set_owners(&img, &[(PathBuf::from("/etc/q\"uote"), 1, 1)]),
            Err(Ext4Error::InvalidGuestPath(_))
        ));
        let missing = set_owners(&img, &[(PathBuf::from("/nope"), 1, 1)]);
        assert!(
            matches!(missing, Err(Ext4Error::NotApplied { .. })),
            "{missing:?}"
        );
    }

    /// Real e2fsprogs: build from a tree, grow, check. Needs no root (files only).
    #[test]
    #[ignore = "needs e2fsprogs (mkfs.ext4, e2fsck, resize2fs, debugfs)"]
    fn mkfs_grow_fsck_real() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join(".ssh")).expect("mkdir");
        std::fs::write(
            tree.join(".ssh/authorized_keys"),
            b"ssh-ed25519 AAAA test\n",
        )
        .expect("write");
        let img = dir.path().join("seed.ext4");
        mkfs(Some(&tree), &img, 10 << 20, "banger-work").expect("mkfs");
        assert_eq!(std::fs::metadata(&img).expect("meta").len(), 10 << 20);
        grow(&img, 1 << 30).expect("grow");
        assert_eq!(std::fs::metadata(&img).expect("meta").len(), 1 << 30);
        fsck(&img).expect("fsck");
        assert!(matches!(grow(&img, 1 << 20), Err(Ext4Error::Shrink { .. })));
        assert_eq!(
            read_file(&img, "/.ssh/authorized_keys").expect("cat"),
            b"ssh-ed25519 AAAA test\n"
        );
        let geometry = geometry(&img).expect("dumpe2fs");
        assert_eq!(geometry.block_size, 4096);
        assert_eq!(geometry.bytes(), 1 << 30);
        let out = std::process::Command::new("dumpe2fs")
            .arg("-h")
            .arg(&img)
            .output()
            .expect("dumpe2fs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Filesystem volume name:   banger-work"),
            "{text}"
        );
        set_root_mode(&img, 0o700).expect("root mode");
        assert_eq!(stat(&img, "/").expect("stat").map(|s| s.mode), Some(0o700));
        // Edits land and are read back; a host path with a space is copied first.
        let spaced = dir.path().join("a file");
        std::fs::write(&spaced, b"agent").expect("write");
        let mut edits = Edits::new();
        edits
            .mkdir_p("/usr/local/bin")
            .put(&spaced, "/usr/local/bin/banger-agent")
            .mode("/usr/local/bin/banger-agent", Kind::File, 0o755)
            .owner("/usr/local/bin/banger-agent", 0, 0);
        apply(&img, &edits).expect("apply");
        apply(&img, &edits).expect("apply twice replaces");
        assert_eq!(
            stat(&img, "/usr/local/bin/banger-agent").expect("stat"),
            Some(InodeStat {
                is_dir: false,
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: 5
            })
        );
        assert_eq!(stat(&img, "/missing").expect("stat"), None);
        assert_eq!(
            list_dir(&img, "/usr/local/bin").expect("ls"),
            ["banger-agent"]
        );
        assert!(list_dir(&img, "/missing").expect("ls").is_empty());
        let mut edits = Edits::new();
        edits
            .remove("/usr/local/bin/banger-agent")
            .remove("/usr/local/bin/never-there");
        apply(&img, &edits).expect("remove");
        assert_eq!(
            stat(&img, "/usr/local/bin/banger-agent").expect("stat"),
            None
        );
        assert!(list_dir(&img, "/usr/local/bin").expect("ls").is_empty());
        // A write into a missing directory is caught by the read-back.
        let mut edits = Edits::new();
        edits.put(&spaced, "/no/such/dir/file");
        let err = apply(&img, &edits).expect_err("missing dir");
        assert!(matches!(err, Ext4Error::NotApplied { .. }), "{err}");
        let empty = dir.path().join("empty.ext4");
        mkfs(None, &empty, 8 << 20, "empty").expect("mkfs empty");
        fsck(&empty).expect("fsck");
    }
}
