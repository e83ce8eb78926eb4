//! Kernel rows.
//!
//! Invariants: names are unique; images refer to kernels by name without a foreign key, so
//! deleting a kernel is never blocked here (the daemon decides whether that is allowed).

use banger_model::KernelRecord;
use rusqlite::Row;
use rusqlite::types::Value;

use crate::error::StoreError;
use crate::record::{Record, get_opt_path, get_path, opt_path, opt_text, path};
use crate::repo::Repo;
use crate::store::ReadWrite;

/// The kernel repository, from [`Store::kernels`](crate::Store::kernels) or
/// [`ReadOnlyStore::kernels`](crate::ReadOnlyStore::kernels).
pub type Kernels<'a, A = ReadWrite> = Repo<'a, KernelRecord, A>;

impl Record for KernelRecord {
    const KIND: &'static str = "kernel";
    const TABLE: &'static str = "kernels";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "name",
        "version",
        "source",
        "vmlinux_path",
        "initrd_path",
        "created_at",
    ];

    fn id(&self) -> &str {
        &self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn to_values(&self) -> Result<Vec<Value>, StoreError> {
        Ok(vec![
            Value::Text(self.id.clone()),
            Value::Text(self.name.clone()),
            opt_text(self.version.as_deref()),
            Value::Text(self.source.clone()),
            path("kernel.vmlinux_path", &self.vmlinux_path)?,
            opt_path("kernel.initrd_path", self.initrd_path.as_deref())?,
            Value::Text(self.created_at.clone()),
        ])
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(KernelRecord {
            id: row.get("id")?,
            name: row.get("name")?,
            version: row.get("version")?,
            source: row.get("source")?,
            vmlinux_path: get_path(row, "vmlinux_path")?,
            initrd_path: get_opt_path(row, "initrd_path")?,
            created_at: row.get("created_at")?,
        })
    }
}
