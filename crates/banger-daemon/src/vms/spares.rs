//! Spare disks: one ready copy of each disk a create makes, so the next create takes it with a
//! rename instead of copying (and syncing) hundreds of MiB while the user waits.
//!
//! A create asks [`Spares::take_or_make`] for each disk by [`SpareKey`]: the key covers what
//! the disk is made from (each source file's device, inode, size and modification time, so a
//! re-pulled image or a rebuilt snapshot never hands out a stale copy) and how (a variant
//! string: the work disk's size, the agent injected). A spare under that key is renamed into
//! the VM's directory; without one the disk is made in place, as before. Either way the key is
//! remembered, and once the create is over [`Spares::refill`] makes a new spare in the
//! background (a create that finds its spare being made waits for it, up to
//! [`WAIT_FOR_REFILL`]): into a temporary name, synced, then renamed, so a crash never leaves a partial
//! spare under a real name (temporary leftovers are removed by the next refill).
//!
//! At most [`MAX_SPARES`] spares are kept (oldest first out): a spare costs what a VM's fresh
//! disk costs on disk, and `image cache prune --snapshots` removes them all (counted with the
//! snapshots).

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How many spares are kept at most (a cold create uses two, a restore two).
pub const MAX_SPARES: usize = 6;

/// How long a create waits for a spare that is being made before it makes its own: a spare
/// under way is usually closer to done than a copy not yet started.
pub const WAIT_FOR_REFILL: Duration = Duration::from_secs(10);

/// Makes one disk at the path it is given (which does not exist yet).
pub type Maker = Arc<dyn Fn(&Path) -> Result<(), String> + Send + Sync>;

/// What a spare is a copy of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpareKey(String);

impl SpareKey {
    /// The key of a disk made from `sources` as `variant`.
    pub fn of(sources: &[&Path], variant: &str) -> std::io::Result<Self> {
        let mut h = Sha256::new();
        for source in sources {
            let m = std::fs::metadata(source)?;
            h.update(format!(
                "{}:{}:{}:{}.{}\n",
                m.dev(),
                m.ino(),
                m.len(),
                m.mtime(),
                m.mtime_nsec()
            ));
        }
        h.update(variant.as_bytes());
        Ok(Self(banger_util::hex::encode(&h.finalize()[..12])))
    }

    fn file_name(&self) -> String {
        format!("{}.ext4", self.0)
    }
}

/// Whether a disk was a spare or made on the spot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Got {
    /// A spare was renamed into place.
    Spare,
    /// No spare: the disk was made.
    Made,
}

/// How a create's disks came to be, for its stage detail.
pub fn describe(got: &[Got]) -> &'static str {
    match (got.contains(&Got::Spare), got.contains(&Got::Made)) {
        (true, false) => "spare disks",
        (false, _) => "disks made",
        (true, true) => "spare disks and made ones",
    }
}

/// The spare disks of one state directory.
#[derive(Clone)]
pub struct Spares {
    dir: PathBuf,
    state: Arc<(Mutex<State>, Condvar)>,
}

#[derive(Default)]
struct State {
    /// Keys taken or made since the last refill, with how to make them.
    wanted: HashMap<SpareKey, Maker>,
    /// Keys being made now.
    busy: HashSet<SpareKey>,
}

impl std::fmt::Debug for Spares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spares").field("dir", &self.dir).finish()
    }
}

impl Spares {
    /// Spares kept in `dir` (made on first refill).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            state: Arc::default(),
        }
    }

    /// Where the spares are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits (bounded) until no refill is making `key`.
    fn wait_until_made(&self, key: &SpareKey) {
        let deadline = Instant::now() + WAIT_FOR_REFILL;
        let mut state = self.state();
        while state.busy.contains(key) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = match self.state.1.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Puts the disk `key` at `dst`: the spare, renamed, or else made by `make` (whose error
    /// is returned as is). Either way the next [`refill`](Self::refill) makes a spare for
    /// `key`. Blocking.
    pub fn take_or_make<E>(
        &self,
        key: &SpareKey,
        dst: &Path,
        make: impl Fn(&Path) -> Result<(), E> + Send + Sync + 'static,
    ) -> Result<Got, E>
    where
        E: std::error::Error,
    {
        let spare = self.dir.join(key.file_name());
        self.wait_until_made(key);
        let got = match std::fs::rename(&spare, dst) {
            Ok(()) => Got::Spare,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(spare = %spare.display(), error = %e, "cannot take a spare disk: making one");
                }
                make(dst)?;
                Got::Made
            }
        };
        self.want(key, make);
        Ok(got)
    }

    /// Asks the next [`refill`](Self::refill) for a spare of `key`, made by `make` (a new
    /// source, such as a just-saved snapshot, gets its spare before its first use).
    pub fn want<E>(
        &self,
        key: &SpareKey,
        make: impl Fn(&Path) -> Result<(), E> + Send + Sync + 'static,
    ) where
        E: std::error::Error,
    {
        let maker: Maker = Arc::new(move |p: &Path| make(p).map_err(|e| banger_util::chain(&e)));
        self.state().wanted.insert(key.clone(), maker);
    }

    /// Makes, in the background, a spare for every key taken or made since the last call
    /// that has none. Returns the tasks (tests wait on them; the daemon lets them run).
    pub fn refill(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let jobs: Vec<(SpareKey, Maker)> = {
            let mut state = self.state();
            let wanted = std::mem::take(&mut state.wanted);
            let jobs: Vec<_> = wanted
                .into_iter()
                .filter(|(key, _)| {
                    !state.busy.contains(key) && !self.dir.join(key.file_name()).exists()
                })
                .collect();
            for (key, _) in &jobs {
                state.busy.insert(key.clone());
            }
            jobs
        };
        jobs.into_iter()
            .map(|(key, make)| {
                let spares = self.clone();
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = spares.make_spare(&key, &make) {
                        tracing::warn!(spare = %key.0, error = %e, "cannot make a spare disk");
                    }
                    spares.state().busy.remove(&key);
                    spares.state.1.notify_all();
                })
            })
            .collect()
    }

    fn make_spare(&self, key: &SpareKey, make: &Maker) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("create {}: {e}", self.dir.display()))?;
        let tmp = self.dir.join(format!(".tmp-{}", key.file_name()));
        let _ = std::fs::remove_file(&tmp);
        let made = make(&tmp).and_then(|()| {
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| format!("sync {}: {e}", tmp.display()))?;
            std::fs::rename(&tmp, self.dir.join(key.file_name()))
                .map_err(|e| format!("rename {}: {e}", tmp.display()))
        });
        if made.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        made?;
        self.evict();
        Ok(())
    }

    /// Removes the oldest spares beyond [`MAX_SPARES`] and temporary files no refill is
    /// writing.
    fn evict(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let busy: HashSet<String> = self
            .state()
            .busy
            .iter()
            .map(|k| format!(".tmp-{}", k.file_name()))
            .collect();
        let mut spares = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                if !busy.contains(&name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            } else if let Ok(m) = entry.metadata() {
                spares.push((m.mtime(), entry.path()));
            }
        }
        spares.sort();
        let excess = spares.len().saturating_sub(MAX_SPARES);
        for (_, path) in spares.into_iter().take(excess) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Removes every spare (with `dry_run`, only counts them); returns the files and bytes on
    /// disk removed.
    pub fn clear(&self, dry_run: bool) -> (u64, u64) {
        let (mut files, mut bytes) = (0, 0);
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let size = entry.metadata().map_or(0, |m| m.blocks() * 512);
                if dry_run || std::fs::remove_file(entry.path()).is_ok() {
                    files += 1;
                    bytes += size;
                }
            }
        }
        (files, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn maker(
        calls: &Arc<AtomicUsize>,
        content: &'static [u8],
    ) -> impl Fn(&Path) -> std::io::Result<()> + Send + Sync + 'static {
        let calls = calls.clone();
        move |dst: &Path| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::fs::write(dst, content)
        }
    }

    #[tokio::test]
    async fn a_spare_is_made_after_use_and_taken_by_the_next() {
        let t = tempfile::tempdir().expect("tempdir");
        let source = t.path().join("rootfs.ext4");
        std::fs::write(&source, b"image").expect("write");
        let spares = Spares::new(t.path().join("spares"));
        let key = SpareKey::of(&[&source], "rootfs").expect("key");
        let calls = Arc::new(AtomicUsize::new(0));

        let first = t.path().join("vm1.ext4");
        let got = spares.take_or_make(&key, &first, maker(&calls, b"disk"));
        assert_eq!(got.expect("made"), Got::Made);
        assert_eq!(std::fs::read(&first).expect("read"), b"disk");
        for task in spares.refill() {
            task.await.expect("refill");
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "made once in place, once as a spare"
        );
        // A second refill with nothing taken makes nothing.
        assert!(spares.refill().is_empty());

        // The next create takes it by rename, and its own refill is slow.
        let second = t.path().join("vm2.ext4");
        let slow_calls = calls.clone();
        let slow = move |dst: &Path| {
            slow_calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(400));
            std::fs::write(dst, b"disk")
        };
        let got = spares.take_or_make(&key, &second, slow);
        assert_eq!(got.expect("taken"), Got::Spare);
        assert_eq!(std::fs::read(&second).expect("read"), b"disk");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the spare was renamed, not made"
        );
        assert!(!spares.dir().join(key.file_name()).exists());

        // A create that comes while that spare is being made waits for it and takes it.
        let refills = spares.refill();
        assert_eq!(refills.len(), 1);
        let (spares2, key2, calls2) = (spares.clone(), key.clone(), calls.clone());
        let third = t.path().join("vm3.ext4");
        let got = tokio::task::spawn_blocking(move || {
            spares2.take_or_make(&key2, &third, maker(&calls2, b"disk"))
        })
        .await
        .expect("join")
        .expect("take");
        for task in refills {
            task.await.expect("refill");
        }
        assert_eq!(got, Got::Spare, "waited for the spare under way");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "only the refill made a disk"
        );
    }

    #[tokio::test]
    async fn a_changed_source_never_gets_an_old_spare() {
        let t = tempfile::tempdir().expect("tempdir");
        let source = t.path().join("rootfs.ext4");
        std::fs::write(&source, b"image v1").expect("write");
        let spares = Spares::new(t.path().join("spares"));
        let calls = Arc::new(AtomicUsize::new(0));
        let old = SpareKey::of(&[&source], "rootfs").expect("key");
        spares
            .take_or_make(&old, &t.path().join("a"), maker(&calls, b"old"))
            .expect("make");
        for task in spares.refill() {
            task.await.expect("refill");
        }
        // Re-pulled: a new file under the same name.
        std::fs::remove_file(&source).expect("rm");
        std::fs::write(&source, b"image v2, longer").expect("write");
        let new = SpareKey::of(&[&source], "rootfs").expect("key");
        assert_ne!(old, new);
        let dst = t.path().join("b");
        let got = spares.take_or_make(&new, &dst, maker(&calls, b"new"));
        assert_eq!(got.expect("made"), Got::Made);
        assert_eq!(std::fs::read(&dst).expect("read"), b"new");
        assert_ne!(
            SpareKey::of(&[&source], "rootfs").expect("key"),
            SpareKey::of(&[&source], "work 8G").expect("key"),
            "the variant is part of the key"
        );
    }

    #[tokio::test]
    async fn a_failed_refill_leaves_nothing_and_old_spares_are_evicted() {
        let t = tempfile::tempdir().expect("tempdir");
        let spares = Spares::new(t.path().join("spares"));
        // Made in place fails: the error is the create's.
        let broken = |_: &Path| Err::<(), _>(std::io::Error::other("disk full"));
        let key = SpareKey::of(&[], "broken").expect("key");
        let e = spares.take_or_make(&key, &t.path().join("x"), broken);
        assert_eq!(e.expect_err("fails").to_string(), "disk full");
        // Made in place, then its refill fails half-way: no spare, no temporary file.
        let made = AtomicUsize::new(0);
        let flaky = move |dst: &Path| {
            std::fs::write(dst, b"half")?;
            match made.fetch_add(1, Ordering::SeqCst) {
                0 => Ok(()),
                _ => Err(std::io::Error::other("disk full")),
            }
        };
        let key = SpareKey::of(&[], "flaky").expect("key");
        spares
            .take_or_make(&key, &t.path().join("y"), flaky)
            .expect("made in place");
        let calls = Arc::new(AtomicUsize::new(0));
        for i in 0..(MAX_SPARES + 2) {
            let key = SpareKey::of(&[], &format!("v{i}")).expect("key");
            spares
                .take_or_make(&key, &t.path().join(format!("d{i}")), maker(&calls, b"d"))
                .expect("make");
        }
        for task in spares.refill() {
            task.await.expect("refill");
        }
        let left: Vec<String> = std::fs::read_dir(spares.dir())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), MAX_SPARES, "{left:?}");
        assert!(left.iter().all(|n| !n.starts_with(".tmp-")), "{left:?}");
        assert_eq!(spares.clear(true).0, MAX_SPARES as u64);
        assert_eq!(spares.clear(false).0, MAX_SPARES as u64);
        assert_eq!(spares.clear(false).0, 0);
    }
}
