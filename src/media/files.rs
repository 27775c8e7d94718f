//! Serving stored files with `Range`, `ETag` and conditional requests.

use std::path::Path;

use poem::{web::StaticFileRequest, IntoResponse, Response};
use poem_openapi::{
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
    ApiResponse,
};

use crate::http::error::{ApiError, ErrorBody};

/// A file answer: 200 (whole), 206 (one range) or 304 (not modified).
pub struct FileBody(pub Response);

impl FileBody {
    /// Builds the answer for `path` honouring the request's conditional and
    /// range headers; the stored MIME type wins over the file extension.
    pub fn serve(req: StaticFileRequest, path: &Path, mime: &str) -> Result<Self, ApiError> {
        let resp = req
            .create_response(path, false, false)
            .map_err(|e| ApiError::from_poem(e.into()))?
            .with_content_type(mime);
        Ok(FileBody(resp.into_response()))
    }
}

impl IntoResponse for FileBody {
    fn into_response(self) -> Response {
        self.0
    }
}

impl ApiResponse for FileBody {
    fn meta() -> MetaResponses {
        // The stored MIME type is sent: a photo, a video, a PNG depth map
        // or a ZIP of frames.
        let binary = || {
            [
                "image/*",
                "video/*",
                "application/zip",
                "application/octet-stream",
            ]
            .into_iter()
            .map(|content_type| MetaMediaType {
                content_type,
                schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format(
                    "string", "binary",
                ))),
            })
            .collect::<Vec<_>>()
        };
        MetaResponses {
            responses: vec![
                MetaResponse {
                    description: "The file, with its MIME type, `ETag` and `Accept-Ranges`",
                    status: Some(200),
                    status_range: None,
                    content: binary(),
                    headers: vec![],
                },
                MetaResponse {
                    description: "The requested byte range",
                    status: Some(206),
                    status_range: None,
                    content: binary(),
                    headers: vec![],
                },
                MetaResponse {
                    description: "Not modified (`If-None-Match` matched)",
                    status: Some(304),
                    status_range: None,
                    content: vec![],
                    headers: vec![],
                },
                MetaResponse {
                    description: "The range is outside the file",
                    status: Some(416),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: <ErrorBody as poem_openapi::types::Type>::schema_ref(),
                    }],
                    headers: vec![],
                },
            ],
        }
    }

    fn register(registry: &mut Registry) {
        <ErrorBody as poem_openapi::types::Type>::register(registry);
    }
}
