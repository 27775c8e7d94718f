//! Generated 3D assets: what the AI service made for a media item, per
//! kind (`depth` map or Gaussian `splat`), model and file format. One row
//! per (media item, kind, model, format); a new one of the same key
//! replaces the old row and its file in the same commit.

pub mod generate;
pub mod ksplat;
mod respond;
pub mod routes;
pub mod store;
pub mod views;

use std::collections::BTreeMap;

use poem_openapi::Enum;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{echo::clip, media::FileDir, timestamp::Timestamp};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Enum, Serialize, Deserialize,
)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A grayscale depth map (brighter = nearer).
    Depth,
    /// A Gaussian splat scene.
    Splat,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Depth => "depth",
            Kind::Splat => "splat",
        }
    }

    /// Where its files live.
    pub fn dir(self) -> FileDir {
        match self {
            Kind::Depth => FileDir::DepthMaps,
            Kind::Splat => FileDir::Splats,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Enum, Serialize, Deserialize,
)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// 8-bit grayscale PNG (photo depth maps).
    Png,
    /// ZIP of PNG frames (video depth maps).
    Zip,
    /// Binary little-endian 3DGS PLY, as the AI service writes splats.
    Ply,
    /// KSPLAT (SplatBuffer v0.1), converted here from the PLY.
    Ksplat,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Zip => "zip",
            Format::Ply => "ply",
            Format::Ksplat => "ksplat",
        }
    }

    /// What downloads are sent as.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Zip => "application/zip",
            Format::Ply | Format::Ksplat => "application/octet-stream",
        }
    }
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetRow {
    pub id: Uuid,
    pub media_item_id: Uuid,
    /// The media item's Immich asset, copied here for the asset map.
    pub immich_asset_id: Option<String>,
    pub kind: Kind,
    pub model_key: String,
    pub format: Format,
    /// Relative to the kind's directory (`DEPTH_MAPS_DIR`, `SPLATS_DIR`).
    pub file_name: String,
    pub file_size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// SHA-256 of the file, hex.
    pub checksum: String,
    /// Free-form facts: `model_name`, `converted_from`, `source`, `splats`.
    pub metadata: BTreeMap<String, String>,
    pub generated_at: Timestamp,
    /// Downloads through the old `/api/media/{id}/depth` route.
    #[serde(default)]
    pub access_count: u64,
    #[serde(default)]
    pub accessed_at: Option<Timestamp>,
}

impl AssetRow {
    /// The unique key: `<media>/<kind>/<model>/<format>`; a media item's
    /// rows share the prefix `<media>/`.
    pub fn key(&self) -> String {
        key(self.media_item_id, self.kind, &self.model_key, self.format)
    }

    /// The file index key (`depth_maps/<name>`, `splats/<name>`).
    pub fn file_key(&self) -> String {
        self.kind.dir().key(&self.file_name)
    }
}

pub fn key(media: Uuid, kind: Kind, model: &str, format: Format) -> String {
    format!("{media}/{}/{model}/{}", kind.as_str(), format.as_str())
}

/// The depth models the AI service offers; a model key outside these (and
/// `sharp` for splats) is refused before anything is queued.
pub const DEPTH_MODELS: [&str; 3] = ["small", "base", "large"];
/// The one splat model.
pub const SPLAT_MODEL: &str = "sharp";

#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    #[error("No Immich asset {} has 3D assets here, and none could be made", clip(.0))]
    NoMedia(String),
    #[error("No photo has the id {}: photo ids are UUIDs (Immich's or ours)", clip(.0))]
    NotAnId(String),
    #[error("No generated file {} for this photo", clip(.0))]
    FileNotFound(String),
    #[error("No PLY file found to convert")]
    NoPly,
    #[error("Only ksplat conversion is supported (from ply); PLY files can be loaded directly by SparkJS")]
    UnsupportedConversion,
    #[error("Unknown model '{}'; the catalogue has small, base, large (depth) and sharp (splat)", clip(.0))]
    UnknownModel(String),
    #[error("Model {} is a {} model; it cannot make a {}", clip(.0), .1, .2)]
    WrongKind(String, &'static str, &'static str),
    #[error("The {0} file is not a splat this service can read: {1}")]
    BadPly(&'static str, String),
    #[error("Still generating after {0} s; the job carries on, and asking again later answers from the cache")]
    StillRunning(u64),
    #[error("Generating failed: {0}")]
    Failed(String),
    #[error("cannot read or write a generated file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}
