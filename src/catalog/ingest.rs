//! Storing a received file as a media item and queueing it: the file is
//! typed by its bytes and renamed into place, then one transaction writes
//! the media row, its indexes and its queue entry, committed only after
//! the directory is fsynced.

use chrono::Utc;
use uuid::Uuid;

use super::{items::new_item, Catalog, CatalogError, Durability};
use crate::{
    media::{self, upload::Received, MediaError, MediaRow, MediaType, Source},
    queue::{self, QueueRow},
    storage::Reader,
};

/// Where a new item came from, beyond the bytes.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub immich_asset_id: Option<String>,
    pub immich_variant: Option<String>,
    pub captured_at: Option<crate::timestamp::Timestamp>,
    pub duration_seconds: Option<f64>,
    /// Whose it is (the Immich asset's owner, or the user who uploaded it).
    pub owner: Option<String>,
}

/// The key identical bytes are found by: the bytes themselves for an
/// operator's items (as before sign-in existed), bytes and owner for a
/// person's, so that one person's upload never answers with another's.
fn dedupe_key(sha: &[u8; 32], owner: Option<&str>) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    match owner {
        None => sha.to_vec(),
        Some(o) => Sha256::new()
            .chain_update(b"owner:")
            .chain_update(o.as_bytes())
            .chain_update(sha)
            .finalize()
            .to_vec(),
    }
}

pub struct Stored {
    pub media: MediaRow,
    pub queue: QueueRow,
    /// The same bytes were stored before: nothing new was written.
    pub duplicate: bool,
}

/// The stored item with these bytes, with its queue entry.
fn existing(txn: &impl Reader, sha: &[u8]) -> Result<Option<(MediaRow, QueueRow)>, CatalogError> {
    let Some(m) = media::store::find_checksum(txn, sha)? else {
        return Ok(None);
    };
    Ok(queue::store::get_by_media(txn, m.id)?.map(|q| (m, q)))
}

impl Catalog {
    /// Types, renames and records a received file. A byte-identical file
    /// already stored wins: the new copy is dropped and the old ids returned.
    pub async fn ingest(&self, rx: Received, origin: Origin) -> Result<Stored, CatalogError> {
        let (media_type, mime, ext) = media::upload::sniff(&rx.head)?;
        let sha = rx.sha256;
        let key = dedupe_key(&sha, origin.owner.as_deref());
        let duplicate = |found: (MediaRow, QueueRow)| Stored {
            media: found.0,
            queue: found.1,
            duplicate: true,
        };
        let k = key.clone();
        if let Some(found) = self.store.read(move |txn| existing(txn, &k)).await? {
            return Ok(duplicate(found));
        }
        let id = Uuid::now_v7();
        let name = format!("{id}.{ext}");
        let dir = self.dirs.uploads.clone();
        let final_path = dir.join(&name);
        let (file, size, original_filename) = (rx.file, rx.size, rx.original_filename);
        let path = final_path.clone();
        // Reading the header and renaming touch the disk: off the executor.
        let dims = tokio::task::spawn_blocking(move || -> Result<_, MediaError> {
            let dims = match media_type {
                MediaType::Photo => imagesize::size(file.path())
                    .map(|d| (Some(d.width as u32), Some(d.height as u32)))
                    .unwrap_or((None, None)),
                MediaType::Video => (None, None),
            };
            file.rename_into(&path)?;
            Ok(dims)
        })
        .await
        .map_err(|e| MediaError::Io(std::io::Error::other(e.to_string())))??;
        let now = Utc::now();
        let row = MediaRow {
            id,
            original_filename,
            media_type,
            file_path: name,
            file_size: size,
            mime_type: mime.to_string(),
            width: dims.0,
            height: dims.1,
            duration_seconds: origin.duration_seconds,
            frame_rate: None,
            checksum: hex::encode(sha),
            captured_at: origin.captured_at,
            uploaded_at: now.into(),
            source: if origin.immich_asset_id.is_some() {
                Source::Immich
            } else {
                Source::Upload
            },
            immich_asset_id: origin.immich_asset_id,
            immich_variant: origin.immich_variant,
            created_at: now.into(),
            updated_at: now.into(),
            seq: 0,
            owner: origin.owner,
            via: None,
        };
        let committed = self
            .commit(Durability::After(dir), move |txn, ch| {
                // Checked again inside the transaction: two identical uploads may race.
                if let Some(found) = existing(txn, &key)? {
                    return Ok(Err(found));
                }
                let media = media::store::insert(txn, row.clone(), &key)?;
                let model = crate::settings::store::default_model_of(txn, row.owner.as_deref())?;
                let item = new_item(&media, queue::DEFAULT_MAX_ATTEMPTS, &model);
                let queue = queue::store::insert_new(txn, &item)?;
                ch.item(&queue);
                Ok::<_, CatalogError>(Ok((media, queue)))
            })
            .await;
        match committed {
            Ok(Ok((media, queue))) => Ok(Stored {
                media,
                queue,
                duplicate: false,
            }),
            Ok(Err(found)) => {
                let _ = tokio::fs::remove_file(&final_path).await;
                Ok(duplicate(found))
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&final_path).await;
                Err(e)
            }
        }
    }
}
