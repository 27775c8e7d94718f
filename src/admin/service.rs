//! `/health`, `/` and `/api/db/info`.

use crate::http::spec::{op, OpErrors, Storage};
use std::sync::Arc;

use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};

use crate::{
    auth::Operator,
    http::error::ApiError,
    state::{ApiTags, AppState},
};

pub struct ServiceApi {
    pub state: Arc<AppState>,
}

#[derive(Debug, Object)]
pub struct Health {
    /// `healthy` or `unhealthy`.
    pub status: String,
    pub service: String,
    /// `connected`, `read-only` (writes impossible, e.g. disk full),
    /// `damaged` or `disconnected`.
    pub database: String,
    #[oai(nullable)]
    pub error: Option<String>,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    #[oai(status = 200)]
    Healthy(Json<Health>),
    /// Storage cannot be read or written, or is damaged; `error` says why.
    #[oai(status = 503)]
    Unhealthy(Json<Health>),
}

#[derive(Debug, Object)]
pub struct Root {
    pub message: String,
    pub version: String,
}

#[derive(Debug, Object)]
pub struct TableInfo {
    pub name: String,
    pub rows: u64,
}

#[derive(Debug, Object)]
pub struct DbInfo {
    /// Path of the database file.
    pub database: String,
    pub tables: Vec<String>,
    /// Always empty: kept for clients of the PostgreSQL version.
    pub views: Vec<String>,
    pub status: String,
    pub engine: String,
    pub schema_version: u64,
    pub file_size_bytes: u64,
    pub row_counts: Vec<TableInfo>,
}

#[OpenApi(tag = "ApiTags::Service")]
impl ServiceApi {
    /// Liveness and storage check
    ///
    /// 503 with the reason in `error` while the database cannot be read,
    /// while writes are impossible (`database`: `read-only`, after a full
    /// disk: they resume by themselves once there is room) or when the
    /// database file is damaged (`damaged`: restore a backup).
    #[oai(path = "/health", method = "get", operation_id = "getHealth")]
    async fn health(&self) -> HealthResponse {
        self.check().await
    }

    /// Liveness and storage check, under `/api` (as the VR app asks)
    ///
    /// The same answer as `/health`; open like it even with `AUTH_TOKEN`.
    #[oai(path = "/api/health", method = "get", operation_id = "getApiHealth")]
    async fn api_health(&self) -> HealthResponse {
        self.check().await
    }

    /// Service name and version
    #[oai(path = "/", method = "get", operation_id = "getRoot")]
    async fn root(&self) -> Json<Root> {
        Json(Root {
            message: "ImmichVR Backend Service".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    /// Storage facts: file, tables, row counts
    #[oai(path = "/api/db/info", method = "get", operation_id = "getDbInfo")]
    async fn db_info(&self, _op: Operator) -> Result<Json<DbInfo>, ApiError> {
        let (counts, schema_version) = self.state.store.info().await?;
        let path = self.state.config.database_path();
        let file_size_bytes = tokio::fs::metadata(&path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(Json(DbInfo {
            database: path.to_string_lossy().into_owned(),
            tables: counts.iter().map(|(n, _)| n.clone()).collect(),
            views: vec![],
            status: "connected".into(),
            engine: "redb".into(),
            schema_version,
            file_size_bytes,
            row_counts: counts
                .into_iter()
                .map(|(name, rows)| TableInfo { name, rows })
                .collect(),
        }))
    }
}

impl ServiceApi {
    async fn check(&self) -> HealthResponse {
        let probe = self.state.store.probe().await;
        let h = self.state.store.health();
        let low_disk = !crate::media::upload::has_space(&self.state.catalog.dirs().uploads, 0);
        let (database, error) = match (probe, h.damage, h.write_error) {
            (Err(e), _, _) => ("disconnected", Some(e.to_string())),
            (Ok(_), Some(d), _) => (
                "damaged",
                Some(format!(
                    "the database file is damaged ({d}); what can be read is served; stop the \
                     service and restore the latest backup (see the operators guide)"
                )),
            ),
            (Ok(_), None, Some(w)) => (
                "read-only",
                Some(format!(
                    "writes are impossible: {w}; they resume by themselves once the database can be reopened"
                )),
            ),
            (Ok(_), None, None) if low_disk => (
                "connected",
                Some(format!(
                    "disk full: less than {} bytes free for uploads and the database; free some space",
                    crate::media::upload::DISK_HEADROOM
                )),
            ),
            (Ok(_), None, None) => ("connected", None),
        };
        let body = Health {
            status: if error.is_none() {
                "healthy"
            } else {
                "unhealthy"
            }
            .into(),
            service: "backend".into(),
            database: database.into(),
            error,
        };
        if body.error.is_none() {
            HealthResponse::Healthy(Json(body))
        } else {
            HealthResponse::Unhealthy(Json(body))
        }
    }
}

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op("getHealth", Storage::None, &[]),
    op("getApiHealth", Storage::None, &[]),
    op("getRoot", Storage::None, &[]),
    op(
        "getDbInfo",
        Storage::Reads,
        &[crate::http::codes::ErrorCode::OperatorOnly],
    ),
];
