//! Media items: uploaded or imported originals, their files on disk, their
//! depth maps, and the routes that serve them.

pub mod cleanup;
pub mod files;
pub mod gate;
pub mod routes;
pub mod sink;
pub mod store;
pub mod upload;

use std::path::PathBuf;

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::storage::StorageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    Photo,
    Video,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Upload,
    Immich,
}

/// A media item row, with the contract's field names.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
#[oai(rename = "MediaItem")]
pub struct MediaRow {
    pub id: Uuid,
    /// The client's file name: metadata only, never a path on disk.
    pub original_filename: String,
    pub media_type: MediaType,
    /// Where the original is on the server. Stored relative to `UPLOAD_DIR`
    /// (a moved or restored data dir keeps working); answers show it whole.
    pub file_path: String,
    pub file_size: u64,
    pub mime_type: String,
    #[oai(nullable)]
    pub width: Option<u32>,
    #[oai(nullable)]
    pub height: Option<u32>,
    #[oai(nullable)]
    pub duration_seconds: Option<f64>,
    #[oai(nullable)]
    pub frame_rate: Option<f64>,
    /// SHA-256 of the bytes, hex.
    pub checksum: String,
    #[oai(nullable)]
    pub captured_at: Option<crate::timestamp::Timestamp>,
    pub uploaded_at: crate::timestamp::Timestamp,
    pub source: Source,
    #[oai(nullable)]
    pub immich_asset_id: Option<String>,
    /// For Immich imports: `original` or `preview` (when the original is a format the AI service cannot read).
    #[oai(nullable)]
    pub immich_variant: Option<String>,
    pub created_at: crate::timestamp::Timestamp,
    pub updated_at: crate::timestamp::Timestamp,
    /// Upload order, for newest-first listing.
    #[oai(skip)]
    pub seq: u64,
    /// Whose it is: the Immich user who owns the asset (or uploaded the
    /// file here); `None` for an operator's upload, or an item stored
    /// before sign-in existed whose owner is not known yet. Decides who
    /// sees it (`access::sharing`).
    #[oai(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The last signed-in person who asked for it (a job may read an
    /// Immich asset with their key when its owner is not signed in).
    #[oai(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

impl MediaRow {
    /// An item the VR app made for an Immich asset: its original stays in
    /// Immich (fetched when a job needs it), nothing is stored here.
    pub fn is_referenced(&self) -> bool {
        self.file_path.is_empty()
    }
}

/// The record of a generated depth map, as the old routes show it: the
/// item's depth asset of the model its queue entry was made for.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
#[oai(rename = "DepthMap")]
pub struct DepthMap {
    pub id: Uuid,
    pub media_item_id: Uuid,
    /// Stored relative to `DEPTH_MAPS_DIR`.
    pub file_path: String,
    pub file_size: u64,
    /// `png` for photos, `zip` (PNG frames) for videos.
    pub format: String,
    #[oai(nullable)]
    pub width: Option<u32>,
    #[oai(nullable)]
    pub height: Option<u32>,
    pub model_name: String,
    pub model_version: String,
    pub checksum: String,
    pub generated_at: crate::timestamp::Timestamp,
    #[oai(nullable)]
    pub accessed_at: Option<crate::timestamp::Timestamp>,
    pub access_count: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("No media item with id {0}")]
    NotFound(Uuid),
    #[error("Media item {0} has no depth map yet; it appears once processing completes")]
    DepthNotReady(Uuid),
    #[error("Media item {0} is being processed; try again when it is done")]
    Processing(Uuid),
    #[error("Send the file in the multipart field 'media'")]
    MissingField,
    #[error("The uploaded file is empty")]
    EmptyFile,
    #[error("The multipart body could not be read: {0}")]
    BadMultipart(String),
    #[error("The file is larger than the limit of {limit} bytes (MAX_UPLOAD_BYTES)")]
    TooLarge { limit: u64 },
    #[error("Only photos and videos are accepted; the file's content looks like {detected}")]
    Unsupported { detected: String },
    #[error("Not enough disk space to store the file; free some space and try again")]
    DiskFull,
    #[error("The server is receiving {concurrency} uploads and {waiting} more are waiting (UPLOAD_CONCURRENCY, UPLOAD_QUEUE); try again shortly")]
    Busy { concurrency: usize, waiting: usize },
    #[error("The client stopped sending the body: {0}")]
    Stalled(String),
    #[error("File system error: {0}")]
    Io(std::io::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<std::io::Error> for MediaError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
            MediaError::DiskFull
        } else {
            MediaError::Io(e)
        }
    }
}

crate::redb_errors_into!(MediaError);

impl crate::storage::Fault for MediaError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            MediaError::Storage(s) => Some(s),
            MediaError::NotFound(_)
            | MediaError::DepthNotReady(_)
            | MediaError::Processing(_)
            | MediaError::MissingField
            | MediaError::EmptyFile
            | MediaError::BadMultipart(_)
            | MediaError::TooLarge { .. }
            | MediaError::Unsupported { .. }
            | MediaError::DiskFull
            | MediaError::Busy { .. }
            | MediaError::Stalled(_)
            | MediaError::Io(_) => None,
        }
    }
}

/// The directories files live in. Rows name a file by its directory and
/// its name in it, never by an absolute path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileDir {
    Uploads,
    DepthMaps,
    Splats,
}

impl FileDir {
    /// The key prefix in the file index (stable on disk).
    pub fn prefix(self) -> &'static str {
        match self {
            FileDir::Uploads => "uploads/",
            FileDir::DepthMaps => "depth_maps/",
            FileDir::Splats => "splats/",
        }
    }

    /// `uploads/<name>`: a file's key in the file index.
    pub fn key(self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }
}

/// Where media files live.
#[derive(Debug, Clone)]
pub struct MediaDirs {
    pub uploads: PathBuf,
    pub depth_maps: PathBuf,
    pub splats: PathBuf,
}

impl MediaDirs {
    pub fn dir(&self, which: FileDir) -> &std::path::Path {
        match which {
            FileDir::Uploads => &self.uploads,
            FileDir::DepthMaps => &self.depth_maps,
            FileDir::Splats => &self.splats,
        }
    }

    /// The file a row names.
    pub fn path(&self, which: FileDir, name: &str) -> PathBuf {
        self.dir(which).join(name)
    }

    /// Where the original is, as answers show it: its whole path, or
    /// `immich://<asset id>` for an item whose original stays in Immich.
    pub fn shown(&self, row: &MediaRow) -> String {
        if row.is_referenced() {
            format!("immich://{}", row.immich_asset_id.as_deref().unwrap_or(""))
        } else {
            self.original(row).to_string_lossy().into_owned()
        }
    }

    pub fn original(&self, row: &MediaRow) -> PathBuf {
        self.path(FileDir::Uploads, &row.file_path)
    }

    pub fn depth_map(&self, d: &DepthMap) -> PathBuf {
        self.path(FileDir::DepthMaps, &d.file_path)
    }
}

/// The last segment of a stored path: rows of schema 1 held absolute
/// paths, rows since hold the name alone.
pub fn file_name_of(stored: &str) -> String {
    std::path::Path::new(stored)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| stored.to_string())
}
