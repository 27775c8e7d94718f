//! `/api/queue/worker/*`.

use crate::http::{
    codes::ErrorCode as E,
    spec::{op, OpErrors, Storage},
};
use std::sync::Arc;

use poem_openapi::{payload::Json, Object, OpenApi};

use crate::{
    auth::Operator,
    http::error::ApiError,
    state::{ApiTags, AppState},
};

pub struct WorkerApi {
    pub state: Arc<AppState>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct WorkerStatus {
    #[oai(flatten)]
    pub worker: super::Status,
    /// Whether an item is being processed right now.
    pub processing: bool,
    /// The AI service URL(s), comma-separated as configured.
    pub ai_service_url: String,
    /// Whether at least one AI endpoint is reachable.
    pub ai_reachable: bool,
}

#[derive(Debug, Object)]
pub struct WorkerAction {
    pub success: bool,
    pub message: String,
}

#[OpenApi(prefix_path = "/api/queue/worker", tag = "ApiTags::Queue")]
impl WorkerApi {
    /// Worker state, in-flight items and AI endpoints
    #[oai(path = "/status", method = "get", operation_id = "getWorkerStatus")]
    async fn status(&self, _op: Operator) -> Result<Json<WorkerStatus>, ApiError> {
        let worker = self.state.worker.status().await;
        Ok(Json(WorkerStatus {
            processing: !worker.in_flight.is_empty(),
            ai_service_url: self.state.config.ai_urls().join(","),
            ai_reachable: worker.endpoints.iter().any(|e| e.reachable),
            worker,
        }))
    }

    /// Start processing
    #[oai(path = "/start", method = "post", operation_id = "startWorker")]
    async fn start(&self, _op: Operator) -> Result<Json<WorkerAction>, ApiError> {
        self.state.worker.start().await?;
        Ok(Json(WorkerAction {
            success: true,
            message: "Processing worker started".into(),
        }))
    }

    /// Stop processing
    ///
    /// In-flight items get `SHUTDOWN_GRACE_SECS` to finish; what is left
    /// goes back to `queued`. Answers once nothing is processing.
    #[oai(path = "/stop", method = "post", operation_id = "stopWorker")]
    async fn stop(&self, _op: Operator) -> Result<Json<WorkerAction>, ApiError> {
        self.state.worker.stop().await?;
        Ok(Json(WorkerAction {
            success: true,
            message: "Processing worker stopped".into(),
        }))
    }
}

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op("getWorkerStatus", Storage::None, &[E::OperatorOnly]),
    op(
        "startWorker",
        Storage::None,
        &[E::OperatorOnly, E::WorkerRunning],
    ),
    op(
        "stopWorker",
        Storage::None,
        &[E::OperatorOnly, E::WorkerStopped],
    ),
];
