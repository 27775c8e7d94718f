//! `/api/ai/health` and `/api/ai/info`: the AI service's own answers.

use crate::http::{
    codes::ErrorCode as E,
    spec::{op, OpErrors, Storage},
};
use std::sync::Arc;

use std::{borrow::Cow, collections::BTreeMap, marker::PhantomData};

use poem_openapi::{
    payload::Json,
    registry::{MetaSchemaRef, Registry},
    types::{ParseFromJSON, ToJSON, Type},
    Object, OpenApi,
};

use crate::{
    auth::Authed,
    http::error::{ApiError, ErrorCode},
    state::{ApiTags, AppState},
};

pub struct AiApi {
    pub state: Arc<AppState>,
}

impl AiApi {
    /// Asks each endpoint in turn; the first good answer wins.
    async fn first_answer(
        &self,
        path: &str,
        code: ErrorCode,
    ) -> Result<serde_json::Value, ApiError> {
        let mut last = String::from("no AI_SERVICE_URL configured");
        for url in self.state.config.ai_urls() {
            match self.state.ai.get_json(&url, path).await {
                Ok(v) => return Ok(v),
                Err(e) => last = e.to_string(),
            }
        }
        Err(ApiError::new(code, last))
    }
}

#[OpenApi(prefix_path = "/api/ai", tag = "ApiTags::Ai")]
impl AiApi {
    /// The AI service's /health answer
    #[oai(path = "/health", method = "get", operation_id = "getAiHealth")]
    async fn health(&self, _auth: Authed) -> Result<Json<Answer<AiHealth>>, ApiError> {
        let v = self.first_answer("/health", ErrorCode::AiUnhealthy).await?;
        Answer::checked(v, ErrorCode::AiUnhealthy).map(Json)
    }

    /// The AI service's / answer (model and endpoints)
    #[oai(path = "/info", method = "get", operation_id = "getAiInfo")]
    async fn info(&self, _auth: Authed) -> Result<Json<Answer<AiInfo>>, ApiError> {
        let v = self.first_answer("/", ErrorCode::AiUnreachable).await?;
        Answer::checked(v, ErrorCode::AiUnreachable).map(Json)
    }
}

/// The AI service's `GET /health`.
#[derive(Debug, Object)]
pub struct AiHealth {
    /// `healthy` when the service can work.
    pub status: String,
    pub service: Option<String>,
    pub model: Option<String>,
    /// `loaded`, or `not_loaded` while the model is missing.
    pub model_status: Option<String>,
}

/// The AI service's `GET /`.
#[derive(Debug, Object)]
pub struct AiInfo {
    pub message: Option<String>,
    pub version: Option<String>,
    pub model: Option<String>,
    /// The routes the service advertises (not all of them may exist).
    pub endpoints: Option<BTreeMap<String, serde_json::Value>>,
}

/// An AI service answer passed on whole (fields this service does not
/// know included, as the schemas allow), once it has the declared shape.
pub struct Answer<T>(serde_json::Value, PhantomData<T>);

impl<T: ParseFromJSON> Answer<T> {
    pub fn checked(v: serde_json::Value, code: ErrorCode) -> Result<Self, ApiError> {
        // The same check serves Immich's answers (the VR app's timeline).
        let who = if code == ErrorCode::ImmichError {
            "Immich"
        } else {
            "the AI service"
        };
        match T::parse_from_json(Some(v.clone())) {
            Ok(_) => Ok(Answer(v, PhantomData)),
            Err(e) => Err(ApiError::new(
                code,
                format!("{who} answered an unexpected shape: {}", e.into_message()),
            )),
        }
    }
}

impl<T: Type> Type for Answer<T> {
    crate::http::own_raw_value!();

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type> ToJSON for Answer<T> {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(self.0.clone())
    }
}

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op("getAiHealth", Storage::None, &[E::AiUnhealthy]),
    op("getAiInfo", Storage::None, &[E::AiUnreachable]),
];
