//! The Immich connector: a client for today's Immich API (3.x, base path
//! `/api`, header `x-api-key`), our `/api/immich/*` routes, and imports of
//! Immich assets into the queue.

pub mod account;
pub mod client;
pub mod import;
pub mod routes;
pub mod timeline;
pub mod views;

use poem_openapi::Object;
use serde::{Deserialize, Deserializer};

pub use client::ImmichClient;

#[derive(Debug, thiserror::Error)]
pub enum ImmichError {
    #[error("Please set IMMICH_URL and IMMICH_API_KEY environment variables")]
    NotConfigured,
    /// 401/403: Immich's own message names the missing permission.
    #[error("Immich refused the request ({status}): {message}")]
    Denied { status: u16, message: String },
    /// A signed-in user's key that Immich no longer accepts.
    #[error("Immich no longer accepts the key this sign-in made (revoked or deleted in Immich): sign in again")]
    KeyRevoked,
    #[error("Immich has no such asset: {0}")]
    NotFound(String),
    #[error("Immich answered {status}: {message}")]
    Upstream { status: u16, message: String },
    #[error("Immich is unreachable: {0}")]
    Unreachable(String),
    #[error("Immich's answer could not be read: {0}")]
    BadAnswer(String),
    #[error("An import is already running; wait for it to finish")]
    ImportRunning,
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
}

/// Immich's asset types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetType {
    Image,
    Video,
    Audio,
    Other,
}

impl AssetType {
    /// Immich's `type` string (`IMAGE`, `VIDEO`, `AUDIO`, `OTHER`).
    pub fn of(s: &str) -> Self {
        match s {
            "IMAGE" => AssetType::Image,
            "VIDEO" => AssetType::Video,
            "AUDIO" => AssetType::Audio,
            _ => AssetType::Other,
        }
    }

    /// Whether the AI service can make something of it.
    pub fn is_media(self) -> bool {
        matches!(self, AssetType::Image | AssetType::Video)
    }
}

/// The fields of Immich's `AssetResponseDto` this service uses. Unknown
/// fields are ignored and everything not needed is optional, so that
/// Immich releases that add or loosen fields do not break us.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    pub id: String,
    #[serde(rename = "type")]
    pub asset_type: String,
    #[serde(default)]
    pub original_file_name: String,
    #[serde(default)]
    pub original_mime_type: Option<String>,
    #[serde(default)]
    pub file_created_at: Option<crate::timestamp::Timestamp>,
    #[serde(default)]
    pub local_date_time: Option<String>,
    #[serde(default)]
    pub is_favorite: bool,
    #[serde(default)]
    pub is_archived: bool,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    /// Milliseconds since Immich 3.0; an "H:MM:SS.ffffff" string before.
    #[serde(default, deserialize_with = "duration_ms")]
    pub duration: Option<u64>,
    /// Base64 SHA-1, kept as Immich sends it.
    #[serde(default)]
    pub checksum: Option<String>,
    /// When Immich last changed the asset's row.
    #[serde(default)]
    pub updated_at: Option<crate::timestamp::Timestamp>,
    /// A hash of the thumbnail: `null` until Immich made its previews,
    /// and new when an edit made them again.
    #[serde(default)]
    pub thumbhash: Option<String>,
    /// `timeline`, `archive`, `hidden` (a live photo's motion part) or `locked`.
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub is_trashed: bool,
    #[serde(default)]
    pub owner_id: Option<String>,
}

/// An Immich asset as our API shows it.
#[derive(Debug, Clone, Object)]
#[oai(rename = "ImmichAsset", rename_all = "camelCase")]
pub struct AssetView {
    pub id: String,
    /// IMAGE, VIDEO, AUDIO or OTHER.
    #[oai(rename = "type")]
    pub asset_type: String,
    pub original_file_name: String,
    #[oai(nullable)]
    pub original_mime_type: Option<String>,
    #[oai(nullable)]
    pub file_created_at: Option<crate::timestamp::Timestamp>,
    pub is_favorite: bool,
    pub is_archived: bool,
    #[oai(nullable)]
    pub width: Option<u32>,
    #[oai(nullable)]
    pub height: Option<u32>,
    /// Video length in milliseconds, whichever form Immich sent.
    #[oai(nullable)]
    pub duration_ms: Option<u64>,
    /// Base64 SHA-1 as Immich sends it.
    #[oai(nullable)]
    pub checksum: Option<String>,
}

impl From<Asset> for AssetView {
    fn from(a: Asset) -> Self {
        AssetView {
            id: a.id,
            asset_type: a.asset_type,
            original_file_name: a.original_file_name,
            original_mime_type: a.original_mime_type,
            file_created_at: a.file_created_at,
            is_favorite: a.is_favorite,
            is_archived: a.is_archived,
            width: a.width,
            height: a.height,
            duration_ms: a.duration,
            checksum: a.checksum,
        }
    }
}

fn duration_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Ms(f64),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => None,
        Some(Raw::Ms(ms)) => Some(ms.max(0.0) as u64),
        Some(Raw::Text(s)) => parse_hms(&s),
    })
}

/// "H:MM:SS.ffffff" -> milliseconds.
pub fn parse_hms(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let [h, m, sec] = parts.as_slice() else {
        return None;
    };
    let h: f64 = h.parse().ok()?;
    let m: f64 = m.parse().ok()?;
    let sec: f64 = sec.parse().ok()?;
    Some(((h * 3600.0 + m * 60.0 + sec) * 1000.0).round() as u64)
}

/// Originals the AI service cannot open: Immich's preview JPEG is used.
pub fn needs_preview(mime: Option<&str>, file_name: &str) -> bool {
    let m = mime.unwrap_or("").to_ascii_lowercase();
    let ext = file_name
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    m.contains("heic")
        || m.contains("heif")
        || m.starts_with("image/x-")
        || m == "image/dng"
        || [
            "heic", "heif", "dng", "cr2", "cr3", "nef", "arw", "raf", "orf", "rw2", "pef", "srw",
        ]
        .contains(&ext.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_in_both_forms() {
        let new: Asset =
            serde_json::from_str(r#"{"id":"a","type":"VIDEO","duration":61500,"extra":1}"#)
                .unwrap();
        assert_eq!(new.duration, Some(61500));
        let old: Asset =
            serde_json::from_str(r#"{"id":"a","type":"VIDEO","duration":"0:01:01.500000"}"#)
                .unwrap();
        assert_eq!(old.duration, Some(61500));
        let none: Asset =
            serde_json::from_str(r#"{"id":"a","type":"IMAGE","duration":null}"#).unwrap();
        assert_eq!(none.duration, None);
        assert_eq!(parse_hms("bogus"), None);
    }

    #[test]
    fn heic_and_raw_use_the_preview() {
        assert!(needs_preview(Some("image/heic"), "a.HEIC"));
        assert!(needs_preview(Some("image/x-canon-cr2"), "a.cr2"));
        assert!(needs_preview(None, "IMG_1.dng"));
        assert!(!needs_preview(Some("image/jpeg"), "a.jpg"));
    }
}
