//! The catalogue of every error this service answers: a stable,
//! machine-readable `code` (kebab-case) with its status and its title
//! (the contract's `error`). Clients and the admin page match on `code`;
//! titles and messages are for people.

use poem::http::StatusCode;

macro_rules! catalogue {
    ($($variant:ident => $code:literal, $status:ident, $title:literal;)*) => {
        /// Every error's stable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, poem_openapi::Enum)]
        #[oai(rename_all = "kebab-case")]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears in answers.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }

            /// The answer's `error`: short, stable, for people.
            pub fn title(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $title,)*
                }
            }
        }
    };
}

catalogue! {
    BadRequest => "bad-request", BAD_REQUEST, "Bad request";
    NoSettings => "no-settings", BAD_REQUEST, "No settings provided to update";
    InvalidModel => "invalid-model", BAD_REQUEST, "Invalid model";
    UnsupportedConversion => "unsupported-conversion", BAD_REQUEST, "Unsupported format";
    NoFile => "no-file", BAD_REQUEST, "No file uploaded";
    EmptyFile => "empty-file", BAD_REQUEST, "Empty file";
    InvalidMultipart => "invalid-multipart", BAD_REQUEST, "Invalid multipart body";
    KeyPermissions => "key-permissions", BAD_REQUEST, "The Immich key lacks permissions";
    Unauthorized => "unauthorized", UNAUTHORIZED, "Unauthorized";
    InvalidCredentials => "invalid-credentials", UNAUTHORIZED, "Sign-in failed";
    SignInAgain => "sign-in-again", UNAUTHORIZED, "Sign in again";
    Forbidden => "forbidden", FORBIDDEN, "Forbidden";
    HostNotAllowed => "host-not-allowed", FORBIDDEN, "Host not allowed";
    OriginNotAllowed => "origin-not-allowed", FORBIDDEN, "Origin not allowed";
    OperatorOnly => "operator-only", FORBIDDEN, "Operators only";
    LoopbackOnly => "loopback-only", FORBIDDEN, "Only this machine may connect";
    NotFound => "not-found", NOT_FOUND, "Not found";
    MediaNotFound => "media-not-found", NOT_FOUND, "Media item not found";
    QueueItemNotFound => "queue-item-not-found", NOT_FOUND, "Queue item not found";
    DepthMapNotFound => "depth-map-not-found", NOT_FOUND, "Depth map not found";
    ImmichAssetNotFound => "immich-asset-not-found", NOT_FOUND, "Immich asset not found";
    ModelNotFound => "model-not-found", NOT_FOUND, "Model not found";
    SessionNotFound => "session-not-found", NOT_FOUND, "Session not found";
    PhotoNotFound => "photo-not-found", NOT_FOUND, "Photo not found";
    FileNotFound => "file-not-found", NOT_FOUND, "File not found";
    NoPly => "no-ply", NOT_FOUND, "No PLY file found to convert";
    MethodNotAllowed => "method-not-allowed", METHOD_NOT_ALLOWED, "Method not allowed";
    RequestTimeout => "request-timeout", REQUEST_TIMEOUT, "Request timeout";
    AlreadyQueued => "already-queued", CONFLICT, "Already in queue";
    InvalidState => "invalid-state", CONFLICT, "Invalid state";
    ItemProcessing => "item-processing", CONFLICT, "Item is processing";
    WorkerRunning => "worker-running", CONFLICT, "Worker already running";
    WorkerStopped => "worker-stopped", CONFLICT, "Worker not running";
    BackupRunning => "backup-running", CONFLICT, "Backup running";
    BackupExists => "backup-exists", CONFLICT, "Backup exists";
    ImportRunning => "import-running", CONFLICT, "Import running";
    FollowingOff => "following-off", CONFLICT, "Following Immich is off";
    ModelNotDownloaded => "model-not-downloaded", CONFLICT, "Model not downloaded";
    BodyTooLarge => "body-too-large", PAYLOAD_TOO_LARGE, "Body too large";
    FileTooLarge => "file-too-large", PAYLOAD_TOO_LARGE, "File too large";
    UnsupportedMediaType => "unsupported-media-type", UNSUPPORTED_MEDIA_TYPE, "Unsupported media type";
    RangeNotSatisfiable => "range-not-satisfiable", RANGE_NOT_SATISFIABLE, "Range not satisfiable";
    InvalidBody => "invalid-body", UNPROCESSABLE_ENTITY, "Invalid body";
    ConversionFailed => "conversion-failed", UNPROCESSABLE_ENTITY, "Conversion failed";
    TooManyUploads => "too-many-uploads", TOO_MANY_REQUESTS, "Too many uploads";
    TooManySignIns => "too-many-sign-ins", TOO_MANY_REQUESTS, "Too many failed sign-ins";
    HeadersTooLarge => "headers-too-large", REQUEST_HEADER_FIELDS_TOO_LARGE, "Headers too large";
    InternalError => "internal-error", INTERNAL_SERVER_ERROR, "Internal error";
    StorageError => "storage-error", INTERNAL_SERVER_ERROR, "Storage error";
    FileSystemError => "file-system-error", INTERNAL_SERVER_ERROR, "File system error";
    BackupFailed => "backup-failed", INTERNAL_SERVER_ERROR, "Backup failed";
    ImmichRefused => "immich-refused", BAD_GATEWAY, "Immich refused the request";
    AiRefused => "ai-refused", BAD_GATEWAY, "AI service refused the request";
    GenerationFailed => "generation-failed", BAD_GATEWAY, "Failed to generate asset";
    AiNoCatalogue => "ai-no-catalogue", NOT_IMPLEMENTED, "AI service has no model catalogue";
    StillGenerating => "still-generating", GATEWAY_TIMEOUT, "Still generating";
    ImmichError => "immich-error", BAD_GATEWAY, "Immich error";
    ImmichNotConfigured => "immich-not-configured", SERVICE_UNAVAILABLE, "Immich connector not configured";
    ImmichUnreachable => "immich-unreachable", SERVICE_UNAVAILABLE, "Immich unreachable";
    AiUnhealthy => "ai-unhealthy", SERVICE_UNAVAILABLE, "AI service unhealthy";
    AiUnreachable => "ai-unreachable", SERVICE_UNAVAILABLE, "AI service unreachable";
    StorageUnavailable => "storage-unavailable", SERVICE_UNAVAILABLE, "Storage unavailable";
    TooManyConnections => "too-many-connections", SERVICE_UNAVAILABLE, "Too many connections";
    TooManyLiveSessions => "too-many-live-sessions", SERVICE_UNAVAILABLE, "Too many live sessions";
    DiskFull => "disk-full", INSUFFICIENT_STORAGE, "Disk full";
}

impl ErrorCode {
    /// The generic code for a status that a framework layer (routing,
    /// parameter parsing, CORS) produced without one of ours.
    pub fn for_status(status: StatusCode) -> ErrorCode {
        match status {
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
            StatusCode::FORBIDDEN => ErrorCode::Forbidden,
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::RANGE_NOT_SATISFIABLE => ErrorCode::RangeNotSatisfiable,
            StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::InvalidBody,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ErrorCode::HeadersTooLarge,
            s if s.is_server_error() => ErrorCode::InternalError,
            _ => ErrorCode::BadRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_are_unique_kebab_case_errors() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'),
                "{s}"
            );
            assert!(
                c.status().is_client_error() || c.status().is_server_error(),
                "{s}"
            );
            assert!(!c.title().is_empty());
            // The spec's enum (poem's renaming) says the same as the answers.
            let json = poem_openapi::types::ToJSON::to_json(c).unwrap();
            assert_eq!(json, serde_json::Value::String(s.into()));
        }
    }
}
