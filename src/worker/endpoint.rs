//! One AI service URL: whether it answers, its last error, and the task
//! that probes `/health` while it does not.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::{ai::AiError, events::Event};

pub struct Endpoint {
    pub url: String,
    pub in_flight: AtomicUsize,
    reachable: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Wakes the health probe when a slot found the endpoint down.
    down: Notify,
}

impl Endpoint {
    pub fn new(url: String) -> Self {
        Endpoint {
            url,
            in_flight: AtomicUsize::new(0),
            // Optimistic: the first request finds out.
            reachable: AtomicBool::new(true),
            last_error: Mutex::new(None),
            down: Notify::new(),
        }
    }

    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::SeqCst)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap().clone()
    }

    pub fn set_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap() = e;
    }

    /// Marks the endpoint down; its slots wait until the probe sees it up.
    pub fn mark_down(&self, shared: &Shared, error: String) {
        self.set_error(Some(error.clone()));
        if self.reachable.swap(false, Ordering::SeqCst) {
            tracing::warn!(url = %self.url, error = %error, "AI endpoint unavailable; items wait without using attempts");
            shared
                .catalog
                .events()
                .publish(Event::AiEndpoint(crate::events::AiEndpointEvent {
                    url: self.url.clone(),
                    reachable: false,
                    last_error: Some(error),
                }));
        }
        self.down.notify_one();
    }

    fn mark_up(&self, shared: &Shared) {
        if !self.reachable.swap(true, Ordering::SeqCst) {
            tracing::info!(url = %self.url, "AI endpoint available again");
            shared
                .catalog
                .events()
                .publish(Event::AiEndpoint(crate::events::AiEndpointEvent {
                    url: self.url.clone(),
                    reachable: true,
                    last_error: None,
                }));
        }
        self.set_error(None);
        // Its slots can be handed out again, and more work prepared.
        shared.slots.wake();
        shared.kick.notify_one();
    }
}

/// While the endpoint is down, probes `/health` with backoff (0.25 s
/// doubling to 15 s) and brings it back when the model is loaded.
pub async fn watch(shared: Arc<Shared>, ep: Arc<Endpoint>, stop: CancellationToken) {
    loop {
        if ep.reachable() {
            tokio::select! {
                _ = ep.down.notified() => {}
                _ = stop.cancelled() => return,
            }
            continue;
        }
        let mut delay = Duration::from_millis(250);
        let mut hint = NotReadyHint::new(shared.not_ready_hint);
        while !ep.reachable() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => return,
            }
            match shared.ai.ready(&ep.url).await {
                Ok(()) => ep.mark_up(&shared),
                Err(e) => {
                    if let AiError::NotReady(status) = &e {
                        hint.not_ready(&ep.url, status);
                    } else {
                        hint.reset();
                    }
                    ep.set_error(Some(e.to_string()));
                    // Never probe less often than the hint period, so a
                    // short period (tests) is honoured.
                    delay = (delay * 2).min(Duration::from_secs(15)).min(hint.every);
                }
            }
        }
    }
}

/// A model that stays unloaded is usually a download that failed or a
/// machine without room for it: after `every`, and then once per `every`,
/// the log says which service and what it reports.
struct NotReadyHint {
    every: Duration,
    since: Option<Instant>,
    last: Option<Instant>,
}

impl NotReadyHint {
    fn new(every: Duration) -> Self {
        NotReadyHint {
            every,
            since: None,
            last: None,
        }
    }

    fn reset(&mut self) {
        self.since = None;
    }

    fn not_ready(&mut self, url: &str, status: &str) {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        let due = now.duration_since(since) >= self.every
            && self
                .last
                .is_none_or(|l| now.duration_since(l) >= self.every);
        if due {
            self.last = Some(now);
            tracing::warn!(
                url,
                reported = status,
                waited_secs = now.duration_since(since).as_secs(),
                "the AI service has not loaded its model; check its log (a model download may have \
                 failed or need room), or load one through its /api/models routes; items wait \
                 without using attempts"
            );
        }
    }
}
