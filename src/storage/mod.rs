//! The one redb file: opening and migrating it, watching its health, and
//! running transactions off the async executor.
//!
//! Each domain declares its own tables next to its types and lists them in
//! one `TABLES` slice; [`schema::Schema`] gathers those slices, so creating
//! tables at open, backups and `/api/db/info` work from the same list.

pub mod backup;
mod group;
pub mod health;
mod open;
pub mod schema;
mod store;

use redb::{
    Key, ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition, Value, WriteTransaction,
};

pub use health::{Fault, Health};
pub use open::Options;
pub use schema::{Migration, Schema, TableSpec};
pub use store::{Handle, Store};

/// name -> value: the schema version and monotonic counters.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The storage layer's own tables.
pub const TABLES: &[TableSpec] = &[crate::table_spec!(META)];

/// `meta` counter of media items deleted since the last compaction check.
pub const DELETES_SINCE_COMPACTION: &str = "deletes_since_compaction";

/// `meta` key of the schema version the file is at.
pub const SCHEMA_VERSION_KEY: &str = "schema_version";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    #[error("stored row could not be read: {0}")]
    Corrupt(String),
    #[error("the database was written by a newer ImmichVR (schema {found}, this binary knows {supported}); upgrade the binary or restore a backup")]
    SchemaTooNew { found: u64, supported: u64 },
    /// Writes are refused until the database is reopened (see `health`).
    #[error("the database accepts no writes: {0}")]
    ReadOnly(String),
    /// The database is being reopened after an I/O failure.
    #[error("the database is being reopened; try again in a few seconds")]
    Reopening,
    #[error("storage task failed: {0}")]
    Task(String),
}

/// Lets `?` lift redb's error types into a domain error through
/// `StorageError`.
#[macro_export]
macro_rules! redb_errors_into {
    ($target:ty) => {
        $crate::redb_errors_into!(@one $target, redb::TransactionError);
        $crate::redb_errors_into!(@one $target, redb::TableError);
        $crate::redb_errors_into!(@one $target, redb::StorageError);
        $crate::redb_errors_into!(@one $target, redb::CommitError);
        $crate::redb_errors_into!(@one $target, redb::DatabaseError);
    };
    (@one $target:ty, $src:ty) => {
        impl From<$src> for $target {
            fn from(e: $src) -> Self {
                $crate::storage::StorageError::Db(e.into()).into()
            }
        }
    };
}
redb_errors_into!(StorageError);

/// Whether an I/O error says the file system is full.
pub fn io_is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

impl StorageError {
    /// Whether the file system ran out of space under redb (or refused
    /// writes since it did).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StorageError::Db(redb::Error::Io(e)) => io_is_disk_full(e),
            StorageError::ReadOnly(reason) => reason.contains(health::DISK_FULL),
            StorageError::Db(_)
            | StorageError::Corrupt(_)
            | StorageError::SchemaTooNew { .. }
            | StorageError::Reopening
            | StorageError::Task(_) => false,
        }
    }
}

/// Rows of a list, and the failures met reading it: one damaged row (or
/// index page) must not take a whole list down; the caller reports the
/// failures ([`Store::report`]) and answers with what it could read.
pub struct Listed<T> {
    pub rows: Vec<T>,
    pub unreadable: Vec<StorageError>,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed {
            rows: Vec::new(),
            unreadable: Vec::new(),
        }
    }
}

/// The message of a caught panic.
pub fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    panic_text_of(p.as_ref())
}

pub fn panic_text_of(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs one read of possibly damaged data: redb panics on some pages that
/// make no sense, and one such page must cost one row, not a request.
pub fn guarded<T>(f: impl FnOnce() -> Result<T, StorageError>) -> Result<T, StorageError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(StorageError::Corrupt(format!(
            "a damaged page (panic: {})",
            panic_text(&p)
        ))),
    }
}

/// Takes entries from an index walk until one cannot be read (a damaged
/// page ends the walk there; its error is kept in `errors`).
pub fn collect_walk<T, I>(
    make: impl FnOnce() -> Result<I, StorageError>,
    errors: &mut Vec<StorageError>,
) -> Vec<T>
where
    I: Iterator<Item = Result<T, redb::StorageError>>,
{
    let mut out = Vec::new();
    let mut iter = match guarded(make) {
        Ok(i) => i,
        Err(e) => {
            errors.push(e);
            return out;
        }
    };
    loop {
        match guarded(|| Ok(iter.next())) {
            Ok(Some(Ok(t))) => out.push(t),
            Ok(None) => return out,
            Ok(Some(Err(e))) => {
                errors.push(e.into());
                return out;
            }
            Err(e) => {
                errors.push(e);
                return out;
            }
        }
    }
}

/// A JSON row by its UUID key.
pub fn get_row<T: serde::de::DeserializeOwned>(
    txn: &impl Reader,
    def: TableDefinition<u128, &'static [u8]>,
    id: uuid::Uuid,
) -> Result<Option<T>, StorageError> {
    match txn.table(def)?.get(id.as_u128())? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

/// Row values are stored as JSON: readable with any redb tool, and the
/// rows are small next to the fsync that every commit pays.
pub fn encode<T: serde::Serialize>(row: &T) -> Vec<u8> {
    serde_json::to_vec(row).expect("rows always serialize")
}

pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// Table reads shared by both kinds of transaction, so that a lookup is
/// written once and a caller that only looks does not take the write lock.
pub trait Reader {
    type Table<'a, K: Key + 'static, V: Value + 'static>: ReadableTable<K, V>
    where
        Self: 'a;
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Self::Table<'_, K, V>, StorageError>;
}

impl Reader for ReadTransaction {
    type Table<'a, K: Key + 'static, V: Value + 'static> = ReadOnlyTable<K, V>;
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<ReadOnlyTable<K, V>, StorageError> {
        Ok(self.open_table(def)?)
    }
}

impl Reader for WriteTransaction {
    type Table<'a, K: Key + 'static, V: Value + 'static> = Table<'a, K, V>;
    fn table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Table<'_, K, V>, StorageError> {
        Ok(self.open_table(def)?)
    }
}

/// Next value of a monotonic counter kept in `meta`, in the caller's transaction.
pub fn next_seq(txn: &WriteTransaction, name: &str) -> Result<u64, StorageError> {
    let mut meta = txn.open_table(META)?;
    let next = meta.get(name)?.map(|v| v.value()).unwrap_or(0) + 1;
    meta.insert(name, next)?;
    Ok(next)
}

/// The schema version the file is at.
pub fn schema_version(txn: &impl Reader) -> Result<u64, StorageError> {
    Ok(txn
        .table(META)?
        .get(SCHEMA_VERSION_KEY)?
        .map(|v| v.value())
        .unwrap_or(0))
}

/// Names and row counts of every table, for `/api/db/info`.
pub fn table_counts(txn: &ReadTransaction) -> Result<Vec<(String, u64)>, StorageError> {
    let mut out = Vec::new();
    for handle in txn.list_tables()? {
        let name = redb::TableHandle::name(&handle).to_string();
        let len = txn
            .open_untyped_table(handle)
            .map_err(StorageError::from)?
            .len()?;
        out.push((name, len));
    }
    Ok(out)
}
