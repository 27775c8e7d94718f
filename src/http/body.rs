//! JSON request bodies read the same way everywhere: malformed JSON is a
//! 400 `bad-request`, JSON that breaks the schema a 422 `invalid-body` (the
//! contract's split; poem-openapi's own `Json` answers 400 for both).

use poem::{Request, RequestBody};
use poem_openapi::{
    registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry},
    types::{ParseFromJSON, Type},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};

use crate::http::error::{ApiError, ErrorCode};

/// Largest JSON body read; anything bigger is refused before parsing.
pub const MAX_JSON_BYTES: usize = 1024 * 1024;

/// A JSON body that may be left out entirely (no body, no Content-Type),
/// as `POST /api/queue/enqueue/{id}` allows.
pub struct OptionalJson<T>(pub Option<T>);

/// A JSON body that must be there.
pub struct JsonBody<T>(pub T);

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

fn request_meta<T: Type>(required: bool) -> Option<MetaRequest> {
    Some(MetaRequest {
        description: None,
        content: vec![MetaMediaType {
            content_type: "application/json; charset=utf-8",
            schema: T::schema_ref(),
        }],
        required,
    })
}

/// The property names `T`'s schema declares.
fn declared_fields<T: Type>() -> Vec<&'static str> {
    let mut registry = Registry::new();
    T::register(&mut registry);
    let schema = match T::schema_ref() {
        MetaSchemaRef::Inline(s) => Some(*s),
        MetaSchemaRef::Reference(name) => registry.schemas.remove(&name),
    };
    schema.map_or_else(Vec::new, |s| s.properties.iter().map(|(k, _)| *k).collect())
}

/// `None` for an empty body.
async fn read<T: ParseFromJSON + Type>(body: &mut RequestBody) -> poem::Result<Option<T>> {
    let bytes = body
        .take()?
        .into_bytes_limit(MAX_JSON_BYTES)
        .await
        .map_err(|e| ApiError::new(ErrorCode::BodyTooLarge, e.to_string()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("The body is not valid JSON: {e}")))?;
    // poem-openapi reads `null` for an optional field as "left out", but no
    // request body field is nullable in the spec (tests/openapi.rs keeps it
    // so): a null in a declared field is invalid input, as a generated
    // client would be told. Keys the schema does not declare stay ignored.
    if let Some(obj) = value.as_object() {
        if let Some(key) = declared_fields::<T>()
            .into_iter()
            .find(|k| obj.get(*k).is_some_and(serde_json::Value::is_null))
        {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                format!("{key:?} is null: leave the field out instead"),
            )
            .into());
        }
    }
    let parsed = T::parse_from_json(Some(value))
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, e.into_message()))?;
    Ok(Some(parsed))
}

impl<'a, T: ParseFromJSON + Type> ApiExtractor<'a> for OptionalJson<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        request_meta::<T>(false)
    }

    async fn from_request(
        _request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        read(body).await.map(OptionalJson)
    }
}

impl<'a, T: ParseFromJSON + Type> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        request_meta::<T>(true)
    }

    async fn from_request(
        _request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match read(body).await? {
            Some(v) => Ok(JsonBody(v)),
            None => Err(ApiError::bad_request("The request needs a JSON body").into()),
        }
    }
}

/// A JSON string that must be a string: poem-openapi's `String` also takes
/// `false` or `12` and turns them into text, which the spec (and so every
/// generated client and schemathesis) says is invalid input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Type for Text {
    crate::http::own_raw_value!();

    fn name() -> std::borrow::Cow<'static, str> {
        String::name()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        String::schema_ref()
    }
}

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        match value {
            Some(serde_json::Value::String(s)) => Ok(Text(s)),
            other => Err(poem_openapi::types::ParseError::expected_type(
                other.unwrap_or_default(),
            )),
        }
    }
}

impl poem_openapi::types::ToJSON for Text {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.0.clone()))
    }
}
