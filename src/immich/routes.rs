//! `/api/immich/*`.

use crate::http::{
    codes::ErrorCode as E,
    spec::{op, OpErrors, Storage},
};
use std::sync::Arc;

use futures_util::TryStreamExt;
use poem::{Body, Request, Response};
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    OpenApi,
};
use uuid::Uuid;

use super::{client::Search, import, views::*, AssetView, ImmichClient, ImmichError};
use crate::{
    auth::{Authed, Caller, Operator},
    http::{body::JsonBody, error::ApiError},
    media::files::FileBody,
    state::{ApiTags, AppState},
};

pub struct ImmichApi {
    pub state: Arc<AppState>,
}

impl ImmichApi {
    /// Immich as `caller` sees it: a user's own key, else the service's.
    fn client(&self, caller: &Caller) -> Result<ImmichClient, ImmichError> {
        self.state.immich_for(caller)
    }

    async fn list(
        &self,
        caller: &Caller,
        asset_type: Option<&str>,
        size: u32,
        page: u32,
        fav: Option<bool>,
        archived: Option<bool>,
    ) -> Result<Json<AssetList>, ApiError> {
        let search = Search {
            page,
            size,
            asset_type: asset_type.map(str::to_string),
            is_favorite: fav,
            visibility: Some(
                if archived == Some(true) {
                    "archive"
                } else {
                    "timeline"
                }
                .into(),
            ),
            with_exif: false,
            ..Default::default()
        };
        let p = self.client(caller)?.search(&search).await?;
        let data: Vec<AssetView> = p.items.into_iter().map(Into::into).collect();
        Ok(Json(AssetList {
            status: "success".into(),
            count: data.len() as u64,
            page,
            size,
            data,
            next_page: p.next_page,
        }))
    }

    /// Streams an Immich download through, headers included.
    async fn proxy(
        &self,
        caller: &Caller,
        path: &str,
        req: &Request,
    ) -> Result<FileBody, ApiError> {
        proxy(&self.client(caller)?, path, req).await
    }
}

/// Immich's answer for a file, streamed on with its status and the
/// headers a browser needs (type, length, ranges, caching).
pub async fn proxy(client: &ImmichClient, path: &str, req: &Request) -> Result<FileBody, ApiError> {
    let range = req.headers().get("range").and_then(|v| v.to_str().ok());
    let up = client.download(path, range).await?;
    let mut resp = Response::builder().status(up.status());
    for h in [
        "content-type",
        "content-length",
        "content-disposition",
        "content-range",
        "accept-ranges",
        "etag",
        "last-modified",
        "cache-control",
    ] {
        if let Some(v) = up.headers().get(h) {
            resp = resp.header(h, v.clone());
        }
    }
    let stream = up.bytes_stream().map_err(std::io::Error::other);
    Ok(FileBody(resp.body(Body::from_bytes_stream(stream))))
}

fn default_size() -> u32 {
    100
}
fn default_page() -> u32 {
    1
}

#[OpenApi(prefix_path = "/api/immich", tag = "ApiTags::Immich")]
impl ImmichApi {
    /// Check the connection and the Immich version
    #[oai(path = "/test", method = "get", operation_id = "testImmich")]
    async fn test(&self, auth: Authed) -> Result<Json<TestResult>, ApiError> {
        let c = self.client(&auth.0)?;
        c.ping().await?;
        let v = c.version().await?;
        Ok(Json(TestResult {
            status: "success".into(),
            message: "Connection to Immich successful".into(),
            data: TestData {
                url: c.base().to_string(),
                version: format!("{}.{}.{}", v.major, v.minor, v.patch),
                supported: SUPPORTED.into(),
                warning: version_warning(v.major),
            },
        }))
    }

    /// Immich's version
    #[oai(path = "/version", method = "get", operation_id = "getImmichVersion")]
    async fn version(&self, auth: Authed) -> Result<Json<VersionResult>, ApiError> {
        let v = self.client(&auth.0)?.version().await?;
        Ok(Json(VersionResult {
            status: "success".into(),
            data: VersionData {
                major: v.major,
                minor: v.minor,
                patch: v.patch,
            },
        }))
    }

    /// Counts of images and videos in Immich
    #[oai(
        path = "/statistics",
        method = "get",
        operation_id = "getImmichStatistics"
    )]
    async fn statistics(&self, auth: Authed) -> Result<Json<StatsResult>, ApiError> {
        let s = self.client(&auth.0)?.statistics().await?;
        Ok(Json(StatsResult {
            status: "success".into(),
            data: StatsData {
                images: s.images,
                videos: s.videos,
                total: s.total,
            },
        }))
    }

    /// Browse Immich assets (photos and videos)
    #[oai(path = "/assets", method = "get", operation_id = "listImmichAssets")]
    async fn assets(
        &self,
        auth: Authed,
        #[oai(
            default = "default_size",
            validator(minimum(value = "1"), maximum(value = "1000"))
        )]
        size: Query<u32>,
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "100000"))
        )]
        page: Query<u32>,
        #[oai(name = "isFavorite")] is_favorite: Query<Option<bool>>,
        #[oai(name = "isArchived")] is_archived: Query<Option<bool>>,
    ) -> Result<Json<AssetList>, ApiError> {
        self.list(&auth.0, None, size.0, page.0, is_favorite.0, is_archived.0)
            .await
    }

    /// Browse Immich photos
    #[oai(path = "/photos", method = "get", operation_id = "listImmichPhotos")]
    async fn photos(
        &self,
        auth: Authed,
        #[oai(
            default = "default_size",
            validator(minimum(value = "1"), maximum(value = "1000"))
        )]
        size: Query<u32>,
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "100000"))
        )]
        page: Query<u32>,
        #[oai(name = "isFavorite")] is_favorite: Query<Option<bool>>,
        #[oai(name = "isArchived")] is_archived: Query<Option<bool>>,
    ) -> Result<Json<AssetList>, ApiError> {
        self.list(
            &auth.0,
            Some("IMAGE"),
            size.0,
            page.0,
            is_favorite.0,
            is_archived.0,
        )
        .await
    }

    /// Browse Immich videos
    #[oai(path = "/videos", method = "get", operation_id = "listImmichVideos")]
    async fn videos(
        &self,
        auth: Authed,
        #[oai(
            default = "default_size",
            validator(minimum(value = "1"), maximum(value = "1000"))
        )]
        size: Query<u32>,
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "100000"))
        )]
        page: Query<u32>,
        #[oai(name = "isFavorite")] is_favorite: Query<Option<bool>>,
        #[oai(name = "isArchived")] is_archived: Query<Option<bool>>,
    ) -> Result<Json<AssetList>, ApiError> {
        self.list(
            &auth.0,
            Some("VIDEO"),
            size.0,
            page.0,
            is_favorite.0,
            is_archived.0,
        )
        .await
    }

    /// One Immich asset, Immich's whole object passed through
    #[oai(
        path = "/assets/:assetId",
        method = "get",
        operation_id = "getImmichAsset"
    )]
    async fn asset(
        &self,
        auth: Authed,
        #[oai(name = "assetId")] asset_id: Path<Uuid>,
    ) -> Result<Json<AssetResult>, ApiError> {
        let data = self
            .client(&auth.0)?
            .asset_json(&asset_id.0.to_string())
            .await?;
        Ok(Json(AssetResult {
            status: "success".into(),
            data,
        }))
    }

    /// An asset's thumbnail or preview image, streamed from Immich
    #[oai(
        path = "/assets/:assetId/thumbnail",
        method = "get",
        operation_id = "getImmichThumbnail"
    )]
    async fn thumbnail(
        &self,
        auth: Authed,
        #[oai(name = "assetId")] asset_id: Path<Uuid>,
        size: Query<Option<ThumbSize>>,
        req: &Request,
    ) -> Result<FileBody, ApiError> {
        let size = if size.0 == Some(ThumbSize::Preview) {
            "preview"
        } else {
            "thumbnail"
        };
        self.proxy(
            &auth.0,
            &ImmichClient::thumbnail_path(&asset_id.0.to_string(), size),
            req,
        )
        .await
    }

    /// An asset's original file, streamed from Immich (Range supported)
    #[oai(
        path = "/assets/:assetId/file",
        method = "get",
        operation_id = "getImmichOriginal"
    )]
    async fn original(
        &self,
        auth: Authed,
        #[oai(name = "assetId")] asset_id: Path<Uuid>,
        req: &Request,
    ) -> Result<FileBody, ApiError> {
        self.proxy(
            &auth.0,
            &ImmichClient::original_path(&asset_id.0.to_string()),
            req,
        )
        .await
    }

    /// Search Immich: smart (CLIP) search when Immich has it, else by file name
    #[oai(path = "/search", method = "post", operation_id = "searchImmich")]
    async fn search(
        &self,
        auth: Authed,
        body: JsonBody<SearchBody>,
    ) -> Result<Json<AssetList>, ApiError> {
        let c = self.client(&auth.0)?;
        let size = body.size.unwrap_or(100);
        let t = match body.search_type {
            Some(SearchType::Image) => Some("IMAGE"),
            Some(SearchType::Video) => Some("VIDEO"),
            Some(SearchType::All) | None => None,
        };
        let page = match c.smart_search(&body.query, t, size).await? {
            Some(p) => p,
            None => {
                let s = Search {
                    page: 1,
                    size,
                    asset_type: t.map(str::to_string),
                    original_file_name: Some(body.query.0.clone()),
                    ..Default::default()
                };
                c.search(&s).await?
            }
        };
        let data: Vec<AssetView> = page.items.into_iter().map(Into::into).collect();
        Ok(Json(AssetList {
            status: "success".into(),
            count: data.len() as u64,
            page: 1,
            size,
            data,
            next_page: page.next_page,
        }))
    }

    /// Import one Immich asset into the queue
    ///
    /// Downloads the original (or, for HEIC/RAW, Immich's preview JPEG),
    /// stores it and queues it. An asset imported before answers 200 with
    /// the existing ids.
    #[oai(
        path = "/assets/:assetId/enqueue",
        method = "post",
        operation_id = "enqueueImmichAsset"
    )]
    async fn enqueue(
        &self,
        auth: Operator,
        #[oai(name = "assetId")] asset_id: Path<Uuid>,
    ) -> Result<EnqueueResponse, ApiError> {
        let c = self.client(&auth.0)?;
        let s = &self.state;
        let r = import::import_one(
            &s.catalog,
            &c,
            s.config.max_upload_bytes,
            &asset_id.0.to_string(),
        )
        .await?;
        Ok(if r.duplicate {
            EnqueueResponse::Existing(Json(r))
        } else {
            EnqueueResponse::Created(Json(r))
        })
    }

    /// Import many Immich assets in the background
    #[oai(path = "/import", method = "post", operation_id = "startImmichImport")]
    async fn import(
        &self,
        auth: Operator,
        body: JsonBody<import::ImportRequest>,
    ) -> Result<ImportResponse, ApiError> {
        let job = import::Job {
            catalog: self.state.catalog.clone(),
            client: self.client(&auth.0)?,
            max_bytes: self.state.config.max_upload_bytes,
        };
        let status = self.state.importer.start(job, body.0)?;
        Ok(ImportResponse::Started(Json(status)))
    }

    /// Progress of the current or last import
    #[oai(path = "/import", method = "get", operation_id = "getImmichImport")]
    async fn import_status(&self, auth: Operator) -> Result<Json<import::ImportStatus>, ApiError> {
        self.client(&auth.0)?;
        Ok(Json(self.state.importer.status()))
    }
}

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op("testImmich", Storage::None, UPSTREAM),
    op("getImmichVersion", Storage::None, UPSTREAM),
    op("getImmichStatistics", Storage::None, UPSTREAM),
    op("listImmichAssets", Storage::None, UPSTREAM),
    op("listImmichPhotos", Storage::None, UPSTREAM),
    op("listImmichVideos", Storage::None, UPSTREAM),
    op("getImmichAsset", Storage::None, UPSTREAM_ASSET),
    op("getImmichThumbnail", Storage::None, UPSTREAM_ASSET),
    op("getImmichOriginal", Storage::None, UPSTREAM_ASSET),
    op("searchImmich", Storage::None, UPSTREAM),
    op(
        "enqueueImmichAsset",
        Storage::Writes,
        &[
            E::ImmichNotConfigured,
            E::ImmichUnreachable,
            E::ImmichRefused,
            E::ImmichError,
            E::ImmichAssetNotFound,
            E::EmptyFile,
            E::FileTooLarge,
            E::UnsupportedMediaType,
            E::FileSystemError,
        ],
    ),
    op(
        "startImmichImport",
        Storage::None,
        &[E::ImmichNotConfigured, E::ImportRunning],
    ),
    op("getImmichImport", Storage::None, &[E::ImmichNotConfigured]),
];

const UPSTREAM: &[E] = &[
    E::ImmichNotConfigured,
    E::ImmichUnreachable,
    E::ImmichRefused,
    E::ImmichError,
];
const UPSTREAM_ASSET: &[E] = &[
    E::ImmichNotConfigured,
    E::ImmichUnreachable,
    E::ImmichRefused,
    E::ImmichError,
    E::ImmichAssetNotFound,
];
