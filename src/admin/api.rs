//! `/api/admin/*`: operator actions.

use crate::http::{
    codes::ErrorCode as E,
    spec::{op, OpErrors, Storage},
};
use std::sync::Arc;

use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};

use crate::{
    auth::Operator,
    http::error::ApiError,
    state::{ApiTags, AppState},
    storage::backup,
};

pub struct AdminApi {
    pub state: Arc<AppState>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct Backup {
    /// Where the copy was written, on the server.
    pub path: String,
    pub size_bytes: u64,
    /// Tables copied.
    pub tables: u64,
    /// Rows copied, over every table.
    pub rows: u64,
    pub created_at: crate::timestamp::Timestamp,
}

#[derive(ApiResponse)]
pub enum BackupResponse {
    /// The copy is complete and synced to disk.
    #[oai(status = 201)]
    Created(Json<Backup>),
}

#[OpenApi(prefix_path = "/api/admin", tag = "ApiTags::Admin")]
impl AdminApi {
    /// Write a consistent copy of the database into DATA_DIR/backups
    ///
    /// The copy is taken from one read transaction, so it holds every write
    /// committed before the request and nothing half-done; the service keeps
    /// running meanwhile. One backup is written at a time (409 while one
    /// runs); 507 when the copy would leave the database too little disk.
    /// Restore by stopping the service and putting the file in place of
    /// DATA_DIR/immichvr.redb.
    #[oai(path = "/backup", method = "post", operation_id = "createBackup")]
    async fn create_backup(&self, _op: Operator) -> Result<BackupResponse, ApiError> {
        let dest = backup::timestamped_path(&self.state.config.data_dir);
        let info = self
            .state
            .store
            .backup(&crate::schema::SCHEMA, dest)
            .await?;
        tracing::info!(path = %info.path.display(), bytes = info.size_bytes, "backup written");
        Ok(BackupResponse::Created(Json(Backup {
            path: info.path.to_string_lossy().into_owned(),
            size_bytes: info.size_bytes,
            tables: info.tables as u64,
            rows: info.rows,
            created_at: crate::timestamp::Timestamp::now(),
        })))
    }
}

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[op(
    "createBackup",
    Storage::Reads,
    &[
        E::OperatorOnly,
        E::BackupRunning,
        E::DiskFull,
        E::BackupFailed,
    ],
)];
