//! Applying untrusted OCI layers to a staging tree, one after the other.
//!
//! An image is untrusted input, and a layer is a tar stream that can name any path. The rules:
//!
//! - an entry's path is made relative to the image root (`./` and `.` dropped); an absolute
//!   path or a `..` component is refused, and so is a hard link whose target is;
//! - no symlink is ever followed: every parent of an entry (and of a hard link's target) is
//!   looked at with `lstat`, one component at a time; a symlink there is refused (writing or
//!   deleting *through* a symlink is how an image escapes), a missing one is created as a
//!   directory, a non-directory is refused. The final component is replaced without following;
//! - whiteouts (`.wh.NAME`) delete `NAME` from the lower layers and opaque markers
//!   (`.wh..wh..opq`) empty their directory of lower-layer entries, per the OCI layer spec;
//!   neither is ever created as a file;
//! - every entry costs its size rounded up to a block plus one block, counted against a cap
//!   over all layers; the cap is checked before data is written, so a decompression bomb stops
//!   at the cap, not at a full disk.
//!
//! The staging directory is private to the pull (0700 under the state dir) and only this code
//! writes into it, so what `lstat` saw is what the next step finds. Directory modes are applied
//! last (a 0555 directory would refuse its own children when not root). Ownership is applied
//! with `lchown` when running as root; otherwise it is returned as a list for the caller to set
//! inside the finished ext4 image.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// A block: each entry is charged at least this much against the size cap.
const BLOCK: u64 = 4096;
/// Whiteout prefix.
const WHITEOUT: &[u8] = b".wh.";
/// Opaque-directory marker.
const OPAQUE: &[u8] = b".wh..wh..opq";

/// A layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry was refused for safety.
    #[error("layer {layer}: refusing entry {entry:?}: {reason}")]
    Refused {
        /// 1-based layer number.
        layer: usize,
        /// The entry's path as written in the layer.
        entry: String,
        /// Why.
        reason: String,
    },
    /// The unpacked image would exceed the cap.
    #[error(
        "layer {layer}: entry {entry:?} takes the unpacked image over the limit of {limit} bytes \
         (raise oci_max_unpacked_size in config.toml if the image is trusted)"
    )]
    TooLarge {
        /// 1-based layer number.
        layer: usize,
        /// The entry that crossed the cap.
        entry: String,
        /// The cap, bytes.
        limit: u64,
    },
    /// The tar stream or its compression is broken.
    #[error("layer {layer} is not a readable tar stream")]
    Corrupt {
        /// 1-based layer number.
        layer: usize,
        /// The parse or decompression error.
        #[source]
        source: io::Error,
    },
    /// Host I/O in the staging tree.
    #[error("layer {layer}: cannot write {path}")]
    Io {
        /// 1-based layer number.
        layer: usize,
        /// Path in the image.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// An owner to set inside the image afterwards (when not running as root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Path relative to the image root.
    pub path: PathBuf,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// The state of a flattening: the root, the budget, what is left to apply at the end.
#[derive(Debug)]
pub struct Flattener {
    root: PathBuf,
    limit: u64,
    used: u64,
    as_root: bool,
    dir_modes: BTreeMap<PathBuf, u32>,
    owners: BTreeMap<PathBuf, (u32, u32)>,
    skipped_devices: Vec<PathBuf>,
}

/// What the flattening left for the caller.
#[derive(Debug, Default)]
pub struct Flattened {
    /// Owners still to set (empty when running as root: `lchown` did it).
    pub owners: Vec<Owner>,
    /// Device nodes that could not be created (not root); their paths.
    pub skipped_devices: Vec<PathBuf>,
    /// Bytes charged against the cap.
    pub charged: u64,
}

fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// `path` as components relative to the root, or why it is refused.
fn relative(path: &[u8]) -> Result<PathBuf, String> {
    let p = Path::new(OsStr::from_bytes(path));
    if p.is_absolute() {
        return Err("absolute paths are not allowed in a layer".to_owned());
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("a `..` component escapes the root".to_owned()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not allowed in a layer".to_owned());
            }
        }
    }
    Ok(out)
}

fn charge_for(size: u64) -> u64 {
    size.div_ceil(BLOCK)
        .saturating_mul(BLOCK)
        .saturating_add(BLOCK)
}

/// Reads the first bytes to pick the decompressor: gzip, zstd, or plain tar.
pub fn decompressor<'a, R: Read + 'a>(mut reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        let n = reader.read(&mut magic[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let chained = io::Cursor::new(magic[..got].to_vec()).chain(reader);
    Ok(if got >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(chained))
    } else if got == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::new(chained)?)
    } else {
        Box::new(chained)
    })
}

impl Flattener {
    /// Flattens into `root` (an existing empty directory) with at most `limit` bytes unpacked.
    pub fn new(root: &Path, limit: u64) -> Self {
        Self {
            root: root.to_path_buf(),
            limit,
            used: 0,
            as_root: nix::unistd::geteuid().is_root(),
            dir_modes: BTreeMap::new(),
            owners: BTreeMap::new(),
            skipped_devices: Vec::new(),
        }
    }

    /// Applies layer number `layer` (1-based), a possibly compressed tar stream.
    pub fn apply_layer<R: Read>(&mut self, layer: usize, stream: R) -> Result<(), UnpackError> {
        let corrupt = |source| UnpackError::Corrupt { layer, source };
        let reader = decompressor(stream).map_err(corrupt)?;
        let mut archive = tar::Archive::new(reader);
        let mut this_layer: HashSet<PathBuf> = HashSet::new();
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            self.apply_entry(layer, &mut entry, &mut this_layer)?;
        }
        Ok(())
    }

    fn refused(layer: usize, entry: &[u8], reason: impl Into<String>) -> UnpackError {
        UnpackError::Refused {
            layer,
            entry: shown(entry),
            reason: reason.into(),
        }
    }

    fn io(layer: usize, path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
        move |source| UnpackError::Io {
            layer,
            path: path.display().to_string(),
            source,
        }
    }

    /// Walks the parents of `rel` without following symlinks, creating missing ones when
    /// `create`; returns the host path of `rel` or why the entry is refused.
    fn parent_checked(&self, rel: &Path, create: bool) -> Result<Option<PathBuf>, String> {
        let mut host = self.root.clone();
        let parts: Vec<_> = rel.components().collect();
        let Some((_, parents)) = parts.split_last() else {
            return Ok(Some(host));
        };
        let mut walked = PathBuf::new();
        for part in parents {
            host.push(part);
            walked.push(part);
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(format!(
                        "its parent {} is a symlink; banger never writes or deletes through one",
                        walked.display()
                    ));
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(format!(
                        "its parent {} is not a directory",
                        walked.display()
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    std::fs::create_dir(&host).map_err(|e| e.to_string())?;
                    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755))
                        .map_err(|e| e.to_string())?;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        host.push(parts[parts.len() - 1]);
        Ok(Some(host))
    }

    /// Removes whatever is at `host` (not following a symlink there).
    fn remove_existing(host: &Path) -> io::Result<()> {
        match std::fs::symlink_metadata(host) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(host),
            Ok(_) => std::fs::remove_file(host),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn apply_entry<R: Read>(
        &mut self,
        layer: usize,
        entry: &mut tar::Entry<'_, R>,
        this_layer: &mut HashSet<PathBuf>,
    ) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let rel = relative(&raw).map_err(|r| Self::refused(layer, &raw, r))?;
        let header = entry.header();
        let kind = header.entry_type();
        let size = entry.size();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header
            .uid()
            .ok()
            .and_then(|u| u32::try_from(u).ok())
            .unwrap_or(0);
        let gid = header
            .gid()
            .ok()
            .and_then(|g| u32::try_from(g).ok())
            .unwrap_or(0);

        let charge = charge_for(if kind.is_file() { size } else { 0 });
        self.used = self.used.saturating_add(charge);
        if self.used > self.limit {
            return Err(UnpackError::TooLarge {
                layer,
                entry: shown(&raw),
                limit: self.limit,
            });
        }

        if rel.as_os_str().is_empty() {
            // The root itself (`./`): only its mode and owner can change.
            if kind.is_dir() {
                self.dir_modes.insert(PathBuf::new(), mode);
                self.owners.insert(PathBuf::new(), (uid, gid));
            }
            return Ok(());
        }
        let name = rel.file_name().map(OsStr::as_bytes).unwrap_or_default();

        // Whiteouts delete from lower layers; they are never created.
        if name == OPAQUE {
            let dir_rel = rel.parent().map(Path::to_path_buf).unwrap_or_default();
            let host = self
                .parent_checked(&rel, true)
                .map_err(|r| Self::refused(layer, &raw, r))?
                .and_then(|h| h.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| self.root.clone());
            let entries = std::fs::read_dir(&host).map_err(Self::io(layer, &host))?;
            for child in entries {
                let child = child.map_err(Self::io(layer, &host))?;
                let child_rel = dir_rel.join(child.file_name());
                if !this_layer.contains(&child_rel) {
                    Self::remove_existing(&child.path()).map_err(Self::io(layer, &child_rel))?;
                    self.forget(&child_rel);
                }
            }
            return Ok(());
        }
        if let Some(target) = name.strip_prefix(WHITEOUT) {
            if target.is_empty() || target.starts_with(WHITEOUT) {
                return Err(Self::refused(layer, &raw, "an unknown whiteout marker"));
            }
            let target_rel = rel.with_file_name(OsStr::from_bytes(target));
            if this_layer.contains(&target_rel) {
                return Ok(());
            }
            if let Some(host) = self
                .parent_checked(&target_rel, false)
                .map_err(|r| Self::refused(layer, &raw, r))?
            {
                Self::remove_existing(&host).map_err(Self::io(layer, &target_rel))?;
                self.forget(&target_rel);
            }
            return Ok(());
        }

        let host = self
            .parent_checked(&rel, true)
            .map_err(|r| Self::refused(layer, &raw, r))?
            .unwrap_or_else(|| self.root.clone());
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                match std::fs::symlink_metadata(&host) {
                    Ok(m) if m.is_dir() => {}
                    _ => {
                        Self::remove_existing(&host).map_err(Self::io(layer, &rel))?;
                        std::fs::create_dir(&host).map_err(Self::io(layer, &rel))?;
                        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755))
                            .map_err(Self::io(layer, &rel))?;
                    }
                }
                self.dir_modes.insert(rel.clone(), mode);
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                Self::remove_existing(&host).map_err(Self::io(layer, &rel))?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(&host)
                    .map_err(Self::io(layer, &rel))?;
                // Never more than the header promised (which the cap already counted).
                let copied = io::copy(&mut entry.take(size), &mut file)
                    .map_err(|source| UnpackError::Corrupt { layer, source })?;
                if copied != size {
                    return Err(UnpackError::Corrupt {
                        layer,
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("entry {} is truncated", shown(&raw)),
                        ),
                    });
                }
                // chown(2) clears setuid/setgid bits, so the owner comes before the mode.
                self.set_owner(&host, &rel, uid, gid)
                    .map_err(Self::io(layer, &rel))?;
                file.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(Self::io(layer, &rel))?;
                this_layer.insert(rel);
                return Ok(());
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Self::refused(layer, &raw, "a symlink without a target"))?
                    .into_owned();
                Self::remove_existing(&host).map_err(Self::io(layer, &rel))?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &host)
                    .map_err(Self::io(layer, &rel))?;
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Self::refused(layer, &raw, "a hard link without a target"))?
                    .into_owned();
                let target_rel = relative(&target).map_err(|r| {
                    Self::refused(layer, &raw, format!("its hard link target: {r}"))
                })?;
                let target_host = self
                    .parent_checked(&target_rel, false)
                    .map_err(|r| Self::refused(layer, &raw, format!("its hard link target: {r}")))?
                    .filter(|_| !target_rel.as_os_str().is_empty())
                    .ok_or_else(|| {
                        Self::refused(layer, &raw, "its hard link target does not exist")
                    })?;
                match std::fs::symlink_metadata(&target_host) {
                    Ok(m) if !m.is_dir() => {}
                    Ok(_) => {
                        return Err(Self::refused(
                            layer,
                            &raw,
                            "its hard link target is a directory",
                        ));
                    }
                    Err(_) => {
                        return Err(Self::refused(
                            layer,
                            &raw,
                            "its hard link target does not exist",
                        ));
                    }
                }
                if target_host != host {
                    Self::remove_existing(&host).map_err(Self::io(layer, &rel))?;
                    // linkat(2) without AT_SYMLINK_FOLLOW: a symlink target is linked itself.
                    std::fs::hard_link(&target_host, &host).map_err(Self::io(layer, &rel))?;
                }
                this_layer.insert(rel.clone());
                return Ok(());
            }
            T::Char | T::Block | T::Fifo => {
                Self::remove_existing(&host).map_err(Self::io(layer, &rel))?;
                let (file_kind, dev) = match kind {
                    T::Char => (nix::sys::stat::SFlag::S_IFCHR, device(header)),
                    T::Block => (nix::sys::stat::SFlag::S_IFBLK, device(header)),
                    _ => (nix::sys::stat::SFlag::S_IFIFO, 0),
                };
                if kind != T::Fifo && !self.as_root {
                    self.skipped_devices.push(rel.clone());
                    return Ok(());
                }
                nix::sys::stat::mknod(
                    &host,
                    file_kind,
                    nix::sys::stat::Mode::from_bits_truncate(mode),
                    dev,
                )
                .map_err(|e| Self::io(layer, &rel)(io::Error::from(e)))?;
            }
            // PAX and GNU long-name headers are consumed by the tar reader; anything else
            // (e.g. GNU volume labels) carries no file.
            _ => return Ok(()),
        }
        self.set_owner(&host, &rel, uid, gid)
            .map_err(Self::io(layer, &rel))?;
        this_layer.insert(rel);
        Ok(())
    }

    fn set_owner(&mut self, host: &Path, rel: &Path, uid: u32, gid: u32) -> io::Result<()> {
        if self.as_root {
            std::os::unix::fs::lchown(host, Some(uid), Some(gid))
        } else {
            self.owners.insert(rel.to_path_buf(), (uid, gid));
            Ok(())
        }
    }

    /// Drops what was recorded for `rel` and everything under it (it was deleted).
    fn forget(&mut self, rel: &Path) {
        self.dir_modes.retain(|p, _| !p.starts_with(rel));
        self.owners.retain(|p, _| !p.starts_with(rel));
        self.skipped_devices.retain(|p| !p.starts_with(rel));
    }

    /// Applies directory modes (deepest first) and the root's owner; returns what is left.
    pub fn finish(mut self) -> Result<Flattened, UnpackError> {
        let last = usize::MAX;
        for (rel, mode) in self.dir_modes.iter().rev() {
            let host = self.root.join(rel);
            if std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
                std::fs::set_permissions(&host, std::fs::Permissions::from_mode(*mode))
                    .map_err(Self::io(last, rel))?;
            }
        }
        if self.as_root
            && let Some((uid, gid)) = self.owners.remove(Path::new(""))
        {
            std::os::unix::fs::lchown(&self.root, Some(uid), Some(gid))
                .map_err(Self::io(last, Path::new("/")))?;
        }
        Ok(Flattened {
            owners: self
                .owners
                .into_iter()
                .map(|(path, (uid, gid))| Owner { path, uid, gid })
                .collect(),
            skipped_devices: self.skipped_devices,
            charged: self.used,
        })
    }
}

fn device(header: &tar::Header) -> nix::libc::dev_t {
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    nix::sys::stat::makedev(u64::from(major), u64::from(minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// One tar entry with a raw (unchecked) name, as a hostile image would write it.
    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8]),
        Sym(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    fn raw_header(name: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().expect("gnu");
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        h
    }

    fn layer(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            match e {
                E::Dir(n) => {
                    let h = raw_header(n, tar::EntryType::Directory, 0, None);
                    b.append(&h, io::empty()).expect("append");
                }
                E::File(n, data) => {
                    let h = raw_header(n, tar::EntryType::Regular, data.len() as u64, None);
                    b.append(&h, *data).expect("append");
                }
                E::Sym(n, t) => {
                    let h = raw_header(n, tar::EntryType::Symlink, 0, Some(t));
                    b.append(&h, io::empty()).expect("append");
                }
                E::Hard(n, t) => {
                    let h = raw_header(n, tar::EntryType::Link, 0, Some(t));
                    b.append(&h, io::empty()).expect("append");
                }
            }
        }
        b.into_inner().expect("finish")
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    struct Bed {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn bed() -> Bed {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("victim"), b"keep").expect("write");
        Bed {
            _dir: dir,
            root,
            outside,
        }
    }

    fn outside_untouched(b: &Bed) {
        let names: Vec<_> = std::fs::read_dir(&b.outside)
            .expect("read")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["victim"], "nothing may appear outside the root");
        assert_eq!(
            std::fs::read(b.outside.join("victim")).expect("read"),
            b"keep"
        );
    }

    #[test]
    fn layers_apply_in_order_with_whiteouts_and_opaque_dirs() {
        let b = bed();
        let mut f = Flattener::new(&b.root, 1 << 30);
        let lower = layer(&[
            E::Dir("etc/"),
            E::File("etc/marker", b"lower"),
            E::File("etc/gone", b"x"),
            E::Dir("opq/"),
            E::File("opq/old", b"old"),
            E::Dir("opq/olddir/"),
            E::File("opq/olddir/deep", b"deep"),
            E::Dir("./keep/"),
            E::File("keep/a", b"a"),
        ]);
        f.apply_layer(1, gzip(&lower).as_slice()).expect("lower");
        let upper = layer(&[
            E::File("etc/marker", b"upper"),
            E::File("etc/.wh.gone", b""),
            E::File("opq/new", b"new"),
            E::File("opq/.wh..wh..opq", b""),
            E::Hard("keep/b", "keep/a"),
        ]);
        let zst = zstd::encode_all(upper.as_slice(), 3).expect("zstd");
        f.apply_layer(2, zst.as_slice()).expect("upper");
        f.apply_layer(3, layer(&[E::File("plain", b"p")]).as_slice())
            .expect("plain tar");
        f.finish().expect("finish");
        let read = |p: &str| std::fs::read(b.root.join(p)).expect(p);
        assert_eq!(read("etc/marker"), b"upper");
        assert!(!b.root.join("etc/gone").exists());
        assert!(!b.root.join("etc/.wh.gone").exists());
        let mut opq: Vec<_> = std::fs::read_dir(b.root.join("opq"))
            .expect("read")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .collect();
        opq.sort();
        assert_eq!(
            opq,
            ["new"],
            "the opaque dir holds only the upper layer's files"
        );
        assert_eq!(read("keep/b"), b"a");
        assert_eq!(read("plain"), b"p");
    }

    /// Applies the layers `make(outside)` returns (`outside`: the absolute path of a directory
    /// next to the root) and expects a refusal naming `needle`, with nothing changed outside.
    fn refused(make: impl Fn(&str) -> Vec<Vec<u8>>, needle: &str) {
        let b = bed();
        let outside = b.outside.display().to_string();
        let mut f = Flattener::new(&b.root, 1 << 30);
        let mut result = Ok(());
        for (i, l) in make(&outside).iter().enumerate() {
            result = f.apply_layer(i + 1, l.as_slice());
            if result.is_err() {
                break;
            }
        }
        let err = result.expect_err("hostile layer accepted");
        let text = err.to_string();
        assert!(text.contains(needle), "{text:?} should name {needle:?}");
        outside_untouched(&b);
    }

    #[test]
    fn escapes_are_refused_naming_the_entry() {
        refused(|_| vec![layer(&[E::File("../escape", b"x")])], "../escape");
        refused(
            |_| vec![layer(&[E::File("a/../../escape", b"x")])],
            "a/../../escape",
        );
        refused(|_| vec![layer(&[E::File("/abs", b"x")])], "/abs");
        // Writing through a symlinked parent: absolute and relative targets.
        refused(
            |out| {
                vec![layer(&[
                    E::Sym("evil", out),
                    E::File("evil/victim", b"pwned"),
                ])]
            },
            "evil/victim",
        );
        refused(
            |_| {
                vec![
                    layer(&[E::Sym("up", "../outside")]),
                    layer(&[E::File("up/new", b"x")]),
                ]
            },
            "up/new",
        );
        // Deleting through a symlink (whiteout and opaque marker).
        refused(
            |out| {
                vec![
                    layer(&[E::Sym("evil", out)]),
                    layer(&[E::File("evil/.wh.victim", b"")]),
                ]
            },
            "evil/.wh.victim",
        );
        refused(
            |out| {
                vec![
                    layer(&[E::Sym("evil", out)]),
                    layer(&[E::File("evil/.wh..wh..opq", b"")]),
                ]
            },
            "evil/.wh..wh..opq",
        );
        // Hard links out of the tree, or through a symlink.
        refused(
            |_| vec![layer(&[E::Hard("h", "../outside/victim")])],
            "\"h\"",
        );
        refused(
            |out| vec![layer(&[E::Sym("evil", out), E::Hard("h2", "evil/victim")])],
            "h2",
        );
        let abs = |out: &str| format!("{out}/victim");
        refused(|out| vec![layer(&[E::Hard("h3", &abs(out))])], "h3");
    }

    #[test]
    fn a_replaced_symlink_is_not_followed() {
        // A file entry at a path that is a symlink replaces the link, never its target.
        let b = bed();
        let target = b.outside.join("victim").display().to_string();
        let mut f = Flattener::new(&b.root, 1 << 30);
        f.apply_layer(1, layer(&[E::Sym("link", &target)]).as_slice())
            .expect("symlink");
        f.apply_layer(2, layer(&[E::File("link", b"new")]).as_slice())
            .expect("file over symlink");
        assert_eq!(std::fs::read(b.root.join("link")).expect("read"), b"new");
        outside_untouched(&b);
    }

    #[test]
    fn setuid_bits_and_owners_survive() {
        let b = bed();
        let mut h = raw_header("su", tar::EntryType::Regular, 2, None);
        h.set_mode(0o4755);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_cksum();
        let mut t = tar::Builder::new(Vec::new());
        t.append(&h, &b"#!"[..]).expect("append");
        let mut f = Flattener::new(&b.root, 1 << 30);
        f.apply_layer(1, t.into_inner().expect("tar").as_slice())
            .expect("layer");
        let left = f.finish().expect("finish");
        let meta = std::fs::symlink_metadata(b.root.join("su")).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o4755);
        if nix::unistd::geteuid().is_root() {
            use std::os::unix::fs::MetadataExt;
            assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
            assert!(left.owners.is_empty());
        } else {
            assert_eq!(
                left.owners,
                [Owner {
                    path: "su".into(),
                    uid: 1000,
                    gid: 1000
                }]
            );
        }
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_cap() {
        let b = bed();
        let big = vec![0u8; 8 << 20];
        let bomb = gzip(&layer(&[E::File("zeros", &big)]));
        assert!(bomb.len() < 64 << 10, "the bomb is small: {}", bomb.len());
        let mut f = Flattener::new(&b.root, 1 << 20);
        let err = f.apply_layer(1, bomb.as_slice()).expect_err("bomb");
        assert!(
            matches!(&err, UnpackError::TooLarge { entry, .. } if entry == "zeros"),
            "{err}"
        );
        assert!(!b.root.join("zeros").exists(), "nothing of it was written");
    }
}
