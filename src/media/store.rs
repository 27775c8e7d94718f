//! Media tables. A media row, its checksum and upload-order index entries
//! and its queue entry are always written in one transaction.

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use uuid::Uuid;

use super::{DepthMap, MediaRow};
use crate::{
    queue::{self, QueueError, QueueRow},
    storage::{decode, encode, next_seq, Reader, StorageError},
};

/// media id -> media row (JSON)
pub const MEDIA: TableDefinition<u128, &[u8]> = TableDefinition::new("media");
/// SHA-256 of the bytes -> media id (duplicate uploads)
pub const MEDIA_BY_CHECKSUM: TableDefinition<&[u8], u128> =
    TableDefinition::new("media_by_checksum");
/// Immich asset id -> media id (idempotent imports)
pub const MEDIA_BY_IMMICH: TableDefinition<&str, u128> = TableDefinition::new("media_by_immich");
/// upload seq -> media id (newest-first listing)
pub const MEDIA_BY_SEQ: TableDefinition<u64, u128> = TableDefinition::new("media_by_seq");
/// media id -> depth map record (JSON)
pub const DEPTH_MAPS: TableDefinition<u128, &[u8]> = TableDefinition::new("depth_maps");

const SEQ: &str = "media_seq";

pub fn init(txn: &WriteTransaction) -> Result<(), StorageError> {
    txn.open_table(MEDIA)?;
    txn.open_table(MEDIA_BY_CHECKSUM)?;
    txn.open_table(MEDIA_BY_IMMICH)?;
    txn.open_table(MEDIA_BY_SEQ)?;
    txn.open_table(DEPTH_MAPS)?;
    Ok(())
}

fn load<T: serde::de::DeserializeOwned>(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: Uuid,
) -> Result<Option<T>, StorageError> {
    match table.get(id.as_u128())? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

pub fn get(txn: &ReadTransaction, id: Uuid) -> Result<Option<MediaRow>, StorageError> {
    load(&txn.open_table(MEDIA)?, id)
}

pub fn get_w(txn: &WriteTransaction, id: Uuid) -> Result<Option<MediaRow>, StorageError> {
    load(&txn.open_table(MEDIA)?, id)
}

pub fn depth_w(txn: &WriteTransaction, media_id: Uuid) -> Result<Option<DepthMap>, StorageError> {
    load(&txn.open_table(DEPTH_MAPS)?, media_id)
}

pub fn depth(txn: &ReadTransaction, media_id: Uuid) -> Result<Option<DepthMap>, StorageError> {
    load(&txn.open_table(DEPTH_MAPS)?, media_id)
}

/// The existing item with these bytes, and its queue entry.
pub fn find_checksum(
    txn: &impl Reader,
    sha256: &[u8],
) -> Result<Option<(MediaRow, Option<QueueRow>)>, StorageError> {
    let id = txn
        .table(MEDIA_BY_CHECKSUM)?
        .get(sha256)?
        .map(|v| v.value());
    with_queue(txn, id)
}

pub fn find_immich(
    txn: &impl Reader,
    asset_id: &str,
) -> Result<Option<(MediaRow, Option<QueueRow>)>, StorageError> {
    let id = txn
        .table(MEDIA_BY_IMMICH)?
        .get(asset_id)?
        .map(|v| v.value());
    with_queue(txn, id)
}

fn with_queue(
    txn: &impl Reader,
    id: Option<u128>,
) -> Result<Option<(MediaRow, Option<QueueRow>)>, StorageError> {
    let Some(id) = id else { return Ok(None) };
    let Some(media) = load(&txn.table(MEDIA)?, Uuid::from_u128(id))? else {
        return Ok(None);
    };
    let qid = txn
        .table(queue::store::QUEUE_BY_MEDIA)?
        .get(id)?
        .map(|v| v.value());
    let q = match qid {
        Some(qid) => txn
            .table(queue::store::QUEUE)?
            .get(qid)?
            .map(|v| decode(v.value()))
            .transpose()?,
        None => None,
    };
    Ok(Some((media, q)))
}

/// Stores a new media row with its indexes and queues it, in the caller's
/// transaction.
pub fn insert(
    txn: &WriteTransaction,
    mut row: MediaRow,
    sha256: &[u8],
) -> Result<(MediaRow, QueueRow), StorageError> {
    row.seq = next_seq(txn, SEQ)?;
    let id = row.id.as_u128();
    txn.open_table(MEDIA)?.insert(id, encode(&row).as_slice())?;
    txn.open_table(MEDIA_BY_CHECKSUM)?.insert(sha256, id)?;
    txn.open_table(MEDIA_BY_SEQ)?.insert(row.seq, id)?;
    if let Some(asset) = &row.immich_asset_id {
        txn.open_table(MEDIA_BY_IMMICH)?
            .insert(asset.as_str(), id)?;
    }
    let q = queue::store::insert_new(txn, &row, queue::DEFAULT_MAX_ATTEMPTS)?;
    Ok((row, q))
}

/// Removes the rows of a media item; returns them so the caller can delete
/// the files after the commit.
pub fn delete(
    txn: &WriteTransaction,
    id: Uuid,
) -> Result<Option<(MediaRow, Option<DepthMap>)>, QueueError> {
    let Some(row) = get_w(txn, id)? else {
        return Ok(None);
    };
    queue::store::remove_for_media(txn, id)?;
    next_seq(txn, crate::storage::DELETES_SINCE_COMPACTION)?;
    let key = id.as_u128();
    txn.open_table(MEDIA)?.remove(key)?;
    if let Ok(sum) = hex::decode(&row.checksum) {
        txn.open_table(MEDIA_BY_CHECKSUM)?.remove(sum.as_slice())?;
    }
    txn.open_table(MEDIA_BY_SEQ)?.remove(row.seq)?;
    if let Some(asset) = &row.immich_asset_id {
        txn.open_table(MEDIA_BY_IMMICH)?.remove(asset.as_str())?;
    }
    let depth = txn
        .open_table(DEPTH_MAPS)?
        .remove(key)?
        .map(|v| decode::<DepthMap>(v.value()))
        .transpose()?;
    Ok(Some((row, depth)))
}

pub fn put_depth(txn: &WriteTransaction, depth: &DepthMap) -> Result<(), StorageError> {
    txn.open_table(DEPTH_MAPS)?
        .insert(depth.media_item_id.as_u128(), encode(depth).as_slice())?;
    Ok(())
}

/// A media row with its queue entry and depth map, if any.
pub type MediaWithStatus = (MediaRow, Option<QueueRow>, Option<DepthMap>);

/// Newest uploads first, joined with their queue entry and depth map.
pub fn list_recent(
    txn: &ReadTransaction,
    limit: usize,
    offset: usize,
) -> Result<Vec<MediaWithStatus>, StorageError> {
    let by_seq = txn.open_table(MEDIA_BY_SEQ)?;
    let media = txn.open_table(MEDIA)?;
    let depths = txn.open_table(DEPTH_MAPS)?;
    let mut out = Vec::with_capacity(limit);
    for e in by_seq.iter()?.rev().skip(offset).take(limit) {
        let id = Uuid::from_u128(e?.1.value());
        let Some(row) = load::<MediaRow>(&media, id)? else {
            continue;
        };
        let q = queue::store::get_by_media(txn, id)?;
        let d = load::<DepthMap>(&depths, id)?;
        out.push((row, q, d));
    }
    Ok(out)
}

/// Whether a media row or depth map with this id exists (orphan-file check).
pub fn id_known(txn: &ReadTransaction, id: Uuid) -> Result<bool, StorageError> {
    let key = id.as_u128();
    Ok(txn.open_table(MEDIA)?.get(key)?.is_some()
        || txn.open_table(DEPTH_MAPS)?.get(key)?.is_some())
}
