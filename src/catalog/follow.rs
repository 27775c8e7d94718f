//! What following Immich writes, each in one transaction with the rows it
//! touches: a page of a sweep (the assets' rows, the media items and jobs
//! they need, and the sweep's progress, so a crash resumes at the page
//! without a duplicate or a gap), and the removal of what is gone.

use redb::WriteTransaction;
use uuid::Uuid;

use super::{
    assets::{referenced_row, ImmichRef},
    Catalog, CatalogError, Changes, Durability,
};
use crate::{
    assets::{self, AssetRow, Format, Kind},
    follow::{
        self,
        plan::{plan, Action},
        AssetState, Followed, OwnerState,
    },
    immich::Asset,
    media::{self, MediaRow, MediaType},
    queue::{self, NewItem, QueueError, Status},
    timestamp::Timestamp,
};

/// What a page changed, for the log and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageResult {
    pub queued: u64,
    pub cancelled: u64,
}

fn reference(a: &Asset) -> ImmichRef {
    ImmichRef {
        asset_id: a.id.clone(),
        original_filename: a.original_file_name.clone(),
        media_type: MediaType::Photo,
        mime_type: a
            .original_mime_type
            .clone()
            .unwrap_or_else(|| "image/jpeg".into()),
        file_size: 0,
        captured_at: a.file_created_at,
        owner: a.owner_id.clone(),
    }
}

/// The media item of an asset, made on first sight. `library`: whose
/// library it was found in; a partner's photo remembers it (`via`), so the
/// worker reads it with that person's key when its owner has none here.
fn media_for(txn: &WriteTransaction, a: &Asset, library: &str) -> Result<MediaRow, CatalogError> {
    Ok(match media::store::find_immich(txn, &a.id)? {
        Some(m) => m,
        None => {
            let mut row = referenced_row(&reference(a));
            if row.owner.as_deref() != Some(library) {
                row.via = Some(library.to_string());
            }
            media::store::insert(txn, row, &[])?
        }
    })
}

/// Whether another library still followed holds the asset (a partner's
/// photo in two libraries is made once, and stays while either has it).
/// A library no longer followed holds nothing: its rows are not kept
/// current.
fn held_elsewhere(txn: &WriteTransaction, owner: &str, asset: &str) -> Result<bool, CatalogError> {
    for o in follow::store::owners(txn)? {
        if o.owner_id == owner || o.stopped_at.is_some() {
            continue;
        }
        if follow::store::get(txn, &o.owner_id, asset)?
            .is_some_and(|r| !matches!(r.state, AssetState::Gone { .. }))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One transaction's work on a library's jobs.
struct Jobs<'a> {
    txn: &'a WriteTransaction,
    ch: &'a mut Changes,
    /// Whose library.
    owner: &'a str,
    model: &'a str,
    /// 3D assets made from what a photo was before an edit.
    stale: Vec<AssetRow>,
}

impl Jobs<'_> {
    /// Its depth job, wanted: made, run again, or left as it is.
    fn want(
        &mut self,
        row: &mut Followed,
        a: &Asset,
        redo: bool,
        revive: bool,
    ) -> Result<bool, CatalogError> {
        let txn = self.txn;
        let m = media_for(txn, a, self.owner)?;
        row.media_id = Some(m.id);
        if redo {
            // Made from the photo as it was: gone now; the depth map
            // itself is replaced when the new one is stored.
            for old in assets::store::of_media(txn, m.id)? {
                if !(old.kind == Kind::Depth && old.model_key == self.model) {
                    assets::store::remove(txn, &old)?;
                    self.ch.assets_changed();
                    self.stale.push(old);
                }
            }
        } else if assets::store::find(txn, m.id, Kind::Depth, self.model, Format::Png)?.is_some() {
            return Ok(false);
        }
        let item = NewItem {
            media_id: m.id,
            media_type: MediaType::Photo,
            file_size: 0,
            original_filename: m.original_filename.clone(),
            max_attempts: queue::DEFAULT_MAX_ATTEMPTS,
            kind: Kind::Depth,
            model_key: self.model.to_string(),
            priority: Some(queue::follow_priority(a.file_created_at)),
        };
        match queue::store::want_job(txn, &item, redo, revive)? {
            Some(job) => {
                self.ch.item(&job);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// A job still waiting for an asset not wanted any more is cancelled,
    /// unless another library still wants it.
    fn cancel(&mut self, asset: &str, media: Option<Uuid>) -> Result<bool, CatalogError> {
        let Some(m) = media else { return Ok(false) };
        if held_elsewhere(self.txn, self.owner, asset)? {
            return Ok(false);
        }
        let Some(job) = queue::store::get_job(self.txn, m, Kind::Depth, self.model)? else {
            return Ok(false);
        };
        if job.status != Status::Queued {
            return Ok(false);
        }
        let row = queue::store::cancel(self.txn, job.id)?;
        self.ch.item(&row);
        Ok(true)
    }
}

impl Catalog {
    /// One page of a sweep: each asset's row and job, and the owner's
    /// progress, committed together. `full`: the full sweep the page is
    /// part of, if it is one.
    pub async fn follow_page(
        &self,
        owner: OwnerState,
        page: Vec<Asset>,
        model: String,
        full: Option<Timestamp>,
    ) -> Result<PageResult, CatalogError> {
        let (result, stale) = self
            .commit(Durability::Durable, move |txn, ch| {
                let now = Timestamp::now();
                let id = owner.owner_id.as_str();
                let mut result = PageResult::default();
                let mut jobs = Jobs {
                    txn,
                    ch,
                    owner: id,
                    model: &model,
                    stale: Vec::new(),
                };
                for a in &page {
                    let prev = follow::store::get(txn, id, &a.id)?;
                    let (mut row, action) = plan(prev.as_ref(), a, full, now);
                    match action {
                        Action::Want { redo, revive } => {
                            if jobs.want(&mut row, a, redo, revive)? {
                                result.queued += 1;
                            }
                        }
                        Action::Cancel => {
                            if jobs.cancel(&a.id, row.media_id)? {
                                result.cancelled += 1;
                            }
                        }
                        Action::Nothing => {}
                    }
                    follow::store::put(txn, id, &row)?;
                }
                let stale = jobs.stale;
                follow::store::put_owner(txn, &owner)?;
                Ok::<_, CatalogError>((result, stale))
            })
            .await?;
        self.remove_files(&stale).await;
        Ok(result)
    }

    /// Libraries no longer followed: marked so, their rows kept (a return
    /// resumes at the cursor), holding nothing against a deletion.
    pub async fn follow_stopped(&self, owners: Vec<String>) -> Result<(), CatalogError> {
        self.commit(Durability::Durable, move |txn, _| {
            let now = Timestamp::now();
            for id in &owners {
                if let Some(mut o) = follow::store::owner(txn, id)? {
                    o.stopped_at = Some(now);
                    o.sweep = None;
                    follow::store::put_owner(txn, &o)?;
                }
            }
            Ok::<_, CatalogError>(())
        })
        .await
    }

    /// Writes a library's state alone (a sweep starting or ending).
    pub async fn follow_owner(&self, owner: OwnerState) -> Result<(), CatalogError> {
        self.commit(Durability::Durable, move |txn, _| {
            follow::store::put_owner(txn, &owner)?;
            Ok::<_, CatalogError>(())
        })
        .await
    }

    /// Assets Immich no longer has: gone from now (their files stay for
    /// the grace period); a job still waiting is cancelled.
    pub async fn follow_gone(
        &self,
        owner: String,
        ids: Vec<String>,
        model: String,
    ) -> Result<u64, CatalogError> {
        self.commit(Durability::Durable, move |txn, ch| {
            let now = Timestamp::now();
            let mut n = 0;
            for asset in &ids {
                let Some(mut row) = follow::store::get(txn, &owner, asset)? else {
                    continue;
                };
                if matches!(row.state, AssetState::Gone { .. }) {
                    continue;
                }
                row.state = AssetState::Gone { since: now };
                row.checked_at = Some(now);
                let mut jobs = Jobs {
                    txn,
                    ch: &mut *ch,
                    owner: &owner,
                    model: &model,
                    stale: Vec::new(),
                };
                jobs.cancel(asset, row.media_id)?;
                follow::store::put(txn, &owner, &row)?;
                n += 1;
            }
            Ok::<_, CatalogError>(n)
        })
        .await
    }

    /// Assets gone longer than the grace period: their media items, jobs,
    /// 3D assets and rows go in one transaction, then their files. One
    /// being processed now waits for the next round; one another followed
    /// library still holds keeps its 3D assets (only this library's row
    /// goes).
    pub async fn follow_remove(
        &self,
        owner: String,
        ids: Vec<String>,
    ) -> Result<u64, CatalogError> {
        let (n, files) = self
            .commit(Durability::Durable, move |txn, ch| {
                let mut files = Vec::new();
                let mut n = 0;
                for asset in &ids {
                    let Some(row) = follow::store::get(txn, &owner, asset)? else {
                        continue;
                    };
                    // An imported copy is a file someone asked for: it
                    // stays; what following made refers to Immich.
                    let media = match held_elsewhere(txn, &owner, asset)? {
                        true => None,
                        false => media::store::find_immich(txn, asset)?,
                    };
                    if let Some(m) = media.filter(|m| m.is_referenced()) {
                        match queue::store::remove_for_media(txn, m.id) {
                            Err(QueueError::InvalidTransition { .. }) => continue,
                            other => other?,
                        }
                        media::store::delete(txn, m.id)?;
                        files.extend(assets::store::remove_media(txn, m.id)?);
                        ch.assets_changed();
                        ch.media_deleted(m.id);
                    }
                    follow::store::remove(txn, &owner, &row.asset_id)?;
                    n += 1;
                }
                Ok::<_, CatalogError>((n, files))
            })
            .await?;
        self.remove_files(&files).await;
        Ok(n)
    }

    /// Removes 3D assets to keep within the disk budget; their photos
    /// are not made again unless they change.
    pub async fn evict(&self, rows: Vec<AssetRow>) -> Result<(), CatalogError> {
        let removed = self
            .commit(Durability::Durable, move |txn, ch| {
                let now = Timestamp::now();
                let owners = follow::store::owners(txn)?;
                let mut removed = Vec::new();
                for r in &rows {
                    let Some(row) = assets::store::get(txn, r.id)? else {
                        continue;
                    };
                    assets::store::remove(txn, &row)?;
                    ch.assets_changed();
                    if let Some(asset) = &row.immich_asset_id {
                        for o in &owners {
                            if let Some(mut f) = follow::store::get(txn, &o.owner_id, asset)? {
                                if f.state == AssetState::Wanted {
                                    f.state = AssetState::Evicted { at: now };
                                    follow::store::put(txn, &o.owner_id, &f)?;
                                }
                            }
                        }
                    }
                    removed.push(row);
                }
                Ok::<_, CatalogError>(removed)
            })
            .await?;
        self.remove_files(&removed).await;
        Ok(())
    }

    /// Writes the views of this run to the assets' rows (`accessed_at`),
    /// so the order of removal survives a restart. Lazy: a crash may lose
    /// the last ones.
    pub async fn record_views(&self) -> Result<(), CatalogError> {
        let views = self.take_views();
        if views.is_empty() {
            return Ok(());
        }
        self.commit(Durability::Lazy, move |txn, _| {
            for (id, at) in &views {
                if let Some(mut a) = assets::store::get(txn, *id)? {
                    if a.accessed_at < Some(*at) {
                        a.accessed_at = Some(*at);
                        a.access_count += 1;
                        assets::store::touch(txn, &a)?;
                    }
                }
            }
            Ok::<_, CatalogError>(())
        })
        .await
    }

    async fn remove_files(&self, rows: &[AssetRow]) {
        for a in rows {
            let _ = tokio::fs::remove_file(self.asset_path(a)).await;
        }
    }
}
