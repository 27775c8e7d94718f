//! `/api/ai/health` and `/api/ai/info`: the AI service's own answers.

use std::sync::Arc;

use poem_openapi::{payload::Json, OpenApi};

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
    async fn health(&self, _auth: Authed) -> Result<Json<serde_json::Value>, ApiError> {
        Ok(Json(
            self.first_answer("/health", ErrorCode::AiUnhealthy).await?,
        ))
    }

    /// The AI service's / answer (model and endpoints)
    #[oai(path = "/info", method = "get", operation_id = "getAiInfo")]
    async fn info(&self, _auth: Authed) -> Result<Json<serde_json::Value>, ApiError> {
        Ok(Json(
            self.first_answer("/", ErrorCode::AiUnreachable).await?,
        ))
    }
}
