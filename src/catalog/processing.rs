//! What the worker asks of the catalog: what to do next, claiming an item,
//! and recording how it ended (completed with its depth map, failed,
//! returned to the queue).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Catalog, CatalogError, Durability};
use crate::{
    assets::{self, AssetRow},
    queue::{self, QueueRow},
    storage::StorageError,
};

impl Catalog {
    /// Whether a claim would find something: a read, cheaper than an empty
    /// write transaction.
    pub async fn has_claimable(&self, below: u32) -> Result<bool, StorageError> {
        let now = Utc::now();
        self.store
            .read(move |txn| queue::store::has_claimable(txn, now, below))
            .await
    }

    /// When the earliest item waiting out a backoff becomes claimable.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StorageError> {
        self.store.read(queue::store::next_due).await
    }

    /// Atomically takes the best claimable item and marks it `processing`.
    pub async fn claim_next(&self) -> Result<Option<QueueRow>, CatalogError> {
        self.claim_below(u32::MAX).await
    }

    /// [`Catalog::claim_next`] among the items whose priority is below
    /// `below` (`1`: only the app's own requests).
    pub async fn claim_below(&self, below: u32) -> Result<Option<QueueRow>, CatalogError> {
        self.commit(Durability::Lazy, move |txn, ch| {
            let row = queue::store::claim_next(txn, Utc::now(), below)?;
            if let Some(r) = &row {
                ch.item(r);
            }
            Ok(row)
        })
        .await
    }

    /// Records what a job made (its files already renamed into place) and
    /// completes it in one transaction, after their directory is fsynced;
    /// the files they replace go once that is durable.
    pub async fn complete(
        &self,
        item: Uuid,
        made: Vec<AssetRow>,
    ) -> Result<QueueRow, CatalogError> {
        let dir = match made.first() {
            Some(a) => self.dirs.dir(a.kind.dir()).to_path_buf(),
            None => self.dirs.depth_maps.clone(),
        };
        let (row, replaced) = self
            .commit(Durability::After(dir), move |txn, ch| {
                let mut replaced = Vec::new();
                for a in &made {
                    replaced.extend(assets::store::put(txn, a)?);
                    ch.assets_changed();
                }
                let row = queue::store::complete(txn, item, Utc::now())?;
                ch.item(&row);
                Ok::<_, CatalogError>((row, replaced))
            })
            .await?;
        for old in replaced {
            let _ = tokio::fs::remove_file(self.asset_path(&old)).await;
        }
        Ok(row)
    }

    /// Marks a processing item failed: retried after `backoff(attempts)`,
    /// or failed for good once its attempts are used up.
    pub async fn fail(
        &self,
        id: Uuid,
        error: String,
        // `None`: no retry, failed for good.
        backoff: impl Fn(u32) -> Option<chrono::Duration> + Send + 'static,
    ) -> Result<QueueRow, CatalogError> {
        self.commit(Durability::Durable, move |txn, ch| {
            let row = queue::store::fail(txn, id, error.clone(), Utc::now(), &backoff)?;
            ch.item(&row);
            Ok(row)
        })
        .await
    }

    /// Returns a processing item to `queued` without counting its attempt
    /// (the AI service was unreachable, the disk full, or the worker stops).
    pub async fn release(&self, id: Uuid, note: Option<String>) -> Result<QueueRow, CatalogError> {
        self.commit(Durability::Durable, move |txn, ch| {
            let row = queue::store::release(txn, id, note.clone())?;
            ch.item(&row);
            Ok(row)
        })
        .await
    }

    /// Every `processing` item back to `queued` (start-up after a crash).
    pub async fn requeue_in_flight(&self) -> Result<Vec<QueueRow>, CatalogError> {
        self.commit(Durability::Durable, |txn, ch| {
            let rows = queue::store::requeue_in_flight(txn)?;
            ch.items(&rows);
            Ok::<_, CatalogError>(rows)
        })
        .await
    }
}
