//! `/api/media/*`.

use crate::http::{
    codes::ErrorCode as E,
    spec::{op, OpErrors, Storage},
};
use std::sync::Arc;

use poem::web::StaticFileRequest;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    ApiResponse, Object, OpenApi,
};
use uuid::Uuid;

use super::{files::FileBody, upload, MediaRow, MediaType};
use crate::{
    auth::Authed,
    http::error::ApiError,
    queue::Status,
    state::{ApiTags, AppState},
};

pub struct MediaApi {
    pub state: Arc<AppState>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UploadResult {
    pub success: bool,
    pub message: String,
    pub media_item_id: Uuid,
    pub queue_id: Uuid,
    /// The client's file name (metadata only).
    pub filename: String,
    pub size: u64,
    #[oai(rename = "type")]
    pub media_type: MediaType,
    /// True when the same bytes were already stored: nothing new was written.
    pub duplicate: bool,
}

#[derive(ApiResponse)]
pub enum UploadResponse {
    /// Stored and queued: the bytes and rows are on disk.
    #[oai(status = 201)]
    Created(Json<UploadResult>),
    /// The same bytes were uploaded before; the existing ids are returned.
    #[oai(status = 200)]
    Duplicate(Json<UploadResult>),
}

#[derive(Debug, Object)]
pub struct MediaStatusRow {
    pub media_id: Uuid,
    pub original_filename: String,
    pub media_type: MediaType,
    pub uploaded_at: crate::timestamp::Timestamp,
    #[oai(nullable)]
    pub processing_status: Option<Status>,
    #[oai(nullable)]
    pub processing_attempts: Option<u32>,
    #[oai(nullable)]
    pub last_error: Option<String>,
    #[oai(nullable)]
    pub depth_map_id: Option<Uuid>,
    #[oai(nullable)]
    pub depth_map_path: Option<String>,
    #[oai(nullable)]
    pub depth_map_generated_at: Option<crate::timestamp::Timestamp>,
}

#[derive(Debug, Object)]
pub struct MediaStatusList {
    pub count: u64,
    pub media: Vec<MediaStatusRow>,
}

#[derive(Debug, Object)]
pub struct Deleted {
    pub success: bool,
    pub message: String,
}

const MAX_LIMIT: u32 = 1000;

impl MediaApi {
    /// The item, if the caller may see it; else as if there were none.
    async fn visible(&self, auth: &Authed, id: Uuid) -> Result<MediaRow, ApiError> {
        let m = self.state.catalog.media(id).await?;
        let viewer = self.state.viewer(&auth.0).await?;
        if self.state.sharing.may_see(&viewer, &m).await {
            Ok(m)
        } else {
            Err(crate::media::MediaError::NotFound(id).into())
        }
    }

    /// Records a received upload (the uploader's) and says what became of it.
    async fn store(&self, auth: &Authed, rx: upload::Received) -> Result<UploadResponse, ApiError> {
        let span = tracing::info_span!("upload", media_id = tracing::field::Empty);
        let filename = rx.original_filename.clone();
        crate::metrics::upload_received(rx.size);
        let origin = crate::catalog::Origin {
            owner: auth.0.user_id().map(str::to_string),
            ..Default::default()
        };
        let stored = self.state.catalog.ingest(rx, origin).await?;
        span.record("media_id", tracing::field::display(stored.media.id));
        span.in_scope(|| {
            tracing::info!(
                queue_id = %stored.queue.id,
                bytes = stored.media.file_size,
                duplicate = stored.duplicate,
                "upload stored"
            )
        });
        let result = UploadResult {
            success: true,
            message: if stored.duplicate {
                "Identical file already uploaded; returning the existing item".into()
            } else {
                "Media uploaded and queued for processing".into()
            },
            media_item_id: stored.media.id,
            queue_id: stored.queue.id,
            filename,
            size: stored.media.file_size,
            media_type: stored.media.media_type,
            duplicate: stored.duplicate,
        };
        Ok(if stored.duplicate {
            UploadResponse::Duplicate(Json(result))
        } else {
            UploadResponse::Created(Json(result))
        })
    }
}

#[OpenApi(prefix_path = "/api/media", tag = "ApiTags::Media")]
impl MediaApi {
    /// Upload a photo or video
    ///
    /// Streams the file in field `media` to disk, types it by its bytes,
    /// stores it and queues it, all before answering 201.
    #[oai(path = "/upload", method = "post", operation_id = "uploadMedia")]
    async fn upload(
        &self,
        auth: Authed,
        form: upload::UploadForm,
    ) -> Result<UploadResponse, ApiError> {
        let s = &self.state;
        let _permit = s.uploads.enter().await?;
        let dir = &s.catalog.dirs().uploads;
        let rx = upload::receive_form(form.0, dir, s.config.max_upload_bytes).await?;
        self.store(&auth, rx).await
    }

    /// Upload a photo or video as the raw body
    ///
    /// The same as `uploadMedia` (answers, limits, duplicates) for clients
    /// without multipart support: the body is the file's bytes, and
    /// `filename` is kept as metadata only.
    #[oai(path = "/upload/raw", method = "post", operation_id = "uploadMediaRaw")]
    async fn upload_raw(
        &self,
        auth: Authed,
        /// The original file name, kept as metadata (at most 255 characters).
        #[oai(validator(max_length = 255))]
        filename: Query<Option<String>>,
        body: upload::RawFile,
    ) -> Result<UploadResponse, ApiError> {
        let s = &self.state;
        let _permit = s.uploads.enter().await?;
        let dir = &s.catalog.dirs().uploads;
        let name = filename
            .0
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "upload".into());
        let rx = upload::receive_raw(body, dir, name, s.config.max_upload_bytes).await?;
        self.store(&auth, rx).await
    }

    /// Media items with their processing status, newest first
    #[oai(path = "/status", method = "get", operation_id = "listMediaStatus")]
    async fn status(
        &self,
        auth: Authed,
        /// Rows per page (default 100; more than 1000 is capped to 1000).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "4294967295"))
        )]
        limit: Query<u32>,
        #[oai(
            default,
            validator(minimum(value = "0"), maximum(value = "4294967295"))
        )]
        offset: Query<u32>,
    ) -> Result<Json<MediaStatusList>, ApiError> {
        let (limit, offset) = (limit.0.min(MAX_LIMIT) as usize, offset.0 as usize);
        let viewer = self.state.viewer(&auth.0).await?;
        let rows = self
            .state
            .catalog
            .media_page(limit, offset, &viewer)
            .await?;
        let dirs = self.state.catalog.dirs();
        let media: Vec<MediaStatusRow> = rows
            .into_iter()
            .map(|(m, q, d)| MediaStatusRow {
                media_id: m.id,
                original_filename: m.original_filename,
                media_type: m.media_type,
                uploaded_at: m.uploaded_at,
                processing_status: q.as_ref().map(|q| q.status),
                processing_attempts: q.as_ref().map(|q| q.attempts),
                last_error: q.and_then(|q| q.last_error),
                depth_map_id: d.as_ref().map(|d| d.id),
                depth_map_path: d
                    .as_ref()
                    .map(|d| dirs.depth_map(d).to_string_lossy().into_owned()),
                depth_map_generated_at: d.map(|d| d.generated_at),
            })
            .collect();
        Ok(Json(MediaStatusList {
            count: media.len() as u64,
            media,
        }))
    }

    /// One media item
    #[oai(path = "/:id", method = "get", operation_id = "getMedia")]
    async fn get(&self, auth: Authed, id: Path<Uuid>) -> Result<Json<MediaRow>, ApiError> {
        let mut row = self.visible(&auth, id.0).await?;
        row.file_path = self.state.catalog.dirs().shown(&row);
        Ok(Json(row))
    }

    /// The original file
    #[oai(path = "/:id/file", method = "get", operation_id = "getMediaFile")]
    async fn file(
        &self,
        auth: Authed,
        id: Path<Uuid>,
        req: StaticFileRequest,
        raw: &poem::Request,
    ) -> Result<FileBody, ApiError> {
        let m = self.visible(&auth, id.0).await?;
        if m.is_referenced() {
            // Kept in Immich: passed on from there, with the caller's key.
            let client = self.state.immich_for(&auth.0)?;
            let asset = m.immich_asset_id.as_deref().unwrap_or_default();
            let path = crate::immich::ImmichClient::original_path(asset);
            return crate::immich::routes::proxy(&client, &path, raw).await;
        }
        FileBody::serve(req, &self.state.catalog.dirs().original(&m), &m.mime_type)
    }

    /// The depth map (PNG for photos, ZIP of PNG frames for videos)
    #[oai(path = "/:id/depth", method = "get", operation_id = "getMediaDepth")]
    async fn depth(
        &self,
        auth: Authed,
        id: Path<Uuid>,
        req: StaticFileRequest,
    ) -> Result<FileBody, ApiError> {
        self.visible(&auth, id.0).await?;
        let depth = self.state.catalog.depth_for_download(id.0).await?;
        let mime = if depth.format == "zip" {
            "application/zip"
        } else {
            "image/png"
        };
        FileBody::serve(req, &self.state.catalog.dirs().depth_map(&depth), mime)
    }

    /// Delete a media item, its queue entry, its files and its depth map
    #[oai(path = "/:id", method = "delete", operation_id = "deleteMedia")]
    async fn delete(&self, auth: Authed, id: Path<Uuid>) -> Result<Json<Deleted>, ApiError> {
        let m = self.visible(&auth, id.0).await?;
        let viewer = self.state.viewer(&auth.0).await?;
        if !viewer.owns(&m) {
            return Err(ApiError::new(
                E::Forbidden,
                "Only the item's owner (or an operator) may delete it",
            ));
        }
        self.state.catalog.delete_media(id.0).await?;
        Ok(Json(Deleted {
            success: true,
            message: "Media item deleted".into(),
        }))
    }
}

fn default_limit() -> u32 {
    100
}

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op(
        "uploadMedia",
        Storage::Writes,
        &[
            E::NoFile,
            E::EmptyFile,
            E::InvalidMultipart,
            E::FileTooLarge,
            E::UnsupportedMediaType,
            E::TooManyUploads,
            E::FileSystemError,
        ],
    ),
    op(
        "uploadMediaRaw",
        Storage::Writes,
        &[
            E::EmptyFile,
            E::FileTooLarge,
            E::UnsupportedMediaType,
            E::TooManyUploads,
            E::FileSystemError,
        ],
    ),
    op("listMediaStatus", Storage::Reads, &[]),
    op("getMedia", Storage::Reads, &[E::MediaNotFound]),
    op(
        "getMediaFile",
        Storage::Reads,
        &[
            E::MediaNotFound,
            E::NotFound,
            E::RangeNotSatisfiable,
            E::ImmichNotConfigured,
            E::ImmichUnreachable,
            E::ImmichRefused,
            E::ImmichError,
            E::ImmichAssetNotFound,
        ],
    ),
    op(
        "getMediaDepth",
        Storage::Writes,
        &[
            E::MediaNotFound,
            E::DepthMapNotFound,
            E::NotFound,
            E::RangeNotSatisfiable,
        ],
    ),
    op(
        "deleteMedia",
        Storage::Writes,
        &[
            E::MediaNotFound,
            E::Forbidden,
            E::ItemProcessing,
            E::FileSystemError,
        ],
    ),
];
