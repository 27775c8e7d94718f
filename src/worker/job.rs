//! One slot's loop and one item's processing. The outcome of an item is
//! one of four, so the loop reads as a table.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::{process::process, Endpoint, Shared};
use crate::{
    catalog::CatalogError,
    media,
    queue::{QueueRow, Status},
    storage::{Fault, StorageError},
};

pub(super) enum Outcome {
    /// Depth map stored and the item completed, in one transaction.
    Completed,
    /// The endpoint is down or loading its model: back to `queued`, no attempt used.
    Unavailable(String),
    /// The disk is full or the database read-only: back to `queued`, no
    /// attempt used; the slots pause until writes are possible again.
    Paused(String),
    /// The attempt failed: retried with backoff, or failed for good.
    Failed(String),
    /// Failed in a way no retry can change (the AI service has no such
    /// endpoint): failed for good at once.
    Refused(String),
}

/// Longest wait between two looks at the queue when nothing wakes the slot.
const BACKSTOP: Duration = Duration::from_secs(5);

/// Why nothing can be stored now (a full disk, a read-only database).
fn blocked(shared: &Shared) -> Option<String> {
    if let Some(reason) = shared.catalog.store().health().write_error {
        return Some(format!("the database accepts no writes: {reason}"));
    }
    let dir = &shared.catalog.dirs().depth_maps;
    (!media::upload::has_space(dir, media::upload::DISK_HEADROOM)).then(|| {
        format!(
            "disk full: less than {} bytes free for depth maps in {}",
            2 * media::upload::DISK_HEADROOM,
            dir.display()
        )
    })
}

pub async fn slot(shared: Arc<Shared>, ep: Arc<Endpoint>, stop: CancellationToken) {
    let wake = shared.catalog.wake_handle();
    loop {
        if stop.is_cancelled() {
            return;
        }
        if let Some(reason) = blocked(&shared) {
            shared.pause(Some(reason));
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.cancelled() => return,
            }
            continue;
        }
        shared.pause(None);
        if !ep.reachable() {
            tokio::select! {
                _ = ep.back.notified() => {}
                _ = tokio::time::sleep(BACKSTOP) => {}
                _ = stop.cancelled() => return,
            }
            continue;
        }
        // Registered before looking, so an enqueue in between is not missed.
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match claim(&shared).await {
            Ok(Some(item)) => run_one(&shared, &ep, item, &stop).await,
            Ok(None) => {
                let wait = next_wait(&shared).await;
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => return,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "claiming failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
    }
}

/// Claims only when something is claimable: a read is cheaper than an
/// empty write transaction.
async fn claim(shared: &Shared) -> Result<Option<QueueRow>, CatalogError> {
    if !shared.catalog.has_claimable().await? {
        return Ok(None);
    }
    shared.catalog.claim_next().await
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

async fn run_one(
    shared: &Arc<Shared>,
    ep: &Arc<Endpoint>,
    item: QueueRow,
    stop: &CancellationToken,
) {
    use std::sync::atomic::Ordering;
    ep.in_flight.fetch_add(1, Ordering::SeqCst);
    shared.in_flight.lock().unwrap().push(item.id);
    // Its own task, so that a panic fails this item and not the slot; its
    // span names the item, so every line of the item's life can be found.
    let started = std::time::Instant::now();
    let span = tracing::info_span!("item", queue_id = %item.id, media_id = %item.media_item_id);
    let mut job = tokio::spawn(
        process(shared.clone(), ep.url.clone(), item.clone()).instrument(span.clone()),
    );
    let result = tokio::select! {
        r = &mut job => Some(r),
        _ = stop.cancelled() => None,
    };
    let result = match result {
        Some(r) => Some(r),
        None => match tokio::time::timeout(shared.grace, &mut job).await {
            Ok(r) => Some(r),
            Err(_) => {
                job.abort();
                None
            }
        },
    };
    let recording = async {
        match result {
            Some(Ok(Outcome::Completed)) => {
                shared.processed.fetch_add(1, Ordering::Relaxed);
                ep.set_error(None);
            }
            Some(Ok(Outcome::Unavailable(msg))) => {
                ep.mark_down(shared, msg.clone());
                release(shared, item.id, Some(msg), stop).await;
            }
            Some(Ok(Outcome::Paused(msg))) => {
                tracing::warn!(reason = %msg, "item returned to the queue; processing pauses");
                shared.pause(Some(msg.clone()));
                release(shared, item.id, Some(msg), stop).await;
            }
            Some(Ok(Outcome::Failed(msg))) => {
                ep.set_error(Some(msg.clone()));
                fail(shared, item.id, msg, true, stop).await;
            }
            Some(Ok(Outcome::Refused(msg))) => {
                tracing::warn!(error = %msg, "failed without retrying: retrying cannot help");
                ep.set_error(Some(msg.clone()));
                fail(shared, item.id, msg, false, stop).await;
            }
            Some(Err(join)) => fail(shared, item.id, panic_message(&join), true, stop).await,
            None => {
                tracing::info!("unfinished at shutdown; returned to the queue");
                release(shared, item.id, None, stop).await;
            }
        }
    };
    recording.instrument(span).await;
    crate::metrics::item_processed(started.elapsed());
    shared.in_flight.lock().unwrap().retain(|id| *id != item.id);
    ep.in_flight.fetch_sub(1, Ordering::SeqCst);
}

/// Whether a failed write will work once the database takes writes again.
fn retry_later(e: &CatalogError) -> bool {
    e.storage().is_some_and(|s| {
        s.is_disk_full() || matches!(s, StorageError::ReadOnly(_) | StorageError::Reopening)
    })
}

/// Records an outcome; while the database takes no writes, waits for it
/// (an item is never left `processing` because a disk was full). Gives up
/// only at shutdown: start-up returns `processing` items to the queue.
async fn record<F, Fut>(
    shared: &Shared,
    stop: &CancellationToken,
    f: F,
) -> Result<QueueRow, CatalogError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<QueueRow, CatalogError>>,
{
    loop {
        match f().await {
            Err(e) if retry_later(&e) && !stop.is_cancelled() => {
                tokio::select! {
                    _ = shared.catalog.store().wait_writable() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.cancelled() => {}
                }
            }
            other => return other,
        }
    }
}

async fn release(shared: &Shared, id: Uuid, note: Option<String>, stop: &CancellationToken) {
    log_err(record(shared, stop, || shared.catalog.release(id, note.clone())).await);
}

async fn fail(shared: &Shared, id: Uuid, msg: String, retry: bool, stop: &CancellationToken) {
    let base = shared.retry_base;
    let r = record(shared, stop, || {
        shared.catalog.fail(id, msg.clone(), move |attempts| {
            retry.then(|| backoff(base, attempts))
        })
    })
    .await;
    if let Ok(row) = &r {
        if row.status == Status::Failed {
            shared
                .failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            super::stages::failed(shared, row).await;
        }
    }
    log_err(r);
}

/// `base * 2^(attempts-1)`, capped at 5 minutes, with full jitter on the
/// upper half so that items failed together do not retry together.
pub fn backoff(base: Duration, attempts: u32) -> chrono::Duration {
    let exp = base.as_secs_f64() * 2f64.powi(attempts.saturating_sub(1).min(20) as i32);
    let capped = exp.min(300.0);
    let jittered = capped * (0.5 + rand::random::<f64>() * 0.5);
    chrono::Duration::milliseconds((jittered * 1000.0) as i64)
}

fn log_err<T>(r: Result<T, CatalogError>) {
    if let Err(e) = r {
        tracing::error!(error = %e, "recording an outcome failed");
    }
}

/// The `last_error` of an item whose processing task panicked.
pub(super) fn panic_message(join: &tokio::task::JoinError) -> String {
    format!("internal error while processing: {join}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic inside an item's task surfaces as a join error that the
    /// slot records on the item; the slot itself keeps running.
    #[tokio::test]
    async fn a_panicking_job_becomes_an_item_error() {
        let job = tokio::spawn(async { panic!("decoder exploded") });
        let err = job
            .await
            .expect_err("the panic is caught by the task boundary");
        assert!(err.is_panic());
        assert!(panic_message(&err).starts_with("internal error while processing"));
        let next = tokio::spawn(async { 1 + 1 }).await.unwrap();
        assert_eq!(next, 2);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let base = Duration::from_secs(2);
        for attempts in 1..8 {
            let d = backoff(base, attempts).num_milliseconds() as f64 / 1000.0;
            let full = (2.0 * 2f64.powi(attempts as i32 - 1)).min(300.0);
            assert!(
                d >= full * 0.5 - 0.001 && d <= full + 0.001,
                "attempt {attempts}: {d}"
            );
        }
        assert!(backoff(base, 30).num_seconds() <= 300);
    }
}
