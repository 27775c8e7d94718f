//! The ImmichVR web app, when `FRONTEND_DIR` names its build: served at
//! `/` like the app's own nginx does (files, else `index.html` for the
//! app's routes), with the cross-origin isolation headers it needs on
//! every answer. The API, `/admin/`, the sign-in page (`/signin/`),
//! `/health`, `/metrics` and `/socket.io/` keep precedence.

use std::{
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use poem::{
    http::{header, HeaderValue, Method},
    web::StaticFileRequest,
    Endpoint, FromRequest, IntoResponse, Request, Response,
};

/// First path segments that are never the app's (`/healthz` and
/// `/administrator` are the app's: a segment, not a prefix, decides).
/// `signin`: a stranger sent to the sign-in page from the app must get
/// it, not the app's index (the app's fallback for its own routes).
const OURS: &[&str] = &["api", "admin", "signin", "health", "metrics", "socket.io"];

/// Whether the path belongs to this service rather than the app.
fn ours(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    OURS.contains(&first)
}

#[derive(Debug, Clone)]
pub struct Frontend {
    dir: PathBuf,
}

impl Frontend {
    /// `None` unless the directory holds an `index.html`.
    pub fn new(dir: &Path) -> Option<Arc<Self>> {
        // Resolved once: every file served must resolve to below it.
        let resolved = dir.canonicalize().ok();
        match resolved {
            Some(dir) if dir.join("index.html").is_file() => Some(Arc::new(Frontend { dir })),
            _ => {
                tracing::warn!(dir = %dir.display(), "FRONTEND_DIR has no index.html; the app is not served");
                None
            }
        }
    }

    /// The file a request path names inside the directory, never outside:
    /// no `..`, and a symbolic link counts by where it points, so a link
    /// out of the directory (`assets/x.js -> /etc/passwd`) is not served.
    fn file(&self, path: &str) -> Option<PathBuf> {
        let rel = Path::new(path.trim_start_matches('/'));
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return None;
        }
        let p = self.dir.join(rel).canonicalize().ok()?;
        (p.starts_with(&self.dir) && p.is_file()).then_some(p)
    }
}

fn isolate(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-embedder-policy",
        HeaderValue::from_static("require-corp"),
    );
}

/// The middleware: the app's files and its routes, then everything else.
pub async fn serve<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    app: Option<Arc<Frontend>>,
) -> poem::Result<Response> {
    let Some(app) = app else {
        return ep.call(req).await.map(IntoResponse::into_response);
    };
    let path = req.uri().path().to_string();
    let mine = matches!(*req.method(), Method::GET | Method::HEAD) && !ours(&path);
    if !mine {
        let mut resp = ep.call(req).await.map(IntoResponse::into_response)?;
        isolate(&mut resp);
        return Ok(resp);
    }
    let (file, spa) = match app.file(&path) {
        Some(f) => (f, false),
        // The app's own routes (and `/`): its index.
        None => (app.dir.join("index.html"), true),
    };
    let static_req = StaticFileRequest::from_request_without_body(&req).await?;
    let mut resp = static_req
        .create_response(&file, true, false)
        .map_err(|e| crate::http::error::ApiError::from_poem(e.into()))?
        .into_response();
    // Vite names its bundles by content hash; the index must revalidate.
    let cache = if !spa && path.starts_with("/assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    isolate(&mut resp);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::ours;

    #[test]
    fn a_first_segment_decides() {
        for p in [
            "/api/queue/stats",
            "/api",
            "/admin",
            "/admin/",
            "/signin/",
            "/signin/signin.js",
            "/signin",
            "/health",
            "/metrics",
            "/socket.io/",
        ] {
            assert!(ours(p), "{p}");
        }
        for p in [
            "/",
            "/healthz",
            "/administrator",
            "/apis",
            "/assets/index.js",
            "/metrics2",
            "/signing",
        ] {
            assert!(!ours(p), "{p}");
        }
    }
}
