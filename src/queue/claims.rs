//! The worker's side of the state machine: claiming the best claimable
//! item, and the ways a claimed item ends (completed, failed with or
//! without a retry, released back to the queue).

use chrono::{DateTime, Utc};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use uuid::Uuid;

use super::{
    store::{get, get_w, ids_with_status, requeue, transition, QUEUE_DELAYED, QUEUE_READY},
    FailOutcome, QueueError, QueueRow, Status,
};
use crate::storage::StorageError;

/// Moves items whose backoff has run out into the ready index.
fn promote_due(txn: &WriteTransaction, now: DateTime<Utc>) -> Result<(), StorageError> {
    let now_ms = now.timestamp_millis().max(0) as u64;
    let due: Vec<u128> = {
        let delayed = txn.open_table(QUEUE_DELAYED)?;
        let mut ids = Vec::new();
        for entry in delayed.range(..=(now_ms, u64::MAX))? {
            ids.push(entry?.1.value());
        }
        ids
    };
    for qid in due {
        let old = get(txn, Uuid::from_u128(qid))?.ok_or_else(|| {
            StorageError::Corrupt(format!("delayed index names missing item {qid}"))
        })?;
        let mut row = old.clone();
        row.retry_at = None;
        transition(txn, Some(&old), &row)?;
    }
    Ok(())
}

/// Whether `claim_next(below)` would find something: a read-only look.
pub fn has_claimable(
    txn: &ReadTransaction,
    now: DateTime<Utc>,
    below: u32,
) -> Result<bool, StorageError> {
    let first = txn
        .open_table(QUEUE_READY)?
        .first()?
        .map(|(k, _)| k.value().0);
    if first.is_some_and(|p| p < below) {
        return Ok(true);
    }
    Ok(next_due(txn)?.is_some_and(|due| due <= now))
}

/// Earliest moment a delayed item becomes claimable, for the worker's timer.
pub fn next_due(txn: &ReadTransaction) -> Result<Option<DateTime<Utc>>, StorageError> {
    let table = txn.open_table(QUEUE_DELAYED)?;
    let first = table.first()?.map(|(k, _)| k.value().0);
    Ok(first.and_then(|ms| DateTime::from_timestamp_millis(ms as i64)))
}

/// Takes the best claimable item whose priority is below `below` (`1`:
/// only the app's own requests) and marks it `processing`.
pub fn claim_next(
    txn: &WriteTransaction,
    now: DateTime<Utc>,
    below: u32,
) -> Result<Option<QueueRow>, QueueError> {
    promote_due(txn, now)?;
    let first = txn
        .open_table(QUEUE_READY)?
        .first()?
        .map(|(k, v)| (k.value().0, v.value()));
    let Some((priority, qid)) = first else {
        return Ok(None);
    };
    if priority >= below {
        return Ok(None);
    }
    let old = get_w(txn, Uuid::from_u128(qid))?;
    let mut row = old.clone();
    row.status = Status::Processing;
    row.attempts += 1;
    row.started_at = Some(now.into());
    row.completed_at = None;
    transition(txn, Some(&old), &row)?;
    Ok(Some(row))
}

fn processing(
    txn: &WriteTransaction,
    id: Uuid,
    action: &'static str,
) -> Result<QueueRow, QueueError> {
    let row = get_w(txn, id)?;
    if row.status != Status::Processing {
        return Err(QueueError::InvalidTransition {
            from: row.status.as_str(),
            action,
        });
    }
    Ok(row)
}

pub fn complete(
    txn: &WriteTransaction,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<QueueRow, QueueError> {
    let old = processing(txn, id, "complete")?;
    let mut row = old.clone();
    row.status = Status::Completed;
    row.completed_at = Some(now.into());
    row.last_error = None;
    row.processing_duration_seconds = row
        .started_at
        .map(|s| (now - *s).num_milliseconds().max(0) as f64 / 1000.0);
    transition(txn, Some(&old), &row)?;
    Ok(row)
}

pub fn fail(
    txn: &WriteTransaction,
    id: Uuid,
    error: String,
    now: DateTime<Utc>,
    backoff: impl FnOnce(u32) -> Option<chrono::Duration>,
) -> Result<QueueRow, QueueError> {
    let old = processing(txn, id, "fail")?;
    let mut row = old.clone();
    row.last_error = Some(error);
    row.error_count += 1;
    let retry = (row.attempts < row.max_attempts)
        .then(|| backoff(row.attempts))
        .flatten();
    let outcome = match retry {
        Some(wait) => FailOutcome::Retry {
            retry_at: now + wait,
        },
        None => FailOutcome::Failed,
    };
    match outcome {
        FailOutcome::Retry { retry_at } => {
            requeue(txn, &mut row, now)?;
            row.retry_at = Some(retry_at.into());
        }
        FailOutcome::Failed => {
            row.status = Status::Failed;
            row.completed_at = Some(now.into());
        }
    }
    transition(txn, Some(&old), &row)?;
    Ok(row)
}

pub fn release(
    txn: &WriteTransaction,
    id: Uuid,
    note: Option<String>,
) -> Result<QueueRow, QueueError> {
    let old = processing(txn, id, "release")?;
    let mut row = old.clone();
    requeue(txn, &mut row, Utc::now())?;
    // Released work keeps its place in line: the item did nothing wrong.
    row.seq = old.seq;
    row.attempts = old.attempts.saturating_sub(1);
    if note.is_some() {
        row.last_error = note;
    }
    transition(txn, Some(&old), &row)?;
    Ok(row)
}

pub fn requeue_in_flight(txn: &WriteTransaction) -> Result<Vec<QueueRow>, QueueError> {
    ids_with_status(txn, Status::Processing)?
        .into_iter()
        .map(|id| release(txn, id, None))
        .collect()
}
