//! One job's three parts: preparing its input (before the AI is free),
//! the AI's part (with a slot held), and storing the answer beside the
//! other files of its kind, recorded with the job's completion in one
//! transaction (after the slot is given back). A depth job sends the
//! original (or, for an item that lives in Immich, Immich's preview JPEG);
//! a splat job sends the original unless browsers and the AI service
//! cannot read it (HEIC, RAW, video), or the AI service failed on it, and
//! then the preview; its PLY is converted to KSPLAT before the commit.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{job::Outcome, stages::Stages, Shared};
use crate::{
    ai::{AiError, Input, Produced},
    assets::{self, AssetRow, Format, Kind},
    catalog::CatalogError,
    immich::ImmichClient,
    media::{MediaError, MediaRow, MediaType},
    queue::QueueRow,
    settings::manager::Trigger,
    storage::{Fault, StorageError},
    timestamp::Timestamp,
};

/// The asset metadata key saying who asked for it: `app` (a request of
/// the app, kept by the disk budget) or `background`.
pub const TRIGGER: &str = "trigger";

/// Extensions and types the AI service (Pillow without HEIF) cannot open.
const UNREADABLE: &[&str] = &[
    "heic", "heif", "cr2", "cr3", "nef", "arw", "dng", "raf", "orf", "rw2", "pef", "srw", "x3f",
];

/// Whether the original is no good as an image to send: HEIC, RAW, video.
pub fn needs_preview(m: &MediaRow) -> bool {
    let ext = m
        .original_filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    m.media_type == MediaType::Video
        || UNREADABLE.contains(&ext.as_str())
        || m.mime_type.contains("heic")
        || m.mime_type.contains("heif")
}

/// Where one attempt takes its input from.
enum From {
    Original,
    Preview,
}

/// The key a job reads an Immich asset with: its owner's, else that of
/// the last person who asked for it, while they are signed in; else the
/// service's own (`IMMICH_API_KEY`).
fn immich(shared: &Shared, media: &MediaRow) -> Result<ImmichClient, Outcome> {
    for id in [media.owner.as_deref(), media.via.as_deref()]
        .into_iter()
        .flatten()
    {
        if let Some(c) = shared
            .auth
            .user(id)
            .and_then(|u| shared.auth.client_for(&u))
        {
            return Ok(c);
        }
    }
    shared.immich.clone().ok_or_else(|| {
        Outcome::Refused(
            "the original of this item is in Immich, and no key here can read it: its owner is not signed in and IMMICH_API_KEY is not set"
                .into(),
        )
    })
}

async fn input(shared: &Shared, media: &MediaRow, from: &From) -> Result<Input, Outcome> {
    let asset = media.immich_asset_id.as_deref().unwrap_or_default();
    match from {
        From::Original if !media.is_referenced() => Ok(Input::file(
            shared.catalog.dirs().original(media),
            &media.original_filename,
            &media.mime_type,
        )),
        From::Original => {
            let path = ImmichClient::original_path(asset);
            let bytes = immich(shared, media)?
                .fetch_bytes(&path, shared.max_input_bytes)
                .await
                .map_err(|e| {
                    Outcome::Failed(format!("cannot fetch the original from Immich: {e}"))
                })?;
            Ok(Input::bytes(
                bytes,
                &media.original_filename,
                &media.mime_type,
            ))
        }
        From::Preview => {
            let path = ImmichClient::thumbnail_path(asset, "preview");
            let bytes = immich(shared, media)?
                .fetch_bytes(&path, shared.max_input_bytes)
                .await
                .map_err(|e| {
                    Outcome::Failed(format!("cannot fetch the preview from Immich: {e}"))
                })?;
            let stem = media.original_filename.rsplit_once('.').map(|(s, _)| s);
            let name = format!("{}.jpg", stem.unwrap_or("image"));
            Ok(Input::bytes(bytes, &name, "image/jpeg"))
        }
    }
}

fn ai_outcome(e: AiError) -> Outcome {
    match e {
        AiError::Disk(e) if crate::storage::io_is_disk_full(&e) => {
            Outcome::Paused(format!("disk full while writing the answer: {e}"))
        }
        e if !e.counts_attempt() => Outcome::Unavailable(e.to_string()),
        e if !e.retryable() => Outcome::Refused(e.to_string()),
        e => Outcome::Failed(e.to_string()),
    }
}

/// A job whose input is fetched, waiting for the AI.
pub(super) struct Prepared {
    pub media: MediaRow,
    /// Where the inputs may come from, in the order they are tried.
    tries: Vec<From>,
    /// Which of `tries` `input` is.
    at: usize,
    input: Input,
}

/// The inputs a job may send, in order: a depth job one (Immich's preview
/// for items that live there, else the original); a splat job the
/// original and then the preview when browsers and the AI service cannot
/// read the original (HEIC, RAW, video) or the service refuses it.
fn tries(kind: Kind, media: &MediaRow) -> Vec<From> {
    let can_preview = media.immich_asset_id.is_some();
    match kind {
        Kind::Depth if media.is_referenced() => vec![From::Preview],
        Kind::Depth => vec![From::Original],
        Kind::Splat if needs_preview(media) && can_preview => vec![From::Preview],
        Kind::Splat if can_preview => vec![From::Original, From::Preview],
        Kind::Splat => vec![From::Original],
    }
}

/// Reads the item and fetches its input: what can be done before the AI
/// is free.
pub(super) async fn prepare(shared: &Shared, item: &QueueRow) -> Result<Prepared, Outcome> {
    let media = shared
        .catalog
        .media(item.media_item_id)
        .await
        .map_err(|e| Outcome::Failed(e.to_string()))?;
    let tries = tries(item.kind, &media);
    let mut last = None;
    for (at, from) in tries.iter().enumerate() {
        match input(shared, &media, from).await {
            Ok(input) => {
                return Ok(Prepared {
                    media,
                    tries,
                    at,
                    input,
                })
            }
            Err(o) => last = Some(o),
        }
    }
    Err(last.unwrap_or_else(|| Outcome::Failed("nothing to send".into())))
}

/// The AI's part, with a slot held: the prepared input sent to `url`
/// (and, for a splat the service refused, the next input).
pub(super) async fn at_ai(
    shared: &Shared,
    url: &str,
    item: &QueueRow,
    p: Prepared,
    stages: &Stages<'_>,
) -> Result<Vec<Made>, Outcome> {
    let Prepared {
        media,
        tries,
        mut at,
        mut input,
    } = p;
    loop {
        stages.at("sending_to_ai", 20);
        stages.at("generating", 30);
        let result = match item.kind {
            Kind::Depth => depth_call(shared, url, item, &media, input).await,
            Kind::Splat => splat_call(shared, url, item, &media, input, &tries[at]).await,
        };
        match result {
            // The AI service could not use the original: the preview may do.
            Err(AiError::Rejected { .. }) if at + 1 < tries.len() => {
                tracing::info!("the AI service refused the original; sending Immich's preview");
                at += 1;
                input = self::input(shared, &media, &tries[at]).await?;
            }
            Err(e) => return Err(ai_outcome(e)),
            Ok(made) => return Ok(made),
        }
    }
}

async fn depth_call(
    shared: &Shared,
    url: &str,
    item: &QueueRow,
    media: &MediaRow,
    input: Input,
) -> Result<Vec<Made>, AiError> {
    // Items that live in Immich are sent Immich's preview (a JPEG any
    // decoder reads, at the resolution the app shows).
    let media_type = if media.is_referenced() {
        MediaType::Photo
    } else {
        media.media_type
    };
    let dir = &shared.catalog.dirs().depth_maps;
    let r = shared
        .ai
        .depth(url, input, media_type, Some(&item.model_key), dir)
        .await?;
    let format = if r.format == "zip" {
        Format::Zip
    } else {
        Format::Png
    };
    let mut meta = BTreeMap::new();
    meta.insert("model_name".to_string(), shared.model_name.clone());
    if let Some(used) = &r.model_used {
        meta.insert("model_used".to_string(), used.clone());
    }
    Ok(vec![made(item, media, Kind::Depth, format, r, meta)])
}

async fn splat_call(
    shared: &Shared,
    url: &str,
    item: &QueueRow,
    media: &MediaRow,
    input: Input,
    from: &From,
) -> Result<Vec<Made>, AiError> {
    let dir = shared.catalog.dirs().splats.clone();
    let r = shared.ai.splat(url, input, &dir).await?;
    let source = if matches!(from, From::Preview) {
        "preview"
    } else {
        "original"
    };
    let mut meta = BTreeMap::new();
    meta.insert("source".to_string(), "ml-sharp".to_string());
    meta.insert("input".to_string(), source.to_string());
    Ok(vec![made(item, media, Kind::Splat, Format::Ply, r, meta)])
}

/// A file received and the row that will record it.
pub(super) struct Made {
    pub row: AssetRow,
    pub file: crate::media::sink::TempFile,
}

fn made(
    item: &QueueRow,
    media: &MediaRow,
    kind: Kind,
    format: Format,
    r: Produced,
    metadata: BTreeMap<String, String>,
) -> Made {
    let id = Uuid::now_v7();
    Made {
        row: AssetRow {
            id,
            media_item_id: media.id,
            immich_asset_id: media.immich_asset_id.clone(),
            kind,
            model_key: item.model_key.clone(),
            format,
            file_name: format!("{id}.{}", format.as_str()),
            file_size: r.size,
            width: r.width,
            height: r.height,
            checksum: hex::encode(r.sha256),
            metadata,
            generated_at: Timestamp::now(),
            access_count: 0,
            accessed_at: None,
        },
        file: r.file,
    }
}

/// The KSPLAT of a PLY just received; `None` (logged) when the PLY cannot
/// be read: the PLY alone is still a usable splat.
async fn ksplat_of(ply: &Made, dir: &std::path::Path) -> Option<Made> {
    let src = ply.file.path().to_path_buf();
    let dir = dir.to_path_buf();
    let converted = tokio::task::spawn_blocking(move || assets::ksplat::convert_file(&src, &dir))
        .await
        .ok()?;
    match converted {
        Ok((file, size, sha, splats)) => {
            let id = Uuid::now_v7();
            let mut metadata = BTreeMap::new();
            metadata.insert("converted_from".to_string(), "ply".to_string());
            metadata.insert("splats".to_string(), splats.to_string());
            Some(Made {
                row: AssetRow {
                    id,
                    format: Format::Ksplat,
                    file_name: format!("{id}.ksplat"),
                    file_size: size,
                    checksum: hex::encode(sha),
                    metadata,
                    width: None,
                    height: None,
                    ..ply.row.clone()
                },
                file,
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "the splat could not be converted to KSPLAT; the PLY is kept");
            None
        }
    }
}

/// After the AI: a splat's KSPLAT made, the files renamed into place and
/// recorded with the job's completion in one transaction. `on_demand`:
/// the app asked for it (kept when the disk budget makes room).
pub(super) async fn store(
    shared: &Shared,
    item: &QueueRow,
    mut made: Vec<Made>,
    on_demand: bool,
    stages: &Stages<'_>,
) -> Outcome {
    stages.at("saving", 80);
    if item.kind == Kind::Splat {
        stages.at("converting", 90);
        let dir = shared.catalog.dirs().splats.clone();
        if let Some(k) = ksplat_of(&made[0], &dir).await {
            made.push(k);
        }
    }
    let dirs = shared.catalog.dirs().clone();
    let mut rows = Vec::new();
    let mut paths = Vec::new();
    for mut m in made {
        let trigger = if on_demand { "app" } else { "background" };
        m.row
            .metadata
            .insert(TRIGGER.to_string(), trigger.to_string());
        let to = dirs.path(m.row.kind.dir(), &m.row.file_name);
        let target = to.clone();
        let file = m.file;
        let keep = move || {
            file.sync()?;
            file.rename_into(&target)
        };
        match tokio::task::spawn_blocking(keep).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if crate::storage::io_is_disk_full(&e) => {
                return Outcome::Paused(format!("storing the result failed: {e}"))
            }
            Ok(Err(e)) => return Outcome::Failed(format!("storing the result failed: {e}")),
            Err(e) => return Outcome::Failed(format!("storing the result failed: {e}")),
        }
        paths.push(to);
        rows.push(m.row);
    }
    let bytes: u64 = rows.iter().map(|r| r.file_size).sum();
    let no_ksplat = item.kind == Kind::Splat && !rows.iter().any(|r| r.format == Format::Ksplat);
    // The AI has the model on disk now; recorded before the completion,
    // which wakes whoever waits for the job and may read the catalogue.
    shared.models.produced_with(&item.model_key).await;
    match shared.catalog.complete(item.id, rows).await {
        Ok(_) => {
            stages.done(no_ksplat.then_some("conversion_failed"));
            tracing::info!(bytes, kind = item.kind.as_str(), model = %item.model_key, "result stored");
            let trigger = if on_demand {
                Trigger::Manual
            } else {
                Trigger::Auto
            };
            if item.kind == Kind::Depth {
                shared.models.used(&item.model_key, trigger);
            }
            Outcome::Completed
        }
        Err(e) => {
            for p in paths {
                let _ = tokio::fs::remove_file(&p).await;
            }
            if storage_blocked(&e) {
                Outcome::Paused(format!("storing the result failed: {e}"))
            } else {
                Outcome::Failed(format!("storing the result failed: {e}"))
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
