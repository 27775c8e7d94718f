//! The admin page at `/admin/`: files from `web/` compiled into the binary.
//!
//! Assets have stable names (no build step fingerprints them), so every
//! response says `no-cache`: browsers keep the copy and revalidate it with
//! the ETag, which costs a 304 and never serves a stale page after an upgrade.

use poem::{
    handler,
    http::{header, HeaderValue, Method, StatusCode},
    web::{Path, Redirect},
    Endpoint, EndpointExt, IntoResponse, Request, Response,
};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// Sample photos for a first try from the upload view.
#[derive(RustEmbed)]
#[folder = "assets/samples/"]
struct Samples;

/// `/admin` -> `/admin/`, so the page's relative links resolve.
#[handler]
pub fn admin_redirect() -> Redirect {
    Redirect::moved_permanent("/admin/")
}

#[handler]
pub fn admin_index(req: &Request) -> Response {
    serve(req, "index.html")
}

#[handler]
pub fn admin_file(req: &Request, Path(path): Path<String>) -> Response {
    // The wildcard also matches `/admin/` itself, with an empty path.
    let path = if path.is_empty() { "index.html" } else { &path };
    match path.strip_prefix("samples/") {
        Some(name) => serve_from::<Samples>(req, name),
        None => serve_from::<Assets>(req, path),
    }
}

/// `/signin` -> `/signin/`.
#[handler]
pub fn signin_redirect() -> Redirect {
    Redirect::moved_permanent("/signin/")
}

/// The sign-in page (`web/signin/`), open to everyone: it holds nothing
/// but the form.
#[handler]
pub fn signin_file(req: &Request, path: Option<Path<String>>) -> Response {
    let path = path.map(|p| p.0).unwrap_or_default();
    match path.as_str() {
        "" => serve(req, "signin/index.html"),
        "icon.svg" => serve(req, "icon.svg"),
        p => serve(req, &format!("signin/{p}")),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("json") => "application/json",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Whether `If-None-Match` names `etag` (a list, `*`, and weak forms count).
fn matches(req: &Request, etag: &str) -> bool {
    let Some(v) = crate::http::header(req, header::IF_NONE_MATCH) else {
        return false;
    };
    v.split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

fn serve(req: &Request, path: &str) -> Response {
    serve_from::<Assets>(req, path)
}

fn serve_from<E: RustEmbed>(req: &Request, path: &str) -> Response {
    let Some(file) = E::get(path) else {
        return crate::http::error::ApiError::new(
            crate::http::error::ErrorCode::NotFound,
            format!("The admin page has no file {path}"),
        )
        .response();
    };
    let hash = file.metadata.sha256_hash();
    let etag = format!("\"{}\"", hex::encode(&hash[..16]));
    let builder = Response::builder()
        .header(header::ETAG, etag.as_str())
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-content-type-options", "nosniff");
    if matches(req, &etag) {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    let builder = builder.content_type(content_type(path));
    if req.method() == Method::HEAD {
        return builder
            .header(header::CONTENT_LENGTH, file.data.len())
            .finish();
    }
    builder.body(file.data.into_owned())
}

/// Gzip for the page's text files only (API bodies are either small or
/// streams, SSE and Range downloads, that compression would buffer): they
/// are a few KiB each and already in memory.
pub fn compressed<E: Endpoint + 'static>(ep: E) -> impl Endpoint {
    ep.around(|ep, req| async move {
        let gzip = crate::http::accepts_gzip(&req);
        let resp = ep.call(req).await?.into_response();
        let text = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/") || t.starts_with("image/svg"));
        if !gzip || !text || resp.status() != StatusCode::OK {
            return Ok(resp);
        }
        let (mut parts, body) = resp.into_parts();
        let packed = crate::http::gzip(&body.into_vec().await?, 6);
        parts
            .headers
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        parts
            .headers
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        parts.headers.remove(header::CONTENT_LENGTH);
        Ok(Response::from_parts(parts, packed.into()))
    })
}

/// Browsers asking for `/` get the admin page; API clients (no `text/html`
/// in `Accept`) keep the JSON service answer.
pub async fn browsers_to_admin<E: Endpoint>(
    ep: std::sync::Arc<E>,
    req: Request,
) -> poem::Result<Response> {
    let wants_html =
        crate::http::header(&req, header::ACCEPT).is_some_and(|a| a.contains("text/html"));
    if req.uri().path() == "/" && req.method() == Method::GET && wants_html {
        return Ok(Redirect::see_other("/admin/").into_response());
    }
    ep.call(req).await.map(IntoResponse::into_response)
}
