//! What the asset routes answer, in the VR app's field names.

use std::collections::BTreeMap;

use poem_openapi::Object;

use super::{AssetRow, Format, Kind};
use crate::timestamp::Timestamp;

/// `GET /api/assets/map`.
#[derive(Debug, Object)]
pub struct AssetMap {
    /// `success`.
    pub status: String,
    /// How many photos have assets.
    pub count: u64,
    /// Immich asset id (`null` for items without one) -> kind -> model keys.
    pub map: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// One generated file.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct FileEntry {
    pub id: uuid::Uuid,
    #[oai(rename = "type")]
    pub kind: Kind,
    pub model_key: String,
    pub format: Format,
    /// Where it is, relative to the data directories (`splats/<name>`);
    /// never a server path.
    pub file_path: String,
    /// Bytes, as a string (as the app's upstream backend sends it).
    pub file_size: String,
    #[oai(nullable)]
    pub width: Option<u32>,
    #[oai(nullable)]
    pub height: Option<u32>,
    pub metadata: BTreeMap<String, String>,
    pub generated_at: Timestamp,
}

impl From<&AssetRow> for FileEntry {
    fn from(a: &AssetRow) -> Self {
        FileEntry {
            id: a.id,
            kind: a.kind,
            model_key: a.model_key.clone(),
            format: a.format,
            file_path: a.kind.dir().key(&a.file_name),
            file_size: a.file_size.to_string(),
            width: a.width,
            height: a.height,
            metadata: a.metadata.clone(),
            generated_at: a.generated_at,
        }
    }
}

/// `GET /api/assets/{id}/files`, newest first.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct FileList {
    /// The id asked for.
    pub photo_id: String,
    pub files: Vec<FileEntry>,
    pub count: u64,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct FileDeleted {
    pub success: bool,
    pub message: String,
    pub deleted_file_id: uuid::Uuid,
}

fn depth() -> Kind {
    Kind::Depth
}

fn small() -> String {
    "small".into()
}

/// `POST /api/assets/{id}/generate`.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct GenerateBody {
    /// `depth` (default) or `splat`.
    #[oai(rename = "type", default = "depth")]
    pub kind: Kind,
    /// The depth model (`small`, `base`, `large`; default `small`); splats
    /// are always made by `sharp`.
    #[oai(default = "small")]
    pub model_key: String,
}

fn ply() -> String {
    "ply".into()
}

fn ksplat() -> String {
    "ksplat".into()
}

/// `POST /api/assets/{id}/convert`: only PLY to KSPLAT.
#[derive(Debug, Object)]
pub struct ConvertBody {
    #[oai(default = "ply")]
    pub from: String,
    #[oai(default = "ksplat")]
    pub to: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct Converted {
    pub success: bool,
    pub message: String,
    /// `converted` or `already_converted`.
    pub status: String,
    pub format: Format,
    /// The KSPLAT's file entry id.
    pub file_id: uuid::Uuid,
    /// Relative to the data directories, never a server path.
    pub output_path: String,
}
