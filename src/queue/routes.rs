//! `/api/queue/*` (without the worker routes, which live in `worker`).

use crate::http::{
    codes::ErrorCode as E,
    spec::{op, OpErrors, Storage},
};
use crate::timestamp::Timestamp;
use std::sync::Arc;

use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    ApiResponse, Enum, Object, OpenApi,
};
use uuid::Uuid;

use super::{
    query::{OrderBy, Stats, SummaryRow},
    ListQuery, QueueRow, Status, DEFAULT_MAX_ATTEMPTS,
};
use crate::{
    auth::{Authed, Operator},
    http::{body::OptionalJson, error::ApiError},
    state::{ApiTags, AppState},
};

pub struct QueueApi {
    pub state: Arc<AppState>,
}

impl QueueApi {
    /// The item, if the caller may see its photo (else as if there were
    /// none); `mine`: only if it is theirs (to cancel or retry).
    async fn visible(
        &self,
        auth: &Authed,
        id: Uuid,
        mine: bool,
    ) -> Result<crate::catalog::ItemDetail, ApiError> {
        let detail = self.state.catalog.queue_item(id).await?;
        let viewer = self.state.viewer(&auth.0).await?;
        let seen = match &detail.media {
            Some(m) => self.state.sharing.may_see(&viewer, m).await,
            None => viewer.sees_all(),
        };
        if !seen {
            return Err(super::QueueError::NotFound(id).into());
        }
        if mine && !detail.media.as_ref().is_some_and(|m| viewer.owns(m)) && !viewer.sees_all() {
            return Err(ApiError::new(
                E::Forbidden,
                "Only the owner of this item's photo (or an operator) may change it",
            ));
        }
        Ok(detail)
    }
}

#[derive(Debug, Object)]
pub struct StatsResponse {
    pub stats: Stats,
    pub timestamp: crate::timestamp::Timestamp,
}

#[derive(Debug, Object)]
pub struct SummaryResponse {
    pub summary: Vec<SummaryRow>,
}

#[derive(Debug, Clone, Copy, Enum)]
pub enum OrderDirection {
    #[oai(rename = "ASC")]
    Asc,
    #[oai(rename = "DESC")]
    Desc,
}

#[derive(Debug, Object)]
pub struct Pagination {
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Object)]
pub struct ItemList {
    pub count: u64,
    pub total: u64,
    pub items: Vec<QueueRow>,
    pub pagination: Pagination,
}

#[derive(Debug, Object)]
pub struct ItemDetail {
    #[oai(flatten)]
    pub item: QueueRow,
    #[oai(nullable)]
    pub file_path: Option<String>,
    pub error_count: u32,
    #[oai(nullable)]
    pub processing_duration_seconds: Option<f64>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct EnqueueBody {
    /// Attempts before the item is marked failed (1..20, default 3).
    #[oai(validator(minimum(value = "1"), maximum(value = "20")))]
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct EnqueueResult {
    pub success: bool,
    pub message: String,
    pub queue_id: Uuid,
    pub media_item_id: Uuid,
}

#[derive(ApiResponse)]
pub enum EnqueueResponse {
    #[oai(status = 201)]
    Created(Json<EnqueueResult>),
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ActionResult {
    pub success: bool,
    pub message: String,
    pub queue_id: Uuid,
}

#[OpenApi(prefix_path = "/api/queue", tag = "ApiTags::Queue")]
impl QueueApi {
    /// Number of items per status (read from counters, never a scan)
    #[oai(path = "/stats", method = "get", operation_id = "getQueueStats")]
    async fn stats(&self, _auth: Authed) -> Result<Json<StatsResponse>, ApiError> {
        Ok(Json(StatsResponse {
            stats: self.state.catalog.stats().await?,
            timestamp: Timestamp::now(),
        }))
    }

    /// Count, average attempts and average processing time per status
    #[oai(path = "/summary", method = "get", operation_id = "getQueueSummary")]
    async fn summary(&self, _auth: Authed) -> Result<Json<SummaryResponse>, ApiError> {
        let summary = self.state.catalog.summary().await?;
        Ok(Json(SummaryResponse { summary }))
    }

    /// List queue items
    ///
    /// `orderBy` priority and queued_at walk an index; the other orders sort
    /// the filtered rows in memory.
    #[oai(path = "/items", method = "get", operation_id = "listQueueItems")]
    #[allow(clippy::too_many_arguments)]
    async fn items(
        &self,
        auth: Authed,
        status: Query<Option<Status>>,
        /// Rows per page (default 50; more than 1000 is capped to 1000).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "4294967295"))
        )]
        limit: Query<u32>,
        #[oai(
            default,
            validator(minimum(value = "0"), maximum(value = "4294967295"))
        )]
        offset: Query<u32>,
        #[oai(name = "orderBy")] order_by: Query<Option<OrderBy>>,
        #[oai(name = "orderDirection")] order_direction: Query<Option<OrderDirection>>,
    ) -> Result<Json<ItemList>, ApiError> {
        let q = ListQuery {
            status: status.0,
            order: order_by.0.unwrap_or(OrderBy::Priority),
            descending: matches!(order_direction.0, Some(OrderDirection::Desc)),
            limit: limit.0.min(1000) as usize,
            offset: offset.0 as usize,
        };
        let (limit, offset) = (limit.0.min(1000), offset.0);
        let viewer = self.state.viewer(&auth.0).await?;
        let (items, total) = self.state.catalog.queue_page_for(q, &viewer).await?;
        Ok(Json(ItemList {
            count: items.len() as u64,
            total,
            items,
            pagination: Pagination { limit, offset },
        }))
    }

    /// One queue item with its file path and error history
    #[oai(path = "/items/:id", method = "get", operation_id = "getQueueItem")]
    async fn item(&self, auth: Authed, id: Path<Uuid>) -> Result<Json<ItemDetail>, ApiError> {
        let crate::catalog::ItemDetail { item, media } = self.visible(&auth, id.0, false).await?;
        let dirs = self.state.catalog.dirs();
        Ok(Json(ItemDetail {
            file_path: media.map(|m| dirs.shown(&m)),
            error_count: item.error_count,
            processing_duration_seconds: item.processing_duration_seconds,
            item,
        }))
    }

    /// Queue a media item
    ///
    /// Failed or cancelled entries are requeued under the same id; a
    /// completed one only with `force=true`.
    #[oai(
        path = "/enqueue/:mediaItemId",
        method = "post",
        operation_id = "enqueueMedia"
    )]
    async fn enqueue(
        &self,
        auth: Authed,
        #[oai(name = "mediaItemId")] media_item_id: Path<Uuid>,
        #[oai(default)] force: Query<bool>,
        body: OptionalJson<EnqueueBody>,
    ) -> Result<EnqueueResponse, ApiError> {
        let m = self.state.catalog.media(media_item_id.0).await?;
        let viewer = self.state.viewer(&auth.0).await?;
        if !(viewer.owns(&m) || viewer.sees_all()) {
            return Err(crate::media::MediaError::NotFound(m.id).into());
        }
        let max = body
            .0
            .and_then(|b| b.max_attempts)
            .unwrap_or(DEFAULT_MAX_ATTEMPTS);
        let row = self
            .state
            .catalog
            .enqueue(media_item_id.0, max, force.0)
            .await?;
        Ok(EnqueueResponse::Created(Json(EnqueueResult {
            success: true,
            message: "Media item added to queue".into(),
            queue_id: row.id,
            media_item_id: row.media_item_id,
        })))
    }

    /// Cancel a queued or pending item
    #[oai(
        path = "/items/:id/cancel",
        method = "post",
        operation_id = "cancelQueueItem"
    )]
    async fn cancel(&self, auth: Authed, id: Path<Uuid>) -> Result<Json<ActionResult>, ApiError> {
        self.visible(&auth, id.0, true).await?;
        let row = self.state.catalog.cancel(id.0).await?;
        Ok(Json(ActionResult {
            success: true,
            message: "Queue item cancelled".into(),
            queue_id: row.id,
        }))
    }

    /// Retry every failed item (attempts reset)
    #[oai(
        path = "/retry-failed",
        method = "post",
        operation_id = "retryFailedItems"
    )]
    async fn retry_failed(&self, _op: Operator) -> Result<Json<RetryAllResult>, ApiError> {
        let rows = self.state.catalog.retry_all_failed().await?;
        Ok(Json(RetryAllResult {
            success: true,
            message: format!("{} failed item(s) will be retried", rows.len()),
            count: rows.len() as u64,
        }))
    }

    /// Retry a failed or cancelled item (attempts reset)
    #[oai(
        path = "/items/:id/retry",
        method = "post",
        operation_id = "retryQueueItem"
    )]
    async fn retry(&self, auth: Authed, id: Path<Uuid>) -> Result<Json<ActionResult>, ApiError> {
        self.visible(&auth, id.0, true).await?;
        let row = self.state.catalog.retry(id.0).await?;
        Ok(Json(ActionResult {
            success: true,
            message: "Queue item will be retried".into(),
            queue_id: row.id,
        }))
    }
}

#[derive(Debug, Object)]
pub struct RetryAllResult {
    pub success: bool,
    pub message: String,
    /// How many failed items were requeued.
    pub count: u64,
}

fn default_limit() -> u32 {
    50
}

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op("getQueueStats", Storage::Reads, &[]),
    op("getQueueSummary", Storage::Reads, &[]),
    op("listQueueItems", Storage::Reads, &[]),
    op("getQueueItem", Storage::Reads, &[E::QueueItemNotFound]),
    op(
        "enqueueMedia",
        Storage::Writes,
        &[E::MediaNotFound, E::AlreadyQueued],
    ),
    op(
        "cancelQueueItem",
        Storage::Writes,
        &[E::QueueItemNotFound, E::InvalidState, E::Forbidden],
    ),
    op("retryFailedItems", Storage::Writes, &[E::OperatorOnly]),
    op(
        "retryQueueItem",
        Storage::Writes,
        &[E::QueueItemNotFound, E::InvalidState, E::Forbidden],
    ),
];
