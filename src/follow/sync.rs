//! One round of following a library: a sweep of what changed since the
//! cursor (or of everything, on the first round and then once a day),
//! page by page, newest first; then the assets that wait (in the trash,
//! or for Immich's preview) looked at one by one; then the 3D assets of
//! what has been gone longer than the grace period removed.

use std::time::Duration;

use chrono::Utc;

use super::{settings_for, store, AssetState, OwnerState, Sweep};
use crate::{
    catalog::Catalog,
    immich::{client::Search, ImmichClient, ImmichError},
    timestamp::Timestamp,
};

/// Assets asked for per page (Immich's largest).
const PAGE: u32 = 1000;
/// The cursor is read back this far: a change committed in Immich a
/// little after a later one is not missed (seen twice, it changes nothing).
const OVERLAP: chrono::Duration = chrono::Duration::minutes(2);
/// How often everything is read again, to notice deletions that skipped
/// the trash.
const FULL_EVERY: chrono::Duration = chrono::Duration::hours(24);
/// Assets looked at one by one per round, at most.
const RECHECK: usize = 100;

pub(super) struct Round<'a> {
    pub catalog: &'a Catalog,
    pub client: &'a ImmichClient,
    pub owner_id: &'a str,
    pub owner_name: &'a str,
    pub sync_on: bool,
    /// The service key's user (followed whatever their settings say).
    pub service: Option<&'a str>,
    pub grace: Duration,
    /// Read everything, whatever the cursor says.
    pub full: bool,
}

/// A round's failure, in words for the status.
type Failed = String;

fn immich(e: ImmichError) -> Failed {
    e.to_string()
}

fn store_err(e: impl std::fmt::Display) -> Failed {
    format!("storing what was read failed: {e}")
}

impl Round<'_> {
    async fn owner(&self) -> Result<(OwnerState, String), Failed> {
        let (id, name, sync_on) = (self.owner_id.to_string(), self.owner_name, self.sync_on);
        let service = self.service.map(str::to_string);
        let (owner, settings) = self
            .catalog
            .store()
            .read(move |txn| {
                let o = store::owner(txn, &id)?;
                Ok::<_, crate::storage::StorageError>((
                    o,
                    settings_for(txn, &id, sync_on, service.as_deref())?,
                ))
            })
            .await
            .map_err(store_err)?;
        let mut owner = owner.unwrap_or_else(|| OwnerState {
            owner_id: self.owner_id.to_string(),
            ..Default::default()
        });
        owner.name = name.to_string();
        // Followed again (signed in again, turned it back on).
        owner.stopped_at = None;
        Ok((owner, settings.depth_model))
    }

    pub async fn run(&self) -> Result<(), Failed> {
        let started = Timestamp::now();
        let (mut owner, model) = self.owner().await?;
        let result = self.sweep(&mut owner, &model).await;
        let result = match result {
            Ok(()) => self.recheck(&owner, &model, started).await,
            Err(e) => Err(e),
        };
        let result = match result {
            Ok(()) => self.remove_gone(&model).await,
            Err(e) => Err(e),
        };
        owner.last_error = result.as_ref().err().cloned();
        self.catalog.follow_owner(owner).await.map_err(store_err)?;
        result
    }

    async fn sweep(&self, owner: &mut OwnerState, model: &str) -> Result<(), Failed> {
        let now = Timestamp::now();
        if owner.sweep.is_none() {
            let due = owner
                .last_full_at
                .is_none_or(|t| Utc::now() - *t >= FULL_EVERY);
            let full = self.full || owner.cursor.is_none() || due;
            owner.sweep = Some(Sweep {
                id: now,
                full,
                updated_after: (!full)
                    .then(|| owner.cursor.map(|c| Timestamp(*c - OVERLAP)))
                    .flatten(),
                next_page: 1,
                max_updated: owner.cursor,
                seen: 0,
            });
            self.catalog
                .follow_owner(owner.clone())
                .await
                .map_err(store_err)?;
        }
        let mut sweep = owner.sweep.clone().expect("set above");
        tracing::info!(
            full = sweep.full,
            page = sweep.next_page,
            "following Immich: reading the library"
        );
        loop {
            let page = self
                .client
                .search(&Search {
                    page: sweep.next_page,
                    size: PAGE,
                    updated_after: sweep.updated_after.map(|t| t.render()),
                    with_deleted: Some(true),
                    order: Some("desc".into()),
                    ..Default::default()
                })
                .await
                .map_err(immich)?;
            for a in &page.items {
                if a.updated_at > sweep.max_updated {
                    sweep.max_updated = a.updated_at;
                }
            }
            sweep.seen += page.items.len() as u64;
            let done = page.next_page.is_none() || page.items.is_empty();
            if done {
                owner.cursor = sweep.max_updated;
                owner.last_sync_at = Some(Timestamp::now());
                if sweep.full {
                    owner.last_full_at = Some(sweep.id);
                }
                owner.sweep = None;
            } else {
                sweep.next_page = page.next_page.unwrap_or(sweep.next_page + 1);
                owner.sweep = Some(sweep.clone());
            }
            let r = self
                .catalog
                .follow_page(
                    owner.clone(),
                    page.items,
                    model.to_string(),
                    sweep.full.then_some(sweep.id),
                )
                .await
                .map_err(store_err)?;
            if r.queued > 0 || r.cancelled > 0 {
                tracing::info!(
                    queued = r.queued,
                    cancelled = r.cancelled,
                    "following Immich"
                );
            }
            if done {
                break;
            }
        }
        tracing::info!(
            assets = sweep.seen,
            full = sweep.full,
            "following Immich: library read"
        );
        if sweep.full {
            self.unseen(owner, &sweep, model).await?;
        }
        Ok(())
    }

    /// After a full sweep: rows it did not see are looked at one by one
    /// (a page that moved under the sweep must not delete anything).
    async fn unseen(&self, owner: &OwnerState, sweep: &Sweep, model: &str) -> Result<(), Failed> {
        let id = self.owner_id.to_string();
        let sweep_id = sweep.id;
        let rows = self
            .catalog
            .store()
            .read(move |txn| {
                store::select(txn, &id, |r| {
                    r.seen_in != Some(sweep_id) && !matches!(r.state, AssetState::Gone { .. })
                })
            })
            .await
            .map_err(store_err)?;
        self.look(owner, rows.into_iter().map(|r| r.asset_id).collect(), model)
            .await
    }

    /// Assets in the trash or waiting for their preview that this round's
    /// sweep did not see, the longest unlooked-at first.
    async fn recheck(
        &self,
        owner: &OwnerState,
        model: &str,
        started: Timestamp,
    ) -> Result<(), Failed> {
        let id = self.owner_id.to_string();
        let cutoff = started;
        let mut rows = self
            .catalog
            .store()
            .read(move |txn| {
                store::select(txn, &id, |r| {
                    matches!(r.state, AssetState::Trashed { .. } | AssetState::NoPreview)
                        && r.checked_at.is_none_or(|t| t < cutoff)
                })
            })
            .await
            .map_err(store_err)?;
        rows.sort_by_key(|r| r.checked_at);
        rows.truncate(RECHECK);
        self.look(owner, rows.into_iter().map(|r| r.asset_id).collect(), model)
            .await
    }

    /// Asks Immich for each asset: found ones are planned as in a sweep,
    /// missing ones are gone.
    async fn look(&self, owner: &OwnerState, ids: Vec<String>, model: &str) -> Result<(), Failed> {
        let mut found = Vec::new();
        let mut gone = Vec::new();
        for id in ids {
            match self.client.asset(&id).await {
                Ok(a) => found.push(a),
                Err(ImmichError::NotFound(_)) => gone.push(id),
                Err(e) => return Err(immich(e)),
            }
        }
        if !found.is_empty() {
            let mut o = owner.clone();
            o.sweep = None;
            self.catalog
                .follow_page(o, found, model.to_string(), None)
                .await
                .map_err(store_err)?;
        }
        if !gone.is_empty() {
            let n = self
                .catalog
                .follow_gone(self.owner_id.to_string(), gone, model.to_string())
                .await
                .map_err(store_err)?;
            tracing::info!(assets = n, "following Immich: gone from Immich");
        }
        Ok(())
    }

    async fn remove_gone(&self, _model: &str) -> Result<(), Failed> {
        let id = self.owner_id.to_string();
        let grace = chrono::Duration::from_std(self.grace).unwrap_or(chrono::Duration::zero());
        let now = Utc::now();
        let due = self
            .catalog
            .store()
            .read(move |txn| {
                store::select(
                    txn,
                    &id,
                    |r| matches!(r.state, AssetState::Gone { since } if now - *since >= grace),
                )
            })
            .await
            .map_err(store_err)?;
        if due.is_empty() {
            return Ok(());
        }
        let ids = due.into_iter().map(|r| r.asset_id).collect();
        let n = self
            .catalog
            .follow_remove(self.owner_id.to_string(), ids)
            .await
            .map_err(store_err)?;
        tracing::info!(
            assets = n,
            "following Immich: 3D assets of deleted photos removed"
        );
        Ok(())
    }
}
