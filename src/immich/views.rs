//! What the `/api/immich/*` routes answer and accept.

use poem_openapi::{payload::Json, ApiResponse, Enum, Object};

use super::{import, AssetView};

pub const SUPPORTED: &str = "Immich 2.x and 3.x";

#[derive(Debug, Object)]
pub struct TestData {
    pub url: String,
    pub version: String,
    pub supported: String,
    /// Set when this Immich is older than the supported range.
    #[oai(nullable)]
    pub warning: Option<String>,
}

#[derive(Debug, Object)]
pub struct TestResult {
    pub status: String,
    pub message: String,
    pub data: TestData,
}

#[derive(Debug, Object)]
pub struct VersionData {
    pub major: i64,
    pub minor: i64,
    pub patch: i64,
}

#[derive(Debug, Object)]
pub struct VersionResult {
    pub status: String,
    pub data: VersionData,
}

#[derive(Debug, Object)]
pub struct StatsData {
    pub images: i64,
    pub videos: i64,
    pub total: i64,
}

#[derive(Debug, Object)]
pub struct StatsResult {
    pub status: String,
    pub data: StatsData,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AssetList {
    pub status: String,
    pub count: u64,
    /// Immich pages start at 1.
    pub page: u32,
    pub size: u32,
    pub data: Vec<AssetView>,
    /// The next page's number, null on the last page.
    #[oai(nullable)]
    pub next_page: Option<u32>,
}

#[derive(Debug, Object)]
pub struct AssetResult {
    pub status: String,
    /// Immich's asset (`AssetResponseDto`: `exifInfo`, `people`, `tags`
    /// and the rest) exactly as Immich sent it, as upstream passes it on.
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Copy, Enum, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum ThumbSize {
    Thumbnail,
    Preview,
}

#[derive(Debug, Clone, Copy, Enum, PartialEq, Eq)]
#[oai(rename_all = "UPPERCASE")]
pub enum SearchType {
    All,
    Image,
    Video,
}

#[derive(Debug, Object)]
pub struct SearchBody {
    #[oai(validator(min_length = 1, max_length = 1000))]
    pub query: crate::http::body::Text,
    #[oai(rename = "type")]
    pub search_type: Option<SearchType>,
    #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
    pub size: Option<u32>,
}

#[derive(ApiResponse)]
pub enum EnqueueResponse {
    /// Downloaded, stored and queued.
    #[oai(status = 201)]
    Created(Json<import::Imported>),
    /// Imported before: the existing ids.
    #[oai(status = 200)]
    Existing(Json<import::Imported>),
}

#[derive(ApiResponse)]
pub enum ImportResponse {
    /// The import runs in the background; progress on `/api/events`.
    #[oai(status = 202)]
    Started(Json<import::ImportStatus>),
}

pub fn version_warning(major: i64) -> Option<String> {
    (major < 2).then(|| {
        format!(
            "This Immich is older than 2.0; ImmichVR supports {SUPPORTED}. Some routes may fail."
        )
    })
}
