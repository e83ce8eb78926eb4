//! Errors of the store.
//!
//! One enum for the whole crate because callers branch on a handful of outcomes (missing,
//! corrupt, incompatible, already exists) whatever the operation. Messages are lowercase, describe
//! only this layer and keep SQLite's error as the `#[source]`; they never repeat the source's text.

use std::path::PathBuf;

use rusqlite::ErrorCode;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory that should hold a new database does not exist.
    #[error(
        "cannot create database {}: directory {} does not exist",
        path.display(),
        parent.display()
    )]
    ParentMissing {
        /// The database path.
        path: PathBuf,
        /// Its missing parent directory.
        parent: PathBuf,
    },
    /// A read-only open or inspection found no database file.
    #[error("database {} does not exist", .0.display())]
    Missing(PathBuf),
    /// The database path exists but is not a regular file.
    #[error("database {} is not a regular file", .0.display())]
    NotAFile(PathBuf),
    /// The file system refused to tell whether the database exists.
    #[error("cannot inspect database {}", path.display())]
    Stat {
        /// The database path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite could not open the database.
    #[error("cannot open database {}", path.display())]
    Open {
        /// The database path.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not a SQLite database or is damaged. It was not modified.
    #[error(
        "database {} is corrupt or not a sqlite database; it was left untouched",
        path.display()
    )]
    Corrupt {
        /// The database path.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite would not put the database in WAL mode (e.g. a file system without shared memory).
    #[error(
        "database {} cannot use write-ahead logging: journal mode stayed {mode}",
        path.display()
    )]
    NoWal {
        /// The database path.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// The database has a non-empty write-ahead log but its `-shm` index is gone, so it cannot be
    /// read without creating a file.
    #[error(
        "database {} has a write-ahead log without its -shm index; open it read-write once \
         (start bangerd) to recover it",
        path.display()
    )]
    WalWithoutIndex {
        /// The database path.
        path: PathBuf,
    },
    /// Two migrations share an id.
    #[error("migration list is invalid: id {id} appears twice")]
    DuplicateMigration {
        /// The repeated id.
        id: u32,
    },
    /// Migration ids are not ascending.
    #[error("migration list is invalid: id {id} follows id {previous}; ids must ascend")]
    UnorderedMigrations {
        /// The id that is out of order.
        id: u32,
        /// The id before it.
        previous: u32,
    },
    /// A migration failed. Its transaction was rolled back, so it is retried on the next open.
    #[error("migration {id} ({name}) failed and was rolled back; it is retried on the next open")]
    Migration {
        /// The migration's id.
        id: u32,
        /// The migration's name.
        name: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A record with the same name exists.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// `vm`, `image` or `kernel`.
        kind: &'static str,
        /// The taken name.
        name: String,
    },
    /// A record with the same id exists.
    #[error("{kind} id {id} is already taken")]
    IdTaken {
        /// `vm`, `image` or `kernel`.
        kind: &'static str,
        /// The taken id.
        id: String,
    },
    /// A record refers to another record that is not in the store.
    #[error("{kind} {name:?} refers to an unknown {target}")]
    DanglingReference {
        /// The kind of the referring record.
        kind: &'static str,
        /// The referring record's name.
        name: String,
        /// The kind of the missing record.
        target: &'static str,
    },
    /// An image cannot be deleted while VMs use it.
    #[error("image {id} is used by vms {}; delete them first", vms.join(", "))]
    ImageInUse {
        /// The image id.
        id: String,
        /// Names of the VMs that use it, sorted.
        vms: Vec<String>,
    },
    /// A record field cannot be stored.
    #[error("cannot store {field}: {reason}")]
    InvalidValue {
        /// The field, e.g. `vm.spec.memory_mib`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A query failed.
    #[error("cannot {op}")]
    Sql {
        /// What the store was doing, e.g. `list vms`.
        op: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// Wraps a query error with what the store was doing.
    pub(crate) fn sql(op: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let op = op.into();
        move |source| StoreError::Sql { op, source }
    }
}

/// Whether SQLite says the file is not a database or is damaged.
pub(crate) fn is_corruption(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

/// The extended result code of a constraint violation, if `err` is one.
pub(crate) fn constraint_code(err: &rusqlite::Error) -> Option<i32> {
    match err.sqlite_error() {
        Some(e) if e.code == ErrorCode::ConstraintViolation => Some(e.extended_code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn messages_are_lowercase_and_do_not_repeat_the_source() {
        let source = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
            Some("file is not a database".into()),
        );
        let err = StoreError::Corrupt {
            path: PathBuf::from("/x/banger.db"),
            source,
        };
        let msg = err.to_string();
        assert!(msg.starts_with("database /x/banger.db is corrupt"), "{msg}");
        assert!(!msg.contains("file is not a database"), "{msg}");
        assert!(err.source().is_some());
    }
}
