//! The two binary answers of the asset routes: a download (with `Range`
//! and `ETag`, like every stored file) and a generation (the file with the
//! `X-Asset-*` headers the app's upstream backend sends).

use std::path::Path;

use poem::{http::header, web::StaticFileRequest, Body, IntoResponse, Response};
use poem_openapi::{
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef},
    ApiResponse,
};

use super::{AssetRow, Format, Kind};
use crate::http::error::ApiError;

fn binary(types: &[&'static str]) -> Vec<MetaMediaType> {
    types
        .iter()
        .map(|content_type| MetaMediaType {
            content_type,
            schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format(
                "string", "binary",
            ))),
        })
        .collect()
}

fn header(name: &str, description: &str) -> MetaHeader {
    MetaHeader {
        name: name.into(),
        description: Some(description.into()),
        required: false,
        deprecated: false,
        schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
    }
}

const TYPES: &[&str] = &["image/png", "application/zip", "application/octet-stream"];

/// `GET .../files/{fileId}/download`.
pub struct Download(Response);

impl Download {
    pub fn serve(req: StaticFileRequest, path: &Path, a: &AssetRow) -> Result<Self, ApiError> {
        let resp = req
            .create_response(path, false, false)
            .map_err(|e| ApiError::from_poem(e.into()))?
            .with_content_type(a.format.content_type())
            .with_header(
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{}\"", a.file_name),
            );
        Ok(Download(resp.into_response()))
    }
}

impl IntoResponse for Download {
    fn into_response(self) -> Response {
        self.0
    }
}

impl ApiResponse for Download {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![
                MetaResponse {
                    description: "The file: `image/png` (depth map), `application/zip` (video depth frames) or `application/octet-stream` (PLY, KSPLAT)",
                    status: Some(200),
                    status_range: None,
                    content: binary(TYPES),
                    headers: vec![],
                },
                MetaResponse {
                    description: "The requested byte range",
                    status: Some(206),
                    status_range: None,
                    content: binary(TYPES),
                    headers: vec![],
                },
                MetaResponse {
                    description: "Not modified (`If-None-Match` matched)",
                    status: Some(304),
                    status_range: None,
                    content: vec![],
                    headers: vec![],
                },
            ],
        }
    }

    fn register(_: &mut poem_openapi::registry::Registry) {}
}

/// `POST .../generate`: the depth map (`image/png`) or the splat's PLY
/// (`application/octet-stream`), from the cache (`X-Asset-Cache: hit`) or
/// just made (`miss`).
pub struct Generated(Response);

impl Generated {
    pub async fn file(path: &Path, a: &AssetRow, hit: bool) -> Result<Self, ApiError> {
        let body = file_body(path, a.file_size).await?;
        let content_type = match (a.kind, a.format) {
            (Kind::Depth, Format::Png) => "image/png",
            (_, f) => f.content_type(),
        };
        let mut resp = Response::builder()
            .content_type(content_type)
            .header(header::CONTENT_LENGTH, a.file_size)
            .header("X-Asset-Cache", if hit { "hit" } else { "miss" });
        if a.kind == Kind::Splat {
            resp = resp.header("X-Asset-Format", a.format.as_str());
            if hit {
                resp = resp.header("X-Asset-Status", "already_exists");
            }
        }
        Ok(Generated(resp.body(body)))
    }
}

/// Files up to this size are read in one go: streaming through tokio's
/// file reads costs a thread hop per 4 KiB chunk (3 ms for a 1 MiB PNG).
const READ_WHOLE: u64 = 16 * 1024 * 1024;

async fn file_body(path: &Path, size: u64) -> Result<Body, ApiError> {
    if size <= READ_WHOLE {
        let bytes = tokio::fs::read(path).await.map_err(super::AssetError::Io)?;
        return Ok(Body::from(bytes));
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(super::AssetError::Io)?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    Ok(Body::from_bytes_stream(stream))
}

impl IntoResponse for Generated {
    fn into_response(self) -> Response {
        self.0
    }
}

impl ApiResponse for Generated {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The depth map (PNG) or the splat (PLY), stored before this answer",
                status: Some(200),
                status_range: None,
                content: binary(&["image/png", "application/octet-stream"]),
                headers: vec![
                    header(
                        "X-Asset-Cache",
                        "`hit` (from the store) or `miss` (just made)",
                    ),
                    header("X-Asset-Format", "Splats: the stored format sent, `ply`"),
                    header("X-Asset-Status", "Splats from the cache: `already_exists`"),
                ],
            }],
        }
    }

    fn register(_: &mut poem_openapi::registry::Registry) {}
}

/// `GET /api/assets/map`: the rendered JSON (kept between changes), with
/// the `AssetMap` schema in the spec.
pub struct MapJson(pub bytes::Bytes);

impl IntoResponse for MapJson {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(self.0)
    }
}

impl ApiResponse for MapJson {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "Immich asset id -> kind -> model keys",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/json; charset=utf-8",
                    schema: <super::views::AssetMap as poem_openapi::types::Type>::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        <super::views::AssetMap as poem_openapi::types::Type>::register(registry);
    }
}
