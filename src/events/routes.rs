//! `GET /api/events`: Server-Sent Events for the admin page and clients.

use std::{sync::Arc, time::Duration};

use futures_util::{stream::BoxStream, StreamExt};
use poem_openapi::{payload::EventStream, OpenApi};
use tokio::sync::broadcast::error::RecvError;

use crate::{
    auth::Authed,
    http::error::ApiError,
    state::{ApiTags, AppState},
};

pub struct EventsApi {
    pub state: Arc<AppState>,
}

/// How often a stats snapshot is sent even when nothing changes.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(5);

#[OpenApi(tag = "ApiTags::Events")]
impl EventsApi {
    /// Live events (Server-Sent Events)
    ///
    /// Event names: `stats` (on connect, every 5 s, and after a slow client
    /// missed events), `item` (a queue item changed state: `id`,
    /// `media_item_id`, `status`, `attempts`, `last_error`),
    /// `media_deleted` (`media_item_id`), `worker` (`running`),
    /// `ai_endpoint` (`url`, `reachable`, `last_error`) and
    /// `import` (`running`, `queued`, `skipped`, `failed`, `done`). Each
    /// `data:` is a JSON object with a `type` field equal to the event name.
    #[oai(path = "/api/events", method = "get", operation_id = "streamEvents")]
    async fn events(
        &self,
        _auth: Authed,
    ) -> Result<EventStream<BoxStream<'static, serde_json::Value>>, ApiError> {
        let state = self.state.clone();
        let mut rx = state.catalog.events().subscribe();
        let stop = state.shutdown.clone();
        let stream = async_stream(move |tx| async move {
            let snapshot = |state: Arc<AppState>| async move {
                match state.catalog.stats().await {
                    Ok(stats) => Some(serde_json::json!({
                        "type": "stats",
                        "stats": stats,
                        "timestamp": chrono::Utc::now(),
                    })),
                    Err(_) => None,
                }
            };
            if let Some(s) = snapshot(state.clone()).await {
                if tx.send(s).await.is_err() {
                    return;
                }
            }
            let mut tick = tokio::time::interval(SNAPSHOT_EVERY);
            tick.tick().await;
            loop {
                let next = tokio::select! {
                    ev = rx.recv() => match ev {
                        Ok(ev) => serde_json::to_value(&ev).ok(),
                        // Fell behind: old events are gone; a snapshot tells the truth now.
                        Err(RecvError::Lagged(_)) => snapshot(state.clone()).await,
                        Err(RecvError::Closed) => return,
                    },
                    _ = tick.tick() => snapshot(state.clone()).await,
                    _ = stop.cancelled() => return,
                };
                if let Some(v) = next {
                    if tx.send(v).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(EventStream::new(stream.boxed())
            .keep_alive(Duration::from_secs(15))
            .to_event(|v: serde_json::Value| {
                let name = v
                    .get("type")
                    .and_then(|t| t.as_str())
                    .unwrap_or("message")
                    .to_string();
                poem::web::sse::Event::message(v.to_string()).event_type(name)
            }))
    }
}

/// A stream fed by a task through a small channel: a slow client fills the
/// channel and then the task waits, while the bus buffers and, past its
/// capacity, makes the task send a fresh snapshot instead.
fn async_stream<F, Fut>(f: F) -> impl futures_util::Stream<Item = serde_json::Value>
where
    F: FnOnce(tokio::sync::mpsc::Sender<serde_json::Value>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    crate::tasks::spawn_named("sse-client", f(tx));
    tokio_stream_from(rx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<serde_json::Value>,
) -> impl futures_util::Stream<Item = serde_json::Value> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
