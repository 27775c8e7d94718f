//! Queue tables and the state machine on them. Every function takes the
//! caller's transaction so that a media row and its queue row (or a depth
//! map and the completion) commit together.

use chrono::{DateTime, Utc};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use uuid::Uuid;

use super::{FailOutcome, QueueError, QueueRow, Status};
use crate::{
    media,
    storage::{decode, encode, next_seq, StorageError, TableSpec},
    table_spec,
};

/// queue id -> queue row (JSON)
pub const QUEUE: TableDefinition<u128, &[u8]> = TableDefinition::new("queue");
/// media id -> queue id (a media item has at most one queue entry)
pub const QUEUE_BY_MEDIA: TableDefinition<u128, u128> = TableDefinition::new("queue_by_media");
/// (priority, seq) -> queue id, `queued` items claimable now; claim takes the first
pub const QUEUE_READY: TableDefinition<(u32, u64), u128> = TableDefinition::new("queue_ready");
/// (retry_at unix ms, seq) -> queue id, `queued` items waiting out a backoff
pub const QUEUE_DELAYED: TableDefinition<(u64, u64), u128> = TableDefinition::new("queue_delayed");
/// (status, priority, seq) -> queue id, listing one status by priority
pub const QUEUE_BY_STATUS_PRIORITY: TableDefinition<(u8, u32, u64), u128> =
    TableDefinition::new("queue_by_status_priority");
/// (status, seq) -> queue id, listing one status by enqueue time
pub const QUEUE_BY_STATUS_SEQ: TableDefinition<(u8, u64), u128> =
    TableDefinition::new("queue_by_status_seq");
/// (priority, seq) -> queue id, listing every status by priority
pub const QUEUE_BY_PRIORITY: TableDefinition<(u32, u64), u128> =
    TableDefinition::new("queue_by_priority");
/// seq -> queue id, listing every status by enqueue time
pub const QUEUE_BY_SEQ: TableDefinition<u64, u128> = TableDefinition::new("queue_by_seq");
/// status -> (items, sum of attempts, sum of processing ms, items with a duration)
pub const QUEUE_COUNTS: TableDefinition<u8, (u64, u64, u64, u64)> =
    TableDefinition::new("queue_counts");

const SEQ: &str = "queue_seq";

pub const TABLES: &[TableSpec] = &[
    table_spec!(QUEUE, json),
    table_spec!(QUEUE_BY_MEDIA),
    table_spec!(QUEUE_READY),
    table_spec!(QUEUE_DELAYED),
    table_spec!(QUEUE_BY_STATUS_PRIORITY),
    table_spec!(QUEUE_BY_STATUS_SEQ),
    table_spec!(QUEUE_BY_PRIORITY),
    table_spec!(QUEUE_BY_SEQ),
    table_spec!(QUEUE_COUNTS),
];

fn load(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: Uuid,
) -> Result<Option<QueueRow>, StorageError> {
    match table.get(id.as_u128())? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

pub fn get(txn: &ReadTransaction, id: Uuid) -> Result<Option<QueueRow>, StorageError> {
    load(&txn.open_table(QUEUE)?, id)
}

pub fn get_by_media(
    txn: &ReadTransaction,
    media_id: Uuid,
) -> Result<Option<QueueRow>, StorageError> {
    let Some(qid) = txn
        .open_table(QUEUE_BY_MEDIA)?
        .get(media_id.as_u128())?
        .map(|v| v.value())
    else {
        return Ok(None);
    };
    get(txn, Uuid::from_u128(qid))
}

fn get_w(txn: &WriteTransaction, id: Uuid) -> Result<QueueRow, QueueError> {
    load(&txn.open_table(QUEUE)?, id)?.ok_or(QueueError::NotFound(id))
}

fn duration_ms(row: &QueueRow) -> Option<u64> {
    row.processing_duration_seconds
        .map(|s| (s * 1000.0).round() as u64)
}

/// Adds (`sign` = 1) or removes (`sign` = -1) a row's index entries and
/// its share of the counters.
fn index(txn: &WriteTransaction, row: &QueueRow, add: bool) -> Result<(), StorageError> {
    let id = row.id.as_u128();
    let s = row.status.code();
    macro_rules! put {
        ($table:expr, $key:expr) => {
            if add {
                txn.open_table($table)?.insert($key, id)?;
            } else {
                txn.open_table($table)?.remove($key)?;
            }
        };
    }
    put!(QUEUE_BY_STATUS_PRIORITY, (s, row.priority, row.seq));
    put!(QUEUE_BY_STATUS_SEQ, (s, row.seq));
    put!(QUEUE_BY_PRIORITY, (row.priority, row.seq));
    put!(QUEUE_BY_SEQ, row.seq);
    if row.status == Status::Queued {
        match row.retry_at {
            Some(at) => put!(
                QUEUE_DELAYED,
                (at.timestamp_millis().max(0) as u64, row.seq)
            ),
            None => put!(QUEUE_READY, (row.priority, row.seq)),
        }
    }
    let mut counts = txn.open_table(QUEUE_COUNTS)?;
    let (n, att, ms, timed) = counts.get(s)?.map(|v| v.value()).unwrap_or((0, 0, 0, 0));
    let dur = duration_ms(row);
    let next = if add {
        (
            n + 1,
            att + row.attempts as u64,
            ms + dur.unwrap_or(0),
            timed + dur.is_some() as u64,
        )
    } else {
        (
            n.saturating_sub(1),
            att.saturating_sub(row.attempts as u64),
            ms.saturating_sub(dur.unwrap_or(0)),
            timed.saturating_sub(dur.is_some() as u64),
        )
    };
    counts.insert(s, next)?;
    Ok(())
}

/// The one way a stored row changes: old indexes out, row written, new in.
fn transition(
    txn: &WriteTransaction,
    old: Option<&QueueRow>,
    new: &QueueRow,
) -> Result<(), StorageError> {
    if let Some(old) = old {
        index(txn, old, false)?;
    }
    txn.open_table(QUEUE)?
        .insert(new.id.as_u128(), encode(new).as_slice())?;
    index(txn, new, true)
}

/// Puts a row back at the end of the line for its priority.
fn requeue(
    txn: &WriteTransaction,
    row: &mut QueueRow,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    row.status = Status::Queued;
    row.seq = next_seq(txn, SEQ)?;
    row.queued_at = now;
    row.started_at = None;
    row.completed_at = None;
    row.retry_at = None;
    Ok(())
}

/// Creates the queue entry of a freshly stored media item (same transaction).
pub fn insert_new(
    txn: &WriteTransaction,
    media: &media::MediaRow,
    max_attempts: u32,
) -> Result<QueueRow, StorageError> {
    let now = Utc::now();
    let row = QueueRow {
        id: Uuid::now_v7(),
        media_item_id: media.id,
        status: Status::Queued,
        priority: super::priority(media.media_type, media.file_size),
        attempts: 0,
        max_attempts,
        last_error: None,
        queued_at: now,
        started_at: None,
        completed_at: None,
        original_filename: media.original_filename.clone(),
        media_type: media.media_type,
        file_size: media.file_size,
        seq: next_seq(txn, SEQ)?,
        retry_at: None,
        error_count: 0,
        processing_duration_seconds: None,
    };
    txn.open_table(QUEUE_BY_MEDIA)?
        .insert(media.id.as_u128(), row.id.as_u128())?;
    transition(txn, None, &row)?;
    Ok(row)
}

/// `POST /api/queue/enqueue/{mediaItemId}`: new entry, or a failed/cancelled
/// (or, with `force`, completed) one requeued under the same id.
pub fn enqueue_media(
    txn: &WriteTransaction,
    media_id: Uuid,
    max_attempts: u32,
    force: bool,
) -> Result<QueueRow, QueueError> {
    let media = media::store::get_w(txn, media_id)?.ok_or(QueueError::MediaNotFound(media_id))?;
    let existing = txn
        .open_table(QUEUE_BY_MEDIA)?
        .get(media_id.as_u128())?
        .map(|v| v.value());
    let Some(qid) = existing else {
        return Ok(insert_new(txn, &media, max_attempts)?);
    };
    let old = get_w(txn, Uuid::from_u128(qid))?;
    match old.status {
        Status::Queued | Status::Pending | Status::Processing => {
            return Err(QueueError::AlreadyQueued {
                queue_id: old.id,
                status: old.status.as_str(),
            })
        }
        Status::Completed if !force => {
            return Err(QueueError::AlreadyQueued {
                queue_id: old.id,
                status: old.status.as_str(),
            })
        }
        Status::Completed | Status::Failed | Status::Cancelled => {}
    }
    let mut row = old.clone();
    requeue(txn, &mut row, Utc::now())?;
    row.attempts = 0;
    row.max_attempts = max_attempts;
    row.last_error = None;
    row.processing_duration_seconds = None;
    transition(txn, Some(&old), &row)?;
    Ok(row)
}

pub fn cancel(txn: &WriteTransaction, id: Uuid) -> Result<QueueRow, QueueError> {
    let old = get_w(txn, id)?;
    if !matches!(old.status, Status::Queued | Status::Pending) {
        return Err(QueueError::InvalidTransition {
            from: old.status.as_str(),
            action: "cancel",
        });
    }
    let mut row = old.clone();
    row.status = Status::Cancelled;
    row.retry_at = None;
    row.completed_at = Some(Utc::now());
    transition(txn, Some(&old), &row)?;
    Ok(row)
}

pub fn retry(txn: &WriteTransaction, id: Uuid) -> Result<QueueRow, QueueError> {
    let old = get_w(txn, id)?;
    if !matches!(old.status, Status::Failed | Status::Cancelled) {
        return Err(QueueError::InvalidTransition {
            from: old.status.as_str(),
            action: "retry",
        });
    }
    let mut row = old.clone();
    requeue(txn, &mut row, Utc::now())?;
    row.attempts = 0;
    row.last_error = None;
    transition(txn, Some(&old), &row)?;
    Ok(row)
}

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
        let old = load(&txn.open_table(QUEUE)?, Uuid::from_u128(qid))?.ok_or_else(|| {
            StorageError::Corrupt(format!("delayed index names missing item {qid}"))
        })?;
        let mut row = old.clone();
        row.retry_at = None;
        transition(txn, Some(&old), &row)?;
    }
    Ok(())
}

/// Whether `claim_next` would find something: a read-only look.
pub fn has_claimable(txn: &ReadTransaction, now: DateTime<Utc>) -> Result<bool, StorageError> {
    if txn.open_table(QUEUE_READY)?.first()?.is_some() {
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

pub fn claim_next(
    txn: &WriteTransaction,
    now: DateTime<Utc>,
) -> Result<Option<QueueRow>, QueueError> {
    promote_due(txn, now)?;
    let first = txn
        .open_table(QUEUE_READY)?
        .first()?
        .map(|(_, v)| v.value());
    let Some(qid) = first else { return Ok(None) };
    let old = get_w(txn, Uuid::from_u128(qid))?;
    let mut row = old.clone();
    row.status = Status::Processing;
    row.attempts += 1;
    row.started_at = Some(now);
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
    row.completed_at = Some(now);
    row.last_error = None;
    row.processing_duration_seconds = row
        .started_at
        .map(|s| (now - s).num_milliseconds().max(0) as f64 / 1000.0);
    transition(txn, Some(&old), &row)?;
    Ok(row)
}

pub fn fail(
    txn: &WriteTransaction,
    id: Uuid,
    error: String,
    now: DateTime<Utc>,
    backoff: impl FnOnce(u32) -> chrono::Duration,
) -> Result<QueueRow, QueueError> {
    let old = processing(txn, id, "fail")?;
    let mut row = old.clone();
    row.last_error = Some(error);
    row.error_count += 1;
    let outcome = if row.attempts < row.max_attempts {
        FailOutcome::Retry {
            retry_at: now + backoff(row.attempts),
        }
    } else {
        FailOutcome::Failed
    };
    match outcome {
        FailOutcome::Retry { retry_at } => {
            requeue(txn, &mut row, now)?;
            row.retry_at = Some(retry_at);
        }
        FailOutcome::Failed => {
            row.status = Status::Failed;
            row.completed_at = Some(now);
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
    let ids: Vec<u128> = {
        let idx = txn.open_table(QUEUE_BY_STATUS_SEQ)?;
        let s = Status::Processing.code();
        let mut ids = Vec::new();
        for entry in idx.range((s, 0)..=(s, u64::MAX))? {
            ids.push(entry?.1.value());
        }
        ids
    };
    ids.into_iter()
        .map(|id| release(txn, Uuid::from_u128(id), None))
        .collect()
}

/// Removes a media item's queue entry (media delete).
pub fn remove_for_media(txn: &WriteTransaction, media_id: Uuid) -> Result<(), QueueError> {
    let qid = txn
        .open_table(QUEUE_BY_MEDIA)?
        .remove(media_id.as_u128())?
        .map(|v| v.value());
    if let Some(qid) = qid {
        let row = get_w(txn, Uuid::from_u128(qid))?;
        if row.status == Status::Processing {
            return Err(QueueError::InvalidTransition {
                from: "processing",
                action: "delete",
            });
        }
        index(txn, &row, false)?;
        txn.open_table(QUEUE)?.remove(qid)?;
    }
    Ok(())
}

/// Every `failed` item back to `queued` with attempts reset.
pub fn retry_all_failed(txn: &WriteTransaction) -> Result<Vec<QueueRow>, QueueError> {
    let ids: Vec<u128> = {
        let idx = txn.open_table(QUEUE_BY_STATUS_SEQ)?;
        let s = Status::Failed.code();
        let mut ids = Vec::new();
        for entry in idx.range((s, 0)..=(s, u64::MAX))? {
            ids.push(entry?.1.value());
        }
        ids
    };
    ids.into_iter()
        .map(|id| retry(txn, Uuid::from_u128(id)))
        .collect()
}
