//! Asking for a 3D asset, the one way both doors use: the REST generate
//! (which then waits for the job) and the live channel's `model:generate`
//! (which does not). A stored asset answers at once; otherwise the request
//! becomes a job of the durable queue, shared with an identical one.

use uuid::Uuid;

use super::{AssetError, AssetRow, Format, Kind, DEPTH_MODELS, SPLAT_MODEL};
use crate::{
    auth::Caller, catalog::ImmichRef, http::error::ApiError, immich::ImmichError, media::MediaType,
    queue::QueueRow, state::AppState,
};

pub enum Started {
    /// Stored already (its file is there).
    Cached(AssetRow),
    /// A job (new, or the identical one already waiting or running).
    Queued { model: String, job: QueueRow },
}

/// The model a request means: splats are always SHARP; depth needs one of
/// the depth models, usable now (`ModelManager::usable`: asked of the AI
/// when this process has not heard it hold the model).
pub async fn model_for(state: &AppState, kind: Kind, asked: &str) -> Result<String, ApiError> {
    let model = match kind {
        Kind::Splat => return Ok(SPLAT_MODEL.to_string()),
        Kind::Depth if DEPTH_MODELS.contains(&asked) => asked.to_string(),
        Kind::Depth => return Err(AssetError::UnknownModel(asked.to_string()).into()),
    };
    state.models.usable(&model).await?;
    Ok(model)
}

/// Answers from the store, or queues the work (priority 0). What the
/// caller may not see (`access::sharing`) is answered as if it did not
/// exist, stored or not.
pub async fn start(
    state: &AppState,
    caller: &Caller,
    id: &str,
    kind: Kind,
    asked: &str,
) -> Result<Started, ApiError> {
    // Photos are named by UUID (ours or Immich's): anything else names
    // none, and is not sent on to Immich.
    if Uuid::parse_str(id).is_err() {
        return Err(AssetError::NotAnId(id.to_string()).into());
    }
    let model = model_for(state, kind, asked).await?;
    let viewer = state.viewer(caller).await?;
    let known = match state.catalog.resolve(id).await? {
        Some(m) if state.sharing.may_see(&viewer, &m).await => Some(m),
        Some(_) => return Err(AssetError::NoMedia(id.to_string()).into()),
        None => None,
    };
    if let Some(m) = &known {
        if let Some(a) = cached(state, m.id, kind, &model).await? {
            return Ok(Started::Cached(a));
        }
    }
    let reference = reference(state, caller, id, known).await?;
    let via = caller.user_id().map(str::to_string);
    let (_, job) = state
        .catalog
        .request_job(reference, kind, model.clone(), None, via)
        .await?;
    Ok(Started::Queued { model, job })
}

/// The stored file, if its row and its bytes are both there.
pub async fn cached(
    state: &AppState,
    media: Uuid,
    kind: Kind,
    model: &str,
) -> Result<Option<AssetRow>, ApiError> {
    let formats: &[Format] = match kind {
        Kind::Depth => &[Format::Png, Format::Zip],
        Kind::Splat => &[Format::Ply],
    };
    for f in formats {
        let found = state
            .catalog
            .find_asset(media, kind, model.to_string(), *f)
            .await?;
        if let Some(a) = found {
            if tokio::fs::metadata(state.catalog.asset_path(&a))
                .await
                .is_ok()
            {
                return Ok(Some(a));
            }
            tracing::warn!(file = %a.file_name, "a generated file is missing; making it again");
        }
    }
    Ok(None)
}

/// What to queue for `id`: the stored item (`known`), or the Immich
/// asset's facts.
async fn reference(
    state: &AppState,
    caller: &Caller,
    id: &str,
    known: Option<crate::media::MediaRow>,
) -> Result<ImmichRef, ApiError> {
    if let Some(m) = known {
        return Ok(ImmichRef {
            asset_id: m.immich_asset_id.clone().unwrap_or_else(|| id.to_string()),
            original_filename: m.original_filename,
            media_type: m.media_type,
            mime_type: m.mime_type,
            file_size: m.file_size,
            captured_at: m.captured_at,
            owner: m.owner,
        });
    }
    // Asked with the caller's own key: an asset they cannot read is one
    // Immich does not have, for them.
    let client = state.immich_for(caller)?;
    let a = client.asset(id).await.map_err(|e| match e {
        ImmichError::NotFound(_) => ApiError::from(AssetError::NoMedia(id.to_string())),
        other => other.into(),
    })?;
    Ok(ImmichRef {
        asset_id: a.id.clone(),
        original_filename: a.original_file_name.clone(),
        media_type: if a.asset_type == "VIDEO" {
            MediaType::Video
        } else {
            MediaType::Photo
        },
        mime_type: a
            .original_mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
        file_size: 0,
        captured_at: a.file_created_at,
        owner: a.owner_id.clone(),
    })
}
