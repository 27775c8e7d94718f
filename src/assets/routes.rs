//! `/api/assets` (also answered under `/api/photos`, as the app's upstream
//! backend mounts it twice; documented once): the asset map (F7), a
//! photo's files (F12), download (F13), delete (F14), generate (F15) and
//! convert (F16). `{id}` is the Immich asset id (a media item id works too).

use std::sync::Arc;

use poem::web::StaticFileRequest;
use poem_openapi::{param::Path, payload::Json, OpenApi};
use uuid::Uuid;

use super::{
    generate::Started,
    respond::{Download, Generated, MapJson},
    views::*,
    AssetError, AssetRow, Format, Kind, SPLAT_MODEL,
};
use crate::{
    auth::Authed,
    http::{
        body::JsonBody,
        codes::ErrorCode as E,
        error::ApiError,
        spec::{op, OpErrors, Storage},
    },
    media::MediaRow,
    queue::Status,
    state::{ApiTags, AppState},
    timestamp::Timestamp,
};

pub struct AssetsApi {
    pub state: Arc<AppState>,
}

/// A `fileId` that is not a UUID names no file: 404, as the app expects.
fn file_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| AssetError::FileNotFound(raw.to_string()).into())
}

impl AssetsApi {
    /// The item `id` names, if the caller may see it (`access::sharing`).
    async fn visible(&self, auth: &Authed, id: &str) -> Result<Option<MediaRow>, ApiError> {
        let Some(m) = self.state.catalog.resolve(id).await? else {
            return Ok(None);
        };
        let viewer = self.state.viewer(&auth.0).await?;
        Ok(self.state.sharing.may_see(&viewer, &m).await.then_some(m))
    }

    /// A generated file the caller may see, and whether it is theirs to
    /// delete; a file of a photo they may not see is one that does not exist.
    async fn file(&self, auth: &Authed, raw: &str) -> Result<(AssetRow, bool), ApiError> {
        let missing = || ApiError::from(AssetError::FileNotFound(raw.to_string()));
        let fid = file_id(raw)?;
        let a = self.state.catalog.asset(fid).await?.ok_or_else(missing)?;
        let m = self
            .state
            .catalog
            .media(a.media_item_id)
            .await
            .map_err(|_| missing())?;
        let viewer = self.state.viewer(&auth.0).await?;
        if !self.state.sharing.may_see(&viewer, &m).await {
            return Err(missing());
        }
        Ok((a, viewer.owns(&m)))
    }
}

#[OpenApi(prefix_path = "/api/assets", tag = "ApiTags::Assets")]
impl AssetsApi {
    /// Which photos have which 3D assets (Immich id -> kind -> models)
    #[oai(path = "/map", method = "get", operation_id = "getAssetMap")]
    async fn map(&self, auth: Authed) -> Result<MapJson, ApiError> {
        let viewer = self.state.viewer(&auth.0).await?;
        Ok(MapJson(
            self.state.catalog.asset_map_json_for(&viewer).await?,
        ))
    }

    /// A photo's generated files, newest first
    #[oai(path = "/:id/files", method = "get", operation_id = "listAssetFiles")]
    async fn files(&self, auth: Authed, id: Path<String>) -> Result<Json<FileList>, ApiError> {
        // A photo the caller may not see has no files, for them.
        let rows = match self.visible(&auth, &id.0).await? {
            Some(_) => self.state.catalog.files_of(&id.0).await?,
            None => Vec::new(),
        };
        Ok(Json(FileList {
            photo_id: id.0,
            count: rows.len() as u64,
            files: rows.iter().map(FileEntry::from).collect(),
        }))
    }

    /// One generated file's bytes (PNG, ZIP, PLY or KSPLAT)
    #[oai(
        path = "/:id/files/:fileId/download",
        method = "get",
        operation_id = "downloadAssetFile"
    )]
    async fn download(
        &self,
        auth: Authed,
        #[oai(name = "id")] _photo: Path<String>,
        #[oai(name = "fileId")] file: Path<String>,
        req: StaticFileRequest,
    ) -> Result<Download, ApiError> {
        let (a, _) = self.file(&auth, &file.0).await?;
        self.state.catalog.viewed(a.id);
        Download::serve(req, &self.state.catalog.asset_path(&a), &a)
    }

    /// Delete one generated file
    #[oai(
        path = "/:id/files/:fileId",
        method = "delete",
        operation_id = "deleteAssetFile"
    )]
    async fn delete(
        &self,
        auth: Authed,
        #[oai(name = "id")] _photo: Path<String>,
        #[oai(name = "fileId")] file: Path<String>,
    ) -> Result<Json<FileDeleted>, ApiError> {
        let (a, owner) = self.file(&auth, &file.0).await?;
        if !owner {
            return Err(ApiError::new(
                E::Forbidden,
                "Only the photo's owner (or an operator) may delete its 3D files",
            ));
        }
        let fid = a.id;
        let row = self.state.catalog.delete_asset(fid).await?;
        Ok(Json(FileDeleted {
            success: true,
            message: format!("Deleted {} {}", row.model_key, row.kind.as_str()),
            deleted_file_id: fid,
        }))
    }

    /// Generate (or answer from the cache) a depth map or a splat
    ///
    /// The request becomes a job of the durable queue, ahead of bulk work
    /// (priority 0), shared with any identical request; the answer waits
    /// for it up to `GENERATE_WAIT_SECS` (100 s, below the app's 120 s),
    /// then 504 while the job carries on (asking again later answers from
    /// the cache). The file is stored before the answer.
    #[oai(
        path = "/:id/generate",
        method = "post",
        operation_id = "generateAsset"
    )]
    async fn generate(
        &self,
        auth: Authed,
        id: Path<String>,
        body: JsonBody<GenerateBody>,
    ) -> Result<Generated, ApiError> {
        let GenerateBody { kind, model_key } = body.0;
        let (model, job) =
            match super::generate::start(&self.state, &auth.0, &id.0, kind, &model_key).await? {
                Started::Cached(a) => {
                    self.state.catalog.viewed(a.id);
                    return Generated::file(&self.state.catalog.asset_path(&a), &a, true).await;
                }
                Started::Queued { model, job, .. } => (model, job),
            };
        let bound = std::time::Duration::from_secs(self.state.config.vr.generate_wait_secs);
        let done = self.state.catalog.wait_job(job.id, bound).await?;
        match done.status {
            Status::Completed => {
                match super::generate::cached(&self.state, done.media_item_id, kind, &model).await?
                {
                    Some(a) => {
                        self.state.catalog.viewed(a.id);
                        Generated::file(&self.state.catalog.asset_path(&a), &a, false).await
                    }
                    None => Err(AssetError::Failed(
                        "the job completed but its file is gone".into(),
                    )
                    .into()),
                }
            }
            Status::Failed | Status::Cancelled => Err(AssetError::Failed(
                done.last_error
                    .unwrap_or_else(|| done.status.as_str().into()),
            )
            .into()),
            Status::Queued | Status::Pending | Status::Processing => {
                Err(AssetError::StillRunning(bound.as_secs()).into())
            }
        }
    }

    /// Convert a photo's splat from PLY to KSPLAT
    #[oai(path = "/:id/convert", method = "post", operation_id = "convertAsset")]
    async fn convert(
        &self,
        auth: Authed,
        id: Path<String>,
        body: JsonBody<ConvertBody>,
    ) -> Result<Json<Converted>, ApiError> {
        // The asked format first: an unsupported one is a 400 whatever exists.
        if body.to != "ksplat" || body.from != "ply" {
            return Err(AssetError::UnsupportedConversion.into());
        }
        let m = self
            .visible(&auth, &id.0)
            .await?
            .ok_or_else(|| AssetError::NoMedia(id.0.clone()))?;
        let ply = self
            .state
            .catalog
            .find_asset(m.id, Kind::Splat, SPLAT_MODEL.into(), Format::Ply)
            .await?
            .ok_or(AssetError::NoPly)?;
        let existing = self
            .state
            .catalog
            .find_asset(m.id, Kind::Splat, ply.model_key.clone(), Format::Ksplat)
            .await?;
        if let Some(k) = existing {
            if tokio::fs::metadata(self.state.catalog.asset_path(&k))
                .await
                .is_ok()
            {
                return Ok(Json(converted(
                    &k,
                    "already_converted",
                    "KSPLAT already exists",
                )));
            }
        }
        let src = self.state.catalog.asset_path(&ply);
        let dir = self.state.catalog.dirs().splats.clone();
        let (file, size, sha, splats) =
            tokio::task::spawn_blocking(move || super::ksplat::convert_file(&src, &dir))
                .await
                .map_err(|e| AssetError::Failed(e.to_string()))?
                .map_err(|e| AssetError::BadPly("stored PLY", e.to_string()))?;
        let fid = Uuid::now_v7();
        let row = AssetRow {
            id: fid,
            format: Format::Ksplat,
            file_name: format!("{fid}.ksplat"),
            file_size: size,
            checksum: hex::encode(sha),
            metadata: [
                ("converted_from".to_string(), "ply".to_string()),
                ("splats".to_string(), splats.to_string()),
            ]
            .into(),
            generated_at: Timestamp::now(),
            width: None,
            height: None,
            access_count: 0,
            accessed_at: None,
            ..ply
        };
        let to = self.state.catalog.asset_path(&row);
        tokio::task::spawn_blocking(move || file.rename_into(&to))
            .await
            .map_err(|e| AssetError::Failed(e.to_string()))?
            .map_err(AssetError::Io)?;
        let row = self.state.catalog.add_asset(row).await?;
        Ok(Json(converted(&row, "converted", "Conversion complete")))
    }
}

fn converted(a: &AssetRow, status: &str, message: &str) -> Converted {
    Converted {
        success: true,
        message: message.into(),
        status: status.into(),
        format: a.format,
        file_id: a.id,
        output_path: a.kind.dir().key(&a.file_name),
    }
}

const GENERATE: &[E] = &[
    E::InvalidModel,
    E::ModelNotFound,
    E::ModelNotDownloaded,
    E::AiUnreachable,
    E::AiRefused,
    E::PhotoNotFound,
    E::GenerationFailed,
    E::StillGenerating,
    E::ImmichNotConfigured,
    E::ImmichUnreachable,
    E::ImmichRefused,
    E::ImmichError,
    E::FileSystemError,
];

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op("getAssetMap", Storage::Reads, &[]),
    op("listAssetFiles", Storage::Reads, &[]),
    op(
        "downloadAssetFile",
        Storage::Reads,
        &[E::FileNotFound, E::NotFound, E::RangeNotSatisfiable],
    ),
    op(
        "deleteAssetFile",
        Storage::Writes,
        &[E::FileNotFound, E::Forbidden],
    ),
    op("generateAsset", Storage::Writes, GENERATE),
    op(
        "convertAsset",
        Storage::Writes,
        &[
            E::UnsupportedConversion,
            E::PhotoNotFound,
            E::NoPly,
            E::ConversionFailed,
            E::GenerationFailed,
            E::FileSystemError,
        ],
    ),
];
