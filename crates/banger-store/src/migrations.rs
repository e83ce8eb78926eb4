//! The list of schema migrations this binary knows.
//!
//! Invariants:
//! - ids are unique and strictly ascending (checked at compile time below and by
//!   [`crate::validate_migrations`] for injected lists);
//! - a migration that has shipped is never edited: change the schema with a new migration
//!   (`tests/fixtures/db-v1.sql` freezes migration 1);
//! - a migration's SQL contains no `BEGIN`/`COMMIT`: the migrator runs it inside its own
//!   transaction together with the row that records it.

/// One schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Position in the schema history; recorded in `schema_migrations.id`.
    pub id: u32,
    /// Short description, recorded in `schema_migrations.name`.
    pub name: &'static str,
    /// The statements to run.
    pub sql: &'static str,
}

/// Every migration, in ascending id order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        id: 1,
        name: "baseline",
        sql: BASELINE,
    },
    Migration {
        id: 2,
        name: "vm workspace",
        sql: VM_WORKSPACE,
    },
    Migration {
        id: 3,
        name: "image oci config",
        sql: IMAGE_OCI_CONFIG,
    },
];

const BASELINE: &str = "
CREATE TABLE kernels (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL UNIQUE,
    version      TEXT,
    source       TEXT NOT NULL,
    vmlinux_path TEXT NOT NULL,
    initrd_path  TEXT,
    created_at   TEXT NOT NULL
) STRICT;

CREATE TABLE images (
    id             TEXT PRIMARY KEY NOT NULL,
    name           TEXT NOT NULL UNIQUE,
    source         TEXT NOT NULL,
    digest         TEXT,
    rootfs_path    TEXT NOT NULL,
    work_seed_path TEXT,
    kernel_name    TEXT,
    created_at     TEXT NOT NULL
) STRICT;

CREATE TABLE vms (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL UNIQUE,
    image_id        TEXT NOT NULL REFERENCES images (id) ON DELETE RESTRICT,
    vcpu            INTEGER NOT NULL CHECK (vcpu >= 1),
    memory_mib      INTEGER NOT NULL CHECK (memory_mib >= 1),
    disk_size_bytes INTEGER NOT NULL CHECK (disk_size_bytes >= 0),
    nat             INTEGER NOT NULL CHECK (nat IN (0, 1)),
    state           TEXT NOT NULL CHECK (state IN ('created', 'running', 'stopped', 'error')),
    guest_ip        TEXT,
    tap_name        TEXT,
    dir             TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;

CREATE INDEX vms_image_id ON vms (image_id);
";

/// The workspace prepared into a VM, as JSON (`banger_model::Workspace`); NULL when none.
const VM_WORKSPACE: &str = "
ALTER TABLE vms ADD COLUMN workspace_json TEXT;
";

/// The run settings of an OCI image, as JSON (`banger_model::OciRunConfig`); NULL otherwise.
const IMAGE_OCI_CONFIG: &str = "
ALTER TABLE images ADD COLUMN oci_config_json TEXT;
";

/// Whether ids are strictly ascending (hence unique); evaluated at compile time below.
const fn ids_ascend(list: &[Migration]) -> bool {
    let mut i = 1;
    while i < list.len() {
        if list[i].id <= list[i - 1].id {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = assert!(
    ids_ascend(MIGRATIONS),
    "MIGRATIONS ids must be unique and ascending"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_ascending() {
        assert!(ids_ascend(MIGRATIONS));
        assert!(crate::validate_migrations(MIGRATIONS).is_ok());
        let ids: Vec<u32> = MIGRATIONS.iter().map(|m| m.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ids, sorted);
        assert_eq!(ids.first(), Some(&1), "the baseline is migration 1");
    }

    #[test]
    fn the_compile_time_check_rejects_bad_lists() {
        let m = |id| Migration {
            id,
            name: "x",
            sql: "",
        };
        assert!(ids_ascend(&[]));
        assert!(ids_ascend(&[m(1), m(2), m(5)]));
        assert!(!ids_ascend(&[m(1), m(1)]));
        assert!(!ids_ascend(&[m(2), m(1)]));
    }

    #[test]
    fn no_migration_manages_its_own_transaction() {
        for m in MIGRATIONS {
            let sql = m.sql.to_ascii_uppercase();
            for word in ["BEGIN", "COMMIT", "ROLLBACK", "PRAGMA"] {
                assert!(!sql.contains(word), "migration {} uses {word}", m.id);
            }
        }
    }
}
