//! HTTP client for Immich 3.x (`tests/fixtures/immich/openapi-3.0.3.json`).
//! The API key travels only in the `x-api-key` header, never in a URL, so
//! no error message or log line can carry it.

use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::{Asset, ImmichError};
use crate::config::Secret;

#[derive(Clone)]
pub struct ImmichClient {
    base: String,
    key: Secret,
    json: reqwest::Client,
    download: reqwest::Client,
    /// Called when Immich answers 401 to this key: a signed-in user's key
    /// that was revoked or deleted in Immich (their sign-in then ends).
    revoked: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Version {
    pub major: i64,
    pub minor: i64,
    pub patch: i64,
}

/// Signed, as Immich's spec declares no minimum: read whatever comes,
/// show it clamped at zero.
#[derive(Debug, Clone, Deserialize)]
pub struct Statistics {
    pub images: i64,
    pub videos: i64,
    pub total: i64,
}

/// One page of a metadata search.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Asset>,
    pub next_page: Option<u32>,
    pub total: u64,
}

#[derive(Deserialize)]
struct SearchResponse {
    assets: SearchAssets,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchAssets {
    items: Vec<Asset>,
    #[serde(default)]
    next_page: Option<String>,
    #[serde(default)]
    total: i64,
}

/// The filters of `POST /search/metadata` this service uses.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Search {
    pub page: u32,
    pub size: u32,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub asset_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_favorite: Option<bool>,
    /// `timeline` (the default view) or `archive`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub album_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_file_name: Option<String>,
    pub with_exif: bool,
    /// Assets changed at or after this moment (`asset.updatedAt >=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_after: Option<String>,
    /// Trashed assets too (left out by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_deleted: Option<bool>,
    /// `desc` (Immich's default: newest capture first) or `asc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// `IMMICH_URL` may be given with or without a trailing `/` or `/api`.
pub fn api_base(url: &str) -> String {
    let t = url.trim().trim_end_matches('/');
    let t = t.strip_suffix("/api").unwrap_or(t);
    format!("{t}/api")
}

impl ImmichClient {
    pub fn new(url: &str, key: Secret) -> Self {
        let json = crate::tls::client_builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("the TLS backend initialises");
        // Downloads may be long: bounded by silence, not by total time.
        let download = crate::tls::client_builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .build()
            .expect("the TLS backend initialises");
        ImmichClient {
            base: api_base(url),
            key,
            json,
            download,
            revoked: None,
        }
    }

    /// The same server with another key (a signed-in user's), sharing the
    /// connection pools; `revoked` is told when Immich refuses the key.
    pub fn with_key(
        &self,
        key: Secret,
        revoked: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
    ) -> Self {
        ImmichClient {
            key,
            revoked,
            ..self.clone()
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn key(&self) -> &Secret {
        &self.key
    }

    pub(crate) fn json_client(&self) -> &reqwest::Client {
        &self.json
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A JSON answer read into `T`.
    pub(crate) async fn read<T: DeserializeOwned>(
        resp: reqwest::Response,
    ) -> Result<T, ImmichError> {
        resp.json()
            .await
            .map_err(|e| ImmichError::BadAnswer(e.without_url().to_string()))
    }

    /// An answer sent with this client's key, checked; a 401 for a
    /// user's key is that key's end.
    async fn checked(
        &self,
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<reqwest::Response, ImmichError> {
        match Self::check(resp).await {
            Err(ImmichError::Denied { status: 401, .. }) if self.revoked.is_some() => {
                if let Some(f) = &self.revoked {
                    f();
                }
                Err(ImmichError::KeyRevoked)
            }
            other => other,
        }
    }

    pub(crate) async fn check(
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<reqwest::Response, ImmichError> {
        let resp = resp.map_err(|e| {
            crate::metrics::immich_request_error();
            ImmichError::Unreachable(e.without_url().to_string())
        })?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(resp);
        }
        crate::metrics::immich_request_error();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| text.chars().take(200).collect());
        Err(match status {
            401 | 403 => ImmichError::Denied { status, message },
            404 => ImmichError::NotFound(message),
            // Immich answers 400 "Not found or no asset.read access" for unknown ids.
            400 if message.starts_with("Not found") => ImmichError::NotFound(message),
            _ => ImmichError::Upstream { status, message },
        })
    }

    /// Sends a JSON request with the key and reads the JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ImmichError> {
        let r = req.header("x-api-key", self.key.expose()).send().await;
        Self::read(self.checked(r).await?).await
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ImmichError> {
        self.call(self.json.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ImmichError> {
        self.call(self.json.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn ping(&self) -> Result<serde_json::Value, ImmichError> {
        self.get("/server/ping").await
    }

    pub async fn version(&self) -> Result<Version, ImmichError> {
        self.get("/server/version").await
    }

    pub async fn statistics(&self) -> Result<Statistics, ImmichError> {
        self.get("/assets/statistics").await
    }

    pub async fn asset(&self, id: &str) -> Result<Asset, ImmichError> {
        self.get(&format!("/assets/{}", enc(id))).await
    }

    pub async fn search(&self, s: &Search) -> Result<Page, ImmichError> {
        let r: SearchResponse = self.post("/search/metadata", s).await?;
        Ok(Page {
            items: r.assets.items,
            next_page: r.assets.next_page.and_then(|p| p.parse().ok()),
            total: r.assets.total.max(0) as u64,
        })
    }

    /// CLIP search; `None` when this Immich has smart search turned off.
    pub async fn smart_search(
        &self,
        query: &str,
        asset_type: Option<&str>,
        size: u32,
    ) -> Result<Option<Page>, ImmichError> {
        let mut body = serde_json::json!({"query": query, "size": size, "page": 1});
        if let Some(t) = asset_type {
            body["type"] = t.into();
        }
        match self.post::<SearchResponse, _>("/search/smart", &body).await {
            Ok(r) => Ok(Some(Page {
                items: r.assets.items,
                next_page: r.assets.next_page.and_then(|p| p.parse().ok()),
                total: r.assets.total.max(0) as u64,
            })),
            Err(ImmichError::Upstream { status: 400, .. }) | Err(ImmichError::NotFound(_)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Starts a download; the body is streamed by the caller. `range` is
    /// passed through for partial requests.
    pub async fn download(
        &self,
        path: &str,
        range: Option<&str>,
    ) -> Result<reqwest::Response, ImmichError> {
        let mut req = self
            .download
            .get(format!("{}{path}", self.base))
            .header("x-api-key", self.key.expose());
        if let Some(r) = range {
            req = req.header("range", r);
        }
        self.checked(req.send().await).await
    }

    /// A whole download in memory, at most `limit` bytes (an Immich
    /// preview or original the AI service is sent).
    pub async fn fetch_bytes(&self, path: &str, limit: u64) -> Result<bytes::Bytes, ImmichError> {
        let resp = self.download(path, None).await?;
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(ImmichError::BadAnswer(format!(
                "the file is larger than {limit} bytes (MAX_UPLOAD_BYTES)"
            )));
        }
        let mut out = bytes::BytesMut::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = futures_util::TryStreamExt::try_next(&mut stream)
            .await
            .map_err(|e| ImmichError::Unreachable(e.without_url().to_string()))?
        {
            if out.len() as u64 + chunk.len() as u64 > limit {
                return Err(ImmichError::BadAnswer(format!(
                    "the file is larger than {limit} bytes (MAX_UPLOAD_BYTES)"
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// `GET /assets/{id}` exactly as Immich answers it (the app reads
    /// fields this service does not model).
    pub async fn asset_json(&self, id: &str) -> Result<serde_json::Value, ImmichError> {
        self.get(&format!("/assets/{}", enc(id))).await
    }

    /// `GET /timeline/buckets` of the main timeline (partners and stacks in).
    pub async fn timeline_buckets(&self) -> Result<serde_json::Value, ImmichError> {
        self.get("/timeline/buckets?visibility=timeline&withPartners=true&withStacked=true")
            .await
    }

    /// `GET /timeline/bucket?timeBucket=`: Immich's columns, as it sends them.
    pub async fn timeline_bucket(&self, bucket: &str) -> Result<serde_json::Value, ImmichError> {
        self.get(&format!(
            "/timeline/bucket?timeBucket={}&visibility=timeline&withPartners=true&withStacked=true",
            query_enc(bucket)
        ))
        .await
    }

    pub fn original_path(id: &str) -> String {
        format!("/assets/{}/original", enc(id))
    }

    pub fn thumbnail_path(id: &str, size: &str) -> String {
        format!("/assets/{}/thumbnail?size={size}", enc(id))
    }
}

/// A query value, percent-encoded (a bucket is a date or a date-time).
fn query_enc(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Asset ids are UUIDs; anything else is percent-encoded, never a path.
pub(crate) fn enc(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_forms() {
        for u in [
            "http://h:2283",
            "http://h:2283/",
            "http://h:2283/api",
            "http://h:2283/api/",
        ] {
            assert_eq!(api_base(u), "http://h:2283/api");
        }
        assert_eq!(enc("../x"), "%2E%2E%2Fx");
    }
}
