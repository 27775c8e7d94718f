//! `GET /api/events`: Server-Sent Events for the admin page and clients.

use crate::http::spec::{op, OpErrors, Storage};
use std::{sync::Arc, time::Duration};

use futures_util::{stream::BoxStream, StreamExt};
use poem_openapi::{payload::EventStream, OpenApi};
use tokio::sync::broadcast::error::RecvError;

use poem_openapi::types::ToJSON;

use super::{Event, StatsEvent};
use crate::{
    auth::Authed,
    http::error::ApiError,
    state::{ApiTags, AppState},
    timestamp::Timestamp,
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
    /// A stream that does not end. Each event's `data:` is one JSON
    /// object, an `Event`, whose `type` is also the SSE event name:
    /// `stats` (on connect, every 5 s, and after a slow client missed
    /// events), `item` (a queue item changed state), `media_deleted`,
    /// `worker`, `ai_endpoint`, `import`, `model` (a model of the
    /// catalogue changed state), `generation` (a 3D asset's progress
    /// and end) and `library` (how far the followed Immich library is ready
    /// for 3D; also on connect). A comment line keeps the connection alive
    /// every 15 s.
    ///
    /// A signed-in person is sent only what is theirs to see: items and
    /// generations of photos they may see (`access::sharing`), their own
    /// library's figures, no imports; the stream ends when their sign-in
    /// does.
    #[oai(path = "/api/events", method = "get", operation_id = "streamEvents")]
    async fn events(
        &self,
        auth: Authed,
    ) -> Result<EventStream<BoxStream<'static, Event>>, ApiError> {
        let state = self.state.clone();
        let caller = auth.0;
        let mut filter = Filter::new(&state, caller.clone()).await?;
        let mut rx = state.catalog.events().subscribe();
        let stop = state.shutdown.clone();
        let stream = async_stream(move |tx| async move {
            let snapshot = |state: Arc<AppState>| async move {
                state.catalog.stats().await.ok().map(|stats| {
                    Event::Stats(StatsEvent {
                        stats,
                        timestamp: Timestamp::now(),
                    })
                })
            };
            if let Some(s) = snapshot(state.clone()).await {
                if tx.send(s).await.is_err() {
                    return;
                }
            }
            for f in state.follower.figures() {
                if !filter.library(&f) {
                    continue;
                }
                if tx.send(Event::Library(f)).await.is_err() {
                    return;
                }
            }
            let mut tick = tokio::time::interval(SNAPSHOT_EVERY);
            tick.tick().await;
            loop {
                let next = tokio::select! {
                    ev = rx.recv() => match ev {
                        Ok(ev) => Some(ev),
                        // Fell behind: old events are gone; a snapshot tells the truth now.
                        Err(RecvError::Lagged(_)) => snapshot(state.clone()).await,
                        Err(RecvError::Closed) => return,
                    },
                    _ = tick.tick() => {
                        if !state.auth.still_valid(&caller) {
                            return;
                        }
                        filter.refresh(&state).await;
                        snapshot(state.clone()).await
                    }
                    _ = stop.cancelled() => return,
                };
                let Some(v) = next else {
                    continue;
                };
                if !filter.passes(&state, &v).await {
                    continue;
                }
                if tx.send(v).await.is_err() {
                    return;
                }
            }
        });
        Ok(EventStream::new(stream.boxed())
            .keep_alive(Duration::from_secs(15))
            .to_event(|ev: Event| {
                poem::web::sse::Event::message(ev.to_json_string()).event_type(ev.name())
            }))
    }
}

/// What one stream's caller may be sent.
struct Filter {
    caller: crate::auth::Caller,
    viewer: crate::access::sharing::Viewer,
    /// Items this stream was told of (so it hears of their deletion).
    told: std::collections::HashSet<uuid::Uuid>,
}

impl Filter {
    async fn new(state: &AppState, caller: crate::auth::Caller) -> Result<Self, ApiError> {
        let viewer = state.viewer(&caller).await?;
        Ok(Filter {
            caller,
            viewer,
            told: Default::default(),
        })
    }

    /// What Immich says of the person moves on (the cache's lifetime).
    async fn refresh(&mut self, state: &AppState) {
        if let Ok(v) = state.viewer(&self.caller).await {
            self.viewer = v;
        }
    }

    fn library(&self, f: &crate::follow::Figures) -> bool {
        self.viewer.sees_library(&f.owner_id)
    }

    async fn item(&mut self, state: &AppState, media: uuid::Uuid) -> bool {
        if self.viewer.sees_all() || self.told.contains(&media) {
            return true;
        }
        let seen = match state.catalog.media(media).await {
            Ok(m) => state.sharing.may_see(&self.viewer, &m).await,
            Err(_) => false,
        };
        if seen {
            self.told.insert(media);
        }
        seen
    }

    async fn passes(&mut self, state: &AppState, ev: &Event) -> bool {
        match ev {
            Event::Stats(_) | Event::Worker(_) | Event::AiEndpoint(_) | Event::Model(_) => true,
            Event::Import(_) => self.caller.is_operator(),
            Event::Library(f) => self.library(f),
            Event::Item(i) => self.item(state, i.media_item_id).await,
            Event::MediaDeleted(d) => self.viewer.sees_all() || self.told.remove(&d.media_item_id),
            Event::Generation(g) => {
                if self.viewer.sees_all() {
                    return true;
                }
                match state.catalog.resolve(&g.id).await {
                    Ok(Some(m)) => self.item(state, m.id).await,
                    _ => false,
                }
            }
        }
    }
}

/// A stream fed by a task through a small channel: a slow client fills the
/// channel and then the task waits, while the bus buffers and, past its
/// capacity, makes the task send a fresh snapshot instead.
fn async_stream<F, Fut>(f: F) -> impl futures_util::Stream<Item = Event>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    crate::tasks::spawn_named("sse-client", f(tx));
    tokio_stream_from(rx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Event>,
) -> impl futures_util::Stream<Item = Event> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[op("streamEvents", Storage::Reads, &[])];
