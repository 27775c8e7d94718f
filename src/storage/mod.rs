//! The one redb file: opening it, its schema version, and running
//! transactions off the async executor.
//!
//! Each domain declares its own tables next to its types (`media::store`,
//! `queue::store`); this module only owns the `meta` table.

pub mod backup;
mod group;

use std::{path::Path, sync::Arc};

use redb::{
    Database, Key, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, Table, TableDefinition, Value, WriteTransaction,
};

/// name -> value: the schema version and monotonic counters.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Free space (bytes, and at least half the file) that makes start-up compact.
pub const COMPACT_MIN_FREE: u64 = 64 * 1024 * 1024;

/// redb's page cache. Its default (1 GiB) grows with the file and never
/// shrinks: 35 MiB after 10,000 processed items, most of a 2 GiB file with
/// a million. Requests touch a few pages each (stats six counters, a list
/// page one index range), so a small cache serves them as well.
pub const CACHE_BYTES: usize = 8 * 1024 * 1024;

/// `meta` counter of media items deleted since the last compaction check.
pub const DELETES_SINCE_COMPACTION: &str = "deletes_since_compaction";

/// Deletions after which start-up looks at the free space. Looking walks
/// every page (seconds and a page cache of the whole file with a million
/// items), and only deletions free space that redb does not reuse; 10,000
/// deleted items free a few tens of MiB at most, so fewer cannot make the
/// file half empty.
pub const COMPACT_AFTER_DELETES: u64 = 10_000;

/// Bump when a table's key or value layout changes.
pub const SCHEMA_VERSION: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    #[error("stored row could not be read: {0}")]
    Corrupt(String),
    #[error("the database was written by a newer ImmichVR (schema {found}, this binary knows {supported}); upgrade the binary or restore a backup")]
    SchemaTooNew { found: u64, supported: u64 },
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

impl StorageError {
    /// Whether the file system ran out of space under redb.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StorageError::Db(redb::Error::Io(e)) => {
                e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
            }
            StorageError::Db(_)
            | StorageError::Corrupt(_)
            | StorageError::SchemaTooNew { .. }
            | StorageError::Task(_) => false,
        }
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

/// Called at open with the write transaction that creates every table.
pub type TableInit = fn(&WriteTransaction) -> Result<(), StorageError>;

#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    group: Arc<group::Group>,
}

impl Store {
    /// Opens (or creates) the database, refuses a newer schema and creates
    /// every domain's tables so that readers never meet a missing table.
    pub fn open(path: &Path, inits: &[TableInit]) -> Result<Self, StorageError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)?;
        let txn = db.begin_write()?;
        let deletes;
        {
            let mut meta = txn.open_table(META)?;
            deletes = meta
                .get(DELETES_SINCE_COMPACTION)?
                .map(|v| v.value())
                .unwrap_or(0);
            let found = meta.get("schema_version")?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StorageError::SchemaTooNew {
                        found: v,
                        supported: SCHEMA_VERSION,
                    })
                }
                Some(_) => {}
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
            }
        }
        for init in inits {
            init(&txn)?;
        }
        txn.commit()?;
        let mut db = db;
        if deletes >= COMPACT_AFTER_DELETES {
            match backup::compact_if_sparse(&mut db, path, COMPACT_MIN_FREE) {
                Ok(Some((before, after))) => {
                    tracing::info!(before, after, "database compacted at start-up")
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "database compaction failed; continuing"),
            }
            let txn = db.begin_write()?;
            txn.open_table(META)?.insert(DELETES_SINCE_COMPACTION, 0)?;
            txn.commit()?;
        }
        Ok(Store {
            db: Arc::new(db),
            group: Arc::default(),
        })
    }

    /// Writes a consistent copy to `dest` from one read transaction.
    pub async fn backup(
        &self,
        tables: &'static [backup::TableCopy],
        dest: std::path::PathBuf,
    ) -> Result<backup::BackupInfo, backup::BackupError> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read().map_err(StorageError::from)?;
            backup::write(&txn, tables, &dest)
        })
        .await
    }

    /// Durable and unsynced commits made so far; fewer than writes when
    /// concurrent writes shared commits.
    pub fn commits(&self) -> u64 {
        self.group.commits()
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Runs `f` in a read transaction on the blocking pool.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, E> + Send + 'static,
    {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read().map_err(StorageError::from)?;
            f(&txn)
        })
        .await
    }

    /// Runs `f` in a write transaction on the blocking pool and commits
    /// (durably) only when it returns `Ok`. Concurrent writes share one
    /// commit (see `group`), so `f` may run twice and must be repeatable.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.write_with(durable(None), f).await
    }

    /// A durable write that first fsyncs `dir`, for rows that name a file
    /// just renamed into it (one directory fsync serves a whole batch).
    pub async fn write_after<T, E, F>(&self, dir: &Path, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.write_with(durable(Some(dir)), f).await
    }

    /// A write that is not fsynced on its own: it becomes durable with the
    /// next durable commit. Only for changes that may be lost in a crash
    /// without harm (a claim: after a crash the item is queued either way).
    pub async fn write_unsynced<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.write_with(group::Needs::default(), f).await
    }

    async fn write_with<T, E, F>(&self, needs: group::Needs, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let this = self.clone();
        blocking(move || this.group.write(&this.db, needs, f)).await
    }

    /// The same as [`Store::write_after`], for code already on a blocking
    /// thread (`None`: no directory to sync).
    pub fn write_blocking<T, E, F>(&self, dir: Option<&Path>, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.group.write(&self.db, durable(dir), f)
    }

    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StorageError>,
        F: FnOnce(&ReadTransaction) -> Result<T, E>,
    {
        let txn = self.db.begin_read().map_err(StorageError::from)?;
        f(&txn)
    }
}

fn durable(dir: Option<&Path>) -> group::Needs {
    group::Needs {
        durable: true,
        sync_dir: dir.map(Path::to_path_buf),
    }
}

async fn blocking<T, E, F>(f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StorageError> + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(StorageError::Task(e.to_string()).into()),
    }
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
