//! Importing Immich assets into the queue: one at a time on request, or
//! many as a background job whose progress goes to `/api/events`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use poem_openapi::Object;
use tokio_util::io::StreamReader;
use uuid::Uuid;

use super::{client::Search, needs_preview, routes::SearchType, ImmichClient, ImmichError};
use crate::{
    app::AppState,
    events::Event,
    media::{self, upload::Origin, MediaError},
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
    pub started_at: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub finished_at: Option<DateTime<Utc>>,
}

/// Imports one asset: streamed download, stored, queued.
pub async fn import_one(
    state: &Arc<AppState>,
    client: &ImmichClient,
    asset_id: &str,
) -> Result<Imported, ImmichError> {
    let id = asset_id.to_string();
    let existing = state
        .store
        .read(move |txn| Ok::<_, MediaError>(media::store::find_immich(txn, &id)?))
        .await?;
    if let Some((m, Some(q))) = existing {
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
    if asset.asset_type != "IMAGE" && asset.asset_type != "VIDEO" {
        return Err(MediaError::Unsupported {
            detected: format!("an Immich {} asset", asset.asset_type),
        }
        .into());
    }
    let preview = asset.asset_type == "IMAGE"
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
    let rx = media::upload::receive(
        reader,
        &state.dirs.uploads,
        name,
        state.config.max_upload_bytes,
    )
    .await?;
    let origin = Origin {
        immich_asset_id: Some(asset_id.to_string()),
        immich_variant: Some(variant.into()),
        captured_at: asset.file_created_at,
        duration_seconds: asset.duration.map(|ms| ms as f64 / 1000.0),
    };
    let stored =
        media::upload::store_received(&state.store, &state.dirs.uploads, rx, origin).await?;
    if !stored.duplicate {
        state.queue.announce(&stored.queue);
    }
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

/// Starts a background import; 409 while one runs.
pub async fn start(
    state: Arc<AppState>,
    client: ImmichClient,
    req: ImportRequest,
) -> Result<ImportStatus, ImmichError> {
    let snapshot = {
        let mut s = state.imports.lock().unwrap();
        if s.running {
            return Err(ImmichError::ImportRunning);
        }
        *s = ImportStatus {
            running: true,
            started_at: Some(Utc::now()),
            ..Default::default()
        };
        s.clone()
    };
    publish(&state);
    crate::app::spawn_named("immich-import", run(state, client, req));
    Ok(snapshot)
}

fn publish(state: &AppState) {
    let s = state.imports.lock().unwrap().clone();
    state.queue.events().publish(Event::Import {
        running: s.running,
        queued: s.queued,
        skipped: s.skipped,
        failed: s.failed,
        done: !s.running,
    });
}

fn record(state: &AppState, f: impl FnOnce(&mut ImportStatus)) {
    f(&mut state.imports.lock().unwrap());
    publish(state);
}

fn note_error(s: &mut ImportStatus, e: String) {
    s.failed += 1;
    if s.errors.len() >= 20 {
        s.errors.remove(0);
    }
    s.errors.push(e);
}

async fn run(state: Arc<AppState>, client: ImmichClient, req: ImportRequest) {
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
                record(&state, |s| {
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
            if asset.asset_type != "IMAGE" && asset.asset_type != "VIDEO" {
                record(&state, |s| s.skipped += 1);
                continue;
            }
            match import_one(&state, &client, &asset.id).await {
                Ok(r) if r.duplicate => record(&state, |s| s.skipped += 1),
                Ok(_) => record(&state, |s| s.queued += 1),
                Err(e) => record(&state, |s| note_error(s, format!("{}: {e}", asset.id))),
            }
        }
        match result.next_page {
            Some(n) if seen < limit => page = n,
            _ => break,
        }
    }
    record(&state, |s| {
        s.running = false;
        s.finished_at = Some(Utc::now());
    });
    tracing::info!("Immich import finished");
}
