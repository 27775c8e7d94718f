//! The in-process event bus behind `/api/events`.
//!
//! A tokio broadcast channel: publishing never blocks, and a subscriber that
//! falls behind loses old events (it is then sent a fresh stats snapshot).
//! Changes to stored rows are published by the catalog after their commit;
//! the worker and the Immich importer publish their own state here.

pub mod routes;

use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::queue::ItemEvent;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A queue item changed state.
    Item(ItemEvent),
    /// A media item and its files were deleted.
    MediaDeleted {
        media_item_id: Uuid,
    },
    Worker {
        running: bool,
    },
    AiEndpoint {
        url: String,
        reachable: bool,
        last_error: Option<String>,
    },
    Import {
        running: bool,
        queued: u64,
        skipped: u64,
        failed: u64,
        done: bool,
    },
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
