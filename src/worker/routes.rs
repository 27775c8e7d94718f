//! `/api/queue/worker/*`.

use std::sync::Arc;

use poem_openapi::{payload::Json, Object, OpenApi};
use uuid::Uuid;

use crate::{
    auth::Authed,
    http::error::ApiError,
    state::{ApiTags, AppState},
};

pub struct WorkerApi {
    pub state: Arc<AppState>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct EndpointStatus {
    pub url: String,
    pub in_flight: u64,
    pub reachable: bool,
    #[oai(nullable)]
    pub last_error: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct WorkerStatus {
    pub running: bool,
    /// Whether an item is being processed right now.
    pub processing: bool,
    /// The AI service URL(s), comma-separated as configured.
    pub ai_service_url: String,
    /// Requests in flight at most per AI endpoint.
    pub concurrency: u64,
    /// Queue ids being processed now.
    pub in_flight: Vec<Uuid>,
    /// Items completed since start.
    pub processed: u64,
    /// Items failed for good since start.
    pub failed: u64,
    /// Whether at least one AI endpoint is reachable.
    pub ai_reachable: bool,
    /// Why processing pauses (disk full, database read-only), while it does;
    /// it resumes by itself.
    #[oai(nullable)]
    pub paused_reason: Option<String>,
    pub endpoints: Vec<EndpointStatus>,
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
    async fn status(&self, _auth: Authed) -> Result<Json<WorkerStatus>, ApiError> {
        let st = self.state.worker.status().await;
        let endpoints: Vec<EndpointStatus> = st
            .endpoints
            .into_iter()
            .map(|e| EndpointStatus {
                url: e.url,
                in_flight: e.in_flight as u64,
                reachable: e.reachable,
                last_error: e.last_error,
            })
            .collect();
        Ok(Json(WorkerStatus {
            running: st.running,
            processing: !st.in_flight.is_empty(),
            ai_service_url: self.state.config.ai_urls().join(","),
            concurrency: st.concurrency as u64,
            in_flight: st.in_flight,
            processed: st.processed,
            failed: st.failed,
            ai_reachable: endpoints.iter().any(|e| e.reachable),
            paused_reason: st.paused,
            endpoints,
        }))
    }

    /// Start processing
    #[oai(path = "/start", method = "post", operation_id = "startWorker")]
    async fn start(&self, _auth: Authed) -> Result<Json<WorkerAction>, ApiError> {
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
    async fn stop(&self, _auth: Authed) -> Result<Json<WorkerAction>, ApiError> {
        self.state.worker.stop().await?;
        Ok(Json(WorkerAction {
            success: true,
            message: "Processing worker stopped".into(),
        }))
    }
}
