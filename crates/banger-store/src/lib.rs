//! SQLite store of banger: the durable records of VMs, images and kernels.
//!
//! - [`Store::open`] opens (or creates) the database read-write, configures the connection (WAL,
//!   5 s busy timeout, foreign keys, `synchronous=NORMAL`) and applies pending [`MIGRATIONS`],
//!   each in its own transaction. Rows of migrations this binary does not know (a newer banger's)
//!   are left alone and reported ([`Store::migration_report`]), so a rolled-back update still
//!   starts. Writes are serialised: the store holds one connection behind a mutex.
//! - [`open_read_only`] opens an existing database for diagnostics without migrating it and
//!   without creating any file; [`inspect_schema`] classifies a database against this binary's
//!   migrations without opening it for writing.
//! - [`Store::vms`], [`Store::images`] and [`Store::kernels`] are the repositories; their
//!   `resolve` methods implement user-facing lookups (exact id, exact name, unique prefix).
//!
//! A corrupt database file makes every entry point fail with [`StoreError::Corrupt`] and is left
//! byte-for-byte untouched.
//!
//! ```
//! use banger_model::KernelRecord;
//! use banger_store::{Store, open_read_only};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("banger.db");
//! let store = Store::open(&path)?;
//! let kernel = KernelRecord {
//!     id: "0a1b2c3d".into(),
//!     name: "debian-cloud".into(),
//!     version: None,
//!     source: "catalog".into(),
//!     vmlinux_path: "/var/lib/banger/kernels/debian-cloud/vmlinux".into(),
//!     initrd_path: None,
//!     created_at: banger_model::time::rfc3339(0),
//! };
//! store.kernels().insert(&kernel)?;
//! assert_eq!(store.kernels().resolve("deb")?, kernel);
//! drop(store);
//!
//! let ro = open_read_only(&path)?;
//! assert_eq!(ro.kernels().list()?, [kernel]);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod connection;
mod error;
mod images;
mod kernels;
mod lookup;
mod migrate;
mod migrations;
mod record;
mod repo;
mod schema;
mod store;
mod vms;

pub use error::StoreError;
pub use images::Images;
pub use kernels::Kernels;
pub use lookup::LookupError;
pub use migrate::{MigrationReport, validate_migrations};
pub use migrations::{MIGRATIONS, Migration};
pub use repo::Repo;
pub use schema::{SchemaStatus, inspect_schema, inspect_schema_with};
pub use store::{ReadOnly, ReadOnlyStore, ReadWrite, Store, open_read_only};
pub use vms::Vms;
