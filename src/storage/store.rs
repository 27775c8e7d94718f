//! The handle every domain writes and reads through: transactions off the
//! async executor, group commit for writes, and the file's health watched
//! on the way (see `health`).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTableMetadata, WriteTransaction};

use super::{
    backup, group, health, open, schema_version, table_counts, Fault, Health, Options, Schema,
    StorageError, META,
};

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

#[derive(Clone)]
pub struct Store {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) path: PathBuf,
    pub(super) options: Options,
    /// `None` only while the file is being reopened.
    pub(super) db: RwLock<Option<Arc<Handle>>>,
    group: group::Group,
    pub(super) health: health::Monitor,
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

    /// A read that proves the file answers (for `/health`).
    pub async fn probe(&self) -> Result<(), StorageError> {
        self.read(|txn| {
            txn.open_table(META)?.len()?;
            Ok(())
        })
        .await
    }

    /// Every table with its row count, and the schema version.
    pub async fn info(&self) -> Result<(Vec<(String, u64)>, u64), StorageError> {
        self.read(|txn| Ok((table_counts(txn)?, schema_version(txn)?)))
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
