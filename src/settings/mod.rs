//! The VR app's settings and model catalogue: the global settings row,
//! one row per model (the three Depth Anything V2 sizes and SHARP) with
//! what this service knows of it, and the model manager that mirrors what
//! the AI service holds in memory.

mod download;
pub mod manager;
pub mod routes;
pub mod store;
mod sync;

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::{assets::Kind, echo::clip, timestamp::Timestamp};

/// The global settings (one row; created on first start).
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The model the app generates with; also the depth model new uploads
    /// and imports are queued for.
    pub default_depth_model: String,
    /// The app generates a 3D view as soon as a photo is opened.
    pub auto_generate_on_enter: bool,
    pub disable_auto_quality: bool,
    /// Follow my Immich library: each new photo gets its depth map of
    /// `defaultDepthModel` in the background, before the app asks (a
    /// signed-in person's own choice; the global row's value is the
    /// default for those who have not made theirs). The service key's
    /// library is followed whatever it says.
    #[serde(default)]
    pub follow_library: bool,
    pub updated_at: Timestamp,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_depth_model: "small".into(),
            auto_generate_on_enter: false,
            disable_auto_quality: false,
            follow_library: false,
            updated_at: Timestamp::now(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    NotDownloaded,
    Downloading,
    Downloaded,
    Error,
}

/// One model of the catalogue, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub key: String,
    pub name: String,
    pub kind: Kind,
    pub params: String,
    pub memory: String,
    pub description: String,
    pub huggingface_id: String,
    pub status: ModelStatus,
    pub download_progress: u32,
    pub file_size_bytes: Option<u64>,
    pub downloaded_at: Option<Timestamp>,
    /// Deleted here by the user: stays `not_downloaded` even though the AI
    /// service keeps its files (it deletes nothing), until downloaded again.
    #[serde(default)]
    pub deleted_by_user: bool,
}

/// The catalogue a new database starts with, in display order.
pub fn seeds() -> Vec<ModelRecord> {
    let depth = |key: &str, name: &str, params: &str, memory: &str, hf: &str| ModelRecord {
        key: key.into(),
        name: name.into(),
        kind: Kind::Depth,
        params: params.into(),
        memory: memory.into(),
        description: format!("Depth Anything V2 {name}: a depth map per photo"),
        huggingface_id: hf.into(),
        status: ModelStatus::NotDownloaded,
        download_progress: 0,
        file_size_bytes: None,
        downloaded_at: None,
        deleted_by_user: false,
    };
    vec![
        depth(
            "small",
            "Small",
            "25M",
            "~100MB",
            "depth-anything/Depth-Anything-V2-Small-hf",
        ),
        depth(
            "base",
            "Base",
            "97M",
            "~400MB",
            "depth-anything/Depth-Anything-V2-Base-hf",
        ),
        depth(
            "large",
            "Large",
            "335M",
            "~1.3GB",
            "depth-anything/Depth-Anything-V2-Large-hf",
        ),
        ModelRecord {
            key: "sharp".into(),
            name: "SHARP".into(),
            kind: Kind::Splat,
            params: "~2GB".into(),
            memory: "~4GB RAM".into(),
            description: "Apple ml-sharp: a Gaussian splat scene per photo".into(),
            huggingface_id: "apple/ml-sharp".into(),
            status: ModelStatus::NotDownloaded,
            download_progress: 0,
            file_size_bytes: None,
            downloaded_at: None,
            deleted_by_user: false,
        },
    ]
}

/// Display order: small, base, large, then the rest.
pub fn order(key: &str) -> usize {
    ["small", "base", "large", "sharp"]
        .iter()
        .position(|k| *k == key)
        .unwrap_or(usize::MAX)
}

/// Cloned for everyone who joined one download (`manager`), so a storage
/// failure is shared behind an `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SettingsError {
    #[error("No settings provided to update: send defaultDepthModel, autoGenerateOnEnter, disableAutoQuality or followLibrary")]
    NoSettings,
    /// The model, and the catalogue's depth models (the only ones a
    /// default for bulk depth maps can name).
    #[error("Invalid model: {} (defaultDepthModel takes a depth model: {})", clip(.0), .1)]
    InvalidModel(String, String),
    #[error("Model {} not found (the catalogue has small, base, large and sharp)", clip(.0))]
    UnknownModel(String),
    #[error("Model {0} is not downloaded (status: {1}); download it first")]
    NotDownloaded(String, &'static str),
    #[error("Model {0} is being downloaded now; try again when it is done")]
    Downloading(String),
    #[error("The AI service at {0} has no model catalogue (an older version): only its one model can be used, and models cannot be loaded, unloaded, downloaded or deleted from here")]
    NoCatalogue(String),
    #[error("The AI service refused: {0}")]
    AiRefused(String),
    #[error("The AI service cannot be reached: {0}")]
    AiUnreachable(String),
    #[error(transparent)]
    Storage(Arc<crate::storage::StorageError>),
}

impl From<crate::storage::StorageError> for SettingsError {
    fn from(e: crate::storage::StorageError) -> Self {
        SettingsError::Storage(Arc::new(e))
    }
}

crate::redb_errors_into!(SettingsError);

impl crate::storage::Fault for SettingsError {
    fn storage(&self) -> Option<&crate::storage::StorageError> {
        match self {
            SettingsError::Storage(s) => Some(s),
            SettingsError::NoSettings
            | SettingsError::InvalidModel(..)
            | SettingsError::UnknownModel(_)
            | SettingsError::NotDownloaded(..)
            | SettingsError::Downloading(_)
            | SettingsError::NoCatalogue(_)
            | SettingsError::AiRefused(_)
            | SettingsError::AiUnreachable(_) => None,
        }
    }
}
