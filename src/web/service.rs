//! `/health`, `/` and `/api/db/info`.

use std::sync::Arc;

use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};
use redb::ReadableTableMetadata;

use crate::{
    app::{ApiTags, AppState},
    auth::Authed,
    error::ApiError,
    storage,
};

pub struct ServiceApi {
    pub state: Arc<AppState>,
}

#[derive(Debug, Object)]
pub struct Health {
    /// `healthy` or `unhealthy`.
    pub status: String,
    pub service: String,
    /// `connected` or `disconnected`.
    pub database: String,
    #[oai(nullable)]
    pub error: Option<String>,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    #[oai(status = 200)]
    Healthy(Json<Health>),
    /// Storage cannot be read.
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
    #[oai(path = "/health", method = "get", operation_id = "getHealth")]
    async fn health(&self) -> HealthResponse {
        let probe = self
            .state
            .store
            .read(|txn| Ok::<_, storage::StorageError>(txn.open_table(storage::META)?.len()?))
            .await;
        match probe {
            Ok(_) => HealthResponse::Healthy(Json(Health {
                status: "healthy".into(),
                service: "backend".into(),
                database: "connected".into(),
                error: None,
            })),
            Err(e) => HealthResponse::Unhealthy(Json(Health {
                status: "unhealthy".into(),
                service: "backend".into(),
                database: "disconnected".into(),
                error: Some(e.to_string()),
            })),
        }
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
    #[oai(
        path = "/api/db/info",
        method = "get",
        operation_id = "getDbInfo",
        tag = "ApiTags::Service"
    )]
    async fn db_info(&self, _auth: Authed) -> Result<Json<DbInfo>, ApiError> {
        let counts = self
            .state
            .store
            .read(|txn| Ok::<_, ApiError>(storage::table_counts(txn)?))
            .await?;
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
            schema_version: storage::SCHEMA_VERSION,
            file_size_bytes,
            row_counts: counts
                .into_iter()
                .map(|(name, rows)| TableInfo { name, rows })
                .collect(),
        }))
    }
}
