//! The dispatcher: claims jobs and starts one task for each, so that the
//! AI never waits for Immich, for the disk or for the database. It keeps
//! two background jobs prepared ahead (input fetched, waiting for a slot)
//! per slot of the reachable endpoints, so that the next image is ready
//! the moment the AI finishes one even when a claim waits behind a commit
//! and Immich is as slow as the AI; the app's own jobs are claimed
//! whenever they come, however many background jobs are prepared.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use chrono::{Local, Utc};

use super::{
    job::{self, Claimed},
    Shared,
};
use crate::queue::INTERACTIVE_PRIORITY;

/// Background jobs prepared ahead per slot of the reachable endpoints.
const AHEAD_PER_SLOT: usize = 2;

/// Longest wait between two looks at the queue when nothing wakes it.
const BACKSTOP: Duration = Duration::from_secs(5);

/// The app's jobs being prepared at once, at most (a flood of requests
/// waits in the queue, in order).
const MAX_ON_DEMAND_AHEAD: usize = 64;

/// One claimed job counted as prepared ahead of the AI, until it gets a
/// slot or ends.
pub(super) struct Ahead {
    count: Option<Arc<AtomicUsize>>,
    shared: Arc<Shared>,
}

impl Ahead {
    fn new(count: &Arc<AtomicUsize>, shared: &Arc<Shared>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Ahead {
            count: Some(count.clone()),
            shared: shared.clone(),
        }
    }

    /// It has a slot now: the dispatcher may prepare another.
    pub fn done(&mut self) {
        if let Some(c) = self.count.take() {
            c.fetch_sub(1, Ordering::SeqCst);
            self.shared.kick.notify_one();
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.done();
    }
}

pub(super) async fn run(shared: Arc<Shared>) {
    let wake = shared.catalog.wake_handle();
    let stop = shared.shutdown.clone();
    loop {
        if stop.is_cancelled() {
            return;
        }
        for id in shared.catalog.take_promoted() {
            shared.promote(id);
        }
        if let Some(reason) = job::blocked(&shared) {
            shared.pause(Some(reason));
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.cancelled() => return,
            }
            continue;
        }
        shared.pause(None);
        // Registered before looking, so a change in between is not missed.
        let notified = wake.notified();
        let kicked = shared.kick.notified();
        tokio::pin!(notified, kicked);
        notified.as_mut().enable();
        kicked.as_mut().enable();
        let capacity = shared.slots.reachable_capacity(shared.concurrency) * AHEAD_PER_SLOT;
        let now = Local::now();
        let bound = shared.gate.bound(now);
        let want_bg =
            bound > INTERACTIVE_PRIORITY + 1 && shared.ahead_bg.load(Ordering::SeqCst) < capacity;
        let want_app = shared.ahead_app.load(Ordering::SeqCst) < MAX_ON_DEMAND_AHEAD;
        let below = match (capacity > 0, want_bg, want_app) {
            (false, ..) => None,
            (true, true, _) => Some(bound),
            (true, false, true) => Some(INTERACTIVE_PRIORITY + 1),
            (true, false, false) => None,
        };
        if let Some(below) = below {
            match claim(&shared, below).await {
                Ok(Some(item)) => {
                    start(&shared, item);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "claiming failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.cancelled() => return,
                    }
                    continue;
                }
            }
        }
        let mut wait = next_wait(&shared).await;
        if let Some(open) = shared.gate.until_open(now) {
            wait = wait.min(open);
        }
        tokio::select! {
            _ = notified => {}
            _ = kicked => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Claims only when something is claimable: a read is cheaper than an
/// empty write transaction.
async fn claim(
    shared: &Shared,
    below: u32,
) -> Result<Option<crate::queue::QueueRow>, crate::catalog::CatalogError> {
    if !shared.catalog.has_claimable(below).await? {
        return Ok(None);
    }
    shared.catalog.claim_below(below).await
}

async fn next_wait(shared: &Shared) -> Duration {
    match shared.catalog.next_due().await.ok().flatten() {
        Some(at) => (at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(BACKSTOP),
        None => BACKSTOP,
    }
}

fn start(shared: &Arc<Shared>, item: crate::queue::QueueRow) {
    let on_demand = item.priority == INTERACTIVE_PRIORITY;
    let counter = if on_demand {
        &shared.ahead_app
    } else {
        &shared.ahead_bg
    };
    let ahead = Ahead::new(counter, shared);
    shared.job_started(item.id, on_demand);
    let claimed = Claimed {
        item,
        on_demand,
        ahead,
        bg: shared.background_token(),
    };
    crate::tasks::spawn_named("worker-job", job::run(shared.clone(), claimed));
}
