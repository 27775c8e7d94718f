//! Queue tables and the state machine on them. Every function takes the
//! caller's transaction so that a media row and its queue row (or a depth
//! map and the completion) commit together.

use crate::timestamp::Timestamp;
use chrono::{DateTime, Utc};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use uuid::Uuid;

use super::{NewItem, QueueError, QueueRow, Status};
use crate::assets::Kind;
use crate::{
    storage::{encode, get_row, next_seq, Reader, StorageError, TableSpec},
    table_spec,
};

/// queue id -> queue row (JSON)
pub const QUEUE: TableDefinition<u128, &[u8]> = TableDefinition::new("queue");
/// media id -> queue id of the item's own entry (its depth map job; the
/// legacy `/api/queue` routes act on it)
pub const QUEUE_BY_MEDIA: TableDefinition<u128, u128> = TableDefinition::new("queue_by_media");
/// `<media>/<kind>/<model>` -> queue id: one job per key, shared by every
/// request for it; a media item's jobs by the prefix `<media>/`
pub const QUEUE_BY_JOB: TableDefinition<&str, u128> = TableDefinition::new("queue_by_job");
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

pub use super::claims::{
    claim_next, complete, fail, has_claimable, next_due, release, requeue_in_flight,
};

pub const TABLES: &[TableSpec] = &[
    table_spec!(QUEUE, json),
    table_spec!(QUEUE_BY_MEDIA),
    table_spec!(QUEUE_BY_JOB),
    table_spec!(QUEUE_READY),
    table_spec!(QUEUE_DELAYED),
    table_spec!(QUEUE_BY_STATUS_PRIORITY),
    table_spec!(QUEUE_BY_STATUS_SEQ),
    table_spec!(QUEUE_BY_PRIORITY),
    table_spec!(QUEUE_BY_SEQ),
    table_spec!(QUEUE_COUNTS),
];

pub fn get(txn: &impl Reader, id: Uuid) -> Result<Option<QueueRow>, StorageError> {
    get_row(txn, QUEUE, id)
}

/// The queue entry of a media item, if it has one.
pub fn get_by_media(txn: &impl Reader, media_id: Uuid) -> Result<Option<QueueRow>, StorageError> {
    let Some(qid) = txn
        .table(QUEUE_BY_MEDIA)?
        .get(media_id.as_u128())?
        .map(|v| v.value())
    else {
        return Ok(None);
    };
    get(txn, Uuid::from_u128(qid))
}

pub(super) fn get_w(txn: &WriteTransaction, id: Uuid) -> Result<QueueRow, QueueError> {
    get(txn, id)?.ok_or(QueueError::NotFound(id))
}

fn duration_ms(row: &QueueRow) -> Option<u64> {
    row.processing_duration_seconds
        .map(|s| (s * 1000.0).round() as u64)
}

/// Adds (`sign` = 1) or removes (`sign` = -1) a row's index entries and
/// its share of the counters.
pub(super) fn index(txn: &WriteTransaction, row: &QueueRow, add: bool) -> Result<(), StorageError> {
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
pub(super) fn transition(
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
pub(super) fn requeue(
    txn: &WriteTransaction,
    row: &mut QueueRow,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    row.status = Status::Queued;
    row.seq = next_seq(txn, SEQ)?;
    row.queued_at = now.into();
    row.started_at = None;
    row.completed_at = None;
    row.retry_at = None;
    Ok(())
}

/// Creates a job (the caller's transaction also holds the media row). A
/// media item's first depth job is its own entry (`QUEUE_BY_MEDIA`).
pub fn insert_new(txn: &WriteTransaction, item: &NewItem) -> Result<QueueRow, StorageError> {
    let now = Utc::now();
    let row = QueueRow {
        id: Uuid::now_v7(),
        media_item_id: item.media_id,
        status: Status::Queued,
        priority: item
            .priority
            .unwrap_or_else(|| super::priority(item.media_type, item.file_size)),
        attempts: 0,
        max_attempts: item.max_attempts,
        last_error: None,
        queued_at: now.into(),
        started_at: None,
        completed_at: None,
        original_filename: item.original_filename.clone(),
        media_type: item.media_type,
        file_size: item.file_size,
        seq: next_seq(txn, SEQ)?,
        retry_at: None,
        error_count: 0,
        processing_duration_seconds: None,
        kind: item.kind,
        model_key: item.model_key.clone(),
    };
    let mut own = txn.open_table(QUEUE_BY_MEDIA)?;
    if item.kind == Kind::Depth && own.get(item.media_id.as_u128())?.is_none() {
        own.insert(item.media_id.as_u128(), row.id.as_u128())?;
    }
    txn.open_table(QUEUE_BY_JOB)?
        .insert(row.job_key().as_str(), row.id.as_u128())?;
    transition(txn, None, &row)?;
    Ok(row)
}

/// The job for (media, kind, model), if there is one.
pub fn get_job(
    txn: &impl Reader,
    media: Uuid,
    kind: Kind,
    model: &str,
) -> Result<Option<QueueRow>, StorageError> {
    let id = txn
        .table(QUEUE_BY_JOB)?
        .get(super::job_key(media, kind, model).as_str())?
        .map(|v| v.value());
    id.map_or(Ok(None), |id| get(txn, Uuid::from_u128(id)))
}

/// Asks for a job: a running or waiting one is shared (and moved up to
/// `item`'s priority when that is more urgent); a finished, failed or
/// cancelled one runs again under the same id; none: a new one.
pub fn request_job(txn: &WriteTransaction, item: &NewItem) -> Result<QueueRow, QueueError> {
    let Some(old) = get_job(txn, item.media_id, item.kind, &item.model_key)? else {
        return Ok(insert_new(txn, item)?);
    };
    let urgent = item.priority.unwrap_or(u32::MAX);
    match old.status {
        Status::Processing | Status::Pending | Status::Queued if urgent >= old.priority => Ok(old),
        // Running already: it keeps running, now as the more urgent job
        // (the worker hears of it from the catalog).
        Status::Processing | Status::Pending => {
            let mut row = old.clone();
            row.priority = urgent;
            transition(txn, Some(&old), &row)?;
            Ok(row)
        }
        Status::Queued => {
            let mut row = old.clone();
            row.priority = urgent;
            // Someone waits for it now: a retry backoff no longer applies.
            if urgent == super::INTERACTIVE_PRIORITY {
                row.retry_at = None;
            }
            transition(txn, Some(&old), &row)?;
            Ok(row)
        }
        Status::Completed | Status::Failed | Status::Cancelled => {
            let mut row = old.clone();
            requeue(txn, &mut row, Utc::now())?;
            row.attempts = 0;
            row.last_error = None;
            row.processing_duration_seconds = None;
            if let Some(p) = item.priority {
                row.priority = p;
            }
            transition(txn, Some(&old), &row)?;
            Ok(row)
        }
    }
}

/// Asks for background work (following Immich): a job is made if there
/// is none; `redo` runs a finished, failed or cancelled one again (the
/// photo changed), `revive` a cancelled one (the photo is wanted again); a
/// waiting or running job is left as it is. `Some` when a row changed.
pub fn want_job(
    txn: &WriteTransaction,
    item: &NewItem,
    redo: bool,
    revive: bool,
) -> Result<Option<QueueRow>, QueueError> {
    let Some(old) = get_job(txn, item.media_id, item.kind, &item.model_key)? else {
        return Ok(Some(insert_new(txn, item)?));
    };
    let again = match old.status {
        Status::Queued | Status::Pending | Status::Processing => false,
        Status::Cancelled => redo || revive,
        Status::Completed | Status::Failed => redo,
    };
    if !again {
        return Ok(None);
    }
    let mut row = old.clone();
    requeue(txn, &mut row, Utc::now())?;
    row.attempts = 0;
    row.last_error = None;
    row.processing_duration_seconds = None;
    row.priority = item.priority.unwrap_or(old.priority);
    transition(txn, Some(&old), &row)?;
    Ok(Some(row))
}

/// `POST /api/queue/enqueue/{mediaItemId}`: new entry, or a failed/cancelled
/// (or, with `force`, completed) one requeued under the same id.
pub fn enqueue(
    txn: &WriteTransaction,
    item: &NewItem,
    force: bool,
) -> Result<QueueRow, QueueError> {
    let existing = txn
        .open_table(QUEUE_BY_MEDIA)?
        .get(item.media_id.as_u128())?
        .map(|v| v.value());
    let adopted = match existing {
        Some(_) => None,
        // An item the VR app made has jobs but no own entry yet: its depth
        // job of this model becomes it.
        None => get_job(txn, item.media_id, item.kind, &item.model_key)?,
    };
    if let Some(job) = &adopted {
        txn.open_table(QUEUE_BY_MEDIA)?
            .insert(item.media_id.as_u128(), job.id.as_u128())?;
    }
    let Some(qid) = existing.or(adopted.map(|j| j.id.as_u128())) else {
        return Ok(insert_new(txn, item)?);
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
    row.max_attempts = item.max_attempts;
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
    row.completed_at = Some(Timestamp::now());
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

/// Removes every job of a media item (media delete); refused while one is
/// being processed.
pub fn remove_for_media(txn: &WriteTransaction, media_id: Uuid) -> Result<(), QueueError> {
    let own = txn
        .open_table(QUEUE_BY_MEDIA)?
        .remove(media_id.as_u128())?
        .map(|v| v.value());
    let prefix = format!("{media_id}/");
    let end = format!("{media_id}0");
    let mut ids: Vec<(String, u128)> = Vec::new();
    for e in txn
        .open_table(QUEUE_BY_JOB)?
        .range(prefix.as_str()..end.as_str())?
    {
        let (k, v) = e?;
        ids.push((k.value().to_string(), v.value()));
    }
    let mut rows: Vec<u128> = ids.iter().map(|(_, id)| *id).collect();
    rows.extend(own.filter(|o| !rows.contains(o)));
    for qid in rows {
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
    let mut jobs = txn.open_table(QUEUE_BY_JOB)?;
    for (k, _) in ids {
        jobs.remove(k.as_str())?;
    }
    Ok(())
}

/// Schema 3 step: rows name their kind and model, and every row is in the
/// job index.
pub fn migrate_jobs(txn: &WriteTransaction) -> Result<u64, StorageError> {
    let rows: Vec<QueueRow> = {
        let t = txn.open_table(QUEUE)?;
        let mut v = Vec::new();
        for e in t.iter()? {
            v.push(crate::storage::decode(e?.1.value())?);
        }
        v
    };
    let mut queue = txn.open_table(QUEUE)?;
    let mut jobs = txn.open_table(QUEUE_BY_JOB)?;
    for row in &rows {
        queue.insert(row.id.as_u128(), encode(row).as_slice())?;
        jobs.insert(row.job_key().as_str(), row.id.as_u128())?;
    }
    Ok(rows.len() as u64)
}

/// Every `failed` item back to `queued` with attempts reset.
pub fn retry_all_failed(txn: &WriteTransaction) -> Result<Vec<QueueRow>, QueueError> {
    ids_with_status(txn, Status::Failed)?
        .into_iter()
        .map(|id| retry(txn, id))
        .collect()
}

/// The ids of every item in `status`, in enqueue order.
pub(super) fn ids_with_status(
    txn: &WriteTransaction,
    status: Status,
) -> Result<Vec<Uuid>, StorageError> {
    let idx = txn.open_table(QUEUE_BY_STATUS_SEQ)?;
    let s = status.code();
    let mut ids = Vec::new();
    for entry in idx.range((s, 0)..=(s, u64::MAX))? {
        ids.push(Uuid::from_u128(entry?.1.value()));
    }
    Ok(ids)
}
