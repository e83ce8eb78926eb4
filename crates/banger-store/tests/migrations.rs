//! Migrations and schema inspection on real database files.

mod common;

use std::path::Path;

use banger_store::{
    MIGRATIONS, Migration, SchemaStatus, Store, StoreError, inspect_schema, inspect_schema_with,
};
use common::{image, kernel, names, snapshot, vm};
use rusqlite::Connection;

const DB: &str = "banger.db";

fn raw(path: &Path) -> Connection {
    Connection::open(path).expect("sqlite")
}

fn table_exists(conn: &Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .expect("sqlite")
        == 1
}

fn recorded(conn: &Connection) -> Vec<(u32, String)> {
    let mut stmt = conn
        .prepare("SELECT id, name FROM schema_migrations ORDER BY id")
        .expect("sqlite");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("sqlite")
        .collect::<Result<_, _>>()
        .expect("sqlite")
}

#[test]
fn a_fresh_database_gets_every_migration_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    let store = Store::open(&path).unwrap();
    let ids: Vec<u32> = MIGRATIONS.iter().map(|m| m.id).collect();
    assert_eq!(store.applied_migrations().unwrap(), ids);
    drop(store);
    let conn = raw(&path);
    for table in ["vms", "images", "kernels", "schema_migrations"] {
        assert!(table_exists(&conn, table), "{table}");
    }
    assert_eq!(
        recorded(&conn),
        [
            (1, "baseline".to_owned()),
            (2, "vm workspace".to_owned()),
            (3, "image oci config".to_owned())
        ]
    );
    let at: String = conn
        .query_row(
            "SELECT applied_at FROM schema_migrations WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(at.starts_with("20") && at.ends_with('Z'), "{at}");
}

#[test]
fn a_failing_migration_rolls_back_is_not_recorded_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    let broken = [
        MIGRATIONS[0],
        Migration {
            id: 2,
            name: "add extra",
            sql: "CREATE TABLE extra (x INTEGER); THIS IS NOT SQL;",
        },
    ];
    let err = Store::open_with(&path, &broken).unwrap_err();
    match &err {
        StoreError::Migration { id, name, .. } => assert_eq!((*id, *name), (2, "add extra")),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("rolled back"), "{err}");
    {
        let conn = raw(&path);
        assert!(
            !table_exists(&conn, "extra"),
            "the good CREATE was rolled back"
        );
        assert_eq!(recorded(&conn), [(1, "baseline".to_owned())]);
    }
    assert_eq!(
        inspect_schema_with(&path, &broken).unwrap(),
        SchemaStatus::MigrationsNeeded { pending: vec![2] }
    );

    let fixed = [
        MIGRATIONS[0],
        Migration {
            id: 2,
            name: "add extra",
            sql: "CREATE TABLE extra (x INTEGER);",
        },
    ];
    let store = Store::open_with(&path, &fixed).unwrap();
    assert_eq!(store.applied_migrations().unwrap(), [1, 2]);
    drop(store);
    let conn = raw(&path);
    assert!(table_exists(&conn, "extra"));
    assert_eq!(
        recorded(&conn),
        [(1, "baseline".to_owned()), (2, "add extra".to_owned())]
    );
}

#[test]
fn migrations_run_in_ascending_order_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    Store::open_with(&path, &MIGRATIONS[..1]).unwrap();
    // 3 depends on 2, so running them out of order would fail.
    let list = [
        MIGRATIONS[0],
        Migration {
            id: 2,
            name: "two",
            sql: "CREATE TABLE two (x INTEGER NOT NULL);",
        },
        Migration {
            id: 3,
            name: "three",
            sql: "INSERT INTO two (x) VALUES (3);",
        },
    ];
    Store::open_with(&path, &list).unwrap();
    Store::open_with(&path, &list).unwrap();
    let conn = raw(&path);
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM two", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "migration 3 ran exactly once");
    assert_eq!(recorded(&conn).len(), 3);
}

#[test]
fn invalid_injected_lists_are_errors_before_any_file_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    let dup = [MIGRATIONS[0], MIGRATIONS[0]];
    assert!(matches!(
        Store::open_with(&path, &dup),
        Err(StoreError::DuplicateMigration { id: 1 })
    ));
    assert!(matches!(
        inspect_schema_with(&path, &dup),
        Err(StoreError::DuplicateMigration { id: 1 })
    ));
    let m = |id| Migration {
        id,
        name: "m",
        sql: "",
    };
    assert!(matches!(
        Store::open_with(&path, &[m(2), m(1)]),
        Err(StoreError::UnorderedMigrations { id: 1, previous: 2 })
    ));
    assert!(names(dir.path()).is_empty());
}

#[test]
fn a_database_from_a_newer_banger_is_opened_and_its_rows_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    // An older binary (migration 1 only) meets a database that a newer one (1, 2 and 99)
    // wrote, as after a rolled-back update.
    drop(Store::open(&path).unwrap());
    {
        let conn = raw(&path);
        conn.execute(
            "INSERT INTO schema_migrations (id, name, applied_at) VALUES (99, 'future', 'x')",
            [],
        )
        .unwrap();
        conn.execute_batch("CREATE TABLE future_things (x INTEGER)")
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.migration_report().unknown, [99]);
    assert!(store.migration_report().applied_now.is_empty());
    assert!(store.vms().list().unwrap().is_empty());
    assert!(store.applied_migrations().unwrap().contains(&99));
    drop(store);
    {
        let conn = raw(&path);
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'future_things'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "the newer migration's table is left alone");
    }

    // An older binary with pending migrations of its own still applies them.
    let older = dir.path().join("older.db");
    drop(Store::open_with(&older, &MIGRATIONS[..1]).unwrap());
    {
        let conn = raw(&older);
        conn.execute(
            "INSERT INTO schema_migrations (id, name, applied_at) VALUES (99, 'future', 'x')",
            [],
        )
        .unwrap();
    }
    let store = Store::open(&older).unwrap();
    let report = store.migration_report();
    assert_eq!(report.unknown, [99]);
    assert_eq!(
        report.applied_now,
        MIGRATIONS[1..].iter().map(|m| m.id).collect::<Vec<_>>()
    );
    drop(store);

    let before = snapshot(dir.path());
    let status = inspect_schema(&path).unwrap();
    assert_eq!(status, SchemaStatus::Incompatible { unknown: vec![99] });
    assert_eq!(status.exit_code(), 2);
    assert_eq!(snapshot(dir.path()), before);

    // A binary that knows 99 treats the row as its own.
    let mut newer = MIGRATIONS.to_vec();
    newer.push(Migration {
        id: 99,
        name: "future",
        sql: "",
    });
    assert_eq!(
        inspect_schema_with(&path, &newer).unwrap(),
        SchemaStatus::Compatible
    );
}

#[test]
fn inspect_schema_classifies_without_creating_or_changing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);

    let status = inspect_schema(&path).unwrap();
    assert_eq!(
        status,
        SchemaStatus::MigrationsNeeded {
            pending: MIGRATIONS.iter().map(|m| m.id).collect()
        }
    );
    assert_eq!(status.exit_code(), 1);
    assert!(
        names(dir.path()).is_empty(),
        "a missing database stays missing"
    );

    // A database without schema_migrations: everything is pending.
    {
        let conn = raw(&path);
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE other (x INTEGER);")
            .unwrap();
    }
    let before = snapshot(dir.path());
    assert_eq!(
        inspect_schema(&path).unwrap(),
        SchemaStatus::MigrationsNeeded {
            pending: MIGRATIONS.iter().map(|m| m.id).collect()
        }
    );
    assert_eq!(snapshot(dir.path()), before);
    std::fs::remove_file(&path).unwrap();

    drop(Store::open(&path).unwrap());
    let before = snapshot(dir.path());
    let status = inspect_schema(&path).unwrap();
    assert_eq!(status, SchemaStatus::Compatible);
    assert_eq!(status.exit_code(), 0);
    let mut two_more = MIGRATIONS.to_vec();
    for (id, name) in [(100, "hundred"), (101, "hundred one")] {
        two_more.push(Migration { id, name, sql: "" });
    }
    let status = inspect_schema_with(&path, &two_more).unwrap();
    assert_eq!(
        status.to_string(),
        "migrations needed: pending [100, 101] (the daemon applies them on next start)"
    );
    assert_eq!(snapshot(dir.path()), before);
}

/// Collapses whitespace so formatting changes in the fixture do not matter.
fn schema_of(conn: &Connection) -> Vec<(String, String, Option<String>)> {
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")
        .expect("sqlite");
    stmt.query_map([], |r| {
        let sql: Option<String> = r.get(2)?;
        Ok((
            r.get(0)?,
            r.get(1)?,
            sql.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")),
        ))
    })
    .expect("sqlite")
    .collect::<Result<_, _>>()
    .expect("sqlite")
}

#[test]
fn the_release_1_database_dump_still_opens_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    let dump = include_str!("fixtures/db-v1.sql");
    raw(&path).execute_batch(dump).unwrap();

    let fresh_path = dir.path().join("fresh.db");
    drop(Store::open_with(&fresh_path, &MIGRATIONS[..1]).unwrap());
    assert_eq!(
        schema_of(&raw(&path)),
        schema_of(&raw(&fresh_path)),
        "migration 1 must never change: add a new migration instead"
    );
    assert_eq!(
        inspect_schema(&path).unwrap(),
        SchemaStatus::MigrationsNeeded {
            pending: vec![2, 3]
        }
    );

    let store = Store::open(&path).unwrap();
    assert_eq!(store.applied_migrations().unwrap(), [1, 2, 3]);
    let mut expected_vm = vm("0a1b2c3d4e5f", "web", "11aa22bb33cc");
    expected_vm.last_error = Some("boot timed out".to_owned());
    expected_vm.state = banger_model::VmState::Error;
    assert_eq!(store.vms().list().unwrap(), [expected_vm]);
    assert_eq!(
        store.images().list().unwrap(),
        [image("11aa22bb33cc", "debian-bookworm")]
    );
    assert_eq!(
        store.kernels().list().unwrap(),
        [kernel("99ff88ee77dd", "debian-cloud")]
    );
}

/// The columns of `table`, in order.
fn columns(conn: &Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        ))
        .expect("sqlite");
    stmt.query_map([], |r| r.get(0))
        .expect("sqlite")
        .collect::<Result<_, _>>()
        .expect("sqlite")
}

#[test]
fn a_version_1_database_upgrades_to_2_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB);
    {
        let store = Store::open_with(&path, &MIGRATIONS[..1]).unwrap();
        store
            .kernels()
            .insert(&kernel("99ff88ee77dd", "debian-cloud"))
            .unwrap();
    }
    // A v1 binary cannot write workspace_json or oci_config_json; insert the v1 rows by hand.
    raw(&path)
        .execute(
            "INSERT INTO images (id, name, source, digest, rootfs_path, work_seed_path,
                kernel_name, created_at)
             VALUES ('11aa22bb33cc', 'debian', 'catalog:debian', NULL,
                '/var/lib/banger/images/11aa22bb33cc/rootfs.ext4', NULL, 'debian-cloud',
                '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
    raw(&path)
        .execute(
            "INSERT INTO vms (id, name, image_id, vcpu, memory_mib, disk_size_bytes, nat, state,
                guest_ip, tap_name, dir, last_error, created_at, updated_at)
             VALUES ('0a1b2c3d4e5f', 'web', '11aa22bb33cc', 2, 2048, 8589934592, 1, 'running',
                '172.16.0.2', 'bgr-0a1b2c', '/var/lib/banger/vms/0a1b2c3d4e5f', NULL,
                '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
    assert!(!columns(&raw(&path), "vms").contains(&"workspace_json".to_owned()));
    assert_eq!(
        inspect_schema(&path).unwrap(),
        SchemaStatus::MigrationsNeeded {
            pending: vec![2, 3]
        }
    );

    let store = Store::open(&path).unwrap();
    assert_eq!(store.applied_migrations().unwrap(), [1, 2, 3]);
    assert_eq!(
        store.vms().list().unwrap(),
        [vm("0a1b2c3d4e5f", "web", "11aa22bb33cc")]
    );
    assert_eq!(store.images().list().unwrap().len(), 1);
    assert_eq!(store.kernels().list().unwrap().len(), 1);
    drop(store);
    assert_eq!(
        columns(&raw(&path), "vms").last().map(String::as_str),
        Some("workspace_json")
    );
    assert_eq!(inspect_schema(&path).unwrap(), SchemaStatus::Compatible);
}
