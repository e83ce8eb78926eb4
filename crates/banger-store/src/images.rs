//! Image rows.
//!
//! Invariants: names are unique; `kernel_name` is a loose reference (an image may be stored
//! before its kernel is pulled), so it has no foreign key; an image cannot be deleted while a VM
//! refers to it (checked in the deleting transaction and backed by the `vms.image_id` foreign
//! key), because VM disks are copy-on-write views of the image.

use banger_model::{ImageRecord, OciRunConfig};
use rusqlite::types::Value;
use rusqlite::{Connection, Row};

use crate::error::StoreError;
use crate::record::{Record, get_opt_path, get_path, opt_path, opt_text, path};
use crate::repo::Repo;
use crate::store::ReadWrite;

/// The image repository, from [`Store::images`](crate::Store::images) or
/// [`ReadOnlyStore::images`](crate::ReadOnlyStore::images).
pub type Images<'a, A = ReadWrite> = Repo<'a, ImageRecord, A>;

impl Record for ImageRecord {
    const KIND: &'static str = "image";
    const TABLE: &'static str = "images";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "name",
        "source",
        "digest",
        "rootfs_path",
        "work_seed_path",
        "kernel_name",
        "created_at",
        "oci_config_json",
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
            Value::Text(self.source.clone()),
            opt_text(self.digest.as_deref()),
            path("image.rootfs_path", &self.rootfs_path)?,
            opt_path("image.work_seed_path", self.work_seed_path.as_deref())?,
            opt_text(self.kernel_name.as_deref()),
            Value::Text(self.created_at.clone()),
            oci_config_json(self.oci_config.as_ref())?,
        ])
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(ImageRecord {
            id: row.get("id")?,
            name: row.get("name")?,
            source: row.get("source")?,
            digest: row.get("digest")?,
            rootfs_path: get_path(row, "rootfs_path")?,
            work_seed_path: get_opt_path(row, "work_seed_path")?,
            kernel_name: row.get("kernel_name")?,
            created_at: row.get("created_at")?,
            oci_config: get_oci_config(row)?,
        })
    }

    fn check_delete(conn: &Connection, id: &str) -> Result<(), StoreError> {
        let op = || format!("check which vms use image {id}");
        let mut stmt = conn
            .prepare("SELECT name FROM vms WHERE image_id = ?1 ORDER BY name")
            .map_err(StoreError::sql(op()))?;
        let vms = stmt
            .query_map([id], |row| row.get::<_, String>(0))
            .and_then(Iterator::collect::<rusqlite::Result<Vec<String>>>)
            .map_err(StoreError::sql(op()))?;
        if vms.is_empty() {
            Ok(())
        } else {
            Err(StoreError::ImageInUse {
                id: id.to_owned(),
                vms,
            })
        }
    }
}

/// The OCI run settings as JSON text, or NULL.
fn oci_config_json(config: Option<&OciRunConfig>) -> Result<Value, StoreError> {
    config.map_or(Ok(Value::Null), |c| {
        serde_json::to_string(c)
            .map(Value::Text)
            .map_err(|e| StoreError::InvalidValue {
                field: "image.oci_config",
                reason: e.to_string(),
            })
    })
}

/// Reads `oci_config_json`; a value that is not a config is a conversion error.
fn get_oci_config(row: &Row<'_>) -> rusqlite::Result<Option<OciRunConfig>> {
    let raw: Option<String> = row.get("oci_config_json")?;
    raw.map(|text| {
        serde_json::from_str(&text).map_err(|e| {
            crate::record::bad_value(row, "oci_config_json", format!("invalid config: {e}"))
        })
    })
    .transpose()
}
