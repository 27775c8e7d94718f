//! Checks every request passes before a route sees it: body sizes (the
//! limits; the server enforces them while reading) and the JSON shape of
//! every error whoever produced it. Who may ask is `access`'s business.

use std::sync::Arc;

use poem::{http::header, Endpoint, IntoResponse, Request, Response};

use crate::http::error::{ApiError, ErrorCode};

/// Largest JSON body of any route (the largest real one is a few hundred bytes).
pub const MAX_JSON_BYTES: u64 = 256 * 1024;
/// The login body holds one token.
pub const MAX_LOGIN_BYTES: u64 = 4 * 1024;
/// Room for the multipart envelope around an upload's file.
pub const UPLOAD_SLACK: u64 = 64 * 1024;

/// Routes whose bodies are files, streamed to disk with their own limit.
pub fn is_upload(path: &str) -> bool {
    path == "/api/media/upload" || path == "/api/media/upload/raw"
}

/// The largest body a request to `path` may have: uploads stream to disk
/// and have their own limit; everything else is a small JSON body.
pub fn body_limit(path: &str, max_upload: u64) -> u64 {
    if is_upload(path) {
        max_upload.saturating_add(UPLOAD_SLACK)
    } else if path == "/api/auth/login" {
        MAX_LOGIN_BYTES
    } else {
        MAX_JSON_BYTES
    }
}

/// The last word on every answer: an error that is not JSON yet (poem's
/// CORS refusal, a missing Swagger file) becomes the JSON error shape.
pub async fn json_errors<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => return Ok(ApiError::from_poem(e).response()),
    };
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    let text = body.into_string().await.unwrap_or_default();
    let code = ErrorCode::for_status(status);
    let message = match text.trim() {
        "" => format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
        t => t.chars().take(500).collect(),
    };
    let mut body = ApiError::new(code, message);
    // Our catalogue's status for the code, unless the layer said otherwise.
    if code.status() != status {
        body.body.error = status.canonical_reason().unwrap_or("Error").into();
    }
    let mut out = body.response();
    out.set_status(status);
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    Ok(out)
}
