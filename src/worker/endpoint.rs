//! One AI service URL: its free slots, whether it answers, and the task
//! that probes `/health` while it does not.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::events::Event;

pub struct Endpoint {
    pub url: String,
    pub in_flight: AtomicUsize,
    reachable: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Wakes this endpoint's slots when it becomes reachable again.
    pub back: Notify,
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
            back: Notify::new(),
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
            shared.catalog.events().publish(Event::AiEndpoint {
                url: self.url.clone(),
                reachable: false,
                last_error: Some(error),
            });
        }
        self.down.notify_one();
    }

    fn mark_up(&self, shared: &Shared) {
        if !self.reachable.swap(true, Ordering::SeqCst) {
            tracing::info!(url = %self.url, "AI endpoint available again");
            shared.catalog.events().publish(Event::AiEndpoint {
                url: self.url.clone(),
                reachable: true,
                last_error: None,
            });
        }
        self.set_error(None);
        self.back.notify_waiters();
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
        while !ep.reachable() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => return,
            }
            match shared.ai.ready(&ep.url).await {
                Ok(()) => ep.mark_up(&shared),
                Err(e) => {
                    ep.set_error(Some(e.to_string()));
                    delay = (delay * 2).min(Duration::from_secs(15));
                }
            }
        }
    }
}
