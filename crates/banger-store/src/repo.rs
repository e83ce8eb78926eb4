//! The repository over one table: the operations every record kind shares.
//!
//! A [`Repo`] borrows the store's single connection and locks it per call, so each call is
//! atomic and writes are serialised. The access marker decides what is callable: a
//! [`ReadOnly`](crate::ReadOnly) repository (from a [`ReadOnlyStore`](crate::ReadOnlyStore)) has
//! only the read methods, checked at compile time. Constraint violations become typed errors:
//! a taken name is [`StoreError::AlreadyExists`], a taken id [`StoreError::IdTaken`], a missing
//! referenced record [`StoreError::DanglingReference`].

use std::marker::PhantomData;

use rusqlite::{Connection, OptionalExtension, Params, TransactionBehavior, ffi, params_from_iter};

use crate::error::{StoreError, constraint_code};
use crate::lookup::{self, LookupError};
use crate::record::Record;
use crate::store::{Db, ReadWrite};

/// The repository of records `R`; `A` is [`ReadWrite`] or [`ReadOnly`](crate::ReadOnly).
pub struct Repo<'a, R, A = ReadWrite> {
    pub(crate) db: &'a Db,
    _kind: PhantomData<fn() -> (R, A)>,
}

impl<'a, R: Record, A> Repo<'a, R, A> {
    pub(crate) fn new(db: &'a Db) -> Self {
        Repo {
            db,
            _kind: PhantomData,
        }
    }

    /// The record with exactly this id.
    pub fn get(&self, id: &str) -> Result<Option<R>, StoreError> {
        let conn = self.db.lock();
        select_one(&conn, "WHERE id = ?1", [id], &format!("read {}", R::KIND))
    }

    /// The record with exactly this name.
    pub fn get_by_name(&self, name: &str) -> Result<Option<R>, StoreError> {
        let conn = self.db.lock();
        select_one(
            &conn,
            "WHERE name = ?1",
            [name],
            &format!("read {}", R::KIND),
        )
    }

    /// Every record, oldest first (ties broken by name).
    pub fn list(&self) -> Result<Vec<R>, StoreError> {
        let conn = self.db.lock();
        select(
            &conn,
            "ORDER BY created_at, name",
            [],
            &format!("list {}s", R::KIND),
        )
    }

    /// Finds the record a user means: an exact id, else an exact name, else the one record whose
    /// id or name starts with `reference`. Ambiguous prefixes list the candidates.
    pub fn resolve(&self, reference: &str) -> Result<R, LookupError> {
        let conn = self.db.lock();
        lookup::resolve(&conn, reference)
    }
}

impl<R: Record> Repo<'_, R, ReadWrite> {
    /// Stores a new record.
    pub fn insert(&self, record: &R) -> Result<(), StoreError> {
        let values = record.to_values()?;
        let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            R::TABLE,
            R::COLUMNS.join(", "),
            placeholders.join(", ")
        );
        let conn = self.db.lock();
        conn.execute(&sql, params_from_iter(values))
            .map_err(|e| write_error(record, "insert", e))?;
        Ok(())
    }

    /// Deletes the record with this id; `false` if there was none.
    pub fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let op = || format!("delete {} {id}", R::KIND);
        let mut conn = self.db.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sql(op()))?;
        R::check_delete(&tx, id)?;
        let n = tx
            .execute(&format!("DELETE FROM {} WHERE id = ?1", R::TABLE), [id])
            .map_err(StoreError::sql(op()))?;
        tx.commit().map_err(StoreError::sql(op()))?;
        Ok(n > 0)
    }

    /// Replaces every column of the record with the same id; `false` if there was none.
    pub(crate) fn update_record(&self, record: &R) -> Result<bool, StoreError> {
        let values = record.to_values()?;
        let sets: Vec<String> = R::COLUMNS
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, column)| format!("{column} = ?{}", i + 1))
            .collect();
        let sql = format!("UPDATE {} SET {} WHERE id = ?1", R::TABLE, sets.join(", "));
        let conn = self.db.lock();
        let n = conn
            .execute(&sql, params_from_iter(values))
            .map_err(|e| write_error(record, "update", e))?;
        Ok(n > 0)
    }
}

/// Rows of `R`'s table matching `filter` (a `WHERE`/`ORDER BY` tail).
pub(crate) fn select<R: Record, P: Params>(
    conn: &Connection,
    filter: &str,
    params: P,
    op: &str,
) -> Result<Vec<R>, StoreError> {
    let sql = format!(
        "SELECT {} FROM {} {filter}",
        R::COLUMNS.join(", "),
        R::TABLE
    );
    let run = || -> rusqlite::Result<Vec<R>> {
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params, R::from_row)?;
        rows.collect()
    };
    run().map_err(StoreError::sql(op))
}

/// The one row of `R`'s table matching `filter`, if any.
pub(crate) fn select_one<R: Record, P: Params>(
    conn: &Connection,
    filter: &str,
    params: P,
    op: &str,
) -> Result<Option<R>, StoreError> {
    let sql = format!(
        "SELECT {} FROM {} {filter}",
        R::COLUMNS.join(", "),
        R::TABLE
    );
    conn.query_row(&sql, params, R::from_row)
        .optional()
        .map_err(StoreError::sql(op))
}

/// Maps constraint violations on insert/update to typed errors.
fn write_error<R: Record>(record: &R, verb: &str, source: rusqlite::Error) -> StoreError {
    match constraint_code(&source) {
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE) => StoreError::AlreadyExists {
            kind: R::KIND,
            name: record.name().to_owned(),
        },
        Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => StoreError::IdTaken {
            kind: R::KIND,
            id: record.id().to_owned(),
        },
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::DanglingReference {
            kind: R::KIND,
            name: record.name().to_owned(),
            target: R::REFERENCES,
        },
        _ => StoreError::Sql {
            op: format!("{verb} {} {:?}", R::KIND, record.name()),
            source,
        },
    }
}
