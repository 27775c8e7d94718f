//! From the event bus to the sockets: model changes as `model:status`
//! (and `model:download-progress` at a download's start and end: the AI
//! service reports no progress in between) to every socket; generation
//! stages as `model:generation-progress` and their end as
//! `model:generation-complete` to every socket whose caller may see the
//! photo (the app filters by `id`, so a second requester and a client that
//! reconnected both see it); and the queue as `queue:update`, at most four
//! a second however busy the queue is, with the followed library's
//! figures (`library`) and why background work waits, each person seeing
//! only the jobs and the library that are theirs to see.
//!
//! Sockets are grouped in rooms by who they are: [`ALL`] for callers who
//! see everything (the token, or the mode's anyone), `user:<id>` per
//! person, so an update is worked out once per person, not per socket.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use socketioxide::SocketIo;
use tokio::{sync::broadcast::error::RecvError, time::Instant};

use super::wire::{Job, QueueUpdate};
use crate::{
    access::sharing::Viewer,
    auth::{Caller, Who},
    catalog::CatalogError,
    events::{Event, GenerationEvent},
    queue::{ListQuery, OrderBy, Status},
    state::AppState,
    tasks::spawn_named,
};

/// The room of the sockets that see everything.
pub const ALL: &str = "all";

/// The room a socket's caller belongs in.
pub fn room_of(caller: &Caller) -> String {
    match &caller.who {
        Who::User(u) => format!("user:{}", u.id),
        Who::Anyone | Who::Token => ALL.into(),
    }
}

/// Each person with a socket open now, as a viewer, with their room.
async fn people(io: &SocketIo, state: &AppState) -> Vec<(String, Viewer)> {
    let mut out = Vec::new();
    for room in io.rooms().await.unwrap_or_default() {
        let Some(id) = room.strip_prefix("user:") else {
            continue;
        };
        let Some(user) = state.auth.user(id) else {
            continue;
        };
        let caller = Caller {
            who: Who::User(user),
            session: None,
        };
        if let Ok(v) = state.viewer(&caller).await {
            out.push((room.to_string(), v));
        }
    }
    out
}

/// A generation's stage, to the sockets whose caller may see the photo.
async fn generation(io: &SocketIo, state: &AppState, g: &GenerationEvent) {
    let send = |room: String| async move {
        let _ = io
            .to(room.clone())
            .emit("model:generation-progress", g)
            .await;
        if g.status == "complete" {
            let _ = io.to(room).emit("model:generation-complete", g).await;
        }
    };
    send(ALL.into()).await;
    let Ok(Some(media)) = state.catalog.resolve(&g.id).await else {
        return;
    };
    for (room, viewer) in people(io, state).await {
        if state.sharing.may_see(&viewer, &media).await {
            send(room).await;
        }
    }
}

/// The least time between two `queue:update` broadcasts.
const QUEUE_EVERY: Duration = Duration::from_millis(250);

pub fn spawn(io: SocketIo, state: Arc<AppState>) {
    spawn_named("live-relay", async move {
        let mut rx = state.catalog.events().subscribe();
        let stop = state.shutdown.clone();
        let mut last = Instant::now() - QUEUE_EVERY;
        let mut due: Option<Instant> = None;
        loop {
            let wait = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(Event::Model(m)) => {
                        let _ = io.emit("model:status", &m).await;
                        let progress = match m.status.as_str() {
                            "downloading" => Some((0, "started")),
                            "downloaded" => Some((100, "complete")),
                            _ => None,
                        };
                        if let Some((p, what)) = progress {
                            let body = json!({"modelKey": m.model_key, "progress": p, "status": what});
                            let _ = io.emit("model:download-progress", &body).await;
                        }
                    }
                    Ok(Event::Generation(g)) => generation(&io, &state, &g).await,
                    Ok(Event::Item(_) | Event::MediaDeleted(_) | Event::Library(_) | Event::Worker(_))
                    | Err(RecvError::Lagged(_)) => {
                        // Leading edge at once, then at most every QUEUE_EVERY.
                        due.get_or_insert_with(|| (last + QUEUE_EVERY).max(Instant::now()));
                    }
                    Ok(_) => {}
                    Err(RecvError::Closed) => return,
                },
                _ = wait => {
                    due = None;
                    last = Instant::now();
                    match queue_update(&state, &Viewer::All).await {
                        Ok(q) => {
                            let started = std::time::Instant::now();
                            let _ = io.to(ALL).emit("queue:update", &q).await;
                            // The fan-out's own cost (scripts/live-bench.sh reads it).
                            tracing::debug!(
                                sockets = io.sockets().len(),
                                emit_us = started.elapsed().as_micros() as u64,
                                "queue:update sent"
                            );
                        }
                        Err(e) => tracing::debug!(error = %e, "queue:update skipped"),
                    }
                    for (room, viewer) in people(&io, &state).await {
                        if let Ok(q) = queue_update(&state, &viewer).await {
                            let _ = io.to(room).emit("queue:update", &q).await;
                        }
                    }
                }
                _ = stop.cancelled() => {
                    io.close().await;
                    return;
                }
            }
        }
    });
}

/// The queue as the app shows it to `viewer`: how long it is, and the
/// running jobs and the library that are theirs to see.
pub async fn queue_update(state: &AppState, viewer: &Viewer) -> Result<QueueUpdate, CatalogError> {
    let stats = state.catalog.stats().await?;
    let (rows, _) = state
        .catalog
        .queue_page(ListQuery {
            status: Some(Status::Processing),
            order: OrderBy::StartedAt,
            descending: false,
            limit: 32,
            offset: 0,
        })
        .await?;
    let mut running = Vec::with_capacity(rows.len());
    for r in rows {
        let id = match state.catalog.media(r.media_item_id).await {
            Ok(m) if viewer.sees_item(&m) => m.immich_asset_id.unwrap_or_else(|| m.id.to_string()),
            Ok(_) => continue,
            Err(_) if viewer.sees_all() => r.media_item_id.to_string(),
            Err(_) => continue,
        };
        running.push(Job {
            id,
            kind: r.kind.as_str(),
            model_key: r.model_key,
            queue_id: r.id.to_string(),
            timestamp: r.started_at.map_or(0, |t| t.timestamp_millis()),
        });
    }
    Ok(QueueUpdate {
        length: stats.queued,
        is_processing: !running.is_empty(),
        current: running.first().cloned(),
        running,
        sent_at: chrono::Utc::now().timestamp_millis(),
        library: state
            .follower
            .figures()
            .into_iter()
            .find(|f| viewer.sees_library(&f.owner_id)),
        background_paused_reason: state.worker.status().await.background_paused_reason,
    })
}
