//! The processing queue: its rows, its state machine and its routes.
//!
//! Requests and the worker meet only here. Every state change is one redb
//! write transaction (row, indexes and counters together) followed by one
//! event and, when an item became claimable, a wake-up of the worker.

pub mod query;
pub mod routes;
pub mod store;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    events::{Event, EventBus},
    media::MediaType,
    storage::{StorageError, Store},
};

pub use query::{ListOrder, ListQuery, Stats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Queued,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Queued,
        Status::Processing,
        Status::Completed,
        Status::Failed,
        Status::Cancelled,
    ];

    /// The key byte in indexes; stable on disk.
    pub fn code(self) -> u8 {
        match self {
            Status::Pending => 0,
            Status::Queued => 1,
            Status::Processing => 2,
            Status::Completed => 3,
            Status::Failed => 4,
            Status::Cancelled => 5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Queued => "queued",
            Status::Processing => "processing",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// A queue row exactly as the contract names its fields. The fields marked
/// `skip` are bookkeeping that stays inside the database.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
#[oai(rename = "QueueItem")]
pub struct QueueRow {
    pub id: Uuid,
    pub media_item_id: Uuid,
    pub status: Status,
    /// Lower runs first: photos 1..100, videos 101..200.
    pub priority: u32,
    pub attempts: u32,
    pub max_attempts: u32,
    #[oai(nullable)]
    pub last_error: Option<String>,
    pub queued_at: DateTime<Utc>,
    #[oai(nullable)]
    pub started_at: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub completed_at: Option<DateTime<Utc>>,
    pub original_filename: String,
    pub media_type: MediaType,
    pub file_size: u64,
    /// Enqueue order; ties in priority run first-in first-out.
    #[oai(skip)]
    pub seq: u64,
    /// While set, a `queued` item waits out its retry backoff.
    #[oai(skip)]
    pub retry_at: Option<DateTime<Utc>>,
    /// Failures over the item's whole life (attempts reset on retry; this does not).
    #[oai(skip)]
    pub error_count: u32,
    #[oai(skip)]
    pub processing_duration_seconds: Option<f64>,
}

/// Photos 1..100, videos 101..200; inside a type
/// `min(floor(file_size / 100 MiB * 99), 99)`.
pub fn priority(media_type: MediaType, file_size: u64) -> u32 {
    const HUNDRED_MIB: u128 = 100 * 1024 * 1024;
    let offset = ((file_size as u128 * 99) / HUNDRED_MIB).min(99) as u32;
    match media_type {
        MediaType::Photo => 1 + offset,
        MediaType::Video => 101 + offset,
    }
}

pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("No queue item with id {0}")]
    NotFound(Uuid),
    #[error("No media item with id {0}")]
    MediaNotFound(Uuid),
    #[error("Media item is already {status} (queue item {queue_id}); use ?force=true to process a completed item again")]
    AlreadyQueued {
        queue_id: Uuid,
        status: &'static str,
    },
    #[error("Cannot {action} an item that is {from}")]
    InvalidTransition {
        from: &'static str,
        action: &'static str,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

crate::redb_errors_into!(QueueError);

impl crate::storage::Fault for QueueError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            QueueError::Storage(s) => Some(s),
            QueueError::NotFound(_)
            | QueueError::MediaNotFound(_)
            | QueueError::AlreadyQueued { .. }
            | QueueError::InvalidTransition { .. } => None,
        }
    }
}

/// What happens to an item whose attempt failed.
#[derive(Debug, Clone)]
pub enum FailOutcome {
    /// Back to `queued`, claimable again at `retry_at`.
    Retry { retry_at: DateTime<Utc> },
    /// Attempts used up: `failed` for good.
    Failed,
}

/// The queue as the rest of the program sees it: storage plus the worker's
/// wake-up and the event stream.
#[derive(Clone)]
pub struct Queue {
    pub store: Store,
    wake: Arc<Notify>,
    events: EventBus,
}

impl Queue {
    pub fn new(store: Store, events: EventBus) -> Self {
        Queue {
            store,
            wake: Arc::new(Notify::new()),
            events,
        }
    }

    /// Woken when an item may have become claimable.
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Publishes the change and wakes the worker when the item is claimable.
    pub fn announce(&self, row: &QueueRow) {
        if row.status == Status::Queued {
            self.wake.notify_waiters();
            self.wake.notify_one();
        }
        self.events.publish(Event::item(row));
    }

    pub async fn get(&self, id: Uuid) -> Result<QueueRow, QueueError> {
        self.store
            .read(move |txn| store::get(txn, id)?.ok_or(QueueError::NotFound(id)))
            .await
    }

    pub async fn stats(&self) -> Result<Stats, QueueError> {
        self.store.read(|txn| Ok(query::stats(txn)?)).await
    }

    pub async fn enqueue(
        &self,
        media_id: Uuid,
        max_attempts: u32,
        force: bool,
    ) -> Result<QueueRow, QueueError> {
        let row = self
            .store
            .write(move |txn| store::enqueue_media(txn, media_id, max_attempts, force))
            .await?;
        self.announce(&row);
        Ok(row)
    }

    pub async fn cancel(&self, id: Uuid) -> Result<QueueRow, QueueError> {
        let row = self.store.write(move |txn| store::cancel(txn, id)).await?;
        self.announce(&row);
        Ok(row)
    }

    pub async fn retry(&self, id: Uuid) -> Result<QueueRow, QueueError> {
        let row = self.store.write(move |txn| store::retry(txn, id)).await?;
        self.announce(&row);
        Ok(row)
    }

    pub async fn retry_all_failed(&self) -> Result<Vec<QueueRow>, QueueError> {
        let rows = self.store.write(store::retry_all_failed).await?;
        for row in &rows {
            self.announce(row);
        }
        Ok(rows)
    }

    /// Atomically takes the best claimable item and marks it `processing`.
    pub async fn claim_next(&self) -> Result<Option<QueueRow>, QueueError> {
        let row = self
            .store
            .write_unsynced(|txn| store::claim_next(txn, Utc::now()))
            .await?;
        if let Some(row) = &row {
            self.announce(row);
        }
        Ok(row)
    }

    /// Marks a processing item failed: retried later or failed for good.
    pub async fn fail(
        &self,
        id: Uuid,
        error: String,
        backoff: impl Fn(u32) -> chrono::Duration + Send + 'static,
    ) -> Result<QueueRow, QueueError> {
        let row = self
            .store
            .write(move |txn| store::fail(txn, id, error.clone(), Utc::now(), &backoff))
            .await?;
        self.announce(&row);
        Ok(row)
    }

    /// Returns a processing item to `queued` without counting its attempt
    /// (the AI service was unreachable, or the worker is stopping).
    pub async fn release(&self, id: Uuid, note: Option<String>) -> Result<QueueRow, QueueError> {
        let row = self
            .store
            .write(move |txn| store::release(txn, id, note.clone()))
            .await?;
        self.announce(&row);
        Ok(row)
    }

    /// Every `processing` item back to `queued` (start-up after a crash).
    pub async fn requeue_in_flight(&self) -> Result<Vec<QueueRow>, QueueError> {
        let rows = self.store.write(store::requeue_in_flight).await?;
        for row in &rows {
            self.announce(row);
        }
        Ok(rows)
    }
}
