//! Opening databases: read-write, read-only, corrupt, missing, after a crash, concurrently.
//! Every test runs on real SQLite files in its own temp dir and checks the files left behind.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use banger_store::{ReadOnlyStore, Store, StoreError, inspect_schema, open_read_only};
use common::{image, kernel, names, snapshot, vm};

const DB: &str = "banger.db";

#[test]
fn open_creates_the_database_and_closing_removes_the_side_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    let store = Store::open(&path).unwrap();
    store
        .kernels()
        .insert(&kernel("k1", "debian-cloud"))
        .unwrap();
    assert_eq!(names(dir.path()), [DB, "banger.db-shm", "banger.db-wal"]);
    assert_eq!(store.path(), path);
    drop(store);
    assert_eq!(names(dir.path()), [DB], "the last connection checkpoints");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.kernels().list().unwrap().len(), 1);
}

#[test]
fn open_needs_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join(DB);
    let err = Store::open(&path).unwrap_err();
    match &err {
        StoreError::ParentMissing { parent, .. } => {
            assert_eq!(parent, &dir.path().join("no-such-dir"));
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("no-such-dir") && msg.contains("does not exist"),
        "{msg}"
    );
    assert!(names(dir.path()).is_empty());
}

#[test]
fn a_directory_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::NotAFile(_))
    ));
    assert!(matches!(
        open_read_only(dir.path()),
        Err(StoreError::NotAFile(_))
    ));
}

#[test]
fn corrupt_files_fail_cleanly_and_stay_byte_for_byte_untouched() {
    let contents: [(&str, Vec<u8>); 3] = [
        ("0xAB", vec![0xAB; 4096]),
        ("text", b"not a database".to_vec()),
        ("bad header", {
            let mut bytes = b"SQLite format 3\0".to_vec();
            bytes.resize(4096, 0xFF);
            bytes
        }),
    ];
    for (label, bytes) in contents {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB);
        std::fs::write(&path, &bytes).unwrap();
        let before = snapshot(dir.path());

        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { .. }),
            "{label}: {err:?}"
        );
        assert!(err.to_string().contains("corrupt"), "{label}: {err}");
        assert_eq!(snapshot(dir.path()), before, "{label}: Store::open");

        let err = open_read_only(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { .. }),
            "{label}: {err:?}"
        );
        assert_eq!(snapshot(dir.path()), before, "{label}: open_read_only");

        let err = inspect_schema(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { .. }),
            "{label}: {err:?}"
        );
        assert_eq!(snapshot(dir.path()), before, "{label}: inspect_schema");
    }
}

#[test]
fn read_only_open_of_a_missing_database_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    let err = open_read_only(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::Missing(p) if p == &path),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(names(dir.path()).is_empty());
}

#[test]
fn read_only_open_of_a_closed_database_creates_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    {
        let store = Store::open(&path).unwrap();
        store
            .images()
            .insert(&image("i1", "debian-bookworm"))
            .unwrap();
        store.vms().insert(&vm("v1", "web", "i1")).unwrap();
    }
    let before = snapshot(dir.path());
    assert_eq!(names(dir.path()), [DB]);

    let ro = open_read_only(&path).unwrap();
    assert_eq!(ro.applied_migrations().unwrap(), [1, 2, 3]);
    assert_eq!(ro.vms().list().unwrap(), [vm("v1", "web", "i1")]);
    assert_eq!(ro.vms().resolve("we").unwrap().id, "v1");
    assert_eq!(
        ro.images().get("i1").unwrap().unwrap().name,
        "debian-bookworm"
    );
    assert!(ro.kernels().list().unwrap().is_empty());
    assert_eq!(snapshot(dir.path()), before, "while open");
    drop(ro);
    assert_eq!(snapshot(dir.path()), before, "after close");
}

#[test]
fn read_only_open_beside_a_live_writer_sees_new_commits_and_adds_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    let store = Store::open(&path).unwrap();
    store.kernels().insert(&kernel("k1", "one")).unwrap();
    let files = names(dir.path());
    assert_eq!(files, [DB, "banger.db-shm", "banger.db-wal"]);

    let ro = ReadOnlyStore::open(&path).unwrap();
    assert_eq!(ro.kernels().list().unwrap().len(), 1);
    store.kernels().insert(&kernel("k2", "two")).unwrap();
    assert_eq!(ro.kernels().list().unwrap().len(), 2, "sees the live WAL");
    drop(ro);
    assert_eq!(names(dir.path()), files);
    drop(store);
    assert_eq!(names(dir.path()), [DB]);
}

const CRASH_ENV: &str = "BANGER_STORE_TEST_CRASH_DB";

/// Not a test on its own: when `CRASH_ENV` is set, it writes to that database and aborts
/// without closing it, leaving `-wal` and `-shm` behind as a crashed daemon would.
#[test]
fn crash_helper() {
    if let Some(path) = std::env::var_os(CRASH_ENV) {
        let store = Store::open(Path::new(&path)).unwrap();
        store.kernels().insert(&kernel("k-crash", "crash")).unwrap();
        std::process::abort();
    }
}

fn crash_writer(path: &Path) {
    let status = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", "crash_helper", "--test-threads=1", "--nocapture"])
        .env(CRASH_ENV, path)
        .status()
        .expect("run the crash helper");
    assert!(!status.success(), "the helper must abort: {status}");
}

#[test]
fn read_only_open_after_a_writer_crashed_reads_the_wal_without_new_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    drop(Store::open(&path).unwrap());
    crash_writer(&path);
    assert_eq!(names(dir.path()), [DB, "banger.db-shm", "banger.db-wal"]);
    let before = snapshot(dir.path());

    let ro = open_read_only(&path).unwrap();
    let kernels = ro.kernels().list().unwrap();
    assert_eq!(kernels.len(), 1, "the committed row lives only in the WAL");
    drop(ro);
    assert_eq!(snapshot(dir.path())[DB], before[DB]);
    assert_eq!(
        snapshot(dir.path())["banger.db-wal"],
        before["banger.db-wal"]
    );
    assert_eq!(names(dir.path()), [DB, "banger.db-shm", "banger.db-wal"]);

    // Without its index the WAL cannot be read without creating a file: refuse, clearly.
    std::fs::remove_file(dir.path().join("banger.db-shm")).unwrap();
    let before = snapshot(dir.path());
    let err = open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::WalWithoutIndex { .. }), "{err:?}");
    assert!(err.to_string().contains("start bangerd"), "{err}");
    assert!(matches!(
        inspect_schema(&path),
        Err(StoreError::WalWithoutIndex { .. })
    ));
    assert_eq!(snapshot(dir.path()), before);

    // A read-write open recovers it, and closing cleans up.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.kernels().list().unwrap()[0].name, "crash");
    drop(store);
    assert_eq!(names(dir.path()), [DB]);
}

#[test]
fn writes_from_many_threads_are_serialised() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join(DB)).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let name = format!("k-{t}-{i}");
                    store.kernels().insert(&kernel(&name, &name)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.kernels().list().unwrap().len(), 200);
}

#[test]
fn two_stores_on_one_file_share_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    let a = Store::open(&path).unwrap();
    let b = Store::open(&path).unwrap();
    a.kernels().insert(&kernel("k1", "one")).unwrap();
    b.kernels().insert(&kernel("k2", "two")).unwrap();
    assert_eq!(a.kernels().list().unwrap().len(), 2);
    let err = b.kernels().insert(&kernel("k3", "one")).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
}
