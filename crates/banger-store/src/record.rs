//! How a model record maps to a table row, and the conversions that mapping needs.
//!
//! Invariants: `COLUMNS` lists every column, `id` first and `name` second; `to_values` returns
//! one value per column in that order; `from_row` reads columns by name and turns any value the
//! model would reject (unknown state, invalid VM name, negative size) into a conversion error
//! rather than a silently wrong record. Paths are stored as UTF-8 text so the database stays
//! readable with the `sqlite3` shell; a non-UTF-8 path is refused on write.

use std::path::{Path, PathBuf};

use rusqlite::types::{Type, Value};
use rusqlite::{Connection, Row};

use crate::error::StoreError;

/// A record stored in one table, addressed by a unique id and a unique name.
///
/// Implemented for [`banger_model::VmRecord`], [`banger_model::ImageRecord`] and
/// [`banger_model::KernelRecord`]; it cannot be implemented outside this crate.
pub trait Record: Sized {
    /// What the record is called in messages: `vm`, `image`, `kernel`.
    const KIND: &'static str;
    /// The table.
    const TABLE: &'static str;
    /// Every column, `id` first and `name` second.
    const COLUMNS: &'static [&'static str];
    /// What this record's foreign key points at, for messages.
    const REFERENCES: &'static str = "record";

    /// The record's id.
    fn id(&self) -> &str;
    /// The record's name.
    fn name(&self) -> &str;
    /// One value per column, in [`Record::COLUMNS`] order.
    fn to_values(&self) -> Result<Vec<Value>, StoreError>;
    /// Reads a row selected with [`Record::COLUMNS`].
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self>;
    /// Refuses to delete the record with `id` while others depend on it; runs in the deleting
    /// transaction.
    fn check_delete(_conn: &Connection, _id: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A `u64` as an SQLite integer, refusing values above `i64::MAX`.
pub(crate) fn int(field: &'static str, value: u64) -> Result<Value, StoreError> {
    i64::try_from(value)
        .map(Value::Integer)
        .map_err(|_| StoreError::InvalidValue {
            field,
            reason: format!("{value} is larger than {}", i64::MAX),
        })
}

/// A path as text, refusing non-UTF-8 paths.
pub(crate) fn path(field: &'static str, value: &Path) -> Result<Value, StoreError> {
    value
        .to_str()
        .map(|s| Value::Text(s.to_owned()))
        .ok_or_else(|| StoreError::InvalidValue {
            field,
            reason: format!("path {} is not valid UTF-8", value.display()),
        })
}

/// An optional path as text or NULL.
pub(crate) fn opt_path(field: &'static str, value: Option<&Path>) -> Result<Value, StoreError> {
    value.map_or(Ok(Value::Null), |p| path(field, p))
}

/// Optional text as text or NULL.
pub(crate) fn opt_text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |s| Value::Text(s.to_owned()))
}

/// Reads a text column as a path.
pub(crate) fn get_path(row: &Row<'_>, column: &str) -> rusqlite::Result<PathBuf> {
    row.get::<_, String>(column).map(PathBuf::from)
}

/// Reads a nullable text column as a path.
pub(crate) fn get_opt_path(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<PathBuf>> {
    row.get::<_, Option<String>>(column)
        .map(|p| p.map(PathBuf::from))
}

/// Reads a non-negative integer column as a `u64`.
pub(crate) fn get_u64(row: &Row<'_>, column: &str) -> rusqlite::Result<u64> {
    let value: i64 = row.get(column)?;
    u64::try_from(value).map_err(|_| bad_value(row, column, format!("{value} is negative")))
}

/// A conversion error for a column whose stored value the model rejects.
pub(crate) fn bad_value(
    row: &Row<'_>,
    column: &str,
    reason: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    let index = row.as_ref().column_index(column).unwrap_or(usize::MAX);
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, reason.into())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn conversions_refuse_what_sqlite_cannot_hold() {
        assert_eq!(int("f", 5).unwrap(), Value::Integer(5));
        assert!(matches!(
            int("f", u64::MAX),
            Err(StoreError::InvalidValue { field: "f", .. })
        ));
        let bad = Path::new(OsStr::from_bytes(b"/tmp/\xff"));
        let err = path("image.rootfs_path", bad).unwrap_err();
        assert!(err.to_string().contains("image.rootfs_path"), "{err}");
        assert_eq!(opt_path("f", None).unwrap(), Value::Null);
        assert_eq!(opt_text(Some("x")), Value::Text("x".into()));
    }
}
