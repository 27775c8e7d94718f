//! The VR app's gallery: Immich's timeline (F1), one bucket of it turned
//! from Immich's columns into one object per asset (F2), and the photos
//! that have 3D assets here (F3).

use std::sync::Arc;

use futures_util::{stream, StreamExt};
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    Object, OpenApi,
};
use serde_json::{Map, Value};

use super::{ImmichClient, ImmichError};
use crate::{
    ai::routes::Answer,
    assets::Kind,
    auth::{Authed, Caller},
    http::{
        codes::ErrorCode as E,
        error::ApiError,
        spec::{op, OpErrors, Storage},
    },
    state::{ApiTags, AppState},
};

pub struct TimelineApi {
    pub state: Arc<AppState>,
}

/// At most this many Immich requests at once for one page of `processed`.
const FETCH_CONCURRENCY: usize = 8;

/// One month of the timeline, as Immich lists it.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct TimeBucket {
    /// The bucket's first day (`2025-06-01`), passed on verbatim.
    pub time_bucket: String,
    pub count: u64,
}

#[derive(Debug, Object)]
pub struct Timeline {
    /// `success`.
    pub status: String,
    pub data: Vec<TimeBucket>,
}

/// One asset of a bucket: every column Immich sent, plus `type`.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct TimelineAsset {
    pub id: String,
    /// `IMAGE` or `VIDEO` (from Immich's `isImage`).
    #[oai(rename = "type")]
    pub kind: String,
    /// Width / height.
    pub ratio: Option<f64>,
    pub file_created_at: Option<String>,
    pub is_image: Option<bool>,
    pub is_favorite: Option<bool>,
    pub owner_id: Option<String>,
}

#[derive(Debug, Object)]
pub struct Bucket {
    pub status: String,
    pub count: u64,
    pub data: Vec<TimelineAsset>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct Processed {
    pub status: String,
    /// Assets on this page.
    pub count: u64,
    /// 0-based, as the app sends it.
    pub page: u64,
    pub size: u64,
    /// Photos with 3D assets in all.
    pub total: u64,
    pub has_more: bool,
    /// Immich's asset (`AssetResponseDto`) for each, as Immich sent it,
    /// newest capture first.
    pub data: Vec<Value>,
    /// Ids Immich no longer has (deleted there): listed, never dropped silently.
    pub missing: Vec<String>,
}

/// Immich's "structure of arrays" as one object per asset: element `i` of
/// every column that is an array, plus `type`. A list (older Immich, or a
/// mock) is passed on; `{assets: [...]}` too.
pub fn rows(body: Value) -> Vec<Value> {
    match body {
        Value::Array(items) => items,
        Value::Object(mut m) if m.get("id").is_some_and(Value::is_array) => {
            let n = m["id"].as_array().map_or(0, Vec::len);
            let columns: Vec<(String, Vec<Value>)> = m
                .iter_mut()
                .filter_map(|(k, v)| match v.take() {
                    Value::Array(a) => Some((k.clone(), a)),
                    _ => None,
                })
                .collect();
            (0..n)
                .map(|i| {
                    let mut row: Map<String, Value> = columns
                        .iter()
                        .map(|(k, col)| (k.clone(), col.get(i).cloned().unwrap_or(Value::Null)))
                        .collect();
                    let image = row.get("isImage").and_then(Value::as_bool).unwrap_or(true);
                    row.insert(
                        "type".into(),
                        Value::from(if image { "IMAGE" } else { "VIDEO" }),
                    );
                    Value::Object(row)
                })
                .collect()
        }
        Value::Object(mut m) => match m.remove("assets") {
            Some(Value::Array(a)) => a,
            _ => {
                tracing::warn!("an Immich timeline bucket of an unknown shape; answered empty");
                Vec::new()
            }
        },
        _ => Vec::new(),
    }
}

impl TimelineApi {
    /// Immich as `caller` sees it: a user's own key, else the service's.
    fn client(&self, caller: &Caller) -> Result<ImmichClient, ImmichError> {
        self.state.immich_for(caller)
    }
}

#[OpenApi(prefix_path = "/api/immich", tag = "ApiTags::Immich")]
impl TimelineApi {
    /// The timeline's buckets (months), newest first
    #[oai(path = "/timeline", method = "get", operation_id = "getImmichTimeline")]
    async fn timeline(&self, auth: Authed) -> Result<Json<Answer<Timeline>>, ApiError> {
        let buckets = self.client(&auth.0)?.timeline_buckets().await?;
        let body = serde_json::json!({"status": "success", "data": buckets});
        Answer::checked(body, E::ImmichError).map(Json)
    }

    /// One bucket's assets, one object each with every column Immich sent
    #[oai(
        path = "/timeline/:bucket",
        method = "get",
        operation_id = "getImmichTimelineBucket"
    )]
    async fn bucket(
        &self,
        auth: Authed,
        bucket: Path<String>,
    ) -> Result<Json<Answer<Bucket>>, ApiError> {
        let body = self.client(&auth.0)?.timeline_bucket(&bucket.0).await?;
        let data = rows(body);
        let answer = serde_json::json!({"status": "success", "count": data.len(), "data": data});
        Answer::checked(answer, E::ImmichError).map(Json)
    }

    /// The photos that have 3D assets here, as Immich's assets ("3D only")
    ///
    /// Stable pages (newest capture first, then by id); at most 8 Immich
    /// requests at once; an asset Immich no longer has is listed in
    /// `missing`, any other Immich failure fails the page.
    #[oai(
        path = "/processed",
        method = "get",
        operation_id = "listProcessedAssets"
    )]
    async fn processed(
        &self,
        auth: Authed,
        /// 0-based page.
        #[oai(default, validator(minimum(value = "0"), maximum(value = "1000000")))]
        page: Query<u32>,
        #[oai(
            default = "default_size",
            validator(minimum(value = "1"), maximum(value = "500"))
        )]
        size: Query<u32>,
        /// `all`, `depth` or `splat`.
        #[oai(name = "type", default = "all_types")]
        kind: Query<String>,
    ) -> Result<Json<Processed>, ApiError> {
        let client = self.client(&auth.0)?;
        let wanted = match kind.0.as_str() {
            "depth" => Some(Kind::Depth),
            "splat" => Some(Kind::Splat),
            _ => None,
        };
        let (page, size) = (page.0 as usize, size.0 as usize);
        let viewer = self.state.viewer(&auth.0).await?;
        let (ids, total) = self
            .state
            .catalog
            .processed(wanted, page * size, size, &viewer)
            .await?;
        let fetched: Vec<(String, Result<Value, ImmichError>)> = stream::iter(ids)
            .map(|id| {
                let c = client.clone();
                async move {
                    let r = c.asset_json(&id).await;
                    (id, r)
                }
            })
            .buffered(FETCH_CONCURRENCY)
            .collect()
            .await;
        let mut data = Vec::new();
        let mut missing = Vec::new();
        for (id, r) in fetched {
            match r {
                Ok(v) => data.push(v),
                Err(ImmichError::NotFound(_)) => missing.push(id),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Json(Processed {
            status: "success".into(),
            count: data.len() as u64,
            page: page as u64,
            size: size as u64,
            total: total as u64,
            has_more: (page + 1) * size < total,
            data,
            missing,
        }))
    }
}

fn default_size() -> u32 {
    100
}

fn all_types() -> String {
    "all".into()
}

const IMMICH: &[E] = &[
    E::ImmichNotConfigured,
    E::ImmichUnreachable,
    E::ImmichRefused,
    E::ImmichError,
];

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op("getImmichTimeline", Storage::None, IMMICH),
    op("getImmichTimelineBucket", Storage::None, IMMICH),
    op("listProcessedAssets", Storage::Reads, IMMICH),
];
