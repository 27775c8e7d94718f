//! The processing queue: its rows, its state machine and its routes.
//!
//! Requests and the worker meet here. Every state change is one redb write
//! transaction (row, indexes and counters together); the catalog commits
//! it and then announces it (an event, and a wake-up of the worker when
//! an item became claimable).

mod claims;
pub mod query;
pub mod routes;
pub mod store;

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{assets::Kind, media::MediaType, storage::StorageError};

pub use query::{ListQuery, OrderBy, Stats};

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
    /// Lower runs first: 0 the VR app's own requests; uploads and imports
    /// photos 1..100, videos 101..200; from 1000 on, what following Immich
    /// makes, newer photos first.
    pub priority: u32,
    pub attempts: u32,
    pub max_attempts: u32,
    #[oai(nullable)]
    pub last_error: Option<String>,
    pub queued_at: crate::timestamp::Timestamp,
    #[oai(nullable)]
    pub started_at: Option<crate::timestamp::Timestamp>,
    #[oai(nullable)]
    pub completed_at: Option<crate::timestamp::Timestamp>,
    pub original_filename: String,
    pub media_type: MediaType,
    pub file_size: u64,
    /// Enqueue order; ties in priority run first-in first-out.
    #[oai(skip)]
    pub seq: u64,
    /// While set, a `queued` item waits out its retry backoff.
    #[oai(skip)]
    pub retry_at: Option<crate::timestamp::Timestamp>,
    /// Failures over the item's whole life (attempts reset on retry; this does not).
    #[oai(skip)]
    pub error_count: u32,
    #[oai(skip)]
    pub processing_duration_seconds: Option<f64>,
    /// What the job makes: a `depth` map or a `splat` (additive to the
    /// contract; rows from before schema 3 are depth jobs).
    #[serde(default = "default_kind")]
    pub kind: Kind,
    /// The model that makes it: `small`, `base`, `large` or `sharp`.
    #[serde(default = "default_model")]
    pub model_key: String,
}

fn default_kind() -> Kind {
    Kind::Depth
}

fn default_model() -> String {
    "small".into()
}

/// The job key: the same (media, kind, model) is one job, however many
/// ask for it.
pub fn job_key(media: Uuid, kind: Kind, model: &str) -> String {
    format!("{media}/{}/{model}", kind.as_str())
}

impl QueueRow {
    pub fn job_key(&self) -> String {
        job_key(self.media_item_id, self.kind, &self.model_key)
    }
}

/// Interactive requests (the VR app waiting for one photo) run before
/// the 1..200 of bulk work.
pub const INTERACTIVE_PRIORITY: u32 = 0;

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

/// The first priority of work following Immich makes: after uploads and
/// imports (someone asked for those), newest capture first.
pub const FOLLOW_PRIORITY: u32 = 1000;

/// A followed photo's priority: `FOLLOW_PRIORITY` plus the minutes from
/// its capture to 2100, so a newer photo runs first (the app opens at the
/// newest); without a date it runs last.
pub fn follow_priority(captured: Option<crate::timestamp::Timestamp>) -> u32 {
    const Y2100_MIN: i64 = 4_102_444_800 / 60;
    let minutes = captured.map_or(i64::MAX, |t| Y2100_MIN - t.timestamp() / 60);
    let room = (u32::MAX - 1 - FOLLOW_PRIORITY) as i64;
    FOLLOW_PRIORITY + minutes.clamp(0, room) as u32
}

pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// What the queue needs to know of a media item to queue it.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub media_id: Uuid,
    pub media_type: MediaType,
    pub file_size: u64,
    pub original_filename: String,
    pub max_attempts: u32,
    pub kind: Kind,
    pub model_key: String,
    /// `None`: by type and size ([`priority`]).
    pub priority: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("No queue item with id {0}")]
    NotFound(Uuid),
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

/// A queue item's change, as `/api/events` (and later channels) tell it.
#[derive(Debug, Clone, Serialize, Object)]
#[oai(rename = "ItemEvent")]
pub struct ItemEvent {
    pub id: Uuid,
    pub media_item_id: Uuid,
    pub status: Status,
    pub attempts: u32,
    #[oai(nullable)]
    pub last_error: Option<String>,
    /// What the job makes: `depth` or `splat`.
    pub kind: crate::assets::Kind,
    pub model_key: String,
}

impl From<&QueueRow> for ItemEvent {
    fn from(row: &QueueRow) -> Self {
        ItemEvent {
            id: row.id,
            media_item_id: row.media_item_id,
            status: row.status,
            attempts: row.attempts,
            last_error: row.last_error.clone(),
            kind: row.kind,
            model_key: row.model_key.clone(),
        }
    }
}
