//! `Allow` on 405 answers (RFC 9110 requires it), from the spec's own
//! list of methods per path.

use std::sync::Arc;

use poem::{http::StatusCode, Endpoint, IntoResponse, Request, Response};

pub struct AllowMap {
    /// Path templates split into segments (`None` = a `{param}`), with
    /// their methods.
    routes: Vec<(Vec<Option<String>>, String)>,
}

impl AllowMap {
    pub fn from_spec(spec_json: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let mut routes = Vec::new();
        if let Some(paths) = spec["paths"].as_object() {
            for (path, item) in paths {
                let segs = path
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
                    .collect();
                let mut methods: Vec<String> = item
                    .as_object()
                    .map(|m| m.keys().map(|k| k.to_uppercase()).collect())
                    .unwrap_or_default();
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".into());
                }
                routes.push((segs, methods.join(", ")));
            }
        }
        AllowMap { routes }
    }

    pub fn methods(&self, path: &str) -> Option<&str> {
        let parts: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .find(|(segs, _)| {
                segs.len() == parts.len()
                    && segs
                        .iter()
                        .zip(&parts)
                        .all(|(s, p)| s.as_deref().is_none_or(|s| s == *p))
            })
            .map(|(_, m)| m.as_str())
    }
}

/// Headers larger than this in total get 431: nothing here needs more.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

pub async fn limit_headers<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size > MAX_HEADER_BYTES {
        return Ok(poem::error::ResponseError::as_response(
            &crate::http::error::ApiError::new(
                crate::http::error::ErrorCode::HeadersTooLarge,
                format!(
                    "Request headers total {size} bytes; at most {MAX_HEADER_BYTES} are accepted"
                ),
            ),
        ));
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

pub async fn add_allow<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    map: Arc<AllowMap>,
) -> poem::Result<Response> {
    let path = req.uri().path().to_string();
    let mut resp = ep.call(req).await.map(IntoResponse::into_response)?;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        if let Some(m) = map
            .methods(&path)
            .and_then(|m| poem::http::HeaderValue::from_str(m).ok())
        {
            resp.headers_mut().insert("allow", m);
        }
    }
    Ok(resp)
}
