//! The in-process event bus behind `/api/events`.
//!
//! A tokio broadcast channel: publishing never blocks, and a subscriber that
//! falls behind loses old events (it is then sent a fresh stats snapshot).

pub mod routes;

use serde::Serialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::queue::{QueueRow, Status};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A queue item changed state.
    Item {
        id: Uuid,
        media_item_id: Uuid,
        status: Status,
        attempts: u32,
        last_error: Option<String>,
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

impl Event {
    pub fn item(row: &QueueRow) -> Self {
        Event::Item {
            id: row.id,
            media_item_id: row.media_item_id,
            status: row.status,
            attempts: row.attempts,
            last_error: row.last_error.clone(),
        }
    }

    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Item { .. } => "item",
            Event::Worker { .. } => "worker",
            Event::AiEndpoint { .. } => "ai_endpoint",
            Event::Import { .. } => "import",
        }
    }
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
