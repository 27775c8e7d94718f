//! Following an Immich library: every new photo on its timeline gets the
//! depth map the app would ask for (its owner's `defaultDepthModel`),
//! newest first; an edited photo is made again; one deleted in Immich
//! loses its 3D assets after a grace period; videos and photos the AI
//! refuses are skipped with the reason kept.
//!
//! How changes are noticed: Immich's sync stream needs a login session
//! (API keys are refused), so each library is read with metadata search
//! (`POST /search/metadata`) filtered by `updatedAfter` from a durable
//! cursor, trashed assets included (`withDeleted`). Assets in the trash,
//! or waiting for Immich's preview, are looked at one by one
//! (`GET /assets/{id}`) until they come back or are gone; once a day a
//! full sweep finds what was deleted without passing through the trash.
//!
//! A library is keyed by its owner's Immich user id: the service key's
//! (`IMMICH_API_KEY`), and each signed-in person's who turned
//! `followLibrary` on in their settings, read with that person's own key.
//! [`settings_for`] is the one place that says what a library's owner
//! wants. A person who signs out of every session (their key is gone)
//! or turns it off is no longer followed: what was made stays, nothing
//! new is made, and their rows no longer hold a photo another library
//! deleted.

pub mod budget;
pub mod figures;
mod libraries;
pub mod plan;
pub mod routes;
pub mod service;
pub mod store;
mod sync;

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use service::Follower;

use crate::{storage::StorageError, timestamp::Timestamp};

/// Where a library's reading stands (one row per owner).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OwnerState {
    pub owner_id: String,
    #[serde(default)]
    pub name: String,
    /// Every asset changed before this was seen: the next sweep asks for
    /// `updatedAfter` this (less a margin).
    pub cursor: Option<Timestamp>,
    /// A sweep under way: resumed where it stopped after a restart.
    pub sweep: Option<Sweep>,
    pub last_sync_at: Option<Timestamp>,
    pub last_full_at: Option<Timestamp>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Not followed any more since then (signed out, or turned it off):
    /// its rows stay (a return resumes at the cursor) but hold nothing
    /// another library deleted.
    #[serde(default)]
    pub stopped_at: Option<Timestamp>,
}

/// One pass over (part of) a library, page by page; each page is
/// committed with the sweep's progress, so a crash resumes at the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// When it started; also its id (rows seen in a full sweep carry it).
    pub id: Timestamp,
    /// A full sweep reads everything and notices what is gone.
    pub full: bool,
    pub updated_after: Option<Timestamp>,
    /// The next page to read (Immich's pages start at 1).
    pub next_page: u32,
    /// The newest `updatedAt` seen so far: the cursor once it ends.
    pub max_updated: Option<Timestamp>,
    pub seen: u64,
}

/// What is known of one asset of a library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Followed {
    pub asset_id: String,
    pub file_name: String,
    /// Checksum and thumbhash: a new one means an edit (the preview the
    /// depth map is made from changed).
    pub fingerprint: String,
    pub captured_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    #[serde(flatten)]
    pub state: AssetState,
    /// The media item its 3D assets belong to (made with its first job).
    pub media_id: Option<Uuid>,
    /// The full sweep that last saw it.
    pub seen_in: Option<Timestamp>,
    /// When it was last looked at on its own (in the trash, no preview).
    pub checked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AssetState {
    /// A photo on the timeline: its depth map is made (or on its way).
    Wanted,
    /// A photo Immich has not made its preview of yet.
    NoPreview,
    /// Not made, and why.
    Skipped { reason: Skip },
    /// In Immich's trash: kept, it may come back.
    Trashed { since: Timestamp },
    /// Gone from Immich: its 3D assets go once the grace period is over.
    Gone { since: Timestamp },
    /// Removed to keep within `ASSET_DISK_BUDGET`; made again only if it changes.
    Evicted { at: Timestamp },
}

/// Why an asset is not made.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Enum,
)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum Skip {
    /// A video: depth maps are made for photos.
    Video,
    /// Archived in Immich: not on the timeline the app shows.
    Archived,
    /// A live photo's motion part, or another asset Immich hides.
    Hidden,
    /// Neither photo nor video (audio, other).
    NotAPhoto,
    /// The AI service refused it, or it failed every attempt.
    Failed,
    /// Removed to keep within ASSET_DISK_BUDGET.
    DiskBudget,
}

impl Skip {
    pub fn says(self) -> &'static str {
        match self {
            Skip::Video => "a video: depth maps are made for photos only",
            Skip::Archived => "archived in Immich: not on the timeline the app shows",
            Skip::Hidden => "hidden by Immich (a live photo's motion part)",
            Skip::NotAPhoto => "neither a photo nor a video",
            Skip::Failed => "the AI service refused it, or it failed every attempt",
            Skip::DiskBudget => "removed to keep 3D assets within ASSET_DISK_BUDGET",
        }
    }
}

/// What a library's owner wants made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSettings {
    /// Whether the library is followed at all.
    pub follow: bool,
    /// The depth model each new photo gets (the app's `defaultDepthModel`).
    pub depth_model: String,
}

/// The one place that says what `owner` wants made: their library is
/// followed while `sync_on` (`IMMICH_SYNC_SECS` above 0) if it is the
/// service key's (`service`, the key's user) or they turned
/// `followLibrary` on; new photos get their own `defaultDepthModel`
/// (their settings row over the global one). Whether their key is held
/// (signed in) is the follower's to check.
pub fn settings_for(
    txn: &impl crate::storage::Reader,
    owner: &str,
    sync_on: bool,
    service: Option<&str>,
) -> Result<OwnerSettings, StorageError> {
    let s = crate::settings::store::settings_of(txn, Some(owner))?.unwrap_or_default();
    Ok(OwnerSettings {
        follow: sync_on && (service == Some(owner) || s.follow_library),
        depth_model: s.default_depth_model,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("Following Immich needs IMMICH_URL (with IMMICH_API_KEY, or people who sign in), and IMMICH_SYNC_SECS above 0")]
    Off,
    #[error("Your Immich library is not followed: turn followLibrary on in your settings (PUT /api/settings)")]
    NotFollowed,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

crate::redb_errors_into!(FollowError);

impl crate::storage::Fault for FollowError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            FollowError::Storage(s) => Some(s),
            FollowError::Off | FollowError::NotFollowed => None,
        }
    }
}

/// The library's figures, as the API, the event stream and the app's
/// `queue:update` show them.
#[derive(Debug, Clone, PartialEq, Object, Serialize)]
#[oai(rename = "LibraryFigures", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// The library owner's Immich user id.
    pub owner_id: String,
    /// The owner's name in Immich.
    pub owner_name: String,
    /// The depth model new photos get (the owner's `defaultDepthModel`).
    pub model: String,
    /// Photos on the timeline with that model's depth map stored.
    pub ready: u64,
    /// Photos on the timeline (the trash, archive and videos left out).
    pub photos: u64,
    /// Photos still to make (queued, being made, or waiting for Immich's preview).
    pub left: u64,
    /// Of `left`, those Immich has not made its preview of yet.
    pub waiting_for_preview: u64,
    /// Seconds until `left` is done at the measured rate (`null` until
    /// there is a rate, or when nothing is left).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
    /// What is not made, by reason.
    pub skipped: Vec<SkippedGroup>,
    /// Assets in Immich's trash (kept until they are gone for good).
    pub trashed: u64,
    /// Assets gone from Immich whose 3D assets wait for the grace period.
    pub gone: u64,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync_at: Option<Timestamp>,
    /// A sweep is reading the library now.
    pub syncing: bool,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Object, Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SkippedGroup {
    pub reason: Skip,
    /// The reason in words.
    pub says: String,
    pub count: u64,
    /// A few of them (Immich id, file name, and for failures the error).
    pub examples: Vec<SkippedExample>,
}

#[derive(Debug, Clone, PartialEq, Object, Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SkippedExample {
    pub asset_id: String,
    pub file_name: String,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
