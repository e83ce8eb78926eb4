//! Opening SQLite connections: read-write (configured) and read-only (creates nothing).
//!
//! Invariants:
//! - every read-write connection gets [`configure`]: `journal_mode=WAL`, a 5 s busy timeout,
//!   `foreign_keys=ON` and `synchronous=NORMAL`;
//! - every open reads the database header at once ([`probe`]), so a corrupt file fails here, as
//!   [`StoreError::Corrupt`], before any pragma or migration could write to it;
//! - a read-only open never creates a file. Measured with SQLite 3.54: a plain `mode=ro`
//!   connection to a WAL database whose `-wal`/`-shm` are absent (a cleanly closed database)
//!   creates an empty `-wal` and a 32 KiB `-shm` on its first read and leaves both behind, since
//!   a read-only connection cannot checkpoint and delete them. `readonly_shm=1` does not help: it
//!   fails with "unable to open" when `-shm` is absent and still leaves the empty `-wal`.
//!   So [`open_read_only`] picks the mode from the files present:
//!   - no `-wal`, or an empty one without `-shm`: every committed page is in the main file, and
//!     `immutable=1` reads it without locks or side files. Such a handle is a snapshot: it does
//!     not see writes made after it opened, so keep it short-lived (diagnostics);
//!   - `-wal` and `-shm` present (a writer is running, or crashed): `readonly_shm=1`, which
//!     reads the live index without creating or writing any file and sees the latest commits;
//!   - a non-empty `-wal` without `-shm`: reading it would need a new index file, so this is
//!     [`StoreError::WalWithoutIndex`].
//!
//!   If the side files vanish between the check and the open (the last writer closed), the open
//!   is retried once; in that race SQLite may leave an empty `-wal`, which the next read-write
//!   open removes.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{StoreError, is_corruption};

/// How long a connection waits for a lock before failing with `SQLITE_BUSY`.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if needed) and configures a read-write connection.
pub(crate) fn open_read_write(path: &Path) -> Result<Connection, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        return Err(StoreError::ParentMissing {
            path: path.to_path_buf(),
            parent: parent.to_path_buf(),
        });
    }
    if path.exists() && !path.is_file() {
        return Err(StoreError::NotAFile(path.to_path_buf()));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(file_uri(path, ""), flags).map_err(|source| {
        StoreError::Open {
            path: path.to_path_buf(),
            source,
        }
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|source| open_error(path, source))?;
    probe(&conn).map_err(|source| open_error(path, source))?;
    configure(&conn, path)?;
    Ok(conn)
}

/// Applies the settings every read-write connection must have.
pub(crate) fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let run = || -> rusqlite::Result<String> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // `journal_mode` answers with the mode in effect afterwards.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(mode)
    };
    let mode = run().map_err(|source| open_error(path, source))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(StoreError::NoWal {
            path: path.to_path_buf(),
            mode,
        })
    }
}

/// Opens an existing database read-only without creating any file (see the module docs).
pub(crate) fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let mut retried = false;
    loop {
        let mode = read_only_mode(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(file_uri(path, mode.query()), flags)
            .map_err(|source| open_error(path, source))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|source| open_error(path, source))?;
        match probe(&conn) {
            Ok(()) => return Ok(conn),
            Err(err)
                if !retried
                    && mode == ReadOnlyMode::SharedIndex
                    && err.sqlite_error_code() == Some(ErrorCode::CannotOpen) =>
            {
                retried = true;
            }
            Err(source) => return Err(open_error(path, source)),
        }
    }
}

/// How a read-only connection opens the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadOnlyMode {
    /// No WAL content: read the main file as an immutable snapshot.
    Immutable,
    /// A live WAL and index: read through the index without writing it.
    SharedIndex,
}

impl ReadOnlyMode {
    fn query(self) -> &'static str {
        match self {
            Self::Immutable => "?mode=ro&immutable=1",
            Self::SharedIndex => "?mode=ro&readonly_shm=1",
        }
    }
}

fn read_only_mode(path: &Path) -> Result<ReadOnlyMode, StoreError> {
    let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => StoreError::Missing(path.to_path_buf()),
        _ => StoreError::Stat {
            path: path.to_path_buf(),
            source,
        },
    })?;
    if !meta.is_file() {
        return Err(StoreError::NotAFile(path.to_path_buf()));
    }
    let wal_len = std::fs::metadata(sidecar(path, "-wal"))
        .ok()
        .map(|m| m.len());
    let has_shm = sidecar(path, "-shm").exists();
    match (wal_len, has_shm) {
        (None, _) | (Some(0), false) => Ok(ReadOnlyMode::Immutable),
        (Some(_), true) => Ok(ReadOnlyMode::SharedIndex),
        (Some(_), false) => Err(StoreError::WalWithoutIndex {
            path: path.to_path_buf(),
        }),
    }
}

/// Reads the schema, which makes SQLite read and check the database header now.
fn probe(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| {
        row.get::<_, i64>(0)
    })
    .map(drop)
}

/// Classifies an error met while opening.
pub(crate) fn open_error(path: &Path, source: rusqlite::Error) -> StoreError {
    if is_corruption(&source) {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            source,
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `path` with `suffix` appended to its file name (`banger.db` → `banger.db-wal`).
pub(crate) fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// A SQLite `file:` URI for `path` with `query` appended; every byte outside the unreserved set
/// is percent-encoded so `?`, `#` and `%` in paths stay part of the path.
fn file_uri(path: &Path, query: &str) -> String {
    let mut uri = String::from(if path.is_absolute() {
        "file://"
    } else {
        "file:"
    });
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str(query);
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_everything_but_unreserved_bytes() {
        assert_eq!(
            file_uri(Path::new("/a b/x?y#z%.db"), "?mode=ro"),
            "file:///a%20b/x%3Fy%23z%25.db?mode=ro"
        );
        assert_eq!(file_uri(Path::new("rel/db"), ""), "file:rel/db");
    }

    #[test]
    fn read_write_connections_are_configured() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_read_write(&dir.path().join("a.db")).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        let busy: i64 = conn
            .pragma_query_value(None, "busy_timeout", |r| r.get(0))
            .unwrap();
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(busy, 5000);
        assert_eq!(fk, 1);
        assert_eq!(sync, 1, "NORMAL");
    }

    #[test]
    fn paths_with_uri_metacharacters_open_the_named_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("we?ird #name%20.db");
        drop(open_read_write(&path).unwrap());
        assert!(path.is_file());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("we?ird #name%20.db")]);
        drop(open_read_only(&path).unwrap());
    }

    #[test]
    fn read_only_mode_follows_the_side_files() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        std::fs::write(&db, b"").unwrap();
        assert_eq!(read_only_mode(&db).unwrap(), ReadOnlyMode::Immutable);
        std::fs::write(sidecar(&db, "-wal"), b"").unwrap();
        assert_eq!(read_only_mode(&db).unwrap(), ReadOnlyMode::Immutable);
        std::fs::write(sidecar(&db, "-wal"), b"frames").unwrap();
        assert!(matches!(
            read_only_mode(&db),
            Err(StoreError::WalWithoutIndex { .. })
        ));
        std::fs::write(sidecar(&db, "-shm"), b"").unwrap();
        assert_eq!(read_only_mode(&db).unwrap(), ReadOnlyMode::SharedIndex);
        assert!(matches!(
            read_only_mode(&dir.path().join("nope.db")),
            Err(StoreError::Missing(_))
        ));
        assert!(matches!(
            read_only_mode(dir.path()),
            Err(StoreError::NotAFile(_))
        ));
    }
}
