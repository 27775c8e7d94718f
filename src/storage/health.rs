//! What the store knows about its own file: whether writes are possible,
//! and whether damage was found.
//!
//! After an I/O error (a full disk, most often) redb refuses every later
//! write until the file is reopened. The store then turns read-only,
//! waits on a thread of its own until the disk has room for redb's repair
//! to write, lets go of the handle once every transaction in flight has
//! finished, and reopens the file: no restart needed, and reads go on
//! until the moment of the swap.

use std::{
    sync::{Arc, Mutex, RwLock, RwLockReadGuard, Weak},
    time::Duration,
};

use tokio::sync::watch;

use super::{open, store::Inner, StorageError, Store};

/// Part of the reason when writes stopped because the disk is full.
pub const DISK_FULL: &str = "disk full";

/// Lets the store see the storage failure inside a domain error, so that
/// it notices a full disk or a damaged file whichever route met it.
pub trait Fault {
    fn storage(&self) -> Option<&StorageError>;
}

impl Fault for StorageError {
    fn storage(&self) -> Option<&StorageError> {
        Some(self)
    }
}

/// The store's condition, as `/health` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Why writes are refused, while they are.
    pub write_error: Option<String>,
    /// Damage found in the file: serve what can be read, restore a backup.
    pub damage: Option<String>,
}

pub struct Monitor {
    state: Mutex<Health>,
    writable: watch::Sender<bool>,
}

pub(super) fn lock_read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Monitor {
    /// Damage found at open makes the store read-only for good: writing
    /// into a file whose structure cannot be read could only make it worse.
    pub fn new(damage: Option<String>) -> Self {
        if let Some(d) = &damage {
            log_damage(d);
        }
        let write_error = damage
            .as_ref()
            .map(|_| "the database file is damaged; restore a backup".to_string());
        Monitor {
            writable: watch::Sender::new(write_error.is_none()),
            state: Mutex::new(Health {
                write_error,
                damage,
            }),
        }
    }

    pub fn current(&self) -> Health {
        lock(&self.state).clone()
    }

    pub async fn wait_writable(&self) {
        let mut rx = self.writable.subscribe();
        let _ = rx.wait_for(|w| *w).await;
    }

    /// Marks the store read-only; `true` if it was writable until now.
    fn set_read_only(&self, reason: String) -> bool {
        let mut s = lock(&self.state);
        if s.write_error.is_some() {
            return false;
        }
        s.write_error = Some(reason);
        self.writable.send_replace(false);
        true
    }

    fn set_writable(&self) {
        lock(&self.state).write_error = None;
        self.writable.send_replace(true);
    }

    fn set_damage(&self, detail: String) {
        let mut s = lock(&self.state);
        if s.damage.is_none() {
            log_damage(&detail);
            s.damage = Some(detail);
        }
    }
}

fn log_damage(detail: &str) {
    tracing::error!(
        detail,
        "the database file is damaged: what can be read is still served; stop the service and \
         restore the latest backup (docs/operators.md, \"Recovering from a damaged database\")"
    );
}

/// Whether an error means the file must be reopened before writing again.
fn needs_reopen(e: &StorageError) -> Option<String> {
    match e {
        StorageError::Db(redb::Error::Io(io)) if super::io_is_disk_full(io) => {
            Some(format!("{DISK_FULL}: {io}"))
        }
        StorageError::Db(redb::Error::Io(io)) => Some(format!("I/O error: {io}")),
        StorageError::Db(redb::Error::PreviousIo) => {
            Some("an earlier write failed (I/O error)".to_string())
        }
        StorageError::Db(_)
        | StorageError::Corrupt(_)
        | StorageError::SchemaTooNew { .. }
        | StorageError::ReadOnly(_)
        | StorageError::Reopening
        | StorageError::Task(_) => None,
    }
}

/// Whether an error means the file holds something unreadable.
fn damage(e: &StorageError) -> Option<String> {
    match e {
        StorageError::Db(redb::Error::Corrupted(m)) => Some(m.clone()),
        StorageError::Corrupt(m) => Some(m.clone()),
        // redb panics on pages that make no sense.
        StorageError::Task(m) if m.contains("panic") => Some(m.clone()),
        StorageError::Db(_)
        | StorageError::SchemaTooNew { .. }
        | StorageError::ReadOnly(_)
        | StorageError::Reopening
        | StorageError::Task(_) => None,
    }
}

pub(super) fn observe(store: &Store, e: &StorageError) {
    if let Some(detail) = damage(e) {
        store.inner.health.set_damage(detail);
    }
    let Some(reason) = needs_reopen(e) else {
        return;
    };
    let disk = reason.contains(DISK_FULL);
    if !store.inner.health.set_read_only(reason.clone()) {
        return;
    }
    tracing::error!(
        reason,
        "database writes stopped; they resume by themselves once the file can be reopened{}",
        if disk { " (free some disk space)" } else { "" }
    );
    let weak = Arc::downgrade(&store.inner);
    let spawned = std::thread::Builder::new()
        .name("db-reopen".into())
        .spawn(move || reopen(weak));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the database reopen thread");
    }
}

/// Free space redb's repair and the next writes need before reopening.
fn room_needed(inner: &Inner) -> u64 {
    let len = std::fs::metadata(&inner.path).map(|m| m.len()).unwrap_or(0);
    (inner.options.headroom * 2).max(len / 16)
}

fn has_room(inner: &Inner) -> bool {
    let dir = inner
        .path
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    fs4::available_space(&dir).is_ok_and(|free| free >= room_needed(inner))
}

/// Waits for room, lets go of the handle, reopens. Gives up only when the
/// store itself is gone.
fn reopen(weak: Weak<Inner>) {
    const POLL: Duration = Duration::from_millis(250);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if has_room(&inner) {
            break;
        }
        drop(inner);
        std::thread::sleep(POLL);
    }
    let Some(inner) = weak.upgrade() else { return };
    let old = inner.db.write().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(mut old) = old {
        // Transactions in flight hold clones; redb's file lock allows one
        // handle per file, so the old one must be gone before the new opens.
        loop {
            match Arc::try_unwrap(old) {
                Ok(db) => {
                    drop(db);
                    break;
                }
                Err(still) => {
                    old = still;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    loop {
        match open::create(&inner.path, &inner.options) {
            Ok(db) => {
                *inner.db.write().unwrap_or_else(|e| e.into_inner()) =
                    Some(Arc::new(super::Handle::ReadWrite(db)));
                inner.health.set_writable();
                tracing::info!("database reopened; writes resume");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reopening the database failed; trying again");
                std::thread::sleep(Duration::from_secs(1));
                while !has_room(&inner) {
                    std::thread::sleep(POLL);
                }
            }
        }
    }
}
