//! Swagger UI at `/api/docs/`, from files compiled into the binary.
//!
//! The files are compiled in gzipped (utoipa-swagger-ui's `gzip`: 4.3 MB
//! of JavaScript and CSS became about 1 MB of the binary) and sent as they
//! are to every client that accepts gzip (every browser); the rare one
//! that does not gets them unpacked.

use std::sync::{Arc, OnceLock};

use poem::{
    handler,
    http::{header, StatusCode},
    web::{Path, Redirect},
    IntoResponse, Request, Response,
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
pub fn docs_file(Path(path): Path<String>, req: &Request) -> Response {
    serve(&path, accepts_gzip(req))
}

#[handler]
pub fn docs_index(req: &Request) -> Response {
    serve("", accepts_gzip(req))
}

fn accepts_gzip(req: &Request) -> bool {
    crate::http::header(req, header::ACCEPT_ENCODING).is_some_and(|v| {
        v.split(',').any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

fn serve(path: &str, gzip_ok: bool) -> Response {
    match utoipa_swagger_ui::serve(path, config()) {
        Ok(Some(file)) => {
            let mut resp = Response::builder()
                .content_type(file.content_type)
                .header(header::CACHE_CONTROL, "public, max-age=3600")
                .header(header::VARY, "accept-encoding");
            let mut bytes = file.bytes.into_owned();
            if file.gzpipped && gzip_ok {
                resp = resp.header(header::CONTENT_ENCODING, "gzip");
            } else if file.gzpipped {
                let mut plain = Vec::new();
                if let Err(e) = std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&bytes[..]),
                    &mut plain,
                ) {
                    return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
                }
                bytes = plain;
            }
            resp.body(bytes)
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(path: &str, accept: Option<&str>) -> (Option<String>, Vec<u8>) {
        let resp = serve(path, {
            let mut req = Request::builder();
            if let Some(a) = accept {
                req = req.header(header::ACCEPT_ENCODING, a);
            }
            accepts_gzip(&req.finish())
        });
        assert_eq!(resp.status(), StatusCode::OK);
        let enc = resp
            .headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.into_body().into_vec().await.unwrap();
        (enc, body)
    }

    #[tokio::test]
    async fn gzipped_files_are_unpacked_for_clients_that_do_not_accept_gzip() {
        let (enc, packed) = get("swagger-ui-bundle.js", Some("gzip, deflate, br")).await;
        assert_eq!(enc.as_deref(), Some("gzip"));
        assert_eq!(&packed[..2], &[0x1f, 0x8b]);
        for accept in [None, Some("br"), Some("gzip;q=0, br")] {
            let (enc, plain) = get("swagger-ui-bundle.js", accept).await;
            assert_eq!(enc, None, "{accept:?}");
            assert!(plain.len() > packed.len() * 2, "{accept:?}");
            assert!(
                String::from_utf8_lossy(&plain[..200]).contains("swagger"),
                "{accept:?}"
            );
        }
    }
}
