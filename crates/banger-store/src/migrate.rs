//! Applying migrations to a read-write connection.
//!
//! Invariants:
//! - a database that records ids this binary does not know (written by a newer banger, say
//!   before a rolled-back update) is still opened: those rows and whatever they made are left
//!   alone, and this binary's own pending migrations are applied. `inspect_schema` still calls
//!   such a database incompatible, so an upgrade check refuses to go *down* to this binary;
//! - each pending migration runs in its own `BEGIN IMMEDIATE` transaction together with the
//!   `INSERT` that records it, so a failing migration leaves neither its DDL nor its row behind
//!   and is retried on the next open; the transaction re-checks the row first, so two processes
//!   opening at once do not apply a migration twice;
//! - migrations run in ascending id order; lists are validated by [`validate_migrations`].

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::StoreError;
use crate::migrations::Migration;

const CREATE_SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

/// Checks that migration ids are unique and strictly ascending.
pub fn validate_migrations(migrations: &[Migration]) -> Result<(), StoreError> {
    let mut seen = BTreeSet::new();
    for m in migrations {
        if !seen.insert(m.id) {
            return Err(StoreError::DuplicateMigration { id: m.id });
        }
    }
    for pair in migrations.windows(2) {
        if pair[1].id < pair[0].id {
            return Err(StoreError::UnorderedMigrations {
                id: pair[1].id,
                previous: pair[0].id,
            });
        }
    }
    Ok(())
}

/// The ids recorded in `schema_migrations`, ascending; `None` when the table does not exist.
pub(crate) fn applied_ids(conn: &Connection) -> rusqlite::Result<Option<Vec<u32>>> {
    let exists = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let mut stmt = conn.prepare("SELECT id FROM schema_migrations ORDER BY id")?;
    let ids = stmt
        .query_map([], |row| row.get::<_, u32>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(ids))
}

/// Ids in `applied` that `known` does not contain, ascending.
pub(crate) fn unknown_ids(applied: &[u32], known: &[Migration]) -> Vec<u32> {
    let known: BTreeSet<u32> = known.iter().map(|m| m.id).collect();
    let unknown: BTreeSet<u32> = applied
        .iter()
        .copied()
        .filter(|id| !known.contains(id))
        .collect();
    unknown.into_iter().collect()
}

/// Ids in `known` that `applied` lacks, ascending.
pub(crate) fn pending_ids(applied: &[u32], known: &[Migration]) -> Vec<u32> {
    let applied: BTreeSet<u32> = applied.iter().copied().collect();
    let pending: BTreeSet<u32> = known
        .iter()
        .map(|m| m.id)
        .filter(|id| !applied.contains(id))
        .collect();
    pending.into_iter().collect()
}

/// What opening a database did to its schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Migrations applied by this open, ascending.
    pub applied_now: Vec<u32>,
    /// Recorded ids this binary does not know (left alone), ascending.
    pub unknown: Vec<u32>,
}

/// Applies every pending migration, leaving rows of unknown (newer) migrations alone.
pub(crate) fn migrate(
    conn: &mut Connection,
    migrations: &[Migration],
) -> Result<MigrationReport, StoreError> {
    validate_migrations(migrations)?;
    let applied = applied_ids(conn)
        .map_err(StoreError::sql("read applied migrations"))?
        .unwrap_or_default();
    let unknown = unknown_ids(&applied, migrations);
    conn.execute_batch(CREATE_SCHEMA_MIGRATIONS)
        .map_err(StoreError::sql("create schema_migrations"))?;
    let mut done = Vec::new();
    for m in migrations.iter().filter(|m| !applied.contains(&m.id)) {
        if apply(conn, m).map_err(|source| StoreError::Migration {
            id: m.id,
            name: m.name,
            source,
        })? {
            done.push(m.id);
        }
    }
    Ok(MigrationReport {
        applied_now: done,
        unknown,
    })
}

/// Runs one migration and records it in one transaction; `false` if it was already recorded.
fn apply(conn: &mut Connection, m: &Migration) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let recorded = tx
        .query_row(
            "SELECT 1 FROM schema_migrations WHERE id = ?1",
            [m.id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if recorded {
        return Ok(false);
    }
    tx.execute_batch(m.sql)?;
    tx.execute(
        "INSERT INTO schema_migrations (id, name, applied_at)
         VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
        rusqlite::params![m.id, m.name],
    )?;
    tx.commit()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u32) -> Migration {
        Migration {
            id,
            name: "m",
            sql: "",
        }
    }

    #[test]
    fn validation_rejects_duplicates_and_disorder() {
        assert!(validate_migrations(&[]).is_ok());
        assert!(validate_migrations(&[m(1), m(2), m(7)]).is_ok());
        assert!(matches!(
            validate_migrations(&[m(1), m(2), m(1)]),
            Err(StoreError::DuplicateMigration { id: 1 })
        ));
        assert!(matches!(
            validate_migrations(&[m(1), m(3), m(2)]),
            Err(StoreError::UnorderedMigrations { id: 2, previous: 3 })
        ));
    }

    #[test]
    fn unknown_and_pending_are_set_differences() {
        let known = [m(1), m(2), m(3)];
        assert_eq!(unknown_ids(&[1, 2, 3], &known), Vec::<u32>::new());
        assert_eq!(unknown_ids(&[1, 99, 4], &known), vec![4, 99]);
        assert_eq!(pending_ids(&[1], &known), vec![2, 3]);
        assert_eq!(pending_ids(&[], &known), vec![1, 2, 3]);
    }

    #[test]
    fn applied_at_is_rfc3339_utc() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, &[m(1)]).unwrap();
        let at: String = conn
            .query_row("SELECT applied_at FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(at.len(), "2026-01-01T00:00:00Z".len(), "{at}");
        assert!(at.ends_with('Z') && at.as_bytes()[10] == b'T', "{at}");
    }

    #[test]
    fn migrating_twice_applies_nothing_the_second_time() {
        let mut conn = Connection::open_in_memory().unwrap();
        let list = [
            Migration {
                id: 1,
                name: "a",
                sql: "CREATE TABLE a (x INTEGER)",
            },
            Migration {
                id: 2,
                name: "b",
                sql: "CREATE TABLE b (x INTEGER)",
            },
        ];
        assert_eq!(migrate(&mut conn, &list).unwrap().applied_now, vec![1, 2]);
        assert_eq!(
            migrate(&mut conn, &list).unwrap().applied_now,
            Vec::<u32>::new()
        );
        assert_eq!(applied_ids(&conn).unwrap(), Some(vec![1, 2]));
    }
}
