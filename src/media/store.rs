//! Media tables. A media row, its checksum, upload-order and file index
//! entries are always written in one transaction (the catalog adds the
//! queue entry to the same one).

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use uuid::Uuid;

use super::{file_name_of, DepthMap, FileDir, MediaRow};
use crate::{
    storage::{
        collect_walk, decode, encode, get_row, guarded, next_seq, Listed, Reader, StorageError,
        TableSpec,
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
/// media id -> depth map record (JSON); schema 1 and 2 only: schema 3
/// made each one an asset (`assets::store`) and dropped the table
pub const DEPTH_MAPS: TableDefinition<u128, &[u8]> = TableDefinition::new("depth_maps");
/// `uploads/<name>`, `depth_maps/<name>` or `splats/<name>` -> media id of
/// the row naming that file (the start-up clean-up asks it before removing
/// anything)
pub const FILES: TableDefinition<&str, u128> = TableDefinition::new("files");

pub const TABLES: &[TableSpec] = &[
    table_spec!(MEDIA, json),
    table_spec!(MEDIA_BY_CHECKSUM),
    table_spec!(MEDIA_BY_IMMICH),
    table_spec!(MEDIA_BY_SEQ),
    table_spec!(FILES),
];

const SEQ: &str = "media_seq";

/// Schema 2: rows name files relative to their directory (schema 1 held
/// absolute paths, so a moved or restored data dir served 404s), and every
/// named file is in `FILES`.
pub fn migrate_to_v2(txn: &WriteTransaction) -> Result<(), StorageError> {
    relocate::<MediaRow>(txn, MEDIA, FileDir::Uploads, |r| &mut r.file_path)?;
    relocate::<DepthMap>(txn, DEPTH_MAPS, FileDir::DepthMaps, |d| &mut d.file_path)
}

/// Rewrites every row's file location to its name alone and indexes it.
fn relocate<T: serde::Serialize + serde::de::DeserializeOwned>(
    txn: &WriteTransaction,
    def: TableDefinition<u128, &[u8]>,
    dir: FileDir,
    path: impl Fn(&mut T) -> &mut String,
) -> Result<(), StorageError> {
    let rows: Vec<(u128, T)> = {
        let table = txn.open_table(def)?;
        let mut out = Vec::new();
        for e in table.iter()? {
            let (k, v) = e?;
            out.push((k.value(), decode(v.value())?));
        }
        out
    };
    let mut table = txn.open_table(def)?;
    let mut files = txn.open_table(FILES)?;
    for (id, mut row) in rows {
        let p = path(&mut row);
        *p = file_name_of(p);
        files.insert(dir.key(p).as_str(), id)?;
        table.insert(id, encode(&row).as_slice())?;
    }
    Ok(())
}

/// The media id of the row naming `key` (see [`FileDir::key`]).
pub fn file_owner(txn: &ReadTransaction, key: &str) -> Result<Option<u128>, StorageError> {
    Ok(txn.open_table(FILES)?.get(key)?.map(|v| v.value()))
}

pub fn get(txn: &impl Reader, id: Uuid) -> Result<Option<MediaRow>, StorageError> {
    get_row(txn, MEDIA, id)
}

/// The item with these bytes.
pub fn find_checksum(txn: &impl Reader, sha256: &[u8]) -> Result<Option<MediaRow>, StorageError> {
    let id = txn
        .table(MEDIA_BY_CHECKSUM)?
        .get(sha256)?
        .map(|v| v.value());
    id.map_or(Ok(None), |id| get(txn, Uuid::from_u128(id)))
}

/// The item imported from this Immich asset.
pub fn find_immich(txn: &impl Reader, asset_id: &str) -> Result<Option<MediaRow>, StorageError> {
    let id = txn
        .table(MEDIA_BY_IMMICH)?
        .get(asset_id)?
        .map(|v| v.value());
    id.map_or(Ok(None), |id| get(txn, Uuid::from_u128(id)))
}

/// Stores a new media row with its indexes, in the caller's transaction.
pub fn insert(
    txn: &WriteTransaction,
    mut row: MediaRow,
    sha256: &[u8],
) -> Result<MediaRow, StorageError> {
    row.seq = next_seq(txn, SEQ)?;
    let id = row.id.as_u128();
    txn.open_table(MEDIA)?.insert(id, encode(&row).as_slice())?;
    // An item the VR app refers to in Immich has no bytes here.
    if !row.is_referenced() {
        txn.open_table(MEDIA_BY_CHECKSUM)?.insert(sha256, id)?;
        txn.open_table(FILES)?
            .insert(FileDir::Uploads.key(&row.file_path).as_str(), id)?;
    }
    txn.open_table(MEDIA_BY_SEQ)?.insert(row.seq, id)?;
    if let Some(asset) = &row.immich_asset_id {
        txn.open_table(MEDIA_BY_IMMICH)?
            .insert(asset.as_str(), id)?;
    }
    Ok(row)
}

/// Rewrites a stored row whose indexed fields (checksum, file, Immich id,
/// order) are unchanged: what is known of its owner, say.
pub fn update(txn: &WriteTransaction, row: &MediaRow) -> Result<(), StorageError> {
    txn.open_table(MEDIA)?
        .insert(row.id.as_u128(), encode(row).as_slice())?;
    Ok(())
}

/// Removes the rows of a media item; returns it so the caller can delete
/// its file after the commit.
pub fn delete(txn: &WriteTransaction, id: Uuid) -> Result<Option<MediaRow>, StorageError> {
    let Some(row) = get(txn, id)? else {
        return Ok(None);
    };
    next_seq(txn, crate::storage::DELETES_SINCE_COMPACTION)?;
    let key = id.as_u128();
    txn.open_table(MEDIA)?.remove(key)?;
    if let Ok(sum) = hex::decode(&row.checksum) {
        let mut by_sum = txn.open_table(MEDIA_BY_CHECKSUM)?;
        if by_sum.get(sum.as_slice())?.map(|v| v.value()) == Some(key) {
            by_sum.remove(sum.as_slice())?;
        }
    }
    txn.open_table(MEDIA_BY_SEQ)?.remove(row.seq)?;
    if let Some(asset) = &row.immich_asset_id {
        txn.open_table(MEDIA_BY_IMMICH)?.remove(asset.as_str())?;
    }
    if !row.is_referenced() {
        txn.open_table(FILES)?
            .remove(FileDir::Uploads.key(&row.file_path).as_str())?;
    }
    Ok(Some(row))
}

/// Newest uploads first.
pub fn list_recent(
    txn: &ReadTransaction,
    limit: usize,
    offset: usize,
) -> Result<Listed<MediaRow>, StorageError> {
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
        match guarded(|| get(txn, id)) {
            Ok(Some(r)) => out.rows.push(r),
            Ok(None) => {}
            Err(e) => out.unreadable.push(e),
        }
    }
    Ok(out)
}
