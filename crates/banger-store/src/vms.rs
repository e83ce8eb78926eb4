//! VM rows: the durable record of each VM (intent and identity, see `banger_model::vm`).
//!
//! Invariants: names are unique and valid [`VmName`]s; the state is one of
//! `created|running|stopped|error` (a `CHECK` constraint); `image_id` must name a stored image
//! (foreign key); the spec is stored as separate columns, the disk size in bytes. Writes never
//! touch timestamps implicitly: callers pass `updated_at`. The workspace (migration 2) is one
//! nullable JSON column, `workspace_json`.

use banger_model::{Size, VmName, VmRecord, VmSpec, VmState, Workspace};
use rusqlite::Row;
use rusqlite::types::Value;

use crate::error::StoreError;
use crate::record::{Record, bad_value, get_path, get_u64, int, opt_text, path};
use crate::repo::Repo;
use crate::store::ReadWrite;

/// The VM repository, from [`Store::vms`](crate::Store::vms) or
/// [`ReadOnlyStore::vms`](crate::ReadOnlyStore::vms).
pub type Vms<'a, A = ReadWrite> = Repo<'a, VmRecord, A>;

impl Record for VmRecord {
    const KIND: &'static str = "vm";
    const TABLE: &'static str = "vms";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "name",
        "image_id",
        "vcpu",
        "memory_mib",
        "disk_size_bytes",
        "nat",
        "state",
        "guest_ip",
        "tap_name",
        "dir",
        "last_error",
        "created_at",
        "updated_at",
        "workspace_json",
    ];
    const REFERENCES: &'static str = "image";

    fn id(&self) -> &str {
        &self.id
    }

    fn name(&self) -> &str {
        self.name.as_str()
    }

    fn to_values(&self) -> Result<Vec<Value>, StoreError> {
        Ok(vec![
            Value::Text(self.id.clone()),
            Value::Text(self.name.as_str().to_owned()),
            Value::Text(self.image_id.clone()),
            Value::Integer(i64::from(self.spec.vcpu)),
            int("vm.spec.memory_mib", self.spec.memory_mib)?,
            int("vm.spec.disk_size", self.spec.disk_size.bytes())?,
            Value::Integer(i64::from(self.spec.nat)),
            Value::Text(self.state.as_str().to_owned()),
            opt_text(self.guest_ip.as_deref()),
            opt_text(self.tap_name.as_deref()),
            path("vm.dir", &self.dir)?,
            opt_text(self.last_error.as_deref()),
            Value::Text(self.created_at.clone()),
            Value::Text(self.updated_at.clone()),
            workspace_json(self.workspace.as_ref())?,
        ])
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let name: String = row.get("name")?;
        let name = VmName::parse(&name).map_err(|e| bad_value(row, "name", e))?;
        let state: String = row.get("state")?;
        let state = VmState::parse(&state)
            .ok_or_else(|| bad_value(row, "state", format!("unknown vm state {state:?}")))?;
        Ok(VmRecord {
            id: row.get("id")?,
            name,
            image_id: row.get("image_id")?,
            spec: VmSpec {
                vcpu: row.get("vcpu")?,
                memory_mib: get_u64(row, "memory_mib")?,
                disk_size: Size::from_bytes(get_u64(row, "disk_size_bytes")?),
                nat: row.get("nat")?,
            },
            state,
            guest_ip: row.get("guest_ip")?,
            tap_name: row.get("tap_name")?,
            dir: get_path(row, "dir")?,
            last_error: row.get("last_error")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            workspace: get_workspace(row)?,
        })
    }
}

/// The workspace as JSON text, or NULL.
fn workspace_json(workspace: Option<&Workspace>) -> Result<Value, StoreError> {
    workspace.map_or(Ok(Value::Null), |w| {
        serde_json::to_string(w)
            .map(Value::Text)
            .map_err(|e| StoreError::InvalidValue {
                field: "vm.workspace",
                reason: e.to_string(),
            })
    })
}

/// Reads `workspace_json`; a value that is not a workspace is a conversion error.
fn get_workspace(row: &Row<'_>) -> rusqlite::Result<Option<Workspace>> {
    let raw: Option<String> = row.get("workspace_json")?;
    raw.map(|text| {
        serde_json::from_str(&text)
            .map_err(|e| bad_value(row, "workspace_json", format!("invalid workspace: {e}")))
    })
    .transpose()
}

impl Repo<'_, VmRecord, ReadWrite> {
    /// Replaces the whole record with the same id (name, spec, state, timestamps, ...) exactly as
    /// given; `false` if no VM has that id.
    pub fn update(&self, vm: &VmRecord) -> Result<bool, StoreError> {
        self.update_record(vm)
    }

    /// Sets the state, replaces `last_error` (`None` clears it) and sets `updated_at`; `false` if
    /// no VM has that id.
    pub fn set_state(
        &self,
        id: &str,
        state: VmState,
        last_error: Option<&str>,
        updated_at: &str,
    ) -> Result<bool, StoreError> {
        let conn = self.db.lock();
        let n = conn
            .execute(
                "UPDATE vms SET state = ?2, last_error = ?3, updated_at = ?4 WHERE id = ?1",
                rusqlite::params![id, state.as_str(), last_error, updated_at],
            )
            .map_err(StoreError::sql(format!("set state of vm {id}")))?;
        Ok(n > 0)
    }
}
