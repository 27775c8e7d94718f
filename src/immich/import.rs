//! Importing Immich assets into the queue: one at a time on request, or
//! many as a background job whose progress goes to `/api/events`.

use crate::timestamp::Timestamp;
use std::sync::Arc;

use futures_util::TryStreamExt;
use poem_openapi::Object;
use tokio_util::io::StreamReader;
use uuid::Uuid;

use super::{
    client::Search, needs_preview, views::SearchType, AssetType, ImmichClient, ImmichError,
};
use crate::{
    catalog::{Catalog, Origin},
    events::Event,
    media::{self, MediaError},
};

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct Imported {
    pub success: bool,
    pub message: String,
    pub media_item_id: Uuid,
    pub queue_id: Uuid,
    /// `original`, or `preview` when the original is a format the AI service cannot read.
    #[oai(nullable)]
    pub variant: Option<String>,
    /// True when this asset (or the same bytes) was imported before.
    pub duplicate: bool,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct ImportRequest {
    /// IMAGE, VIDEO or ALL (default ALL).
    #[oai(rename = "type")]
    pub asset_type: Option<SearchType>,
    pub is_favorite: Option<bool>,
    pub album_id: Option<Uuid>,
    /// Most assets to import (default: all).
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Default, Object)]
#[oai(rename_all = "camelCase")]
pub struct ImportStatus {
    pub running: bool,
    pub queued: u64,
    pub skipped: u64,
    pub failed: u64,
    /// The last errors (at most 20).
    pub errors: Vec<String>,
    #[oai(nullable)]
    pub started_at: Option<crate::timestamp::Timestamp>,
    #[oai(nullable)]
    pub finished_at: Option<crate::timestamp::Timestamp>,
}

/// Imports one asset: streamed download, stored, queued.
#[tracing::instrument(skip_all, fields(immich_asset_id = %asset_id, media_id = tracing::field::Empty))]
pub async fn import_one(
    catalog: &Catalog,
    client: &ImmichClient,
    max_bytes: u64,
    asset_id: &str,
) -> Result<Imported, ImmichError> {
    let id = asset_id.to_string();
    let existing = catalog.imported(id).await?;
    if let Some((m, q)) = existing {
        return Ok(Imported {
            success: true,
            message: "Asset already imported".into(),
            media_item_id: m.id,
            queue_id: q.id,
            variant: m.immich_variant,
            duplicate: true,
        });
    }
    let asset = client.asset(asset_id).await?;
    let kind = AssetType::of(&asset.asset_type);
    if !kind.is_media() {
        return Err(MediaError::Unsupported {
            detected: format!("an Immich {} asset", asset.asset_type),
        }
        .into());
    }
    let preview = kind == AssetType::Image
        && needs_preview(
            asset.original_mime_type.as_deref(),
            &asset.original_file_name,
        );
    let (path, variant, name) = if preview {
        (
            ImmichClient::thumbnail_path(asset_id, "preview"),
            "preview",
            format!("{}.jpg", asset.original_file_name),
        )
    } else {
        (
            ImmichClient::original_path(asset_id),
            "original",
            asset.original_file_name.clone(),
        )
    };
    let resp = client.download(&path, None).await?;
    let reader = StreamReader::new(resp.bytes_stream().map_err(std::io::Error::other));
    let rx = media::upload::receive(reader, &catalog.dirs().uploads, name, max_bytes).await?;
    let origin = Origin {
        immich_asset_id: Some(asset_id.to_string()),
        immich_variant: Some(variant.into()),
        captured_at: asset.file_created_at,
        duration_seconds: asset.duration.map(|ms| ms as f64 / 1000.0),
        owner: asset.owner_id.clone(),
    };
    let stored = catalog.ingest(rx, origin).await?;
    tracing::Span::current().record("media_id", tracing::field::display(stored.media.id));
    Ok(Imported {
        success: true,
        message: if stored.duplicate {
            "Same bytes already stored".into()
        } else {
            "Asset imported and queued for processing".into()
        },
        media_item_id: stored.media.id,
        queue_id: stored.queue.id,
        variant: Some(variant.into()),
        duplicate: stored.duplicate,
    })
}

/// The background bulk import: at most one at a time, its progress kept
/// here and published on the event bus.
pub struct Importer {
    status: std::sync::Mutex<ImportStatus>,
}

impl Default for Importer {
    fn default() -> Self {
        Importer {
            status: std::sync::Mutex::new(ImportStatus::default()),
        }
    }
}

/// What a bulk import needs, cloned into its task.
#[derive(Clone)]
pub struct Job {
    pub catalog: Catalog,
    pub client: ImmichClient,
    pub max_bytes: u64,
}

impl Importer {
    pub fn status(&self) -> ImportStatus {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ImportStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a background import; 409 while one runs.
    pub fn start(
        self: &Arc<Self>,
        job: Job,
        req: ImportRequest,
    ) -> Result<ImportStatus, ImmichError> {
        let snapshot = {
            let mut s = self.lock();
            if s.running {
                return Err(ImmichError::ImportRunning);
            }
            *s = ImportStatus {
                running: true,
                started_at: Some(Timestamp::now()),
                ..Default::default()
            };
            s.clone()
        };
        self.publish(&job.catalog);
        crate::tasks::spawn_named("immich-import", self.clone().run(job, req));
        Ok(snapshot)
    }

    fn publish(&self, catalog: &Catalog) {
        let s = self.status();
        catalog
            .events()
            .publish(Event::Import(crate::events::ImportEvent {
                running: s.running,
                queued: s.queued,
                skipped: s.skipped,
                failed: s.failed,
                done: !s.running,
            }));
    }

    fn record(&self, catalog: &Catalog, f: impl FnOnce(&mut ImportStatus)) {
        f(&mut self.lock());
        self.publish(catalog);
    }

    async fn run(self: Arc<Self>, job: Job, req: ImportRequest) {
        let Job {
            catalog,
            client,
            max_bytes,
        } = job;
        let limit = req.limit.map(u64::from).unwrap_or(u64::MAX);
        let mut seen: u64 = 0;
        let mut page = 1;
        // One page size for the whole walk: Immich pages are offsets of it.
        let size = limit.min(1000) as u32;
        'pages: loop {
            let search = Search {
                page,
                size,
                asset_type: match req.asset_type {
                    Some(SearchType::Image) => Some("IMAGE".into()),
                    Some(SearchType::Video) => Some("VIDEO".into()),
                    Some(SearchType::All) | None => None,
                },
                is_favorite: req.is_favorite,
                visibility: Some("timeline".into()),
                album_ids: req.album_id.map(|a| vec![a.to_string()]),
                ..Default::default()
            };
            let result = match client.search(&search).await {
                Ok(p) => p,
                Err(e) => {
                    self.record(&catalog, |s| {
                        note_error(s, format!("listing page {page}: {e}"))
                    });
                    break;
                }
            };
            for asset in result.items {
                if seen >= limit {
                    break 'pages;
                }
                seen += 1;
                if !AssetType::of(&asset.asset_type).is_media() {
                    self.record(&catalog, |s| s.skipped += 1);
                    continue;
                }
                match import_one(&catalog, &client, max_bytes, &asset.id).await {
                    Ok(r) if r.duplicate => self.record(&catalog, |s| s.skipped += 1),
                    Ok(_) => self.record(&catalog, |s| s.queued += 1),
                    Err(e) => {
                        self.record(&catalog, |s| note_error(s, format!("{}: {e}", asset.id)))
                    }
                }
            }
            match result.next_page {
                Some(n) if seen < limit => page = n,
                _ => break,
            }
        }
        self.record(&catalog, |s| {
            s.running = false;
            s.finished_at = Some(Timestamp::now());
        });
        tracing::info!("Immich import finished");
    }
}

fn note_error(s: &mut ImportStatus, e: String) {
    s.failed += 1;
    if s.errors.len() >= 20 {
        s.errors.remove(0);
    }
    s.errors.push(e);
}
