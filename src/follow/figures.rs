//! The figures shown of a library ("ready for 3D: X of Y photos"), what is
//! skipped and why, and the disk the 3D assets use, read in one go from
//! the tables.

use std::collections::BTreeMap;

use poem_openapi::Object;
use redb::ReadableTable;
use serde::Serialize;

use super::{store, AssetState, Figures, OwnerState, Skip, SkippedExample, SkippedGroup};
use crate::{
    assets::{self, AssetRow, Format, Kind},
    queue::{self, Status},
    storage::{decode, Reader, StorageError},
};

/// Examples kept per reason.
const EXAMPLES: usize = 5;

/// A library's figures as stored (the estimate is added by the caller,
/// who knows the rate).
pub fn library(
    txn: &impl Reader,
    owner: &OwnerState,
    model: &str,
) -> Result<Figures, StorageError> {
    let mut f = Figures {
        owner_id: owner.owner_id.clone(),
        owner_name: owner.name.clone(),
        model: model.to_string(),
        ready: 0,
        photos: 0,
        left: 0,
        waiting_for_preview: 0,
        eta_seconds: None,
        skipped: Vec::new(),
        trashed: 0,
        gone: 0,
        last_sync_at: owner.last_sync_at,
        syncing: owner.sweep.is_some(),
        last_error: owner.last_error.clone(),
    };
    let mut skipped: BTreeMap<Skip, (u64, Vec<SkippedExample>)> = BTreeMap::new();
    let mut skip = |reason: Skip, asset_id: &str, file_name: &str, error: Option<String>| {
        let (n, ex) = skipped.entry(reason).or_default();
        *n += 1;
        if ex.len() < EXAMPLES {
            ex.push(SkippedExample {
                asset_id: asset_id.to_string(),
                file_name: file_name.to_string(),
                error,
            });
        }
    };
    store::each(txn, &owner.owner_id, |r| {
        match &r.state {
            AssetState::Wanted => {
                f.photos += 1;
                let Some(m) = r.media_id else {
                    f.left += 1;
                    return Ok(());
                };
                if assets::store::find_key(txn, m, Kind::Depth, model, Format::Png)? {
                    f.ready += 1;
                    return Ok(());
                }
                match queue::store::get_job(txn, m, Kind::Depth, model)? {
                    Some(j) if j.status == Status::Failed => {
                        let error = j.last_error.map(|e| e.chars().take(300).collect());
                        skip(Skip::Failed, &r.asset_id, &r.file_name, error);
                    }
                    _ => f.left += 1,
                }
            }
            AssetState::NoPreview => {
                f.photos += 1;
                f.left += 1;
                f.waiting_for_preview += 1;
            }
            AssetState::Evicted { .. } => {
                f.photos += 1;
                // The app may have asked for it since.
                let made = match r.media_id {
                    Some(m) => assets::store::find_key(txn, m, Kind::Depth, model, Format::Png)?,
                    None => false,
                };
                if made {
                    f.ready += 1;
                } else {
                    skip(Skip::DiskBudget, &r.asset_id, &r.file_name, None);
                }
            }
            AssetState::Skipped {
                reason: Skip::Hidden,
            } => {}
            AssetState::Skipped { reason } => skip(*reason, &r.asset_id, &r.file_name, None),
            AssetState::Trashed { .. } => f.trashed += 1,
            AssetState::Gone { .. } => f.gone += 1,
        }
        Ok(())
    })?;
    f.skipped = skipped
        .into_iter()
        .map(|(reason, (count, examples))| SkippedGroup {
            reason,
            says: reason.says().to_string(),
            count,
            examples,
        })
        .collect();
    Ok(f)
}

/// The disk 3D assets use.
#[derive(Debug, Clone, Default, PartialEq, Object, Serialize)]
#[oai(rename = "AssetDisk", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    /// Bytes of every generated file.
    pub used_bytes: u64,
    /// `ASSET_DISK_BUDGET` (`null`: no limit).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_bytes: Option<u64>,
    /// Per kind and model.
    pub by_model: Vec<ModelDisk>,
}

#[derive(Debug, Clone, PartialEq, Object, Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct ModelDisk {
    /// `depth` or `splat`.
    pub kind: Kind,
    pub model: String,
    pub files: u64,
    pub bytes: u64,
}

/// Every asset row, read once: the disk per model, and the rows
/// themselves for the budget (only when `keep_rows`).
pub fn disk(txn: &impl Reader, keep_rows: bool) -> Result<(Disk, Vec<AssetRow>), StorageError> {
    let mut per: BTreeMap<(Kind, String), (u64, u64)> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut used = 0;
    for e in txn.table(assets::store::ASSETS)?.iter()? {
        let row: AssetRow = decode(e?.1.value())?;
        used += row.file_size;
        let slot = per.entry((row.kind, row.model_key.clone())).or_default();
        slot.0 += 1;
        slot.1 += row.file_size;
        if keep_rows {
            rows.push(row);
        }
    }
    let by_model = per
        .into_iter()
        .map(|((kind, model), (files, bytes))| ModelDisk {
            kind,
            model,
            files,
            bytes,
        })
        .collect();
    Ok((
        Disk {
            used_bytes: used,
            budget_bytes: None,
            by_model,
        },
        rows,
    ))
}
