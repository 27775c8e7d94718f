//! What the file holds: every domain's tables (declared once, in the
//! domain) and the chain of migrations that brings an older file to the
//! current layout.

use redb::{ReadTransaction, WriteTransaction};

use super::StorageError;

/// One table as the store sees it: created at open, copied by backups.
/// Built by [`table_spec!`](crate::table_spec) from the table's definition.
pub struct TableSpec {
    pub create: fn(&WriteTransaction) -> Result<(), StorageError>,
    /// Copies the table from a snapshot into a new file; returns its name
    /// and how many rows it copied.
    pub copy: fn(&ReadTransaction, &WriteTransaction) -> Result<(String, u64), StorageError>,
}

/// `table_spec!(MEDIA)`: the [`TableSpec`] of a `TableDefinition` constant.
#[macro_export]
macro_rules! table_spec {
    ($def:path) => {
        $crate::storage::TableSpec {
            create: |txn| {
                txn.open_table($def)?;
                Ok(())
            },
            copy: |from, to| $crate::storage::backup::copy_table(from, to, $def),
        }
    };
}

/// One step of the chain: brings a file at version `to - 1` to `to`, in
/// the one write transaction it is given (which also records `to`).
pub struct Migration {
    pub to: u64,
    /// What changes, for the log line.
    pub what: &'static str,
    pub run: fn(&WriteTransaction) -> Result<(), StorageError>,
}

/// Every table of every domain, and the migrations.
pub struct Schema {
    pub tables: &'static [&'static [TableSpec]],
    /// In order of `to`, starting at 2 (version 1 is the first layout).
    pub migrations: &'static [Migration],
}

impl Schema {
    /// The version a file has once every migration ran.
    pub fn version(&self) -> u64 {
        self.migrations.last().map(|m| m.to).unwrap_or(1)
    }

    pub fn all_tables(&self) -> impl Iterator<Item = &'static TableSpec> {
        self.tables.iter().flat_map(|t| t.iter())
    }

    /// Creates every table that does not exist yet.
    pub fn create_tables(&self, txn: &WriteTransaction) -> Result<(), StorageError> {
        self.all_tables().try_for_each(|t| (t.create)(txn))
    }
}
