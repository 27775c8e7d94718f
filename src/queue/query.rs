//! Read-only views of the queue: stats, summary and listing. Stats and
//! summary read the counters; listing walks an index, never the table.

use poem_openapi::{Enum, Object};
use redb::{ReadTransaction, ReadableTable};
use serde::Serialize;
use uuid::Uuid;

use super::{
    store::{
        get, QUEUE, QUEUE_BY_PRIORITY, QUEUE_BY_SEQ, QUEUE_BY_STATUS_PRIORITY, QUEUE_BY_STATUS_SEQ,
        QUEUE_COUNTS,
    },
    QueueRow, Status,
};
use crate::storage::{collect_walk, decode, guarded, Listed, StorageError};

/// Items per status: what `/api/queue/stats`, the `stats` event and
/// `/metrics` all show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Object, Serialize)]
#[oai(rename = "StatsCounts")]
pub struct Stats {
    pub queued: u64,
    pub processing: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub pending: u64,
}

impl Stats {
    pub fn get(&self, s: Status) -> u64 {
        match s {
            Status::Pending => self.pending,
            Status::Queued => self.queued,
            Status::Processing => self.processing,
            Status::Completed => self.completed,
            Status::Failed => self.failed,
            Status::Cancelled => self.cancelled,
        }
    }

    fn slot(&mut self, s: Status) -> &mut u64 {
        match s {
            Status::Pending => &mut self.pending,
            Status::Queued => &mut self.queued,
            Status::Processing => &mut self.processing,
            Status::Completed => &mut self.completed,
            Status::Failed => &mut self.failed,
            Status::Cancelled => &mut self.cancelled,
        }
    }

    pub fn total(&self) -> u64 {
        Status::ALL.iter().map(|s| self.get(*s)).sum()
    }
}

pub fn stats(txn: &ReadTransaction) -> Result<Stats, StorageError> {
    let counts = txn.open_table(QUEUE_COUNTS)?;
    let mut out = Stats::default();
    for s in Status::ALL {
        *out.slot(s) = counts.get(s.code())?.map(|v| v.value().0).unwrap_or(0);
    }
    Ok(out)
}

#[derive(Debug, Clone, Object)]
pub struct SummaryRow {
    pub status: Status,
    pub count: u64,
    pub avg_attempts: f64,
    #[oai(nullable)]
    pub avg_processing_time_seconds: Option<f64>,
}

pub fn summary(txn: &ReadTransaction) -> Result<Vec<SummaryRow>, StorageError> {
    let counts = txn.open_table(QUEUE_COUNTS)?;
    let mut out = Vec::new();
    for s in Status::ALL {
        let Some((n, att, ms, timed)) = counts.get(s.code())?.map(|v| v.value()) else {
            continue;
        };
        if n == 0 {
            continue;
        }
        out.push(SummaryRow {
            status: s,
            count: n,
            avg_attempts: att as f64 / n as f64,
            avg_processing_time_seconds: (timed > 0).then(|| ms as f64 / timed as f64 / 1000.0),
        });
    }
    Ok(out)
}

/// Sort keys of `/api/queue/items` (`orderBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum OrderBy {
    Priority,
    QueuedAt,
    StartedAt,
    CompletedAt,
    Attempts,
    FileSize,
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub order: OrderBy,
    pub descending: bool,
    pub limit: usize,
    pub offset: usize,
}

/// One page of items and the number of items matching the filter. Rows
/// that cannot be read are skipped and listed (see [`Listed`]).
pub fn list(txn: &ReadTransaction, q: &ListQuery) -> Result<(Listed<QueueRow>, u64), StorageError> {
    let counts = stats(txn)?;
    let total = q
        .status
        .map(|s| counts.get(s))
        .unwrap_or_else(|| counts.total());
    let mut out = Listed::default();
    macro_rules! walk {
        ($table:expr, $range:expr) => {{
            let table = guarded(|| Ok(txn.open_table($table)?))?;
            collect_walk(
                || {
                    let iter = table.range($range)?.map(|e| e.map(|(_, v)| v.value()));
                    Ok(page(iter, q))
                },
                &mut out.unreadable,
            )
        }};
    }
    let ids = match (q.order, q.status) {
        (OrderBy::Priority, Some(s)) => {
            let c = s.code();
            walk!(
                QUEUE_BY_STATUS_PRIORITY,
                (c, 0, 0)..=(c, u32::MAX, u64::MAX)
            )
        }
        (OrderBy::Priority, None) => walk!(QUEUE_BY_PRIORITY, (0, 0)..=(u32::MAX, u64::MAX)),
        (OrderBy::QueuedAt, Some(s)) => {
            let c = s.code();
            walk!(QUEUE_BY_STATUS_SEQ, (c, 0)..=(c, u64::MAX))
        }
        (OrderBy::QueuedAt, None) => walk!(QUEUE_BY_SEQ, 0..=u64::MAX),
        // No index for these: they read the filtered rows once and sort.
        // Documented in the README as the slow orders.
        (_, _) => {
            sorted_scan(txn, q, &mut out)?;
            return Ok((out, total));
        }
    };
    for id in ids {
        match guarded(|| get(txn, Uuid::from_u128(id))) {
            Ok(Some(row)) => out.rows.push(row),
            Ok(None) => {}
            Err(e) => out.unreadable.push(e),
        }
    }
    Ok((out, total))
}

/// The page of an index walk, in the requested direction.
fn page<'a, T: 'a>(
    iter: impl DoubleEndedIterator<Item = T> + 'a,
    q: &ListQuery,
) -> Box<dyn Iterator<Item = T> + 'a> {
    if q.descending {
        Box::new(iter.rev().skip(q.offset).take(q.limit))
    } else {
        Box::new(iter.skip(q.offset).take(q.limit))
    }
}

fn sorted_scan(
    txn: &ReadTransaction,
    q: &ListQuery,
    out: &mut Listed<QueueRow>,
) -> Result<(), StorageError> {
    let ids: Vec<u128> = match q.status {
        Some(s) => {
            let idx = guarded(|| Ok(txn.open_table(QUEUE_BY_STATUS_SEQ)?))?;
            let c = s.code();
            collect_walk(
                || {
                    Ok(idx
                        .range((c, 0)..=(c, u64::MAX))?
                        .map(|e| e.map(|(_, v)| v.value())))
                },
                &mut out.unreadable,
            )
        }
        None => {
            let idx = guarded(|| Ok(txn.open_table(QUEUE_BY_SEQ)?))?;
            collect_walk(
                || Ok(idx.iter()?.map(|e| e.map(|(_, v)| v.value()))),
                &mut out.unreadable,
            )
        }
    };
    let mut rows: Vec<QueueRow> = Vec::with_capacity(ids.len());
    for id in ids {
        match guarded(|| get(txn, Uuid::from_u128(id))) {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => {}
            Err(e) => out.unreadable.push(e),
        }
    }
    let key = |r: &QueueRow| -> (i128, u64) {
        let v = match q.order {
            OrderBy::StartedAt => r
                .started_at
                .map(|t| t.timestamp_micros() as i128)
                .unwrap_or(i128::MIN),
            OrderBy::CompletedAt => r
                .completed_at
                .map(|t| t.timestamp_micros() as i128)
                .unwrap_or(i128::MIN),
            OrderBy::Attempts => r.attempts as i128,
            OrderBy::FileSize => r.file_size as i128,
            OrderBy::Priority => r.priority as i128,
            OrderBy::QueuedAt => r.seq as i128,
        };
        (v, r.seq)
    };
    rows.sort_by_key(key);
    if q.descending {
        rows.reverse();
    }
    out.rows = rows.into_iter().skip(q.offset).take(q.limit).collect();
    Ok(())
}

/// Recounts every status from the rows: the check that counters never drift.
pub fn recount(txn: &ReadTransaction) -> Result<Stats, StorageError> {
    let mut out = Stats::default();
    for e in txn.open_table(QUEUE)?.iter()? {
        let row: QueueRow = decode(e?.1.value())?;
        *out.slot(row.status) += 1;
    }
    Ok(out)
}
