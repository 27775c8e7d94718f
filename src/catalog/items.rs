//! What the routes ask of stored items: reads (one item, pages, counters)
//! and the user's actions (enqueue, cancel, retry, delete).

use crate::timestamp::Timestamp;
use uuid::Uuid;

use super::{Catalog, CatalogError, Durability};
use crate::{
    media::{self, DepthMap, MediaError, MediaRow},
    queue::{
        self,
        query::{self, ListQuery, Stats, SummaryRow},
        NewItem, QueueError, QueueRow,
    },
    storage::{guarded, Listed, Reader, StorageError},
};

/// A media item with its queue entry and depth map, for the status list.
pub type MediaStatus = (MediaRow, Option<QueueRow>, Option<DepthMap>);

/// A queue row with what the detail view adds.
pub struct ItemDetail {
    pub item: QueueRow,
    pub media: Option<MediaRow>,
}

fn media_or_404(txn: &impl Reader, id: Uuid) -> Result<MediaRow, CatalogError> {
    Ok(media::store::get(txn, id)?.ok_or(MediaError::NotFound(id))?)
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

    pub async fn queue_item(&self, id: Uuid) -> Result<ItemDetail, CatalogError> {
        self.store
            .read(move |txn| {
                let item = queue::store::get(txn, id)?.ok_or(QueueError::NotFound(id))?;
                let media = media::store::get(txn, item.media_item_id)?;
                Ok(ItemDetail { item, media })
            })
            .await
    }

    /// Newest uploads first, with their queue entry and depth map.
    pub async fn media_page(
        &self,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<MediaStatus>, StorageError> {
        let listed = self
            .store
            .read(move |txn| {
                let page = media::store::list_recent(txn, limit, offset)?;
                let mut out = Listed {
                    rows: Vec::with_capacity(page.rows.len()),
                    unreadable: page.unreadable,
                };
                for (m, d) in page.rows {
                    match guarded(|| queue::store::get_by_media(txn, m.id)) {
                        Ok(q) => out.rows.push((m, q, d)),
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
            let mut d = media::store::depth(txn, id)?.ok_or(MediaError::DepthNotReady(id))?;
            d.access_count += 1;
            d.accessed_at = Some(Timestamp::now());
            media::store::touch_depth(txn, &d)?;
            Ok(d)
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
            let row = queue::store::enqueue(txn, &new_item(&m, max_attempts), force)?;
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
        let (row, depth) = self
            .commit(Durability::Durable, move |txn, ch| {
                match queue::store::remove_for_media(txn, id) {
                    Err(QueueError::InvalidTransition { .. }) => {
                        return Err(MediaError::Processing(id).into())
                    }
                    other => other?,
                }
                let removed = media::store::delete(txn, id)?.ok_or(MediaError::NotFound(id))?;
                ch.media_deleted(id);
                Ok::<_, CatalogError>(removed)
            })
            .await?;
        let _ = tokio::fs::remove_file(self.dirs.original(&row)).await;
        if let Some(d) = depth {
            let _ = tokio::fs::remove_file(self.dirs.depth_map(&d)).await;
        }
        Ok(())
    }
}

/// The facts the queue keeps of a media item.
pub(super) fn new_item(m: &MediaRow, max_attempts: u32) -> NewItem {
    NewItem {
        media_id: m.id,
        media_type: m.media_type,
        file_size: m.file_size,
        original_filename: m.original_filename.clone(),
        max_attempts,
    }
}
