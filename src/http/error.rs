//! The one place where errors become HTTP answers.
//!
//! Every domain has its own error enum; `From<DomainError> for ApiError`
//! below matches each variant exhaustively (no `_` arm), so a new variant
//! fails to compile until someone decides its code (and so its status)
//! from the catalogue in `codes`.

use poem::{http::StatusCode, Response};
use poem_openapi::{
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::ToJSON,
    ApiResponse, Object,
};

pub use super::codes::ErrorCode;
use crate::{
    assets::AssetError, auth::AuthError, catalog::CatalogError, immich::ImmichError,
    media::MediaError, queue::QueueError, settings::SettingsError, storage::backup::BackupError,
    storage::StorageError, worker::WorkerError,
};

/// The body of every error answer.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// Short title, for people (the contract's field).
    pub error: String,
    /// What went wrong and what to do about it.
    pub message: String,
    /// Stable and machine-readable: match on this.
    pub code: ErrorCode,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub body: ErrorBody,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// The message is cut at `echo::MESSAGE_CHARS`: whatever a layer
    /// quoted of the request, the answer stays small.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let message: String = message.into();
        ApiError {
            code,
            body: ErrorBody {
                error: code.title().into(),
                message: crate::echo::message(&message).into_owned(),
                code,
            },
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The JSON answer.
    pub fn response(&self) -> Response {
        poem::error::ResponseError::as_response(self)
    }

    /// The JSON answer as HTTP/1.1 bytes, for a socket hyper does not
    /// have (yet); the connection closes after it.
    pub fn raw_answer(&self) -> Vec<u8> {
        let status = self.status();
        let body = self.body.to_json_string();
        let retry = match self.retry_after {
            Some(secs) => format!("retry-after: {secs}\r\n"),
            None => String::new(),
        };
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json; charset=utf-8\r\n\
             {retry}connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes()
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// Turns any error poem produced itself (unknown route, wrong method,
    /// unparsable parameter, unreadable body) into the JSON shape.
    pub fn from_poem(err: poem::Error) -> Self {
        if let Some(api) = err.downcast_ref::<ApiError>() {
            return api.clone();
        }
        ApiError::new(ErrorCode::for_status(err.status()), err.to_string())
    }
}

/// At most `max` characters of a value a client sent, for a message that
/// names it: an answer never echoes a whole oversized value back.
pub fn excerpt(value: &str, max: usize) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(max).collect();
    match chars.next() {
        None => head,
        Some(_) => format!("{head}… ({} characters)", value.chars().count()),
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
        self.code.status()
    }

    fn as_response(&self) -> Response {
        let mut resp = json_error(self.code.status(), &self.body);
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
        (&e).into()
    }
}

impl From<&StorageError> for ApiError {
    fn from(e: &StorageError) -> Self {
        let message = e.to_string();
        match e {
            StorageError::Db(_) | StorageError::ReadOnly(_) if e.is_disk_full() => ApiError::new(
                ErrorCode::DiskFull,
                "The database cannot grow: free disk space; writes resume by themselves once there is room",
            ),
            StorageError::ReadOnly(_) => ApiError::new(ErrorCode::StorageUnavailable, message),
            StorageError::Reopening => {
                ApiError::new(ErrorCode::StorageUnavailable, message).retry_after(2)
            }
            StorageError::Db(_)
            | StorageError::Corrupt(_)
            | StorageError::Task(_)
            | StorageError::SchemaTooNew { .. } => {
                tracing::error!(error = %message, "storage failure");
                ApiError::new(ErrorCode::StorageError, message)
            }
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        let message = e.to_string();
        let code = match e {
            QueueError::NotFound(_) => ErrorCode::QueueItemNotFound,
            QueueError::AlreadyQueued { .. } => ErrorCode::AlreadyQueued,
            QueueError::InvalidTransition { .. } => ErrorCode::InvalidState,
            QueueError::Storage(s) => return s.into(),
        };
        ApiError::new(code, message)
    }
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        let message = e.to_string();
        let code = match e {
            MediaError::NotFound(_) => ErrorCode::MediaNotFound,
            MediaError::DepthNotReady(_) => ErrorCode::DepthMapNotFound,
            MediaError::Processing(_) => ErrorCode::ItemProcessing,
            MediaError::MissingField => ErrorCode::NoFile,
            MediaError::EmptyFile => ErrorCode::EmptyFile,
            MediaError::BadMultipart(_) => ErrorCode::InvalidMultipart,
            MediaError::TooLarge { .. } => ErrorCode::FileTooLarge,
            MediaError::Unsupported { .. } => ErrorCode::UnsupportedMediaType,
            MediaError::DiskFull => ErrorCode::DiskFull,
            MediaError::Busy { .. } => {
                return ApiError::new(ErrorCode::TooManyUploads, message).retry_after(2)
            }
            MediaError::Stalled(_) => ErrorCode::RequestTimeout,
            MediaError::Io(_) => {
                tracing::error!(error = %message, "file system failure");
                ErrorCode::FileSystemError
            }
            MediaError::Storage(s) => return s.into(),
        };
        ApiError::new(code, message)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        let code = match e {
            AuthError::InvalidCredentials(_) => ErrorCode::InvalidCredentials,
            AuthError::Throttled(secs) => {
                return ApiError::new(ErrorCode::TooManySignIns, message).retry_after(secs)
            }
            AuthError::NoImmich => ErrorCode::ImmichNotConfigured,
            AuthError::KeyPermissions(_) => ErrorCode::KeyPermissions,
            AuthError::SessionNotFound(_) => ErrorCode::SessionNotFound,
            AuthError::Immich(i) => return i.into(),
            AuthError::Storage(s) => return s.into(),
        };
        ApiError::new(code, message)
    }
}

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        let message = e.to_string();
        let code = match e {
            SettingsError::NoSettings => ErrorCode::NoSettings,
            SettingsError::InvalidModel(..) => ErrorCode::InvalidModel,
            SettingsError::UnknownModel(_) => ErrorCode::ModelNotFound,
            SettingsError::NotDownloaded(..) | SettingsError::Downloading(_) => {
                ErrorCode::ModelNotDownloaded
            }
            SettingsError::NoCatalogue(_) => ErrorCode::AiNoCatalogue,
            SettingsError::AiRefused(_) => ErrorCode::AiRefused,
            // The AI comes up after us at boot: asking again soon helps.
            SettingsError::AiUnreachable(_) => {
                return ApiError::new(ErrorCode::AiUnreachable, message).retry_after(5)
            }
            SettingsError::Storage(s) => return s.as_ref().into(),
        };
        ApiError::new(code, message)
    }
}

impl From<AssetError> for ApiError {
    fn from(e: AssetError) -> Self {
        let message = e.to_string();
        let code = match e {
            AssetError::NoMedia(_) | AssetError::NotAnId(_) => ErrorCode::PhotoNotFound,
            AssetError::FileNotFound(_) => ErrorCode::FileNotFound,
            AssetError::NoPly => ErrorCode::NoPly,
            AssetError::UnsupportedConversion => ErrorCode::UnsupportedConversion,
            AssetError::UnknownModel(_) | AssetError::WrongKind(..) => ErrorCode::InvalidModel,
            AssetError::BadPly(..) => ErrorCode::ConversionFailed,
            AssetError::Failed(_) => ErrorCode::GenerationFailed,
            AssetError::StillRunning(_) => ErrorCode::StillGenerating,
            AssetError::Io(_) => {
                tracing::error!(error = %message, "file system failure");
                ErrorCode::FileSystemError
            }
            AssetError::Storage(s) => return s.into(),
        };
        ApiError::new(code, message)
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Asset(e) => e.into(),
            CatalogError::Media(e) => e.into(),
            CatalogError::Queue(e) => e.into(),
            CatalogError::Storage(e) => e.into(),
        }
    }
}

impl From<WorkerError> for ApiError {
    fn from(e: WorkerError) -> Self {
        let message = e.to_string();
        let code = match e {
            WorkerError::AlreadyRunning => ErrorCode::WorkerRunning,
            WorkerError::NotRunning => ErrorCode::WorkerStopped,
        };
        ApiError::new(code, message)
    }
}

impl From<crate::follow::FollowError> for ApiError {
    fn from(e: crate::follow::FollowError) -> Self {
        use crate::follow::FollowError;
        let message = e.to_string();
        let code = match e {
            FollowError::Storage(s) => return s.into(),
            FollowError::Off | FollowError::NotFollowed => ErrorCode::FollowingOff,
        };
        ApiError::new(code, message)
    }
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        let message = e.to_string();
        let code = match e {
            BackupError::Storage(s) => return s.into(),
            BackupError::Exists(_) => ErrorCode::BackupExists,
            BackupError::DiskFull(_) => ErrorCode::DiskFull,
            BackupError::Running => ErrorCode::BackupRunning,
            BackupError::UnknownTable(_) | BackupError::Io(_) => {
                tracing::error!(error = %message, "backup failed");
                ErrorCode::BackupFailed
            }
        };
        ApiError::new(code, message)
    }
}

impl From<ImmichError> for ApiError {
    fn from(e: ImmichError) -> Self {
        let message = e.to_string();
        let code = match e {
            ImmichError::NotConfigured => ErrorCode::ImmichNotConfigured,
            ImmichError::Denied { .. } => ErrorCode::ImmichRefused,
            ImmichError::KeyRevoked => ErrorCode::SignInAgain,
            ImmichError::NotFound(_) => ErrorCode::ImmichAssetNotFound,
            ImmichError::Upstream { .. } | ImmichError::BadAnswer(_) => ErrorCode::ImmichError,
            ImmichError::Unreachable(_) => ErrorCode::ImmichUnreachable,
            ImmichError::ImportRunning => ErrorCode::ImportRunning,
            ImmichError::Media(m) => return m.into(),
            ImmichError::Catalog(c) => return c.into(),
        };
        ApiError::new(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: impl Into<ApiError>) -> ErrorCode {
        e.into().code
    }

    /// The codes no request of a healthy test server can provoke.
    #[test]
    fn failures_deep_inside_map_to_their_codes() {
        let io = || std::io::Error::other("boom");
        let full = || std::io::Error::from_raw_os_error(28);
        assert_eq!(
            code(StorageError::Corrupt("x".into())),
            ErrorCode::StorageError
        );
        assert_eq!(
            code(StorageError::Db(redb::Error::Io(full()))),
            ErrorCode::DiskFull
        );
        assert_eq!(
            code(StorageError::ReadOnly("a disk error".into())),
            ErrorCode::StorageUnavailable
        );
        assert_eq!(code(StorageError::Reopening), ErrorCode::StorageUnavailable);
        assert_eq!(code(MediaError::Io(io())), ErrorCode::FileSystemError);
        assert_eq!(code(MediaError::from(full())), ErrorCode::DiskFull);
        assert_eq!(code(BackupError::Io(io())), ErrorCode::BackupFailed);
        assert_eq!(
            code(BackupError::Exists("x".into())),
            ErrorCode::BackupExists
        );
        assert_eq!(
            code(BackupError::UnknownTable("t".into())),
            ErrorCode::BackupFailed
        );
        let internal = poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ApiError::from_poem(internal).code, ErrorCode::InternalError);
        for c in ErrorCode::ALL {
            let e = ApiError::new(*c, "m");
            assert_eq!((e.status(), e.body.error.as_str()), (c.status(), c.title()));
        }
    }
}
