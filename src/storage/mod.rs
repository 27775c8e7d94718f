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

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use redb::{
    Database, Key, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, Table, TableDefinition, Value, WriteTransaction,
};

pub use health::{Fault, Health};
pub use open::Options;
pub use schema::{Migration, Schema, TableSpec};

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

/// The open file: read-write, or read-only when it is too damaged for
/// redb to open it for writing.
pub enum Handle {
    ReadWrite(Database),
    ReadOnly(redb::ReadOnlyDatabase),
}

impl Handle {
    pub fn begin_read(&self) -> Result<ReadTransaction, redb::TransactionError> {
        match self {
            Handle::ReadWrite(db) => db.begin_read(),
            Handle::ReadOnly(db) => db.begin_read(),
        }
    }

    fn writable(&self) -> Option<&Database> {
        match self {
            Handle::ReadWrite(db) => Some(db),
            Handle::ReadOnly(_) => None,
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

/// Row values are stored as JSON: readable with any redb tool, and the
/// rows are small next to the fsync that every commit pays.
pub fn encode<T: serde::Serialize>(row: &T) -> Vec<u8> {
    serde_json::to_vec(row).expect("rows always serialize")
}

pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt(e.to_string()))
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    options: Options,
    /// `None` only while the file is being reopened.
    db: RwLock<Option<Arc<Handle>>>,
    group: group::Group,
    health: health::Monitor,
    /// Held while a backup is written: one at a time, the rest get 409.
    backup: std::sync::Mutex<()>,
}

impl Store {
    /// Opens (or creates) the database: refuses a newer schema, migrates an
    /// older one (after a copy of the file), creates every table so that
    /// readers never meet a missing one, and compacts when due.
    pub fn open(path: &Path, schema: &Schema, options: Options) -> Result<Self, StorageError> {
        let opened = open::open(path, schema, &options)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                options,
                db: RwLock::new(Some(Arc::new(opened.handle))),
                group: group::Group::default(),
                health: health::Monitor::new(opened.damage),
                backup: std::sync::Mutex::new(()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The database handle for one piece of work; `Reopening` while the
    /// file is being reopened.
    fn db(&self) -> Result<Arc<Handle>, StorageError> {
        health::lock_read(&self.inner.db)
            .clone()
            .ok_or(StorageError::Reopening)
    }

    /// Reports failures met while reading leniently (see [`Listed`]).
    pub fn report(&self, errors: &[StorageError]) {
        for e in errors {
            tracing::warn!(error = %e, "skipped an unreadable row");
            health::observe(self, e);
        }
    }

    pub fn health(&self) -> Health {
        self.inner.health.current()
    }

    /// Resolves once writes are possible again (at once when they are).
    pub async fn wait_writable(&self) {
        self.inner.health.wait_writable().await
    }

    /// Looks at a failure: a full disk or an I/O error makes the store
    /// read-only until it reopens the file; damage is reported on `/health`.
    fn observe<E: Fault>(&self, result: Result<(), &E>) {
        if let Err(e) = result {
            if let Some(se) = e.storage() {
                health::observe(self, se);
            }
        }
    }

    /// Writes a consistent copy to `dest` from one read transaction. One
    /// backup at a time; refused when the copy would eat into the free
    /// space the database itself needs.
    pub async fn backup(
        &self,
        schema: &'static Schema,
        dest: PathBuf,
    ) -> Result<backup::BackupInfo, backup::BackupError> {
        let this = self.clone();
        blocking(move || {
            let _one = match this.inner.backup.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::WouldBlock) => return Err(backup::BackupError::Running),
                Err(std::sync::TryLockError::Poisoned(g)) => g.into_inner(),
            };
            let dir = dest.parent().unwrap_or(Path::new(".")).to_path_buf();
            std::fs::create_dir_all(&dir)?;
            let len = std::fs::metadata(&this.inner.path).map(|m| m.len()).unwrap_or(0);
            let need = len.saturating_add(2 * this.inner.options.headroom);
            if let Ok(free) = fs4::available_space(&dir) {
                if free < need {
                    return Err(backup::BackupError::DiskFull(format!(
                        "the copy needs up to {len} bytes and the database keeps {} bytes free for itself; {free} bytes are free",
                        2 * this.inner.options.headroom
                    )));
                }
            }
            let db = this.db()?;
            let txn = db.begin_read().map_err(StorageError::from)?;
            backup::write(&txn, schema, &dest)
        })
        .await
    }

    /// Durable and unsynced commits made so far; fewer than writes when
    /// concurrent writes shared commits.
    pub fn commits(&self) -> u64 {
        self.inner.group.commits()
    }

    /// Runs `f` in a read transaction on the blocking pool.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Fault + Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, E> + Send + 'static,
    {
        let this = self.clone();
        blocking(move || this.read_blocking(f)).await
    }

    /// Runs `f` in a write transaction on the blocking pool and commits
    /// (durably) only when it returns `Ok`. Concurrent writes share one
    /// commit (see `group`), so `f` may run twice and must be repeatable.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Fault + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.write_with(durable(None), f).await
    }

    /// A durable write that first fsyncs `dir`, for rows that name a file
    /// just renamed into it (one directory fsync serves a whole batch).
    pub async fn write_after<T, E, F>(&self, dir: &Path, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Fault + Send + 'static,
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
        E: From<StorageError> + Fault + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.write_with(group::Needs::default(), f).await
    }

    async fn write_with<T, E, F>(&self, needs: group::Needs, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Fault + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let this = self.clone();
        blocking(move || this.write_needs(needs, f)).await
    }

    /// The same as [`Store::write_after`], for code already on a blocking
    /// thread (`None`: no directory to sync).
    pub fn write_blocking<T, E, F>(&self, dir: Option<&Path>, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Fault + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.write_needs(durable(dir), f)
    }

    fn write_needs<T, E, F>(&self, needs: group::Needs, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Fault + Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        if let Some(reason) = self.health().write_error {
            return Err(StorageError::ReadOnly(reason).into());
        }
        let handle = self.db()?;
        let r = match handle.writable() {
            Some(db) => self.inner.group.write(db, needs, f),
            None => Err(StorageError::ReadOnly(
                "the database file is damaged; restore a backup".into(),
            )
            .into()),
        };
        drop(handle);
        self.observe(r.as_ref().map(|_| ()));
        r
    }

    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StorageError> + Fault,
        F: FnOnce(&ReadTransaction) -> Result<T, E>,
    {
        let db = self.db()?;
        let r = (|| {
            let txn = db.begin_read().map_err(StorageError::from)?;
            f(&txn)
        })();
        drop(db);
        self.observe(r.as_ref().map(|_| ()));
        r
    }
}

fn durable(dir: Option<&Path>) -> group::Needs {
    group::Needs {
        durable: true,
        sync_dir: dir.map(Path::to_path_buf),
    }
}

/// Runs `f` on the blocking pool. A panic inside (redb's debug checks
/// panic on a damaged page) becomes an error, never a dead request.
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
