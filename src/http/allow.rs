//! What the spec knows about each path, used where poem does not: `Allow`
//! on 405 answers (RFC 9110 requires it) and the real names of path
//! parameters in 400 messages (poem-openapi calls them `param0`, ...).

use std::sync::Arc;

use poem::{http::StatusCode, Endpoint, IntoResponse, Request, Response};

use crate::http::error::ApiError;

pub struct AllowMap {
    /// Path templates split into segments (`Err(name)` = a `{name}`
    /// parameter), with their methods.
    routes: Vec<(Vec<Result<String, String>>, String)>,
}

impl AllowMap {
    pub fn from_spec(spec_json: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let mut routes = Vec::new();
        if let Some(paths) = spec["paths"].as_object() {
            for (path, item) in paths {
                let segs = path
                    .split('/')
                    .map(
                        |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(name) => Err(name.to_string()),
                            None => Ok(s.to_string()),
                        },
                    )
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

    fn route(&self, path: &str) -> Option<&(Vec<Result<String, String>>, String)> {
        let parts: Vec<&str> = path.split('/').collect();
        self.routes.iter().find(|(segs, _)| {
            segs.len() == parts.len()
                && segs.iter().zip(&parts).all(|(s, p)| match s {
                    Ok(lit) => lit == p,
                    Err(_) => true,
                })
        })
    }

    pub fn methods(&self, path: &str) -> Option<&str> {
        self.route(path).map(|(_, m)| m.as_str())
    }

    /// The name of the `index`-th path parameter of the route `path` hits.
    pub fn param_name(&self, path: &str, index: usize) -> Option<&str> {
        let (segs, _) = self.route(path)?;
        segs.iter()
            .filter_map(|s| s.as_ref().err())
            .nth(index)
            .map(String::as_str)
    }
}

/// Turns poem-openapi's "failed to parse path `param0`" into the name the
/// spec (and so every client) uses for that parameter.
pub async fn name_path_params<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    map: Arc<AllowMap>,
) -> poem::Result<Response> {
    let path = req.original_uri().path().to_string();
    match ep.call(req).await {
        Ok(r) => Ok(r.into_response()),
        Err(e) => {
            let renamed = e
                .downcast_ref::<poem_openapi::error::ParsePathError>()
                .and_then(|p| {
                    let index = p.name.strip_prefix("param")?.parse().ok()?;
                    let name = map.param_name(&path, index)?;
                    Some(ApiError::bad_request(format!(
                        "The path parameter `{name}` is invalid: {}",
                        p.reason
                    )))
                });
            Err(renamed.map(poem::Error::from).unwrap_or(e))
        }
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
