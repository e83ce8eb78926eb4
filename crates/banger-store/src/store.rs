//! The store handles: [`Store`] (read-write, migrated) and [`ReadOnlyStore`] (diagnostics).
//!
//! Invariants: each handle owns exactly one SQLite connection behind a [`Mutex`], so handles are
//! `Send + Sync` and writes through one handle are serialised; a lock poisoned by a panicking
//! thread is taken over, which is sound because an unfinished transaction rolls back when its
//! guard is dropped during unwinding. Other processes are serialised by SQLite's locks and the
//! 5 s busy timeout. A [`Store`] only exists for a database whose migrations are all applied.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use banger_model::{ImageRecord, KernelRecord, VmRecord};
use rusqlite::Connection;

use crate::connection;
use crate::error::StoreError;
use crate::migrate::{MigrationReport, applied_ids, migrate, validate_migrations};
use crate::migrations::{MIGRATIONS, Migration};
use crate::repo::Repo;

/// Access marker: the repository can read and write.
#[derive(Debug, Clone, Copy)]
pub struct ReadWrite;

/// Access marker: the repository can only read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOnly;

/// One connection, locked per operation.
pub(crate) struct Db(Mutex<Connection>);

impl Db {
    fn new(conn: Connection) -> Self {
        Db(Mutex::new(conn))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn applied_migrations(&self) -> Result<Vec<u32>, StoreError> {
        applied_ids(&self.lock())
            .map(Option::unwrap_or_default)
            .map_err(StoreError::sql("read applied migrations"))
    }
}

/// The read-write store: one configured connection to a fully migrated database.
pub struct Store {
    db: Db,
    path: PathBuf,
    report: MigrationReport,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the database at `path`, creating it if absent (its directory must exist), and
    /// applies pending [`MIGRATIONS`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, MIGRATIONS)
    }

    /// Like [`Store::open`] with another migration list (tests).
    pub fn open_with(path: &Path, migrations: &[Migration]) -> Result<Store, StoreError> {
        validate_migrations(migrations)?;
        let mut conn = connection::open_read_write(path)?;
        let report = migrate(&mut conn, migrations)?;
        Ok(Store {
            db: Db::new(conn),
            path: path.to_path_buf(),
            report,
        })
    }

    /// What this open did to the schema: migrations applied now, and recorded ids this binary
    /// does not know (a newer banger's, left alone; callers should log them).
    pub fn migration_report(&self) -> &MigrationReport {
        &self.report
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ids recorded in `schema_migrations`, ascending.
    pub fn applied_migrations(&self) -> Result<Vec<u32>, StoreError> {
        self.db.applied_migrations()
    }

    /// The VMs.
    pub fn vms(&self) -> Repo<'_, VmRecord> {
        Repo::new(&self.db)
    }

    /// The images.
    pub fn images(&self) -> Repo<'_, ImageRecord> {
        Repo::new(&self.db)
    }

    /// The kernels.
    pub fn kernels(&self) -> Repo<'_, KernelRecord> {
        Repo::new(&self.db)
    }
}

/// A read-only view of an existing database for diagnostics: no migrations, no writes, no new
/// files. See [`open_read_only`].
///
/// Its repositories have no write methods:
///
/// ```compile_fail
/// fn write(ro: &banger_store::ReadOnlyStore, k: &banger_model::KernelRecord) {
///     let _ = ro.kernels().insert(k);
/// }
/// ```
pub struct ReadOnlyStore {
    db: Db,
    path: PathBuf,
}

impl std::fmt::Debug for ReadOnlyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Opens the existing database at `path` read-only (`mode=ro`). It runs no migrations, fails with
/// [`StoreError::Missing`] if the file does not exist and never creates a file. When no writer
/// has the database open the handle is a snapshot of the database at open time, so keep it
/// short-lived.
pub fn open_read_only(path: &Path) -> Result<ReadOnlyStore, StoreError> {
    let conn = connection::open_read_only(path)?;
    Ok(ReadOnlyStore {
        db: Db::new(conn),
        path: path.to_path_buf(),
    })
}

impl ReadOnlyStore {
    /// Same as [`open_read_only`].
    pub fn open(path: &Path) -> Result<ReadOnlyStore, StoreError> {
        open_read_only(path)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ids recorded in `schema_migrations`, ascending (empty if the table does not exist).
    pub fn applied_migrations(&self) -> Result<Vec<u32>, StoreError> {
        self.db.applied_migrations()
    }

    /// The VMs, read-only.
    pub fn vms(&self) -> Repo<'_, VmRecord, ReadOnly> {
        Repo::new(&self.db)
    }

    /// The images, read-only.
    pub fn images(&self) -> Repo<'_, ImageRecord, ReadOnly> {
        Repo::new(&self.db)
    }

    /// The kernels, read-only.
    pub fn kernels(&self) -> Repo<'_, KernelRecord, ReadOnly> {
        Repo::new(&self.db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Store>();
        assert_send_sync::<ReadOnlyStore>();
        assert_send_sync::<Repo<'static, VmRecord>>();
    }

    #[test]
    fn an_invalid_migration_list_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("banger.db");
        let m = |id| Migration {
            id,
            name: "m",
            sql: "",
        };
        let err = Store::open_with(&path, &[m(1), m(1)]).unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateMigration { id: 1 }),
            "{err}"
        );
        assert!(!path.exists());
    }
}
