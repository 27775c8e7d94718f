//! The in-process event bus behind `/api/events`.
//!
//! A tokio broadcast channel: publishing never blocks, and a subscriber that
//! falls behind loses old events (it is then sent a fresh stats snapshot).
//! Changes to stored rows are published by the catalog after their commit;
//! the worker and the Immich importer publish their own state here.

pub mod routes;

use poem_openapi::{Object, Union};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{queue::ItemEvent, queue::Stats, timestamp::Timestamp};

/// One event of `/api/events`: its `type` is also the SSE event name, so a
/// client can switch on either. The spec declares it as a `oneOf` with a
/// discriminator, so generated clients get one type per event.
#[derive(Debug, Clone, Union)]
#[oai(discriminator_name = "type", one_of)]
pub enum Event {
    /// The queue's counters: on connect, every 5 s, and after a slow
    /// client missed events.
    #[oai(mapping = "stats")]
    Stats(StatsEvent),
    /// A queue item changed state.
    #[oai(mapping = "item")]
    Item(ItemEvent),
    /// A media item and its files were deleted.
    #[oai(mapping = "media_deleted")]
    MediaDeleted(MediaDeletedEvent),
    /// The worker started or stopped.
    #[oai(mapping = "worker")]
    Worker(WorkerEvent),
    /// An AI endpoint became reachable or unreachable.
    #[oai(mapping = "ai_endpoint")]
    AiEndpoint(AiEndpointEvent),
    /// Progress of an Immich import.
    #[oai(mapping = "import")]
    Import(ImportEvent),
    /// A model of the catalogue changed state (loading, loaded, unloaded,
    /// downloading, downloaded, error).
    #[oai(mapping = "model")]
    Model(ModelEvent),
    /// A 3D asset's generation moved on (the VR app's progress stages),
    /// or ended (`complete` with `success`).
    #[oai(mapping = "generation")]
    Generation(GenerationEvent),
    /// How far the followed Immich library is ready for 3D (at most once
    /// a second while it changes; on connect).
    #[oai(mapping = "library")]
    Library(crate::follow::Figures),
}

impl Event {
    /// The SSE event name: the same as `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Stats(_) => "stats",
            Event::Item(_) => "item",
            Event::MediaDeleted(_) => "media_deleted",
            Event::Worker(_) => "worker",
            Event::AiEndpoint(_) => "ai_endpoint",
            Event::Import(_) => "import",
            Event::Model(_) => "model",
            Event::Generation(_) => "generation",
            Event::Library(_) => "library",
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct StatsEvent {
    pub stats: Stats,
    pub timestamp: Timestamp,
}

#[derive(Debug, Clone, Object)]
pub struct MediaDeletedEvent {
    pub media_item_id: Uuid,
}

#[derive(Debug, Clone, Object)]
pub struct WorkerEvent {
    pub running: bool,
}

#[derive(Debug, Clone, Object)]
pub struct AiEndpointEvent {
    pub url: String,
    pub reachable: bool,
    #[oai(nullable)]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct ImportEvent {
    pub running: bool,
    pub queued: u64,
    pub skipped: u64,
    pub failed: u64,
    pub done: bool,
}

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        EventBus { tx }
    }

    pub fn publish(&self, event: Event) {
        // No subscriber is not an error.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

/// The VR app's `model:status`: `modelKey` is null when nothing is loaded.
#[derive(Debug, Clone, PartialEq, Object, serde::Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct ModelEvent {
    /// `loading`, `loaded`, `unloaded`, `downloading`, `downloaded` or `error`.
    pub status: String,
    #[oai(nullable)]
    pub model_key: Option<String>,
    /// When it was loaded (ms since the epoch), for `loaded`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<u64>,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Percent done, while `downloading` (the built-in engine's downloads).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<u32>,
}

/// The VR app's `model:generation-progress` and, when `status` is
/// `complete`, `model:generation-complete`.
#[derive(Debug, Clone, PartialEq, Object, serde::Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct GenerationEvent {
    /// The Immich asset id (a media item id for items without one).
    pub id: String,
    /// The queue job (absent for answers from the cache).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<Uuid>,
    /// `depth` or `splat`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub model_key: String,
    /// `queued`, `checking_cache`, `fetching_image`, `sending_to_ai`,
    /// `generating`, `saving`, `converting` or `complete`.
    pub status: String,
    /// 0-100.
    pub progress: u8,
    /// With `complete`: whether it worked.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// With `complete`: answered from the store.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `conversion_failed` when the splat's KSPLAT could not be made.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl GenerationEvent {
    pub fn stage(id: &str, kind: &str, model: &str, status: &str, progress: u8) -> Self {
        GenerationEvent {
            id: id.to_string(),
            queue_id: None,
            kind: kind.to_string(),
            model_key: model.to_string(),
            status: status.to_string(),
            progress,
            success: None,
            cached: None,
            error: None,
            warning: None,
        }
    }
}
