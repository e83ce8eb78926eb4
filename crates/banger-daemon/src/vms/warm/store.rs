//! Warm snapshots on disk: `<state>/snapshots/<class key>/` holds `ram`, `state`, the disks
//! (`disk0.ext4`, `disk1.ext4`, … in device order) and `meta.json`.
//!
//! A snapshot is built in a staging directory beside the others and renamed into place only
//! once every file is written, so a crash or a failed save never leaves a half snapshot that a
//! restore could pick up: a directory without `meta.json` is not a snapshot, and staging
//! directories are removed when dropped or found at start. Two VMs of one class racing to
//! save both build; the first rename wins and the other is discarded.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Prefix of staging directories.
const STAGING: &str = ".staging-";
/// The file that marks a complete snapshot.
const META: &str = "meta.json";

/// What a snapshot was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The boot class key.
    pub key: String,
    /// The image it boots.
    pub image_id: String,
    /// Memory of the saved guest in MiB.
    pub memory_mib: u64,
    /// How many disks it has.
    pub disks: usize,
    /// When it was saved.
    pub created_at: String,
    /// vCPUs of the saved guest (`None` in snapshots saved before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu: Option<u32>,
    /// The kernel record it boots (`None` in snapshots saved before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_id: Option<String>,
    /// Work disk size in bytes (`None` in snapshots saved before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes: Option<u64>,
}

impl SnapshotMeta {
    /// Whether `other` fills the same slot: the same image, kernel, memory, vCPUs, disk
    /// count and work disk size. Of two snapshots in one slot with different class keys only the newer can still
    /// be restored (something else in the key changed: the VMM, the agent, the image files),
    /// so [`SnapshotStore::remove_stale`] drops the other.
    pub fn same_slot(&self, other: &SnapshotMeta) -> bool {
        self.image_id == other.image_id
            && self.kernel_id == other.kernel_id
            && self.memory_mib == other.memory_mib
            && self.vcpu == other.vcpu
            && self.disks == other.disks
            && self.disk_bytes == other.disk_bytes
    }
}

/// A complete snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// Its directory.
    pub dir: PathBuf,
    /// What it holds.
    pub meta: SnapshotMeta,
}

impl StoredSnapshot {
    /// The RAM and device state, as a backend restores them.
    pub fn vmm_snapshot(&self) -> banger_vmm::warm::Snapshot {
        banger_vmm::warm::Snapshot {
            memory: self.dir.join("ram"),
            state: self.dir.join("state"),
        }
    }

    /// Disk `i` of the saved guest.
    pub fn disk(&self, i: usize) -> PathBuf {
        disk_path(&self.dir, i)
    }

    /// Bytes on disk (allocated blocks: disks and RAM are sparse).
    pub fn bytes(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.blocks() * 512)
                    .sum()
            })
            .unwrap_or(0)
    }
}

fn disk_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("disk{i}.ext4"))
}

/// The snapshots directory.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    root: PathBuf,
}

/// A snapshot being written; removed on drop unless committed.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    root: PathBuf,
    key: String,
    committed: bool,
}

impl Staging {
    /// Where the RAM file goes.
    pub fn ram(&self) -> PathBuf {
        self.dir.join("ram")
    }

    /// Where the device state goes.
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Where disk `i` goes.
    pub fn disk(&self, i: usize) -> PathBuf {
        disk_path(&self.dir, i)
    }

    /// Writes `meta` and moves the snapshot into place. `Ok(None)` when another save of the
    /// same class got there first (this one is discarded).
    pub fn commit(mut self, meta: &SnapshotMeta) -> std::io::Result<Option<StoredSnapshot>> {
        let text = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
        std::fs::write(self.dir.join(META), text)?;
        let target = self.root.join(&self.key);
        if target.exists() {
            return Ok(None);
        }
        std::fs::rename(&self.dir, &target)?;
        self.committed = true;
        Ok(Some(StoredSnapshot {
            dir: target,
            meta: meta.clone(),
        }))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl SnapshotStore {
    /// The store under `root` (`Layout::snapshots_dir`).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The complete snapshot of class `key`, if there is one.
    pub fn find(&self, key: &str) -> Option<StoredSnapshot> {
        load(&self.root.join(key))
    }

    /// Starts writing a snapshot of class `key`.
    pub fn begin(&self, key: &str) -> std::io::Result<Staging> {
        std::fs::create_dir_all(&self.root)?;
        let dir = self
            .root
            .join(format!("{STAGING}{key}-{}", crate::ids::random_hex(4)));
        std::fs::create_dir(&dir)?;
        Ok(Staging {
            dir,
            root: self.root.clone(),
            key: key.to_owned(),
            committed: false,
        })
    }

    /// Every complete snapshot, by key.
    pub fn list(&self) -> Vec<StoredSnapshot> {
        let mut out: Vec<StoredSnapshot> = std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| !e.file_name().to_string_lossy().starts_with(STAGING))
                    .filter_map(|e| load(&e.path()))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.meta.key.cmp(&b.meta.key));
        out
    }

    /// Removes the snapshots for which `drop` says so (an image deleted, a stale class).
    /// Returns how many went.
    pub fn remove_where(&self, drop: impl Fn(&SnapshotMeta) -> bool) -> std::io::Result<usize> {
        let mut removed = 0;
        for snapshot in self.list() {
            if drop(&snapshot.meta) {
                std::fs::remove_dir_all(&snapshot.dir)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes the snapshots other than `keep` (a class key) for which `same_slot` says so;
    /// call it after committing `keep` as `remove_stale(&meta.key, |m| m.same_slot(&meta))`
    /// so an image's superseded snapshots do not pile up. Returns how many went.
    pub fn remove_stale(
        &self,
        keep: &str,
        same_slot: impl Fn(&SnapshotMeta) -> bool,
    ) -> std::io::Result<usize> {
        self.remove_where(|m| m.key != keep && same_slot(m))
    }

    /// Removes staging directories a crash left behind.
    pub fn clean_staging(&self) {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in rd.filter_map(Result::ok) {
            if entry.file_name().to_string_lossy().starts_with(STAGING) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn load(dir: &Path) -> Option<StoredSnapshot> {
    let text = std::fs::read(dir.join(META)).ok()?;
    let meta: SnapshotMeta = serde_json::from_slice(&text).ok()?;
    Some(StoredSnapshot {
        dir: dir.to_owned(),
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str) -> SnapshotMeta {
        SnapshotMeta {
            key: key.into(),
            image_id: "img1".into(),
            memory_mib: 512,
            disks: 2,
            created_at: "2026-12-03T00:00:00Z".into(),
            vcpu: Some(2),
            kernel_id: Some("k1".into()),
            disk_bytes: Some(8 << 30),
        }
    }

    fn save(store: &SnapshotStore, meta: &SnapshotMeta) {
        let s = store.begin(&meta.key).expect("begin");
        write_parts(&s);
        s.commit(meta).expect("commit").expect("won");
    }

    fn keys(store: &SnapshotStore) -> Vec<String> {
        store.list().into_iter().map(|s| s.meta.key).collect()
    }

    #[test]
    fn a_new_snapshot_supersedes_only_its_own_slot() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::new(root.path().to_owned());
        let old = meta("old");
        let other_image = SnapshotMeta {
            image_id: "img2".into(),
            ..meta("img2")
        };
        let bigger = SnapshotMeta {
            memory_mib: 1024,
            ..meta("big")
        };
        let more_cpus = SnapshotMeta {
            vcpu: Some(4),
            ..meta("cpus")
        };
        let other_kernel = SnapshotMeta {
            kernel_id: Some("k2".into()),
            ..meta("kern")
        };
        let bigger_disk = SnapshotMeta {
            disk_bytes: Some(16 << 30),
            ..meta("disk")
        };
        for m in [
            &old,
            &other_image,
            &bigger,
            &more_cpus,
            &other_kernel,
            &bigger_disk,
        ] {
            save(&store, m);
        }
        let new = meta("new");
        save(&store, &new);
        assert_eq!(
            store
                .remove_stale(&new.key, |m| m.same_slot(&new))
                .expect("sweep"),
            1
        );
        assert_eq!(keys(&store), ["big", "cpus", "disk", "img2", "kern", "new"]);
        // Running it again finds nothing more, and never drops the one it keeps.
        assert_eq!(store.remove_stale(&new.key, |_| true).expect("sweep"), 5);
        assert_eq!(keys(&store), ["new"]);
    }

    #[test]
    fn meta_written_before_vcpu_and_kernel_were_recorded_still_loads() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("k");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(
            dir.join(META),
            r#"{"key":"k","image_id":"i","memory_mib":256,"disks":2,"created_at":"t"}"#,
        )
        .expect("write");
        let found = SnapshotStore::new(root.path().to_owned())
            .find("k")
            .expect("loads");
        assert_eq!((found.meta.vcpu, found.meta.kernel_id), (None, None));
        assert_eq!(found.meta.memory_mib, 256);
    }

    fn write_parts(s: &Staging) {
        for p in [s.ram(), s.state(), s.disk(0), s.disk(1)] {
            std::fs::write(p, "x").expect("write");
        }
    }

    #[test]
    fn a_snapshot_appears_only_once_committed() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::new(root.path().join("snapshots"));
        let staging = store.begin("abc").expect("begin");
        write_parts(&staging);
        assert!(store.find("abc").is_none(), "not before the commit");
        assert!(store.list().is_empty());
        let stored = staging.commit(&meta("abc")).expect("commit").expect("won");
        assert_eq!(store.find("abc"), Some(stored.clone()));
        assert!(stored.vmm_snapshot().memory.is_file());
        assert!(stored.disk(1).is_file());
        assert_eq!(store.list(), vec![stored]);
    }

    #[test]
    fn a_dropped_staging_leaves_nothing_and_a_second_save_of_a_class_is_discarded() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::new(root.path().to_owned());
        let staging = store.begin("abc").expect("begin");
        write_parts(&staging);
        drop(staging);
        assert_eq!(std::fs::read_dir(root.path()).expect("ls").count(), 0);

        let first = store.begin("abc").expect("begin");
        let second = store.begin("abc").expect("begin");
        write_parts(&first);
        write_parts(&second);
        assert!(first.commit(&meta("abc")).expect("commit").is_some());
        assert!(second.commit(&meta("abc")).expect("commit").is_none());
        assert_eq!(std::fs::read_dir(root.path()).expect("ls").count(), 1);
    }

    #[test]
    fn removal_and_crash_leftovers() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::new(root.path().to_owned());
        for key in ["a1", "b2"] {
            let s = store.begin(key).expect("begin");
            write_parts(&s);
            s.commit(&meta(key)).expect("commit");
        }
        // A crash mid-save: a staging dir nobody will drop.
        let leftover = store.begin("c3").expect("begin");
        std::mem::forget(leftover);
        assert_eq!(store.list().len(), 2);
        assert_eq!(store.remove_where(|m| m.key == "a1").expect("remove"), 1);
        assert_eq!(
            store
                .list()
                .iter()
                .map(|s| s.meta.key.as_str())
                .collect::<Vec<_>>(),
            ["b2"]
        );
        store.clean_staging();
        assert_eq!(std::fs::read_dir(root.path()).expect("ls").count(), 1);
    }
}
