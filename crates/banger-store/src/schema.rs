//! Classifying a database's schema against this binary's migrations, without changing anything.
//!
//! Used by `bangerd --check-migrations` before an upgrade and by `doctor`. Invariants: the
//! inspection never creates or modifies a file (it reads through the read-only open of
//! [`crate::open_read_only`]); a missing database file or a missing `schema_migrations` table
//! counts as "all migrations pending"; unknown ids win over pending ones.

use std::fmt;
use std::path::Path;

use crate::connection;
use crate::error::StoreError;
use crate::migrate::{applied_ids, pending_ids, unknown_ids, validate_migrations};
use crate::migrations::{MIGRATIONS, Migration};

/// How a database's schema relates to this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaStatus {
    /// The database has exactly the migrations this binary knows.
    Compatible,
    /// The binary knows migrations the database lacks; opening it read-write applies them.
    MigrationsNeeded {
        /// Ids to apply, ascending.
        pending: Vec<u32>,
    },
    /// The database has migrations this binary does not know: it comes from a newer banger.
    Incompatible {
        /// Unknown ids, ascending.
        unknown: Vec<u32>,
    },
}

impl SchemaStatus {
    /// Classifies the `applied` ids against the `known` migrations.
    pub fn classify(applied: &[u32], known: &[Migration]) -> SchemaStatus {
        let unknown = unknown_ids(applied, known);
        if !unknown.is_empty() {
            return SchemaStatus::Incompatible { unknown };
        }
        let pending = pending_ids(applied, known);
        if pending.is_empty() {
            SchemaStatus::Compatible
        } else {
            SchemaStatus::MigrationsNeeded { pending }
        }
    }

    /// The process exit code of `bangerd --check-migrations`: 0 compatible, 1 migrations needed
    /// (safe to upgrade), 2 incompatible (abort the upgrade).
    pub fn exit_code(&self) -> i32 {
        match self {
            SchemaStatus::Compatible => 0,
            SchemaStatus::MigrationsNeeded { .. } => 1,
            SchemaStatus::Incompatible { .. } => 2,
        }
    }
}

impl fmt::Display for SchemaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaStatus::Compatible => {
                f.write_str("compatible: the database has every migration this binary knows")
            }
            SchemaStatus::MigrationsNeeded { pending } => write!(
                f,
                "migrations needed: pending {pending:?} (the daemon applies them on next start)"
            ),
            SchemaStatus::Incompatible { unknown } => write!(
                f,
                "incompatible: database has migrations {unknown:?} unknown to this binary \
                 (it comes from a newer banger)"
            ),
        }
    }
}

/// Classifies the database at `path` against [`MIGRATIONS`].
pub fn inspect_schema(path: &Path) -> Result<SchemaStatus, StoreError> {
    inspect_schema_with(path, MIGRATIONS)
}

/// Classifies the database at `path` against `migrations`.
pub fn inspect_schema_with(
    path: &Path,
    migrations: &[Migration],
) -> Result<SchemaStatus, StoreError> {
    validate_migrations(migrations)?;
    let conn = match connection::open_read_only(path) {
        Ok(conn) => conn,
        Err(StoreError::Missing(_)) => return Ok(SchemaStatus::classify(&[], migrations)),
        Err(err) => return Err(err),
    };
    let applied = applied_ids(&conn)
        .map_err(StoreError::sql("read applied migrations"))?
        .unwrap_or_default();
    Ok(SchemaStatus::classify(&applied, migrations))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ids: &[u32]) -> Vec<Migration> {
        ids.iter()
            .map(|&id| Migration {
                id,
                name: "m",
                sql: "",
            })
            .collect()
    }

    #[test]
    fn classification() {
        let known = list(&[1, 2, 3]);
        assert_eq!(
            SchemaStatus::classify(&[1, 2, 3], &known),
            SchemaStatus::Compatible
        );
        assert_eq!(
            SchemaStatus::classify(&[1], &known),
            SchemaStatus::MigrationsNeeded {
                pending: vec![2, 3]
            }
        );
        assert_eq!(
            SchemaStatus::classify(&[], &known),
            SchemaStatus::MigrationsNeeded {
                pending: vec![1, 2, 3]
            }
        );
        // Unknown ids win even when some known ones are also missing.
        assert_eq!(
            SchemaStatus::classify(&[1, 99], &known),
            SchemaStatus::Incompatible { unknown: vec![99] }
        );
    }

    #[test]
    fn one_line_summaries_and_exit_codes() {
        let cases = [
            (SchemaStatus::Compatible, "compatible: ", 0),
            (
                SchemaStatus::MigrationsNeeded {
                    pending: vec![2, 3],
                },
                "migrations needed: pending [2, 3] (the daemon applies them on next start)",
                1,
            ),
            (
                SchemaStatus::Incompatible { unknown: vec![99] },
                "incompatible: database has migrations [99] unknown to this binary \
                 (it comes from a newer banger)",
                2,
            ),
        ];
        for (status, text, code) in cases {
            let shown = status.to_string();
            assert!(shown.starts_with(text), "{shown}");
            assert!(!shown.contains('\n'), "{shown}");
            assert_eq!(status.exit_code(), code);
        }
    }
}
