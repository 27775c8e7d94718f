//! What the routes ask of stored items: reads (one item, pages, counters)
//! and the user's actions (enqueue, cancel, retry, delete).

use crate::timestamp::Timestamp;
use uuid::Uuid;

use super::{Catalog, CatalogError, Durability};
use crate::{
    access::sharing::Viewer,
    assets::{self, AssetRow, Format, Kind},
    media::{self, DepthMap, MediaError, MediaRow},
    queue::{
        self,
        query::{self, ListQuery, Stats, SummaryRow},
        NewItem, QueueError, QueueRow,
    },
    settings,
    storage::{guarded, Listed, Reader, StorageError},
};

/// Rows read at most for a filtered list (a person's view of the queue).
const EVERY: usize = 1_000_000;

/// A media item with its queue entry and depth map, for the status list.
pub type MediaStatus = (MediaRow, Option<QueueRow>, Option<DepthMap>);

/// A queue row with what the detail view adds.
pub struct ItemDetail {
    pub item: QueueRow,
    pub media: Option<MediaRow>,
}

pub(super) fn media_or_404(txn: &impl Reader, id: Uuid) -> Result<MediaRow, CatalogError> {
    Ok(media::store::get(txn, id)?.ok_or(MediaError::NotFound(id))?)
}

/// The depth asset the old routes show for an item: the one of the model
/// its own queue entry was made for (`small` for items without one).
pub(super) fn legacy_depth(
    txn: &impl Reader,
    media: Uuid,
) -> Result<Option<AssetRow>, StorageError> {
    let model = queue::store::get_by_media(txn, media)?
        .map(|q| q.model_key)
        .unwrap_or_else(|| "small".into());
    for format in [Format::Png, Format::Zip] {
        if let Some(a) = assets::store::find(txn, media, Kind::Depth, &model, format)? {
            return Ok(Some(a));
        }
    }
    Ok(None)
}

/// An asset in the old routes' depth map shape.
pub(super) fn as_depth_map(a: &AssetRow) -> DepthMap {
    DepthMap {
        id: a.id,
        media_item_id: a.media_item_id,
        file_path: a.file_name.clone(),
        file_size: a.file_size,
        format: a.format.as_str().to_string(),
        width: a.width,
        height: a.height,
        model_name: a
            .metadata
            .get("model_name")
            .cloned()
            .unwrap_or_else(|| "Depth-Anything-V2".into()),
        model_version: a.model_key.clone(),
        checksum: a.checksum.clone(),
        generated_at: a.generated_at,
        accessed_at: a.accessed_at,
        access_count: a.access_count,
    }
}

impl Catalog {
    pub async fn media(&self, id: Uuid) -> Result<MediaRow, CatalogError> {
        self.store.read(move |txn| media_or_404(txn, id)).await
    }

    /// The item imported from an Immich asset, with its queue entry.
    pub async fn imported(
        &self,
        asset_id: String,
    ) -> Result<Option<(MediaRow, QueueRow)>, CatalogError> {
        self.store
            .read(move |txn| {
                let Some(m) = media::store::find_immich(txn, &asset_id)? else {
                    return Ok(None);
                };
                Ok(queue::store::get_by_media(txn, m.id)?.map(|q| (m, q)))
            })
            .await
    }

    pub async fn stats(&self) -> Result<Stats, StorageError> {
        self.store.read(query::stats).await
    }

    pub async fn summary(&self) -> Result<Vec<SummaryRow>, StorageError> {
        self.store.read(query::summary).await
    }

    /// One page of queue items and how many match; unreadable rows are
    /// left out and reported.
    pub async fn queue_page(&self, q: ListQuery) -> Result<(Vec<QueueRow>, u64), StorageError> {
        let (listed, total) = self.store.read(move |txn| query::list(txn, &q)).await?;
        self.store.report(&listed.unreadable);
        Ok((listed.rows, total))
    }

    /// A page of the queue as `viewer` may see it: everyone's items for
    /// an operator who sees all, else the items of what they may see
    /// (filtered before paging, so pages stay full).
    pub async fn queue_page_for(
        &self,
        q: ListQuery,
        viewer: &Viewer,
    ) -> Result<(Vec<QueueRow>, u64), StorageError> {
        if viewer.sees_all() {
            return self.queue_page(q).await;
        }
        let viewer = viewer.clone();
        let (limit, offset) = (q.limit, q.offset);
        let every = ListQuery {
            limit: EVERY,
            offset: 0,
            ..q
        };
        let (rows, unreadable) = self
            .store
            .read(move |txn| {
                let (listed, _) = query::list(txn, &every)?;
                let mut seen = Vec::new();
                for row in listed.rows {
                    if media::store::get(txn, row.media_item_id)?
                        .is_some_and(|m| viewer.sees_item(&m))
                    {
                        seen.push(row);
                    }
                }
                Ok::<_, StorageError>((seen, listed.unreadable))
            })
            .await?;
        self.store.report(&unreadable);
        let total = rows.len() as u64;
        Ok((rows.into_iter().skip(offset).take(limit).collect(), total))
    }

    pub async fn queue_item(&self, id: Uuid) -> Result<ItemDetail, CatalogError> {
        self.store
            .read(move |txn| {
                let item = queue::store::get(txn, id)?.ok_or(QueueError::NotFound(id))?;
                let media = media::store::get(txn, item.media_item_id)?;
                Ok(ItemDetail { item, media })
            })
            .await
    }

    /// Newest uploads first, with their queue entry and depth map: all of
    /// them for an operator who sees all, else what `viewer` may see.
    pub async fn media_page(
        &self,
        limit: usize,
        offset: usize,
        viewer: &Viewer,
    ) -> Result<Vec<MediaStatus>, StorageError> {
        let viewer = viewer.clone();
        let listed = self
            .store
            .read(move |txn| {
                let mut page = if viewer.sees_all() {
                    media::store::list_recent(txn, limit, offset)?
                } else {
                    media::store::list_recent(txn, EVERY, 0)?
                };
                if !viewer.sees_all() {
                    page.rows.retain(|m| viewer.sees_item(m));
                    page.rows = page.rows.into_iter().skip(offset).take(limit).collect();
                }
                let mut out = Listed {
                    rows: Vec::with_capacity(page.rows.len()),
                    unreadable: page.unreadable,
                };
                for m in page.rows {
                    let joined = guarded(|| {
                        let q = queue::store::get_by_media(txn, m.id)?;
                        let d = legacy_depth(txn, m.id)?.map(|a| as_depth_map(&a));
                        Ok((q, d))
                    });
                    match joined {
                        Ok((q, d)) => out.rows.push((m, q, d)),
                        Err(e) => out.unreadable.push(e),
                    }
                }
                Ok::<_, StorageError>(out)
            })
            .await?;
        self.store.report(&listed.unreadable);
        Ok(listed.rows)
    }

    /// The depth map of an item, counting the access. The count is
    /// committed lazily: a crash may lose it, a read path pays no fsync.
    pub async fn depth_for_download(&self, id: Uuid) -> Result<DepthMap, CatalogError> {
        self.commit(Durability::Lazy, move |txn, _| {
            media_or_404(txn, id)?;
            let mut a = legacy_depth(txn, id)?.ok_or(MediaError::DepthNotReady(id))?;
            a.access_count += 1;
            a.accessed_at = Some(Timestamp::now());
            assets::store::touch(txn, &a)?;
            Ok(as_depth_map(&a))
        })
        .await
    }

    pub async fn enqueue(
        &self,
        media_id: Uuid,
        max_attempts: u32,
        force: bool,
    ) -> Result<QueueRow, CatalogError> {
        self.commit(Durability::Durable, move |txn, ch| {
            let m = media_or_404(txn, media_id)?;
            let model = settings::store::default_model(txn)?;
            let row = queue::store::enqueue(txn, &new_item(&m, max_attempts, &model), force)?;
            ch.item(&row);
            Ok(row)
        })
        .await
    }

    pub async fn cancel(&self, id: Uuid) -> Result<QueueRow, CatalogError> {
        self.queue_action(move |txn| queue::store::cancel(txn, id))
            .await
    }

    pub async fn retry(&self, id: Uuid) -> Result<QueueRow, CatalogError> {
        self.queue_action(move |txn| queue::store::retry(txn, id))
            .await
    }

    async fn queue_action<F>(&self, f: F) -> Result<QueueRow, CatalogError>
    where
        F: Fn(&redb::WriteTransaction) -> Result<QueueRow, QueueError> + Send + 'static,
    {
        self.commit(Durability::Durable, move |txn, ch| {
            let row = f(txn)?;
            ch.item(&row);
            Ok(row)
        })
        .await
    }

    pub async fn retry_all_failed(&self) -> Result<Vec<QueueRow>, CatalogError> {
        self.commit(Durability::Durable, |txn, ch| {
            let rows = queue::store::retry_all_failed(txn)?;
            ch.items(&rows);
            Ok(rows)
        })
        .await
    }

    /// Deletes an item's rows in one transaction, then its files: a crash
    /// in between leaves an orphan file (removed at start-up), never a row
    /// without its file. 409 while it is being processed.
    pub async fn delete_media(&self, id: Uuid) -> Result<(), CatalogError> {
        let (row, generated) = self
            .commit(Durability::Durable, move |txn, ch| {
                match queue::store::remove_for_media(txn, id) {
                    Err(QueueError::InvalidTransition { .. }) => {
                        return Err(MediaError::Processing(id).into())
                    }
                    other => other?,
                }
                let removed = media::store::delete(txn, id)?.ok_or(MediaError::NotFound(id))?;
                let generated = assets::store::remove_media(txn, id)?;
                ch.assets_changed();
                ch.media_deleted(id);
                Ok::<_, CatalogError>((removed, generated))
            })
            .await?;
        if !row.is_referenced() {
            let _ = tokio::fs::remove_file(self.dirs.original(&row)).await;
        }
        for a in generated {
            let _ = tokio::fs::remove_file(self.asset_path(&a)).await;
        }
        Ok(())
    }
}

/// The facts the queue keeps of a media item, for its own depth job by
/// `model` (the default depth model when it is queued).
pub(super) fn new_item(m: &MediaRow, max_attempts: u32, model: &str) -> NewItem {
    NewItem {
        media_id: m.id,
        media_type: m.media_type,
        file_size: m.file_size,
        original_filename: m.original_filename.clone(),
        max_attempts,
        kind: Kind::Depth,
        model_key: model.to_string(),
        priority: None,
    }
}
