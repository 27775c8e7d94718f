//! What each socket may ask (section 5.5 of the app's contract), through
//! the same services as the REST routes: generation becomes a job of the
//! durable queue, model actions go to the model manager, whose changes
//! every socket hears from the relay. Every request gets an answer:
//! an event, or `model:error` to that socket.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use serde_json::Value;
use socketioxide::{
    extract::{Event as EventName, SocketRef, TryData},
    SocketIo,
};

use super::{relay, wire};
use crate::{
    assets::generate::{self, Started},
    events::{Event, GenerationEvent},
    settings::manager::Trigger,
    state::AppState,
};

/// Events a socket may send per second, and in a burst.
const RATE: f64 = 20.0;
const BURST: f64 = 40.0;

/// A token bucket per socket: a flood is dropped (and told once a second),
/// the server and other sockets carry on.
struct Bucket {
    tokens: f64,
    at: Instant,
    warned: Option<Instant>,
}

type Limit = Arc<Mutex<Bucket>>;

fn admit(limit: &Limit, s: &SocketRef) -> bool {
    let mut b = limit.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * RATE).min(BURST);
    b.at = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        return true;
    }
    if b.warned
        .is_none_or(|w| now.duration_since(w).as_secs() >= 1)
    {
        b.warned = Some(now);
        error(
            s,
            None,
            None,
            format!("too many events (more than {RATE} a second); some were dropped"),
        );
    }
    false
}

fn error(s: &SocketRef, id: Option<String>, model_key: Option<String>, message: String) {
    let _ = s.emit(
        "model:error",
        &wire::ErrorMsg {
            id,
            model_key,
            message,
        },
    );
}

/// `None` for a missing or `null` payload (socket.io sends none at all).
fn payload(d: TryData<Value>) -> Option<Value> {
    d.0.ok().filter(|v| !v.is_null())
}

pub fn register(io: &SocketIo, state: Arc<AppState>) {
    io.ns("/", move |s: SocketRef| {
        // A namespace connect on a transport whose sign-in has ended since
        // its handshake: refused (the sweep closed the first one).
        if !super::sessions::still_valid(&state, &s) {
            let _ = s.disconnect();
            return futures_util::future::Either::Left(std::future::ready(()));
        }
        // socketioxide has sent the CONNECT packet already and spawns the
        // future: the handler is registered before it, here, or an event
        // the client sends at once could find no handler and be dropped.
        let room = super::sessions::caller(&s).map(super::relay::room_of);
        s.join(room.unwrap_or_default());
        listen(&s, state.clone());
        let state = state.clone();
        futures_util::future::Either::Right(async move { greet(s, state).await })
    });
}

fn listen(s: &SocketRef, state: Arc<AppState>) {
    let limit: Limit = Arc::new(Mutex::new(Bucket {
        tokens: BURST,
        at: Instant::now(),
        warned: None,
    }));
    // One handler that dispatches by name rather than one per event: each
    // registration is a boxed handler in a per-socket map, and a thousand
    // sockets feel that (BENCHMARKS.md, the live channel).
    s.on_fallback(
        move |s: SocketRef, EventName(name): EventName, d: TryData<Value>| async move {
            if !admit(&limit, &s) {
                return;
            }
            let d = payload(d);
            // Loading, unloading and downloading models run the service.
            let operator = super::sessions::caller(&s).is_some_and(|c| c.is_operator());
            match name.as_str() {
                "queue:get-status" => queue_status(s, state).await,
                "model:generate" => generate(s, state, d).await,
                "model:load" | "model:unload" | "model:download" if !operator => error(
                    &s,
                    None,
                    None,
                    "only an operator may load, unload or download models; generating loads the model it needs".into(),
                ),
                "model:load" => load(s, state, d).await,
                "model:unload" => unload(s, state).await,
                "model:download" => download(s, state, d).await,
                other => {
                    let other: String = other.chars().take(64).collect();
                    error(&s, None, None, format!("unknown event {other:?}"));
                }
            }
        },
    );
}

async fn greet(s: SocketRef, state: Arc<AppState>) {
    let _ = s.emit("model:status", &state.models.status());
    match queue_for(&s, &state).await {
        Ok(q) => {
            let _ = s.emit("queue:update", &q);
        }
        Err(e) => tracing::warn!(error = %e, "queue state for a new socket"),
    }
}

/// The queue as this socket's caller may see it.
async fn queue_for(s: &SocketRef, state: &AppState) -> Result<wire::QueueUpdate, String> {
    let caller = super::sessions::caller(s)
        .cloned()
        .ok_or_else(|| "sign in again".to_string())?;
    let viewer = state.viewer(&caller).await.map_err(|e| e.to_string())?;
    relay::queue_update(state, &viewer)
        .await
        .map_err(|e| e.to_string())
}

async fn queue_status(s: SocketRef, state: Arc<AppState>) {
    match queue_for(&s, &state).await {
        Ok(q) => {
            let _ = s.emit("queue:update", &q);
        }
        Err(e) => error(&s, None, None, format!("the queue cannot be read now: {e}")),
    }
}

async fn generate(s: SocketRef, state: Arc<AppState>, d: Option<Value>) {
    let g = match wire::generate(d) {
        Ok(g) => g,
        Err(m) => return error(&s, None, None, m),
    };
    let (kind, model) = (g.kind.as_str(), g.model_key.clone());
    let _ = s.emit(
        "model:generation-progress",
        &GenerationEvent::stage(&g.id, kind, &model, "queued", 0),
    );
    let Some(caller) = super::sessions::caller(&s).cloned() else {
        return error(&s, Some(g.id), None, "sign in again".into());
    };
    match generate::start(&state, &caller, &g.id, g.kind, &g.model_key).await {
        Ok(Started::Cached(_)) => {
            let bus = |e| state.catalog.announce_now(Event::Generation(e));
            bus(GenerationEvent::stage(
                &g.id,
                kind,
                &model,
                "checking_cache",
                0,
            ));
            let mut done = GenerationEvent::stage(&g.id, kind, &model, "complete", 100);
            done.success = Some(true);
            done.cached = Some(true);
            bus(done);
        }
        // The worker tells every socket how it goes.
        Ok(Started::Queued { .. }) => {}
        Err(e) => {
            let message = e.body.message;
            error(&s, Some(g.id.clone()), Some(model.clone()), message.clone());
            let mut done = GenerationEvent::stage(&g.id, kind, &model, "complete", 100);
            done.success = Some(false);
            done.error = Some(message);
            let _ = s.emit("model:generation-complete", &done);
        }
    }
}

async fn load(s: SocketRef, state: Arc<AppState>, d: Option<Value>) {
    let l = match wire::load(d) {
        Ok(l) => l,
        Err(m) => return error(&s, None, None, m),
    };
    // Success and failure are both announced to every socket as
    // `model:status`; the asker also gets `model:error`.
    match state
        .models
        .ensure_loaded(&l.model_key, Trigger::Manual, l.device)
        .await
    {
        // Loaded already: nothing was announced, so the asker hears it here.
        Ok(()) => {
            let _ = s.emit("model:status", &state.models.status());
        }
        Err(e) => error(&s, None, Some(l.model_key), e.to_string()),
    }
}

async fn unload(s: SocketRef, state: Arc<AppState>) {
    // `unloaded` is announced whatever was loaded, nothing included.
    if let Err(e) = state.models.unload(None).await {
        error(&s, None, None, e.to_string());
    }
}

async fn download(s: SocketRef, state: Arc<AppState>, d: Option<Value>) {
    let key = match wire::download(d) {
        Ok(k) => k,
        Err(m) => return error(&s, None, None, m),
    };
    // Minutes for the large models: the socket carries on meanwhile.
    tokio::spawn(async move {
        if let Err(e) = state.models.download(&key).await {
            error(&s, None, Some(key), e.to_string());
        }
    });
}
