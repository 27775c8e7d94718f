//! The one place where errors become HTTP answers.
//!
//! Every domain has its own error enum; `From<DomainError> for ApiError`
//! below matches each variant exhaustively (no `_` arm), so a new variant
//! fails to compile until someone decides its status.

use poem::{http::StatusCode, Response};
use poem_openapi::{
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::ToJSON,
    ApiResponse, Object,
};

use crate::{
    immich::ImmichError, media::MediaError, queue::QueueError, storage::backup::BackupError,
    storage::StorageError, worker::WorkerError,
};

/// The body of every error answer.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// Short title, stable enough to match on.
    pub error: String,
    /// What went wrong and what to do about it.
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                message: message.into(),
            },
            retry_after: None,
        }
    }

    /// The JSON answer.
    pub fn response(&self) -> Response {
        poem::error::ResponseError::as_response(self)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request", message)
    }

    /// Turns any error poem produced itself (unknown route, wrong method,
    /// unparsable parameter, unreadable body) into the JSON shape.
    pub fn from_poem(err: poem::Error) -> Self {
        if let Some(api) = err.downcast_ref::<ApiError>() {
            return api.clone();
        }
        let status = err.status();
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "Payload too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported media type",
            s if s.is_server_error() => "Internal error",
            _ => "Bad request",
        };
        let status = if status.is_server_error() || status.is_client_error() {
            status
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::new(status, title, err.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.body.error, self.body.message)
    }
}

impl std::error::Error for ApiError {}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let mut resp = json_error(self.status, &self.body);
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                poem::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}

pub fn json_error(status: StatusCode, body: &ErrorBody) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_json_string())
}

/// Statuses any operation may answer with the error body.
const ERROR_STATUSES: &[(u16, &str)] = &[
    (400, "Bad input: malformed id, parameter or body"),
    (401, "Missing or wrong token"),
    (
        403,
        "Host not allowed (DNS rebinding guard) or cross-origin request refused",
    ),
    (404, "Unknown id"),
    (408, "The client stopped sending the body"),
    (409, "The item is not in a state that allows this"),
    (413, "Upload larger than MAX_UPLOAD_BYTES"),
    (415, "Not a photo or video"),
    (422, "Invalid body"),
    (
        429,
        "Too many concurrent uploads (after waiting for a slot)",
    ),
    (431, "Request headers too large"),
    (500, "Internal error"),
    (502, "An upstream service answered with an error"),
    (503, "An upstream service is unreachable or not configured"),
    (507, "Disk full"),
];

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: ERROR_STATUSES
                .iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: <ErrorBody as poem_openapi::types::Type>::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        <ErrorBody as poem_openapi::types::Type>::register(registry);
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        let message = e.to_string();
        match e {
            StorageError::Db(_) | StorageError::ReadOnly(_) if e.is_disk_full() => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "Disk full",
                "The database cannot grow: free disk space; writes resume by themselves once there is room",
            ),
            StorageError::ReadOnly(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Storage unavailable", message)
            }
            StorageError::Reopening => {
                let mut e =
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Storage unavailable", message);
                e.retry_after = Some(2);
                e
            }
            StorageError::Db(_) | StorageError::Corrupt(_) | StorageError::Task(_) => {
                tracing::error!(error = %message, "storage failure");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Storage error", message)
            }
            StorageError::SchemaTooNew { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Storage error", message)
            }
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        let message = e.to_string();
        match e {
            QueueError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "Queue item not found", message)
            }
            QueueError::MediaNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "Media item not found", message)
            }
            QueueError::AlreadyQueued { .. } => {
                ApiError::new(StatusCode::CONFLICT, "Already in queue", message)
            }
            QueueError::InvalidTransition { .. } => {
                ApiError::new(StatusCode::CONFLICT, "Invalid state", message)
            }
            QueueError::Storage(s) => s.into(),
        }
    }
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        let message = e.to_string();
        let (status, title) = match e {
            MediaError::NotFound(_) => (StatusCode::NOT_FOUND, "Media item not found"),
            MediaError::DepthNotReady(_) => (StatusCode::NOT_FOUND, "Depth map not found"),
            MediaError::Processing(_) => (StatusCode::CONFLICT, "Item is processing"),
            MediaError::MissingField => (StatusCode::BAD_REQUEST, "No file uploaded"),
            MediaError::EmptyFile => (StatusCode::BAD_REQUEST, "Empty file"),
            MediaError::BadMultipart(_) => (StatusCode::BAD_REQUEST, "Invalid multipart body"),
            MediaError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "File too large"),
            MediaError::Unsupported { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
            }
            MediaError::DiskFull => (StatusCode::INSUFFICIENT_STORAGE, "Disk full"),
            MediaError::Busy { .. } => {
                let mut e =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Too many uploads", message);
                e.retry_after = Some(2);
                return e;
            }
            MediaError::Stalled(_) => (StatusCode::REQUEST_TIMEOUT, "Request timeout"),
            MediaError::Io(_) => {
                tracing::error!(error = %message, "file system failure");
                (StatusCode::INTERNAL_SERVER_ERROR, "File system error")
            }
            MediaError::Queue(q) => return q.into(),
            MediaError::Storage(s) => return s.into(),
        };
        ApiError::new(status, title, message)
    }
}

impl From<WorkerError> for ApiError {
    fn from(e: WorkerError) -> Self {
        let message = e.to_string();
        match e {
            WorkerError::AlreadyRunning => {
                ApiError::new(StatusCode::CONFLICT, "Worker already running", message)
            }
            WorkerError::NotRunning => {
                ApiError::new(StatusCode::CONFLICT, "Worker not running", message)
            }
        }
    }
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        let message = e.to_string();
        match e {
            BackupError::Storage(s) => s.into(),
            BackupError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "Backup exists", message),
            BackupError::DiskFull(_) => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "Disk full", message)
            }
            BackupError::Running => ApiError::new(StatusCode::CONFLICT, "Backup running", message),
            BackupError::UnknownTable(_) | BackupError::Io(_) => {
                tracing::error!(error = %message, "backup failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Backup failed", message)
            }
        }
    }
}

impl From<ImmichError> for ApiError {
    fn from(e: ImmichError) -> Self {
        let message = e.to_string();
        match e {
            ImmichError::NotConfigured => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Immich connector not configured",
                message,
            ),
            ImmichError::Denied { .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "Immich refused the request",
                message,
            ),
            ImmichError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "Immich asset not found", message)
            }
            ImmichError::Upstream { .. } | ImmichError::BadAnswer(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "Immich error", message)
            }
            ImmichError::Unreachable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Immich unreachable",
                message,
            ),
            ImmichError::ImportRunning => {
                ApiError::new(StatusCode::CONFLICT, "Import running", message)
            }
            ImmichError::Media(m) => m.into(),
        }
    }
}
