//! A JSON body that may be left out entirely (no body, no Content-Type),
//! as `POST /api/queue/enqueue/{id}` allows.

use poem::{Request, RequestBody};
use poem_openapi::{
    registry::{MetaMediaType, MetaRequest, Registry},
    types::{ParseFromJSON, Type},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};

use crate::http::error::{ApiError, ErrorCode};

/// Largest JSON body read; anything bigger is refused before parsing.
pub const MAX_JSON_BYTES: usize = 1024 * 1024;

pub struct OptionalJson<T>(pub Option<T>);

impl<'a, T: ParseFromJSON + Type> ApiExtractor<'a> for OptionalJson<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json; charset=utf-8",
                schema: T::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        _request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = body
            .take()?
            .into_bytes_limit(MAX_JSON_BYTES)
            .await
            .map_err(|e| ApiError::new(ErrorCode::BodyTooLarge, e.to_string()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("The body is not valid JSON: {e}")))?;
        let parsed = T::parse_from_json(Some(value))
            .map_err(|e| ApiError::new(ErrorCode::InvalidBody, e.into_message()))?;
        Ok(OptionalJson(Some(parsed)))
    }
}
