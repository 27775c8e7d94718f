//! Media tables. A media row, its checksum, upload-order and file index
//! entries and its queue entry are always written in one transaction.

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use uuid::Uuid;

use super::{file_name_of, DepthMap, FileDir, MediaRow};
use crate::{
    queue::{self, QueueError, QueueRow},
    storage::{
        collect_walk, decode, encode, guarded, next_seq, Listed, Reader, StorageError, TableSpec,
    },
    table_spec,
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
/// `uploads/<name>` or `depth_maps/<name>` -> media id of the row naming
/// that file (the start-up clean-up asks it before removing anything)
pub const FILES: TableDefinition<&str, u128> = TableDefinition::new("files");

pub const TABLES: &[TableSpec] = &[
    table_spec!(MEDIA, json),
    table_spec!(MEDIA_BY_CHECKSUM),
    table_spec!(MEDIA_BY_IMMICH),
    table_spec!(MEDIA_BY_SEQ),
    table_spec!(DEPTH_MAPS, json),
    table_spec!(FILES),
];

const SEQ: &str = "media_seq";

/// Schema 2: rows name files relative to their directory (schema 1 held
/// absolute paths, so a moved or restored data dir served 404s), and every
/// named file is in `FILES`.
pub fn migrate_to_v2(txn: &WriteTransaction) -> Result<(), StorageError> {
    let mut files = txn.open_table(FILES)?;
    let rows: Vec<(u128, MediaRow)> = {
        let media = txn.open_table(MEDIA)?;
        let mut out = Vec::new();
        for e in media.iter()? {
            let (k, v) = e?;
            out.push((k.value(), decode(v.value())?));
        }
        out
    };
    let mut media = txn.open_table(MEDIA)?;
    for (id, mut row) in rows {
        row.file_path = file_name_of(&row.file_path);
        files.insert(FileDir::Uploads.key(&row.file_path).as_str(), id)?;
        media.insert(id, encode(&row).as_slice())?;
    }
    let depths: Vec<(u128, DepthMap)> = {
        let table = txn.open_table(DEPTH_MAPS)?;
        let mut out = Vec::new();
        for e in table.iter()? {
            let (k, v) = e?;
            out.push((k.value(), decode(v.value())?));
        }
        out
    };
    let mut table = txn.open_table(DEPTH_MAPS)?;
    for (id, mut d) in depths {
        d.file_path = file_name_of(&d.file_path);
        files.insert(FileDir::DepthMaps.key(&d.file_path).as_str(), id)?;
        table.insert(id, encode(&d).as_slice())?;
    }
    Ok(())
}

/// The media id of the row naming `key` (see [`FileDir::key`]).
pub fn file_owner(txn: &ReadTransaction, key: &str) -> Result<Option<u128>, StorageError> {
    Ok(txn.open_table(FILES)?.get(key)?.map(|v| v.value()))
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
    txn.open_table(FILES)?
        .insert(FileDir::Uploads.key(&row.file_path).as_str(), id)?;
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
    let mut files = txn.open_table(FILES)?;
    files.remove(FileDir::Uploads.key(&row.file_path).as_str())?;
    if let Some(d) = &depth {
        files.remove(FileDir::DepthMaps.key(&d.file_path).as_str())?;
    }
    Ok(Some((row, depth)))
}

/// Records a new depth map in place of the item's previous one (returned,
/// so its file can go once the commit is durable).
pub fn replace_depth(
    txn: &WriteTransaction,
    depth: &DepthMap,
) -> Result<Option<DepthMap>, StorageError> {
    let id = depth.media_item_id.as_u128();
    let old = txn
        .open_table(DEPTH_MAPS)?
        .insert(id, encode(depth).as_slice())?
        .map(|v| decode::<DepthMap>(v.value()))
        .transpose()?;
    let mut files = txn.open_table(FILES)?;
    if let Some(o) = &old {
        files.remove(FileDir::DepthMaps.key(&o.file_path).as_str())?;
    }
    files.insert(FileDir::DepthMaps.key(&depth.file_path).as_str(), id)?;
    Ok(old)
}

/// Rewrites a depth record whose file stays the same (access counts).
pub fn touch_depth(txn: &WriteTransaction, depth: &DepthMap) -> Result<(), StorageError> {
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
) -> Result<Listed<MediaWithStatus>, StorageError> {
    let mut out = Listed::default();
    let by_seq = guarded(|| Ok(txn.open_table(MEDIA_BY_SEQ)?))?;
    let ids: Vec<u128> = collect_walk(
        || {
            Ok(by_seq
                .iter()?
                .rev()
                .skip(offset)
                .take(limit)
                .map(|e| e.map(|(_, v)| v.value())))
        },
        &mut out.unreadable,
    );
    for id in ids.into_iter().map(Uuid::from_u128) {
        let joined = guarded(|| {
            let Some(row) = load::<MediaRow>(&txn.open_table(MEDIA)?, id)? else {
                return Ok(None);
            };
            let q = queue::store::get_by_media(txn, id)?;
            let d = load::<DepthMap>(&txn.open_table(DEPTH_MAPS)?, id)?;
            Ok(Some((row, q, d)))
        });
        match joined {
            Ok(Some(r)) => out.rows.push(r),
            Ok(None) => {}
            Err(e) => out.unreadable.push(e),
        }
    }
    Ok(out)
}
