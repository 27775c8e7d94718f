//! Opening the file: the schema version, migrations (after a copy of the
//! file), table creation, an integrity check when it is cheap, and
//! compaction after many deletions.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
};

use redb::{Database, ReadableDatabase};

use super::{
    backup, schema_version, Schema, StorageError, DELETES_SINCE_COMPACTION, META,
    SCHEMA_VERSION_KEY,
};

/// How the file is opened; the defaults suit a home server.
#[derive(Debug, Clone)]
pub struct Options {
    /// redb's page cache. Its default (1 GiB) grows with the file and never
    /// shrinks; requests touch a few pages each, so a small cache serves
    /// them as well.
    pub cache_bytes: usize,
    /// Deletions after which start-up looks at the free space. Looking
    /// walks every page, and only deletions free space that redb does not
    /// reuse, so fewer cannot make much of the file free.
    pub compact_after_deletes: u64,
    /// Free space that makes start-up compact (once deletions are due).
    pub compact_min_free: u64,
    /// Files up to this size are read through at start-up (every entry of
    /// every table); larger ones are checked only when a read fails.
    pub integrity_check_max_bytes: u64,
    /// Free space the file system must keep; a migration's copy of the
    /// file may not eat into it.
    pub headroom: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_bytes: 8 * 1024 * 1024,
            compact_after_deletes: 10_000,
            compact_min_free: 64 * 1024 * 1024,
            integrity_check_max_bytes: 256 * 1024 * 1024,
            headroom: 4 * 1024 * 1024,
        }
    }
}

pub struct Opened {
    pub handle: super::Handle,
    /// Set when the file is damaged beyond redb's repair: the store then
    /// serves what it can read and writes nothing.
    pub damage: Option<String>,
}

pub fn create(path: &Path, options: &Options) -> Result<Database, StorageError> {
    let db = Database::builder()
        .set_cache_size(options.cache_bytes)
        .create(path)?;
    owner_only(path)?;
    Ok(db)
}

/// The database holds the Immich keys of signed-in users: the file (and
/// every backup of it) is readable and writable by its owner only.
pub fn owner_only(path: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StorageError::Db(redb::Error::Io(e)))
}

/// The schema version in a file (0 for a new one).
fn version_in(db: &impl ReadableDatabase) -> Result<u64, StorageError> {
    let txn = db.begin_read()?;
    match txn.open_table(META) {
        Ok(_) => schema_version(&txn),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Opens the file. A file whose structure cannot be read (redb reports
/// it corrupted, or panics on a page that makes no sense) still opens,
/// damaged: reads are tried one row at a time, nothing is written.
pub fn open(path: &Path, schema: &Schema, options: &Options) -> Result<Opened, StorageError> {
    let detail = match catch_unwind(AssertUnwindSafe(|| open_checked(path, schema, options))) {
        Ok(Ok(opened)) => return Ok(opened),
        Ok(Err(e)) if is_damage(&e) => e.to_string(),
        Ok(Err(e)) => return Err(e),
        Err(panic) => format!(
            "reading the file's structure failed: {}",
            super::panic_text(&panic)
        ),
    };
    Ok(Opened {
        handle: open_damaged(path, options, &detail)?,
        damage: Some(detail),
    })
}

/// Read-write if redb still manages that (reads will say what is
/// unreadable), otherwise read-only; an error only when neither works.
fn open_damaged(
    path: &Path,
    options: &Options,
    detail: &str,
) -> Result<super::Handle, StorageError> {
    if let Ok(Ok(db)) = catch_unwind(AssertUnwindSafe(|| create(path, options))) {
        return Ok(super::Handle::ReadWrite(db));
    }
    match catch_unwind(AssertUnwindSafe(|| redb::ReadOnlyDatabase::open(path))) {
        Ok(Ok(db)) => Ok(super::Handle::ReadOnly(db)),
        Ok(Err(e)) => Err(StorageError::Corrupt(format!(
            "{detail}; the file cannot be opened at all ({e}): restore the latest backup"
        ))),
        Err(p) => Err(StorageError::Corrupt(format!(
            "{detail}; the file cannot be opened at all ({}): restore the latest backup",
            super::panic_text(&p)
        ))),
    }
}

fn is_damage(e: &StorageError) -> bool {
    matches!(
        e,
        StorageError::Db(redb::Error::Corrupted(_)) | StorageError::Corrupt(_)
    )
}

fn open_checked(path: &Path, schema: &Schema, options: &Options) -> Result<Opened, StorageError> {
    let supported = schema.version();
    // Looked at read-only first: a file that needs migrating is copied
    // exactly as the previous release left it, before anything writes.
    let mut copied = None;
    if path.exists() {
        if let Ok(ro) = redb::ReadOnlyDatabase::open(path) {
            let found = version_in(&ro)?;
            drop(ro);
            if found != 0 && found < supported {
                copied = Some(copy_before_migrating(path, found, options)?);
            }
        }
    }
    let mut db = create(path, options)?;
    let found = version_in(&db)?;
    if found > supported {
        return Err(StorageError::SchemaTooNew { found, supported });
    }
    if found != 0 && found < supported {
        if copied.is_none() {
            // The file needed redb's repair before it could be read.
            drop(db);
            copied = Some(copy_before_migrating(path, found, options)?);
            db = create(path, options)?;
        }
        let copy = copied.unwrap_or_default();
        tracing::info!(from = found, to = supported, copy = %copy.display(), "database copied before migrating");
        for m in schema.migrations.iter().filter(|m| m.to > found) {
            let txn = db.begin_write()?;
            (m.run)(&txn)?;
            txn.open_table(META)?.insert(SCHEMA_VERSION_KEY, m.to)?;
            txn.commit()?;
            tracing::info!(version = m.to, "database migrated: {}", m.what);
        }
    }
    let txn = db.begin_write()?;
    schema.create_tables(&txn)?;
    if found == 0 {
        txn.open_table(META)?
            .insert(SCHEMA_VERSION_KEY, supported)?;
    }
    txn.commit()?;

    let damage = check(&db, path, schema, options);
    // Compacting rewrites the whole file: never one that is damaged.
    let db = if damage.is_none() {
        compact_when_due(db, path, options)?
    } else {
        db
    };
    Ok(Opened {
        handle: super::Handle::ReadWrite(db),
        damage,
    })
}

/// A copy of the file as it was, beside it, so a failed or unwanted
/// upgrade can be undone by putting it back. Refused when the disk cannot
/// hold it and keep the headroom.
fn copy_before_migrating(
    path: &Path,
    version: u64,
    options: &Options,
) -> Result<PathBuf, StorageError> {
    let io = |e: std::io::Error| StorageError::Db(redb::Error::Io(e));
    let len = std::fs::metadata(path).map_err(io)?.len();
    let dir = path.parent().unwrap_or(Path::new("."));
    let free = fs4::available_space(dir).map_err(io)?;
    if free < len.saturating_add(options.headroom) {
        return Err(StorageError::ReadOnly(format!(
            "{}: upgrading the database needs a copy of it first ({len} bytes plus {} bytes of headroom), \
             but only {free} bytes are free; free some space and start again",
            super::health::DISK_FULL,
            options.headroom
        )));
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = format!(
        "{}.v{version}-{stamp}.bak",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    let copy = path.with_file_name(name);
    let partial = copy.with_extension("bak.partial");
    let copied = std::fs::copy(path, &partial)
        .and_then(|_| std::fs::File::open(&partial)?.sync_all())
        .and_then(|_| std::fs::rename(&partial, &copy));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(io(e));
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(copy)
}

/// Reads every table, every entry, when the file is small enough for that
/// to be quick (a few hundred milliseconds for 100,000 items). Read-only
/// on purpose: redb's own integrity check writes its findings into the
/// file, and on a damaged file that can leave it impossible to open at
/// all, where before every undamaged row could still be read. Damage is
/// reported, not fatal: the service serves what it can read.
fn check(db: &Database, path: &Path, schema: &Schema, options: &Options) -> Option<String> {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len > options.integrity_check_max_bytes {
        return None;
    }
    let started = std::time::Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<u64, StorageError> {
        let txn = db.begin_read()?;
        let mut rows = 0;
        for table in schema.all_tables() {
            rows += (table.scan)(&txn)?;
        }
        Ok(rows)
    }));
    match outcome {
        Ok(Ok(rows)) => {
            tracing::debug!(
                rows,
                bytes = len,
                ms = started.elapsed().as_millis() as u64,
                "database read through"
            );
            None
        }
        Ok(Err(e)) => Some(e.to_string()),
        Err(p) => Some(format!("a damaged page: {}", super::panic_text(&p))),
    }
}

fn compact_when_due(
    mut db: Database,
    path: &Path,
    options: &Options,
) -> Result<Database, StorageError> {
    let deletes = {
        let txn = db.begin_read()?;
        let meta = txn.open_table(META)?;
        let n = meta
            .get(DELETES_SINCE_COMPACTION)?
            .map(|v| v.value())
            .unwrap_or(0);
        n
    };
    if deletes < options.compact_after_deletes {
        return Ok(db);
    }
    match backup::compact_if_sparse(&mut db, path, options.compact_min_free) {
        Ok(Some((before, after))) => {
            tracing::info!(before, after, deletes, "database compacted at start-up")
        }
        Ok(None) => tracing::info!(deletes, "database not compacted: too little free space"),
        Err(e) => tracing::warn!(error = %e, "database compaction failed; continuing"),
    }
    let txn = db.begin_write()?;
    txn.open_table(META)?.insert(DELETES_SINCE_COMPACTION, 0)?;
    txn.commit()?;
    Ok(db)
}
