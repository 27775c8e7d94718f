//! One item's processing: its original to the AI service, the answer
//! checked and written beside the other depth maps, then recorded with the
//! item's completion in one transaction.

use crate::timestamp::Timestamp;
use std::sync::Arc;

use uuid::Uuid;

use super::{job::Outcome, Shared};
use crate::{
    ai::AiError,
    catalog::CatalogError,
    media::{DepthMap, MediaError},
    queue::QueueRow,
    storage::{Fault, StorageError},
};

pub(super) async fn process(shared: Arc<Shared>, url: String, item: QueueRow) -> Outcome {
    let dirs = shared.catalog.dirs().clone();
    let media = match shared.catalog.media(item.media_item_id).await {
        Ok(m) => m,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let original = dirs.original(&media);
    let result = match shared
        .ai
        .depth(&url, &media, &original, &dirs.depth_maps)
        .await
    {
        Ok(r) => r,
        Err(AiError::Disk(e)) if crate::storage::io_is_disk_full(&e) => {
            return Outcome::Paused(format!("disk full while writing the depth map: {e}"))
        }
        Err(e) if !e.counts_attempt() => return Outcome::Unavailable(e.to_string()),
        Err(e) if !e.retryable() => return Outcome::Refused(e.to_string()),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let depth_id = Uuid::now_v7();
    let name = format!("{depth_id}.{}", result.format);
    let path = dirs.depth_maps.join(&name);
    let record = DepthMap {
        id: depth_id,
        media_item_id: media.id,
        file_path: name,
        file_size: result.size,
        format: result.format.to_string(),
        width: result.width,
        height: result.height,
        model_name: shared.model_name.clone(),
        model_version: result
            .model_used
            .clone()
            .unwrap_or_else(|| shared.model_version.clone()),
        checksum: hex::encode(result.sha256),
        generated_at: Timestamp::now(),
        accessed_at: None,
        access_count: 0,
    };
    let file = result.file;
    let to = path.clone();
    let renamed = tokio::task::spawn_blocking(move || file.rename_into(&to)).await;
    match renamed {
        Ok(Ok(())) => {}
        Ok(Err(e)) if crate::storage::io_is_disk_full(&e) => {
            return Outcome::Paused(format!("storing the depth map failed: {e}"))
        }
        Ok(Err(e)) => return Outcome::Failed(format!("storing the depth map failed: {e}")),
        Err(e) => return Outcome::Failed(format!("storing the depth map failed: {e}")),
    }
    match shared.catalog.complete(item.id, record).await {
        Ok(_) => {
            tracing::info!(bytes = result.size, "depth map stored");
            Outcome::Completed
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            if storage_blocked(&e) {
                Outcome::Paused(format!("storing the depth map failed: {e}"))
            } else {
                Outcome::Failed(format!("storing the depth map failed: {e}"))
            }
        }
    }
}

/// Whether storing failed because nothing can be written now.
fn storage_blocked(e: &CatalogError) -> bool {
    match e {
        CatalogError::Media(MediaError::DiskFull) => true,
        CatalogError::Media(MediaError::Io(io)) => crate::storage::io_is_disk_full(io),
        other => other.storage().is_some_and(|s| {
            s.is_disk_full() || matches!(s, StorageError::ReadOnly(_) | StorageError::Reopening)
        }),
    }
}
