//! What the VR app's routes ask of stored items: generated files per
//! Immich asset, the asset map, generation jobs and waiting for them.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::{items::media_or_404, Catalog, CatalogError, Durability};
use crate::{
    access::sharing::Viewer,
    assets::{self, AssetError, AssetRow, Format, Kind},
    events::Event,
    media::{self, MediaRow, MediaType, Source},
    queue::{self, NewItem, QueueRow, Status, INTERACTIVE_PRIORITY},
    storage::{Reader, StorageError},
    timestamp::Timestamp,
};

/// Immich id -> kind -> model keys.
type AssetMap = BTreeMap<String, BTreeMap<String, Vec<String>>>;
/// Immich id -> (owner, kind -> model keys).
pub(super) type OwnedMap = BTreeMap<String, (Option<String>, BTreeMap<String, Vec<String>>)>;

/// The map's answer as the app reads it.
fn render_map<K: serde::Serialize + Ord, V: serde::Serialize>(
    map: &BTreeMap<K, V>,
) -> Result<bytes::Bytes, StorageError> {
    serde_json::to_vec(&serde_json::json!({
        "status": "success",
        "count": map.len(),
        "map": map,
    }))
    .map(bytes::Bytes::from)
    .map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// What this service needs to know of an Immich asset to refer to it.
#[derive(Debug, Clone)]
pub struct ImmichRef {
    pub asset_id: String,
    pub original_filename: String,
    pub media_type: MediaType,
    pub mime_type: String,
    pub file_size: u64,
    pub captured_at: Option<Timestamp>,
    /// The Immich user who owns the asset (`ownerId`).
    pub owner: Option<String>,
}

/// The media item `id` names: an Immich asset id, or (as upstream also
/// allows) a media item id.
fn resolve(txn: &impl Reader, id: &str) -> Result<Option<MediaRow>, StorageError> {
    if let Some(m) = media::store::find_immich(txn, id)? {
        return Ok(Some(m));
    }
    match Uuid::parse_str(id) {
        Ok(u) => media::store::get(txn, u),
        Err(_) => Ok(None),
    }
}

pub(super) fn referenced_row(r: &ImmichRef) -> MediaRow {
    let now = Timestamp::now();
    MediaRow {
        id: Uuid::now_v7(),
        original_filename: r.original_filename.clone(),
        media_type: r.media_type,
        file_path: String::new(),
        file_size: r.file_size,
        mime_type: r.mime_type.clone(),
        width: None,
        height: None,
        duration_seconds: None,
        frame_rate: None,
        checksum: String::new(),
        captured_at: r.captured_at,
        uploaded_at: now,
        source: Source::Immich,
        immich_asset_id: Some(r.asset_id.clone()),
        immich_variant: Some("referenced".into()),
        created_at: now,
        updated_at: now,
        seq: 0,
        owner: r.owner.clone(),
        via: None,
    }
}

impl Catalog {
    pub fn asset_path(&self, a: &AssetRow) -> PathBuf {
        self.dirs.path(a.kind.dir(), &a.file_name)
    }

    /// The media item an id names (Immich asset id or media id).
    pub async fn resolve(&self, id: &str) -> Result<Option<MediaRow>, StorageError> {
        let id = id.to_string();
        self.store.read(move |txn| resolve(txn, &id)).await
    }

    /// Every generated file of the item `id` names, newest first.
    pub async fn files_of(&self, id: &str) -> Result<Vec<AssetRow>, StorageError> {
        let id = id.to_string();
        self.store
            .read(move |txn| match resolve(txn, &id)? {
                Some(m) => assets::store::of_media(txn, m.id),
                None => Ok(Vec::new()),
            })
            .await
    }

    pub async fn asset(&self, id: Uuid) -> Result<Option<AssetRow>, StorageError> {
        self.store
            .read(move |txn| assets::store::get(txn, id))
            .await
    }

    pub async fn find_asset(
        &self,
        media: Uuid,
        kind: Kind,
        model: String,
        format: Format,
    ) -> Result<Option<AssetRow>, StorageError> {
        self.store
            .read(move |txn| assets::store::find(txn, media, kind, &model, format))
            .await
    }

    /// The app's map (Immich id, or `null`, -> kind -> model keys) as its
    /// JSON answer, rendered once per change of the
    /// assets (the app asks every 10 s; 10,000 photos render in ~15 ms).
    pub async fn asset_map_json(&self) -> Result<bytes::Bytes, StorageError> {
        use std::sync::atomic::Ordering;
        // Read the version before the rows: a change committed meanwhile
        // bumps it after this, so the next call renders again.
        let version = self.assets_version.load(Ordering::SeqCst);
        if let Some((v, json)) = self.map_cache.lock().unwrap().as_ref() {
            if *v == version {
                return Ok(json.clone());
            }
        }
        let map = self.asset_map().await?;
        let json = render_map(&map)?;
        *self.map_cache.lock().unwrap() = Some((version, json.clone()));
        Ok(json)
    }

    async fn asset_map(&self) -> Result<AssetMap, StorageError> {
        let entries = self.store.read(assets::store::map).await?;
        let mut map: AssetMap = BTreeMap::new();
        for (immich, kind, model) in entries {
            let models = map.entry(immich).or_default().entry(kind).or_default();
            if !models.contains(&model) {
                models.push(model);
            }
        }
        Ok(map)
    }

    /// The map as `viewer` may see it: only the photos whose owner (or
    /// shared album) Immich lets them see. Rendered once per change of the
    /// assets and of what Immich said of the person.
    pub async fn asset_map_json_for(&self, viewer: &Viewer) -> Result<bytes::Bytes, StorageError> {
        use std::sync::atomic::Ordering;
        let (user, generation) = match viewer {
            Viewer::All => return self.asset_map_json().await,
            Viewer::User { user, view, .. } => (user.id.clone(), view.generation),
        };
        let version = self.assets_version.load(Ordering::SeqCst);
        if let Some((v, g, json)) = self.user_maps.lock().unwrap().get(&user) {
            if *v == version && *g == generation {
                return Ok(json.clone());
            }
        }
        let owned = self.owned_map(version).await?;
        let mut map: BTreeMap<&str, &BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (immich, (owner, kinds)) in owned.iter() {
            if immich != "null" && viewer.sees(owner.as_deref(), Some(immich)) {
                map.insert(immich, kinds);
            }
        }
        let json = render_map(&map)?;
        let mut maps = self.user_maps.lock().unwrap();
        // One entry per person signed in: a bounded map in practice, but a
        // crowd of short sessions must not grow it for ever.
        if maps.len() > 256 {
            maps.clear();
        }
        maps.insert(user, (version, generation, json.clone()));
        Ok(json)
    }

    /// Each photo of the map with its owner, read once per change of the
    /// assets (owners of the photos decide who sees them).
    async fn owned_map(&self, version: u64) -> Result<std::sync::Arc<OwnedMap>, StorageError> {
        if let Some((v, m)) = self.owned_cache.lock().unwrap().as_ref() {
            if *v == version {
                return Ok(m.clone());
            }
        }
        let map = self.asset_map().await?;
        let ids: Vec<String> = map.keys().cloned().collect();
        let owners = self
            .store
            .read(move |txn| {
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let owner = media::store::find_immich(txn, &id)?.and_then(|m| m.owner);
                    out.push(owner);
                }
                Ok::<_, StorageError>(out)
            })
            .await?;
        let owned: OwnedMap = map
            .into_iter()
            .zip(owners)
            .map(|((id, kinds), owner)| (id, (owner, kinds)))
            .collect();
        let owned = std::sync::Arc::new(owned);
        *self.owned_cache.lock().unwrap() = Some((version, owned.clone()));
        Ok(owned)
    }

    /// Immich ids with assets of `kind` (any kind: `None`) that `viewer`
    /// may see, newest capture first (then by id, so pages are stable),
    /// one page.
    pub async fn processed(
        &self,
        kind: Option<Kind>,
        offset: usize,
        size: usize,
        viewer: &Viewer,
    ) -> Result<(Vec<String>, usize), StorageError> {
        let viewer = viewer.clone();
        self.store
            .read(move |txn| {
                let mut ids: Vec<String> = Vec::new();
                for (immich, k, _) in assets::store::map(txn)? {
                    let wanted = kind.is_none_or(|want| want.as_str() == k);
                    // The index is in key order: an id's entries are adjacent.
                    if immich != "null" && wanted && ids.last() != Some(&immich) {
                        ids.push(immich);
                    }
                }
                let mut dated = Vec::with_capacity(ids.len());
                for id in ids {
                    let m = media::store::find_immich(txn, &id)?;
                    let owner = m.as_ref().and_then(|m| m.owner.as_deref());
                    if !viewer.sees(owner, Some(&id)) {
                        continue;
                    }
                    dated.push((m.and_then(|m| m.captured_at), id));
                }
                dated.sort_by(|a, b| b.cmp(a));
                let total = dated.len();
                let page = dated.into_iter().skip(offset).take(size).map(|(_, id)| id);
                Ok((page.collect(), total))
            })
            .await
    }

    /// Asks for a job making `kind` by `model` for an Immich asset: shared
    /// with any running or waiting one, ahead of bulk work. The media item
    /// is made (referring to Immich, nothing copied) if the asset has none.
    pub async fn request_job(
        &self,
        reference: ImmichRef,
        kind: Kind,
        model: String,
        trigger_priority: Option<u32>,
        via: Option<String>,
    ) -> Result<(MediaRow, QueueRow), CatalogError> {
        self.commit(Durability::Durable, move |txn, ch| {
            let mut media = match media::store::find_immich(txn, &reference.asset_id)? {
                Some(m) => m,
                None => media::store::insert(txn, referenced_row(&reference), &[])?,
            };
            // Whose key the job may read the asset with, besides its
            // owner's: the last person who asked for it (a partner, say).
            let owner_known = media.owner.is_none() && reference.owner.is_some();
            if owner_known || (via.is_some() && media.via != via) {
                if owner_known {
                    media.owner = reference.owner.clone();
                }
                if via.is_some() {
                    media.via = via.clone();
                }
                media::store::update(txn, &media)?;
            }
            let item = NewItem {
                media_id: media.id,
                media_type: media.media_type,
                file_size: media.file_size,
                original_filename: media.original_filename.clone(),
                max_attempts: queue::DEFAULT_MAX_ATTEMPTS,
                kind,
                model_key: model.clone(),
                priority: Some(trigger_priority.unwrap_or(INTERACTIVE_PRIORITY)),
            };
            let row = queue::store::request_job(txn, &item)?;
            ch.item(&row);
            Ok::<_, CatalogError>((media, row))
        })
        .await
        .inspect(|(_, row)| {
            if row.status == Status::Processing && row.priority == INTERACTIVE_PRIORITY {
                self.promote(row.id);
            }
        })
    }

    /// Waits until job `id` completes or fails, at most `bound`.
    pub async fn wait_job(&self, id: Uuid, bound: Duration) -> Result<QueueRow, CatalogError> {
        let mut rx = self.events().subscribe();
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let row = self
                .store
                .read(move |txn| queue::store::get(txn, id))
                .await?
                .ok_or(queue::QueueError::NotFound(id))?;
            if matches!(
                row.status,
                Status::Completed | Status::Failed | Status::Cancelled
            ) {
                return Ok(row);
            }
            // Until the job's next change (or a lag, after which the row is read again).
            loop {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Err(_) => return Ok(row),
                    Ok(Ok(Event::Item(ev))) if ev.id == id => break,
                    Ok(Ok(_)) => continue,
                    Ok(Err(RecvError::Lagged(_))) => break,
                    Ok(Err(RecvError::Closed)) => return Ok(row),
                }
            }
        }
    }

    /// Records a file made outside a job (a KSPLAT converted on request),
    /// its file already renamed into place.
    pub async fn add_asset(&self, row: AssetRow) -> Result<AssetRow, CatalogError> {
        let dir = self.dirs.dir(row.kind.dir()).to_path_buf();
        let saved = row.clone();
        let replaced = self
            .commit(Durability::After(dir), move |txn, ch| {
                media_or_404(txn, row.media_item_id)?;
                ch.assets_changed();
                Ok::<_, CatalogError>(assets::store::put(txn, &row)?)
            })
            .await?;
        if let Some(old) = replaced {
            let _ = tokio::fs::remove_file(self.asset_path(&old)).await;
        }
        Ok(saved)
    }

    /// Deletes one generated file: its row, then the file.
    pub async fn delete_asset(&self, id: Uuid) -> Result<AssetRow, CatalogError> {
        let row = self
            .commit(Durability::Durable, move |txn, ch| {
                let row = assets::store::get(txn, id)?
                    .ok_or_else(|| AssetError::FileNotFound(id.to_string()))?;
                assets::store::remove(txn, &row)?;
                ch.assets_changed();
                Ok::<_, CatalogError>(row)
            })
            .await?;
        let _ = tokio::fs::remove_file(self.asset_path(&row)).await;
        Ok(row)
    }
}
