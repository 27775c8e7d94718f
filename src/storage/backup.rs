//! Consistent copies of the database, and compaction at start-up.
//!
//! A backup copies every table's rows from ONE read transaction into a new
//! redb file: redb's MVCC keeps that snapshot stable while the service
//! keeps writing, which a byte copy of the live file would not.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use redb::{
    Database, Key, MultimapTableHandle, ReadTransaction, TableDefinition, TableHandle, Value,
    WriteTransaction,
};

use super::StorageError;

/// Copies one table from the snapshot into the new file; returns its rows.
pub type TableCopy = fn(&ReadTransaction, &WriteTransaction) -> Result<(String, u64), StorageError>;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the backup target {0} already exists")]
    Exists(PathBuf),
    #[error("table `{0}` is not known to the backup; refusing to write an incomplete copy")]
    UnknownTable(String),
    #[error("not enough disk space for the backup")]
    DiskFull,
    #[error("cannot write the backup: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for BackupError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
            BackupError::DiskFull
        } else {
            BackupError::Io(e)
        }
    }
}

crate::redb_errors_into!(BackupError);

/// What a finished backup holds.
#[derive(Debug, Clone)]
pub struct BackupInfo {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub tables: usize,
    pub rows: u64,
}

/// Copies a typed table, row by row, in key order.
pub fn copy_table<K: Key + 'static, V: Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<(String, u64), StorageError> {
    let from = src.open_table(def)?;
    let mut to = dst.open_table(def)?;
    let mut rows = 0;
    for entry in redb::ReadableTable::iter(&from)? {
        let (k, v) = entry?;
        to.insert(k.value(), v.value())?;
        rows += 1;
    }
    Ok((def.name().to_string(), rows))
}

/// Writes the snapshot seen by `src` to `dest` (which must not exist): to
/// a `.partial` file first, renamed only once complete and synced, so a
/// crash never leaves something that looks like a backup and is not.
pub fn write(
    src: &ReadTransaction,
    tables: &[TableCopy],
    dest: &Path,
) -> Result<BackupInfo, BackupError> {
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_path_buf()));
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let partial = partial_path(dest);
    let _ = std::fs::remove_file(&partial);
    let result = write_partial(src, tables, &partial);
    let (n_tables, rows) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, dest)?;
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(BackupInfo {
        // Absolute: the CLI asking the service may run from another directory.
        path: std::fs::canonicalize(dest)?,
        size_bytes: std::fs::metadata(dest)?.len(),
        tables: n_tables,
        rows,
    })
}

fn write_partial(
    src: &ReadTransaction,
    tables: &[TableCopy],
    partial: &Path,
) -> Result<(usize, u64), BackupError> {
    let existing: BTreeSet<String> = src
        .list_tables()?
        .map(|h| h.name().to_string())
        .chain(src.list_multimap_tables()?.map(|h| h.name().to_string()))
        .collect();
    let db = Database::create(partial).map_err(StorageError::from)?;
    let txn = db.begin_write()?;
    let mut copied = BTreeSet::new();
    let mut rows = 0;
    for copy in tables {
        let (name, n) = copy(src, &txn)?;
        rows += n;
        copied.insert(name);
    }
    if let Some(missing) = existing.difference(&copied).next() {
        return Err(BackupError::UnknownTable(missing.clone()));
    }
    txn.commit()?;
    drop(db);
    Ok((copied.len(), rows))
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

/// `DATA_DIR/backups/immichvr-<UTC time>.redb`.
pub fn timestamped_path(data_dir: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    data_dir
        .join("backups")
        .join(format!("immichvr-{stamp}.redb"))
}

/// Space that compaction would give back, in bytes, and the file's size.
pub fn free_space(db: &Database, path: &Path) -> Result<(u64, u64), StorageError> {
    let txn = db.begin_write()?;
    let stats = txn.stats()?;
    let used = stats.allocated_pages() * stats.page_size() as u64;
    txn.abort()?;
    let len = std::fs::metadata(path)
        .map_err(|e| StorageError::Db(redb::Error::Io(e)))?
        .len();
    Ok((len.saturating_sub(used), len))
}

/// Compacts when at least `min_free` bytes and half the file are free
/// (after large deletions); returns the sizes before and after.
pub fn compact_if_sparse(
    db: &mut Database,
    path: &Path,
    min_free: u64,
) -> Result<Option<(u64, u64)>, StorageError> {
    let (free, before) = free_space(db, path)?;
    if free < min_free || free * 2 < before {
        return Ok(None);
    }
    db.compact().map_err(|e| StorageError::Db(e.into()))?;
    let after = std::fs::metadata(path)
        .map_err(|e| StorageError::Db(redb::Error::Io(e)))?
        .len();
    Ok(Some((before, after)))
}
