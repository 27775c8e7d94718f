//! The API's documents: the spec (`/api/openapi.json`, `.yaml`) and the
//! Swagger UI at `/api/docs/`, all kept gzipped in memory or in the binary.
//!
//! Idle memory and binary size are targets: the spec is 0.3 MB of JSON and
//! 0.2 MB of YAML rendered at start-up (768 KiB of heap as strings, 50 KiB
//! gzipped), and the Swagger UI's 4.3 MB of JavaScript and CSS are
//! compiled in gzipped by utoipa-swagger-ui (`gzip`), about 1 MB. Every
//! browser accepts gzip and gets the bytes as they are; the rare client
//! that does not gets them unpacked.

use std::{
    io::Read,
    sync::{Arc, OnceLock},
};

use bytes::Bytes;
use poem::{
    handler,
    http::{header, StatusCode},
    web::{Path, Redirect},
    Endpoint, IntoResponse, Request, Response,
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
    serve_ui(&path, req)
}

#[handler]
pub fn docs_index(req: &Request) -> Response {
    serve_ui("", req)
}

fn serve_ui(path: &str, req: &Request) -> Response {
    match utoipa_swagger_ui::serve(path, config()) {
        Ok(Some(file)) => {
            let resp = Response::builder()
                .content_type(file.content_type)
                .header(header::CACHE_CONTROL, "public, max-age=3600");
            if file.gzpipped {
                packed_answer(resp, &file.bytes, req)
            } else {
                resp.body(file.bytes.into_owned())
            }
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A document rendered once and kept gzipped.
pub struct Packed {
    gz: Bytes,
    content_type: &'static str,
}

impl Packed {
    pub fn json(text: &str) -> Self {
        Self::new(text, "application/json; charset=utf-8")
    }

    pub fn yaml(text: &str) -> Self {
        Self::new(text, "application/yaml; charset=utf-8")
    }

    fn new(text: &str, content_type: &'static str) -> Self {
        // The fastest level: start-up time is a target too.
        Packed {
            gz: super::gzip(text.as_bytes(), 1).into(),
            content_type,
        }
    }
}

impl Endpoint for Packed {
    type Output = Response;
    async fn call(&self, req: Request) -> poem::Result<Response> {
        let resp = Response::builder().content_type(self.content_type);
        Ok(packed_answer(resp, &self.gz, &req))
    }
}

/// Gzipped bytes as they are when the client accepts gzip, else unpacked.
fn packed_answer(resp: poem::ResponseBuilder, gz: &[u8], req: &Request) -> Response {
    let resp = resp.header(header::VARY, "accept-encoding");
    if super::accepts_gzip(req) {
        return resp
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Bytes::copy_from_slice(gz));
    }
    let mut plain = Vec::new();
    match flate2::read::GzDecoder::new(gz).read_to_end(&mut plain) {
        Ok(_) => resp.body(plain),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(accept: Option<&str>) -> Request {
        let mut req = Request::builder();
        if let Some(a) = accept {
            req = req.header(header::ACCEPT_ENCODING, a);
        }
        req.finish()
    }

    async fn body(resp: Response) -> (Option<String>, Vec<u8>) {
        assert_eq!(resp.status(), StatusCode::OK);
        let enc = resp
            .headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap().to_string());
        (enc, resp.into_body().into_vec().await.unwrap())
    }

    #[tokio::test]
    async fn gzipped_files_are_unpacked_for_clients_that_do_not_accept_gzip() {
        let gzip = req(Some("gzip, deflate, br"));
        let (enc, packed) = body(serve_ui("swagger-ui-bundle.js", &gzip)).await;
        assert_eq!(enc.as_deref(), Some("gzip"));
        assert_eq!(&packed[..2], &[0x1f, 0x8b]);
        for accept in [None, Some("br"), Some("gzip;q=0, br")] {
            let (enc, plain) = body(serve_ui("swagger-ui-bundle.js", &req(accept))).await;
            assert_eq!(enc, None, "{accept:?}");
            assert!(plain.len() > packed.len() * 2, "{accept:?}");
            assert!(
                String::from_utf8_lossy(&plain[..200]).contains("swagger"),
                "{accept:?}"
            );
        }

        let spec = Packed::json(r#"{"openapi":"3.0.0"}"#);
        let (enc, bytes) = body(spec.call(gzip).await.unwrap()).await;
        assert_eq!(enc.as_deref(), Some("gzip"));
        assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
        let (enc, bytes) = body(spec.call(req(None)).await.unwrap()).await;
        assert_eq!(enc, None);
        assert_eq!(bytes, br#"{"openapi":"3.0.0"}"#);
    }
}
