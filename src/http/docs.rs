//! Swagger UI at `/api/docs/`, from files compiled into the binary.

use std::sync::{Arc, OnceLock};

use poem::{
    handler,
    http::{header, StatusCode},
    web::{Path, Redirect},
    IntoResponse, Response,
};

fn config() -> Arc<utoipa_swagger_ui::Config<'static>> {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| Arc::new(utoipa_swagger_ui::Config::new(["/api/openapi.json"])))
        .clone()
}

/// `/api/docs` -> `/api/docs/`, so the page's relative links resolve.
#[handler]
pub fn docs_redirect() -> Redirect {
    Redirect::moved_permanent("/api/docs/")
}

#[handler]
pub fn docs_file(Path(path): Path<String>) -> Response {
    serve(&path)
}

#[handler]
pub fn docs_index() -> Response {
    serve("")
}

fn serve(path: &str) -> Response {
    match utoipa_swagger_ui::serve(path, config()) {
        Ok(Some(file)) => {
            let mut resp = Response::builder()
                .content_type(file.content_type)
                .header(header::CACHE_CONTROL, "public, max-age=3600");
            if file.gzpipped {
                resp = resp.header(header::CONTENT_ENCODING, "gzip");
            }
            resp.body(file.bytes.into_owned())
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
