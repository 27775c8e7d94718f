//! What the file holds: every domain's tables (declared once, in the
//! domain) and the chain of migrations that brings an older file to the
//! current layout.

use redb::{ReadTransaction, WriteTransaction};

use super::StorageError;

/// Copies one table from a snapshot into a new file; returns its name and
/// how many rows it copied.
pub type CopyFn = fn(&ReadTransaction, &WriteTransaction) -> Result<(String, u64), StorageError>;

/// One table as the store sees it: created at open, copied by backups.
/// Built by [`table_spec!`](crate::table_spec) from the table's definition.
pub struct TableSpec {
    pub create: fn(&WriteTransaction) -> Result<(), StorageError>,
    pub copy: CopyFn,
    /// Reads every entry (and, for rows stored as JSON, parses it): the
    /// start-up check that every page still holds what was written.
    pub scan: fn(&ReadTransaction) -> Result<u64, StorageError>,
}

/// `table_spec!(MEDIA, json)` or `table_spec!(QUEUE_READY)`: the
/// [`TableSpec`] of a `TableDefinition` constant; `json` for tables whose
/// values are JSON rows.
#[macro_export]
macro_rules! table_spec {
    ($def:path) => {
        $crate::table_spec!(@make $def, |txn| $crate::storage::schema::scan(txn, $def, |_| Ok(())))
    };
    ($def:path, json) => {
        $crate::table_spec!(@make $def, |txn| $crate::storage::schema::scan(txn, $def, |v| {
            $crate::storage::decode::<serde_json::Value>(v).map(|_| ())
        }))
    };
    (@make $def:path, $scan:expr) => {
        $crate::storage::TableSpec {
            create: |txn| {
                txn.open_table($def)?;
                Ok(())
            },
            copy: |from, to| $crate::storage::backup::copy_table(from, to, $def),
            scan: $scan,
        }
    };
}

/// Reads every entry of a table, checking each value with `check`.
pub fn scan<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    def: redb::TableDefinition<K, V>,
    check: impl Fn(V::SelfType<'_>) -> Result<(), StorageError>,
) -> Result<u64, StorageError> {
    let table = txn.open_table(def)?;
    let mut n = 0;
    for entry in redb::ReadableTable::iter(&table)? {
        let (k, v) = entry?;
        let _ = k.value();
        check(v.value()).map_err(|e| {
            StorageError::Corrupt(format!("table {}: {e}", redb::TableHandle::name(&def)))
        })?;
        n += 1;
    }
    Ok(n)
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
