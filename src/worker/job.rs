//! One job's life and how it ends. The outcome of an item is one of
//! five, so recording it reads as a table.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::{process, slots::Used, stages::Stages, Shared};
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

/// Why nothing can be stored now (a full disk, a read-only database).
pub(super) fn blocked(shared: &Shared) -> Option<String> {
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

/// Where a job is, for what its cancellation does: before the AI it is
/// returned to the queue at once; at the AI or storing it gets the grace.
const PREPARING: u8 = 0;
const AT_AI: u8 = 1;

/// A job claimed by the dispatcher, until its outcome is recorded.
pub(super) struct Claimed {
    pub item: QueueRow,
    /// The app asked for it (priority 0), or it was promoted since.
    pub on_demand: bool,
    /// Counted as prepared ahead of the AI until it gets a slot.
    pub ahead: super::dispatch::Ahead,
    /// Cancelled when background work stops (an on-demand job ignores it).
    pub bg: CancellationToken,
}

/// One job's whole life, in its own task: prepared, sent with a slot
/// held, stored, recorded. A panic fails this item, not the worker.
pub(super) async fn run(shared: Arc<Shared>, job: Claimed) {
    use std::sync::atomic::{AtomicU8, Ordering};
    let item = job.item.clone();
    let bg = job.bg.clone();
    let started = std::time::Instant::now();
    let span = tracing::info_span!("item", queue_id = %item.id, media_id = %item.media_item_id);
    let stage = Arc::new(AtomicU8::new(PREPARING));
    let mut body = tokio::spawn(body(shared.clone(), job, stage.clone()).instrument(span.clone()));
    let result = tokio::select! {
        r = &mut body => Some(r),
        _ = shared.cancelled(item.id, &bg) => None,
    };
    let result = match result {
        Some(r) => Some(r),
        None if stage.load(Ordering::SeqCst) == PREPARING => {
            body.abort();
            let _ = (&mut body).await;
            None
        }
        None => match tokio::time::timeout(shared.grace, &mut body).await {
            Ok(r) => Some(r),
            Err(_) => {
                body.abort();
                let _ = (&mut body).await;
                None
            }
        },
    };
    let stop = &shared.shutdown;
    let recording = async {
        match result {
            Some(Ok(Outcome::Completed)) => {
                shared.processed.fetch_add(1, Ordering::Relaxed);
                shared.completed_now();
            }
            Some(Ok(Outcome::Unavailable(msg))) => release(&shared, item.id, Some(msg), stop).await,
            Some(Ok(Outcome::Paused(msg))) => {
                tracing::warn!(reason = %msg, "item returned to the queue; processing pauses");
                shared.pause(Some(msg.clone()));
                release(&shared, item.id, Some(msg), stop).await;
            }
            Some(Ok(Outcome::Failed(msg))) => fail(&shared, item.id, msg, true, stop).await,
            Some(Ok(Outcome::Refused(msg))) => {
                tracing::warn!(error = %msg, "failed without retrying: retrying cannot help");
                fail(&shared, item.id, msg, false, stop).await;
            }
            Some(Err(join)) => fail(&shared, item.id, panic_message(&join), true, stop).await,
            None => {
                tracing::info!("unfinished when background work stopped; returned to the queue");
                release(&shared, item.id, None, stop).await;
            }
        }
    };
    recording.instrument(span).await;
    crate::metrics::item_processed(started.elapsed());
    shared.job_ended(item.id);
}

async fn body(
    shared: Arc<Shared>,
    job: Claimed,
    stage: Arc<std::sync::atomic::AtomicU8>,
) -> Outcome {
    let Claimed {
        item,
        on_demand,
        mut ahead,
        ..
    } = job;
    let media = match shared.catalog.media(item.media_item_id).await {
        Ok(m) => m,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let stages = Stages::new(&shared, &item, &media);
    stages.at("fetching_image", 10);
    // The app's job waits for the AI while its input is fetched: a
    // background job prepared earlier must not take the AI first.
    let (prepared, slot) = if on_demand {
        let mut prep = std::pin::pin!(process::prepare(&shared, &item));
        let mut acq = std::pin::pin!(shared.slots.acquire_early(item.id, item.priority, item.seq));
        let (mut p, mut s) = (None, None);
        while p.is_none() || s.is_none() {
            tokio::select! {
                r = &mut prep, if p.is_none() => match r {
                    Ok(r) => {
                        p = Some(r);
                        shared.slots.ready(item.id);
                    }
                    Err(o) => return o,
                },
                r = &mut acq, if s.is_none() => s = Some(r),
            }
        }
        (
            p.expect("loop ends with both"),
            s.expect("loop ends with both"),
        )
    } else {
        let p = match process::prepare(&shared, &item).await {
            Ok(p) => p,
            Err(o) => return o,
        };
        let s = shared.slots.acquire(item.id, item.priority, item.seq).await;
        (p, s)
    };
    ahead.done();
    stage.store(AT_AI, std::sync::atomic::Ordering::SeqCst);
    let ep = slot.endpoint().clone();
    let sent = std::time::Instant::now();
    let answer = process::at_ai(&shared, &ep.url, &item, prepared, &stages).await;
    match &answer {
        Ok(_) => {
            ep.set_error(None);
            slot.release(Used::Answered(sent.elapsed()));
        }
        Err(Outcome::Unavailable(msg)) => {
            ep.mark_down(&shared, msg.clone());
            slot.release(Used::Down);
        }
        Err(Outcome::Failed(msg) | Outcome::Refused(msg)) => {
            ep.set_error(Some(msg.clone()));
            slot.release(Used::Failed);
        }
        Err(_) => slot.release(Used::Answered(sent.elapsed())),
    }
    let made = match answer {
        Ok(m) => m,
        Err(o) => return o,
    };
    let on_demand = on_demand || shared.slots.is_promoted(item.id);
    process::store(&shared, &item, made, on_demand, &stages).await
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
