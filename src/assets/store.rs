//! Asset tables. A row, its unique key, its map entry and its file index
//! entry are written in one transaction, always through [`put`] and
//! [`remove`].

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use uuid::Uuid;

use super::{AssetRow, Format, Kind};
use crate::{
    media::store::FILES,
    storage::{decode, encode, get_row, Reader, StorageError, TableSpec},
    table_spec,
};

/// asset id -> asset row (JSON)
pub const ASSETS: TableDefinition<u128, &[u8]> = TableDefinition::new("assets");
/// `<media>/<kind>/<model>/<format>` -> asset id: one row per key, and a
/// media item's rows by the prefix `<media>/`
pub const ASSET_KEYS: TableDefinition<&str, u128> = TableDefinition::new("asset_keys");
/// `<immich id or "null">\t<kind>\t<model>\t<format>` -> asset id: the
/// asset map read from keys alone
pub const ASSET_MAP: TableDefinition<&str, u128> = TableDefinition::new("asset_map");

pub const TABLES: &[TableSpec] = &[
    table_spec!(ASSETS, json),
    table_spec!(ASSET_KEYS),
    table_spec!(ASSET_MAP),
];

fn map_key(row: &AssetRow) -> String {
    format!(
        "{}\t{}\t{}\t{}",
        row.immich_asset_id.as_deref().unwrap_or("null"),
        row.kind.as_str(),
        row.model_key,
        row.format.as_str()
    )
}

pub fn get(txn: &impl Reader, id: Uuid) -> Result<Option<AssetRow>, StorageError> {
    get_row(txn, ASSETS, id)
}

pub fn find(
    txn: &impl Reader,
    media: Uuid,
    kind: Kind,
    model: &str,
    format: Format,
) -> Result<Option<AssetRow>, StorageError> {
    let id = txn
        .table(ASSET_KEYS)?
        .get(super::key(media, kind, model, format).as_str())?
        .map(|v| v.value());
    id.map_or(Ok(None), |id| get(txn, Uuid::from_u128(id)))
}

/// Whether a row of the key exists (a read of the index alone).
pub fn find_key(
    txn: &impl Reader,
    media: Uuid,
    kind: Kind,
    model: &str,
    format: Format,
) -> Result<bool, StorageError> {
    Ok(txn
        .table(ASSET_KEYS)?
        .get(super::key(media, kind, model, format).as_str())?
        .is_some())
}

/// Every asset of a media item, newest first.
pub fn of_media(txn: &impl Reader, media: Uuid) -> Result<Vec<AssetRow>, StorageError> {
    let prefix = format!("{media}/");
    let end = format!("{media}0");
    let keys = txn.table(ASSET_KEYS)?;
    let mut rows = Vec::new();
    for e in keys.range(prefix.as_str()..end.as_str())? {
        let id = e?.1.value();
        if let Some(r) = get(txn, Uuid::from_u128(id))? {
            rows.push(r);
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.generated_at));
    Ok(rows)
}

/// The asset map: (Immich id or `null`, kind, model) for every asset, in
/// key order, read from the index alone.
pub fn map(txn: &impl Reader) -> Result<Vec<(String, String, String)>, StorageError> {
    let table = txn.table(ASSET_MAP)?;
    let mut out = Vec::new();
    for e in table.iter()? {
        let (k, _) = e?;
        let mut parts = k.value().split('\t');
        if let (Some(immich), Some(kind), Some(model)) = (parts.next(), parts.next(), parts.next())
        {
            out.push((immich.to_string(), kind.to_string(), model.to_string()));
        }
    }
    Ok(out)
}

/// Stores `row`, replacing the row of the same key; returns the replaced
/// row, whose file the caller removes after the commit.
pub fn put(txn: &WriteTransaction, row: &AssetRow) -> Result<Option<AssetRow>, StorageError> {
    let old_id = txn
        .open_table(ASSET_KEYS)?
        .get(row.key().as_str())?
        .map(|v| v.value());
    let old = match old_id {
        Some(id) if id != row.id.as_u128() => {
            let old = get(txn, Uuid::from_u128(id))?;
            if let Some(o) = &old {
                remove(txn, o)?;
            }
            old
        }
        _ => None,
    };
    txn.open_table(ASSETS)?
        .insert(row.id.as_u128(), encode(row).as_slice())?;
    txn.open_table(ASSET_KEYS)?
        .insert(row.key().as_str(), row.id.as_u128())?;
    txn.open_table(ASSET_MAP)?
        .insert(map_key(row).as_str(), row.id.as_u128())?;
    txn.open_table(FILES)?
        .insert(row.file_key().as_str(), row.media_item_id.as_u128())?;
    Ok(old)
}

/// Rewrites a row in place (access counters); its keys do not change.
pub fn touch(txn: &WriteTransaction, row: &AssetRow) -> Result<(), StorageError> {
    txn.open_table(ASSETS)?
        .insert(row.id.as_u128(), encode(row).as_slice())?;
    Ok(())
}

/// Removes a row and its index entries (not its file).
pub fn remove(txn: &WriteTransaction, row: &AssetRow) -> Result<(), StorageError> {
    txn.open_table(ASSETS)?.remove(row.id.as_u128())?;
    let mut keys = txn.open_table(ASSET_KEYS)?;
    if keys.get(row.key().as_str())?.map(|v| v.value()) == Some(row.id.as_u128()) {
        keys.remove(row.key().as_str())?;
    }
    let mut map = txn.open_table(ASSET_MAP)?;
    if map.get(map_key(row).as_str())?.map(|v| v.value()) == Some(row.id.as_u128()) {
        map.remove(map_key(row).as_str())?;
    }
    txn.open_table(FILES)?.remove(row.file_key().as_str())?;
    Ok(())
}

/// Removes every asset of a media item; returns them for their files.
pub fn remove_media(txn: &WriteTransaction, media: Uuid) -> Result<Vec<AssetRow>, StorageError> {
    let rows = of_media(txn, media)?;
    for r in &rows {
        remove(txn, r)?;
    }
    Ok(rows)
}

/// Schema 3 step: every legacy depth map row (one per media item) becomes a
/// `depth` asset of the model that made it (`small` when unknown), with
/// its format, file and times; the old table is dropped.
pub fn migrate_depth_maps(txn: &WriteTransaction) -> Result<u64, StorageError> {
    use crate::media::{store::DEPTH_MAPS, DepthMap, MediaRow};
    let olds: Vec<DepthMap> = {
        let t = txn.open_table(DEPTH_MAPS)?;
        let mut v = Vec::new();
        for e in t.iter()? {
            v.push(decode(e?.1.value())?);
        }
        v
    };
    let n = olds.len() as u64;
    for d in olds {
        let media: Option<MediaRow> = get_row(txn, crate::media::store::MEDIA, d.media_item_id)?;
        let model = if super::DEPTH_MODELS.contains(&d.model_version.as_str()) {
            d.model_version.clone()
        } else {
            "small".to_string()
        };
        let format = if d.format == "zip" {
            Format::Zip
        } else {
            Format::Png
        };
        let mut metadata = std::collections::BTreeMap::new();
        metadata.insert("model_name".to_string(), d.model_name.clone());
        metadata.insert("migrated_from".to_string(), "depth_maps".to_string());
        put(
            txn,
            &AssetRow {
                id: d.id,
                media_item_id: d.media_item_id,
                immich_asset_id: media.and_then(|m| m.immich_asset_id),
                kind: Kind::Depth,
                model_key: model,
                format,
                file_name: d.file_path,
                file_size: d.file_size,
                width: d.width,
                height: d.height,
                checksum: d.checksum,
                metadata,
                generated_at: d.generated_at,
                access_count: d.access_count,
                accessed_at: d.accessed_at,
            },
        )?;
    }
    txn.delete_table(DEPTH_MAPS)?;
    Ok(n)
}
