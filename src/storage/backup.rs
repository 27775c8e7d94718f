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

use super::{Schema, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the backup target {0} already exists")]
    Exists(PathBuf),
    #[error("table `{0}` is not known to the backup; refusing to write an incomplete copy")]
    UnknownTable(String),
    #[error("not enough disk space for the backup: {0}")]
    DiskFull(String),
    #[error("a backup is being written; try again when it is done")]
    Running,
    #[error("cannot write the backup: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for BackupError {
    fn from(e: std::io::Error) -> Self {
        if super::io_is_disk_full(&e) {
            BackupError::DiskFull(e.to_string())
        } else {
            BackupError::Io(e)
        }
    }
}

crate::redb_errors_into!(BackupError);

impl super::Fault for BackupError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            BackupError::Storage(s) => Some(s),
            BackupError::Exists(_)
            | BackupError::UnknownTable(_)
            | BackupError::DiskFull(_)
            | BackupError::Running
            | BackupError::Io(_) => None,
        }
    }
}

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
    schema: &Schema,
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
    let result = write_partial(src, schema, &partial);
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
    schema: &Schema,
    partial: &Path,
) -> Result<(usize, u64), BackupError> {
    let existing: BTreeSet<String> = src
        .list_tables()?
        .map(|h| h.name().to_string())
        .chain(src.list_multimap_tables()?.map(|h| h.name().to_string()))
        .collect();
    let db = Database::create(partial).map_err(StorageError::from)?;
    super::open::owner_only(partial)?;
    let txn = db.begin_write()?;
    let mut copied = BTreeSet::new();
    let mut rows = 0;
    for table in schema.all_tables() {
        let (name, n) = (table.copy)(src, &txn)?;
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

const PARTIAL: &str = ".partial";

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(PARTIAL);
    dest.with_file_name(name)
}

/// `DATA_DIR/backups/immichvr-<UTC time>.redb`, with a counter when that
/// name is taken (two backups in one millisecond).
pub fn timestamped_path(data_dir: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let dir = data_dir.join("backups");
    let mut path = dir.join(format!("immichvr-{stamp}.redb"));
    let mut n = 1;
    while path.exists() || partial_path(&path).exists() {
        n += 1;
        path = dir.join(format!("immichvr-{stamp}-{n}.redb"));
    }
    path
}

/// Removes `.partial` files a crash left in `dir` (start-up, before any
/// backup can run); returns how many.
pub fn remove_partials(dir: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(PARTIAL) && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            n += 1;
        }
    }
    Ok(n)
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

/// Compacts when at least `min_free` bytes are free (start-up calls this
/// only after many deletions); returns the sizes before and after.
pub fn compact_if_sparse(
    db: &mut Database,
    path: &Path,
    min_free: u64,
) -> Result<Option<(u64, u64)>, StorageError> {
    let (free, before) = free_space(db, path)?;
    if free < min_free || free == 0 {
        return Ok(None);
    }
    db.compact().map_err(|e| StorageError::Db(e.into()))?;
    let after = std::fs::metadata(path)
        .map_err(|e| StorageError::Db(redb::Error::Io(e)))?
        .len();
    Ok(Some((before, after)))
}
