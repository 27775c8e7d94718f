//! The catalog: the one door to stored media and their queue entries.
//!
//! Media and queue each own their tables and know nothing of the other;
//! the work that spans both (storing an upload and queueing it, deleting
//! an item, completing one with its depth map) lives here, above both.
//! Every write goes through [`Catalog::commit`], which commits and then
//! announces exactly what changed (events, and a wake-up of the worker
//! when an item became claimable), so no caller can forget to.

mod assets;
pub mod follow;
mod ingest;
mod items;
mod processing;

use std::{path::PathBuf, sync::Arc};

use redb::WriteTransaction;
use tokio::sync::Notify;
use uuid::Uuid;

pub use assets::ImmichRef;
pub use ingest::{Origin, Stored};
pub use items::{ItemDetail, MediaStatus};

use crate::{
    assets::AssetError,
    events::{Event, EventBus},
    media::{MediaDirs, MediaError},
    queue::{QueueError, QueueRow, Status},
    storage::{Fault, StorageError, Store},
};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Asset(#[from] AssetError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

crate::redb_errors_into!(CatalogError);

impl Fault for CatalogError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            CatalogError::Asset(AssetError::Storage(e)) => Some(e),
            CatalogError::Asset(_) => None,
            CatalogError::Media(e) => e.storage(),
            CatalogError::Queue(e) => e.storage(),
            CatalogError::Storage(e) => Some(e),
        }
    }
}

/// What a transaction changed, announced once it is committed.
#[derive(Debug, Default)]
pub struct Changes {
    items: Vec<QueueRow>,
    deleted: Vec<Uuid>,
    events: Vec<Event>,
    assets: bool,
}

impl Changes {
    pub fn item(&mut self, row: &QueueRow) {
        self.items.push(row.clone());
    }

    pub fn items(&mut self, rows: &[QueueRow]) {
        self.items.extend_from_slice(rows);
    }

    pub fn media_deleted(&mut self, id: Uuid) {
        self.deleted.push(id);
    }

    /// Any other event the change makes (a model's status, an asset).
    pub fn event(&mut self, e: Event) {
        self.events.push(e);
    }

    /// Generated assets were added or removed (the cached map is stale).
    pub fn assets_changed(&mut self) {
        self.assets = true;
    }
}

/// How a commit reaches the disk.
#[derive(Debug, Clone)]
pub enum Durability {
    Durable,
    /// Durable, after an fsync of this directory (a file was renamed into it).
    After(PathBuf),
    /// Durable with the next durable commit; for changes a crash may lose
    /// without harm (a claim: after a crash the item is queued either way).
    Lazy,
}

/// The map with owners, and the assets version it was read at.
type OwnedAt = (u64, Arc<assets::OwnedMap>);
/// A person's rendered map: assets version, view generation, JSON.
type UserMap = (u64, u64, bytes::Bytes);

#[derive(Clone)]
pub struct Catalog {
    store: Store,
    bus: EventBus,
    wake: Arc<Notify>,
    dirs: MediaDirs,
    /// Bumped after every commit that changed assets; the rendered asset
    /// map is kept with the version it was made from.
    assets_version: Arc<std::sync::atomic::AtomicU64>,
    map_cache: Arc<std::sync::Mutex<Option<(u64, bytes::Bytes)>>>,
    /// The map with each photo's owner, at a version.
    owned_cache: Arc<std::sync::Mutex<Option<OwnedAt>>>,
    /// Each person's rendered map: (assets version, view generation, JSON).
    user_maps: Arc<std::sync::Mutex<std::collections::HashMap<String, UserMap>>>,
    /// Jobs the worker holds that became the app's own meanwhile.
    promoted: Arc<std::sync::Mutex<Vec<Uuid>>>,
    /// When each 3D asset was last served in this run (the disk budget
    /// never removes one being viewed).
    views: Arc<std::sync::Mutex<Views>>,
}

/// When 3D assets were served: all of this run, and those not yet
/// written to their rows.
#[derive(Default)]
struct Views {
    last: std::collections::HashMap<Uuid, crate::timestamp::Timestamp>,
    unwritten: Vec<(Uuid, crate::timestamp::Timestamp)>,
}

impl Catalog {
    pub fn new(store: Store, bus: EventBus, dirs: MediaDirs) -> Self {
        Catalog {
            store,
            bus,
            wake: Arc::new(Notify::new()),
            dirs,
            assets_version: Default::default(),
            map_cache: Default::default(),
            owned_cache: Default::default(),
            user_maps: Default::default(),
            promoted: Default::default(),
            views: Default::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn dirs(&self) -> &MediaDirs {
        &self.dirs
    }

    pub fn events(&self) -> &EventBus {
        &self.bus
    }

    /// Woken when an item may have become claimable.
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Jobs that were being processed when a request of the app joined
    /// them (now priority 0): the worker moves them ahead of background
    /// work. Told with a wake-up ([`Catalog::wake_handle`]).
    pub fn take_promoted(&self) -> Vec<Uuid> {
        std::mem::take(&mut *self.promoted.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn promote(&self, id: Uuid) {
        self.promoted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id);
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    /// A 3D asset was served to someone (a download, a cached generate).
    pub fn viewed(&self, asset: Uuid) {
        let now = crate::timestamp::Timestamp::now();
        let mut v = self.views.lock().unwrap_or_else(|e| e.into_inner());
        v.last.insert(asset, now);
        v.unwritten.push((asset, now));
    }

    /// When each asset served in this run was last served.
    pub fn views(&self) -> std::collections::HashMap<Uuid, crate::timestamp::Timestamp> {
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last
            .clone()
    }

    /// Views not yet written to their rows (`accessed_at`), taken.
    fn take_views(&self) -> Vec<(Uuid, crate::timestamp::Timestamp)> {
        std::mem::take(
            &mut self
                .views
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwritten,
        )
    }

    /// Runs `f` in a write transaction, commits, then announces what `f`
    /// recorded in its [`Changes`]. `f` may run more than once (group
    /// commit), so it starts from empty changes each time.
    pub async fn commit<T, E, F>(&self, how: Durability, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Fault + Send + 'static,
        F: Fn(&WriteTransaction, &mut Changes) -> Result<T, E> + Send + 'static,
    {
        let run = move |txn: &WriteTransaction| {
            let mut changes = Changes::default();
            f(txn, &mut changes).map(|t| (t, changes))
        };
        let (value, changes) = match how {
            Durability::Durable => self.store.write(run).await?,
            Durability::After(dir) => self.store.write_after(&dir, run).await?,
            Durability::Lazy => self.store.write_unsynced(run).await?,
        };
        self.announce(changes);
        Ok(value)
    }

    fn announce(&self, changes: Changes) {
        if changes.assets {
            self.assets_version
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        for row in &changes.items {
            if row.status == Status::Queued {
                self.wake.notify_waiters();
                self.wake.notify_one();
            }
            self.bus.publish(Event::Item(row.into()));
        }
        for id in changes.deleted {
            self.bus
                .publish(Event::MediaDeleted(crate::events::MediaDeletedEvent {
                    media_item_id: id,
                }));
        }
        for e in changes.events {
            self.bus.publish(e);
        }
    }

    /// Announces a change that is not stored (a model loaded into the AI
    /// service's memory): the same bus, so listeners see one stream.
    pub fn announce_now(&self, e: Event) {
        self.bus.publish(e);
    }
}
