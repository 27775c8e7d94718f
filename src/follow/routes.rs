//! `/api/library`: how far the followed Immich library is ready for 3D,
//! what is skipped and why, the disk the 3D assets use, and "sync now".

use std::sync::Arc;

use poem_openapi::{param::Query, payload::Json, ApiResponse, Object, OpenApi};

use super::{figures::Disk, Figures, FollowError};
use crate::{
    access::sharing::{library_scope, sees_library},
    auth::Authed,
    http::{
        codes::ErrorCode as E,
        error::ApiError,
        spec::{op, OpErrors, Storage},
    },
    state::{ApiTags, AppState},
};

pub struct LibraryApi {
    pub state: Arc<AppState>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct LibraryStatus {
    /// Whether Immich libraries are followed (`IMMICH_URL` set, and
    /// `IMMICH_SYNC_SECS` above 0): the service key's (`IMMICH_API_KEY`)
    /// and those of people who turned `followLibrary` on.
    pub following: bool,
    /// `IMMICH_SYNC_SECS`.
    pub interval_secs: u64,
    /// The followed libraries the caller may see: a signed-in person their
    /// own (empty until they turn `followLibrary` on); the operator's
    /// token every one.
    pub libraries: Vec<Figures>,
    /// Why the service key's library cannot be read now (the key, Immich
    /// unreachable); each library's own failure is its `lastError`.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    /// Disk used by 3D assets.
    pub disk: Disk,
    /// Why background work waits now (`null` while it runs).
    #[oai(skip_serializing_if_is_none)]
    pub background_paused_reason: Option<String>,
}

#[derive(ApiResponse)]
enum SyncStarted {
    /// The library is being read now; follow `/api/library` (or the
    /// `library` event) for the figures.
    #[oai(status = 202)]
    Accepted(Json<LibraryStatus>),
}

impl LibraryApi {
    /// The figures `caller` may see (`access::sharing::sees_library`).
    async fn status(&self, caller: &crate::auth::Caller) -> LibraryStatus {
        let f = &self.state.follower;
        let worker = self.state.worker.status().await;
        let user = caller.user_id();
        LibraryStatus {
            following: f.on(),
            interval_secs: f.interval().as_secs(),
            libraries: f
                .figures()
                .into_iter()
                .filter(|l| sees_library(user, &l.owner_id))
                .collect(),
            error: f.error(),
            disk: f.disk(),
            background_paused_reason: worker.background_paused_reason,
        }
    }
}

#[OpenApi(prefix_path = "/api/library", tag = "ApiTags::Library")]
impl LibraryApi {
    /// How far the library is ready for 3D
    ///
    /// "Ready for 3D: `ready` of `photos` photos (model `model`)", what is
    /// left with an estimate from the measured rate, what is skipped and
    /// why, and the disk 3D assets use per model. The same figures come as
    /// the `library` event of `/api/events`, and in the app's `queue:update`.
    #[oai(path = "/", method = "get", operation_id = "getLibrary")]
    async fn get(&self, auth: Authed) -> Result<Json<LibraryStatus>, ApiError> {
        Ok(Json(self.status(&auth.0).await))
    }

    /// Read the Immich library now
    ///
    /// Starts a round at once instead of at the next `IMMICH_SYNC_SECS`
    /// (a round under way finishes first); answers at once. A signed-in
    /// person's own library (409 `following-off` until they turn
    /// `followLibrary` on); an operator's, every followed library.
    /// `full=true` reads everything, so photos deleted in Immich without
    /// passing through the trash are noticed now rather than within a day.
    #[oai(path = "/sync", method = "post", operation_id = "syncLibrary")]
    async fn sync(&self, auth: Authed, full: Query<Option<bool>>) -> Result<SyncStarted, ApiError> {
        let follower = &self.state.follower;
        let full = full.0.unwrap_or(false);
        match library_scope(&auth.0) {
            Some(owner) => {
                if !follower.follows(owner).await? {
                    let off = if follower.on() {
                        FollowError::NotFollowed
                    } else {
                        FollowError::Off
                    };
                    return Err(off.into());
                }
                follower.sync_now(Some(owner), full)?;
            }
            None => follower.sync_now(None, full)?,
        }
        Ok(SyncStarted::Accepted(Json(self.status(&auth.0).await)))
    }
}

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op("getLibrary", Storage::None, &[]),
    op("syncLibrary", Storage::Reads, &[E::FollowingOff]),
];
